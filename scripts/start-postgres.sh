#!/usr/bin/env bash
# Start a local PostgreSQL server (Debian's package) for the integration tests and
# print the URL they read from GPUNET_TEST_POSTGRES_URL. Needs root (apt-get, pg_ctlcluster).
set -euo pipefail

VERSION_DIR=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$VERSION_DIR" ]; then
  echo "installing PostgreSQL from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  VERSION_DIR=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
VERSION=$(basename "$(dirname "$VERSION_DIR")")

if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$VERSION main"; then
  pg_createcluster "$VERSION" main >&2
fi
if ! pg_lsclusters -h | awk '$1=="'"$VERSION"'" && $2=="main" {print $4}' | grep -qx online; then
  pg_ctlcluster "$VERSION" main start >&2
fi
PORT=$(pg_lsclusters -h | awk '$1=="'"$VERSION"'" && $2=="main" {print $3}')

run_psql() { su postgres -c "psql -p $PORT -v ON_ERROR_STOP=1 -qtAc \"$1\""; }
if [ -z "$(run_psql "SELECT 1 FROM pg_roles WHERE rolname='gpunet'")" ]; then
  run_psql "CREATE ROLE gpunet LOGIN PASSWORD 'gpunet' CREATEDB" >&2
fi
if [ -z "$(run_psql "SELECT 1 FROM pg_database WHERE datname='gpunet_test'")" ]; then
  su postgres -c "createdb -p $PORT -O gpunet gpunet_test" >&2
fi
echo "postgresql+psycopg://gpunet:gpunet@127.0.0.1:${PORT}/gpunet_test"
