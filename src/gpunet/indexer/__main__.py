"""``python -m gpunet.indexer [--host H] [--port P] [--access-log]``: run an indexer.

Settings come from ``GPUNET_*`` environment variables.
"""

from __future__ import annotations

import argparse
import sys

from gpunet.errors import ConfigError
from gpunet.indexer.server import DEFAULT_HOST, DEFAULT_PORT, serve
from gpunet.indexer.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, load settings and serve; return an exit code."""
    parser = argparse.ArgumentParser(prog="python -m gpunet.indexer", description=__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--access-log", action="store_true", help="log every request (off: see /metrics)"
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(settings, host=args.host, port=args.port, access_log=args.access_log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
