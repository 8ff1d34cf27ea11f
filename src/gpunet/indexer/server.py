"""Run an indexer with uvicorn."""

from __future__ import annotations

import uvicorn

from gpunet.indexer.app import create_app
from gpunet.indexer.settings import IndexerSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8700


def serve(
    settings: IndexerSettings | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Serve an indexer on ``host:port`` until interrupted.

    uvicorn's access log (a line per request) is off unless ``access_log`` is set:
    it costs a log record per request, and ``/metrics`` counts requests by route and
    status already.
    """
    uvicorn.run(
        create_app(settings), host=host, port=port, log_level=log_level, access_log=access_log
    )
