"""``gpunet indexer start``: run the indexer service (FastAPI on uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gpunet.cli.console import note, setup_logging

app = typer.Typer(help="Run the indexer: the registry of nodes and offers.", no_args_is_help=True)


@app.command("start")
def start(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port to listen on.")] = 8700,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the SQLite database lives. Default: $GPUNET_DATA_DIR, else ./.gpunet.",
            show_default=False,
        ),
    ] = None,
    heartbeat_interval: Annotated[
        float | None,
        typer.Option(
            help="Seconds between node heartbeats the indexer asks for. "
            "Default: $GPUNET_HEARTBEAT_INTERVAL_S, else 60.",
            show_default=False,
        ),
    ] = None,
    heartbeat_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds without a heartbeat before a node is offline. "
            "Default: $GPUNET_HEARTBEAT_TIMEOUT_S, else 180.",
            show_default=False,
        ),
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log", help="Log every request. Off by default: /metrics counts requests."
        ),
    ] = False,
) -> None:
    """Serve the indexer's HTTP API until Ctrl-C. Other settings: GPUNET_* variables."""
    from sqlalchemy.engine import make_url

    from gpunet.indexer import serve
    from gpunet.indexer.settings import load_settings

    setup_logging()
    overrides = {
        "data_dir": data_dir,
        "heartbeat_interval_s": heartbeat_interval,
        "heartbeat_timeout_s": heartbeat_timeout,
    }
    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    database = make_url(settings.resolved_database_url()).render_as_string(hide_password=True)
    note(f"indexer on http://{host}:{port}, database {database}")
    serve(settings, host, port, access_log=access_log)
