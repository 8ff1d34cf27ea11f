"""``python -m gpunet.indexer.openapi``: print the indexer's OpenAPI schema.

The output is sorted, indented JSON, so ``docs/openapi.json`` can be regenerated
and compared in CI. Building the schema touches no database.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from gpunet.indexer.app import create_app
from gpunet.indexer.settings import load_settings


def openapi_schema() -> dict[str, Any]:
    """The schema of an app with default settings and an in-memory database."""
    return create_app(load_settings(database_url="sqlite://")).openapi()


def main() -> int:
    """Write the schema to standard output."""
    sys.stdout.write(json.dumps(openapi_schema(), indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
