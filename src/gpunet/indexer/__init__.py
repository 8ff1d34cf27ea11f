"""The indexer: registry of nodes and offers, liveness, and signed-request checks.

Entry points: ``create_app`` (the FastAPI app), ``serve`` (run it with uvicorn),
``upgrade_database`` (migrate a store) and ``IndexerSettings`` / ``load_settings``.
"""

from __future__ import annotations

from gpunet.indexer.app import create_app
from gpunet.indexer.migrate import upgrade_database
from gpunet.indexer.server import serve
from gpunet.indexer.settings import IndexerSettings, load_settings

__all__ = ["IndexerSettings", "create_app", "load_settings", "serve", "upgrade_database"]
