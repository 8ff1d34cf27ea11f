#!/usr/bin/env bash
# Start a local Hardhat node (chain id 31337) for the JSON-RPC chain tests and print the
# URL they read from GPUNET_TEST_EVM_URL. Hardhat 2 comes from npm, pinned by
# chain/hardhat/package-lock.json, installed into $GPUNET_HARDHAT_DIR (default .hardhat/).
# Needs Node.js 18+ and npm. The node runs in the background; its log and pid are in
# that folder (stop it with: kill "$(cat .hardhat/node.pid)").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HARDHAT_DIR=${GPUNET_HARDHAT_DIR:-$ROOT/.hardhat}
PORT=${GPUNET_HARDHAT_PORT:-8545}
URL="http://127.0.0.1:${PORT}"

answers() {
  curl -s -m 2 -X POST -H 'content-type: application/json' \
    --data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "$URL" 2>/dev/null \
    | grep -q '"result"'
}

if answers; then
  echo "$URL"
  exit 0
fi

command -v npm >/dev/null || { echo "npm is missing: install Node.js 18 or later" >&2; exit 1; }
mkdir -p "$HARDHAT_DIR"
for file in package.json package-lock.json hardhat.config.js; do
  cp "$ROOT/chain/hardhat/$file" "$HARDHAT_DIR/$file"
done
# Reinstall only when the lock file changed since the last install.
if ! cmp -s "$HARDHAT_DIR/package-lock.json" "$HARDHAT_DIR/node_modules/.gpunet-lock" 2>/dev/null; then
  echo "installing Hardhat into $HARDHAT_DIR" >&2
  (cd "$HARDHAT_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
  cp "$HARDHAT_DIR/package-lock.json" "$HARDHAT_DIR/node_modules/.gpunet-lock"
fi

echo "starting Hardhat on port $PORT (log: $HARDHAT_DIR/node.log)" >&2
cd "$HARDHAT_DIR"
HARDHAT_DISABLE_TELEMETRY_PROMPT=true \
  nohup ./node_modules/.bin/hardhat node --hostname 127.0.0.1 --port "$PORT" >node.log 2>&1 &
echo $! >node.pid
cd "$ROOT"

for _ in $(seq 1 120); do
  if answers; then
    echo "$URL"
    exit 0
  fi
  sleep 0.5
done
echo "Hardhat did not answer at $URL within 60 s; see $HARDHAT_DIR/node.log" >&2
exit 1
