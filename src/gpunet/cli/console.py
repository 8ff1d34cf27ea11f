"""What every command shares: the consoles, error lines, JSON output, logging, defaults."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from gpunet.sdk import DEFAULT_INDEXER_URL

INDEXER_URL_ENV = "GPUNET_INDEXER_URL"
HOME_ENV = "GPUNET_HOME"
ERROR_EXIT_CODE = 2

PIPE_WIDTH = 120


def _width() -> int | None:
    # Rich assumes 80 columns when not on a terminal, which truncates wide tables in
    # logs and pipes; a terminal, or $COLUMNS, still decides when present.
    if sys.stdout.isatty() or "COLUMNS" in os.environ:
        return None
    return PIPE_WIDTH


out = Console(highlight=False, width=_width())
err = Console(stderr=True, highlight=False)

INDEXER_OPTION = typer.Option(
    "--indexer",
    envvar=INDEXER_URL_ENV,
    help=f"Indexer base URL. Default: ${INDEXER_URL_ENV}, else {DEFAULT_INDEXER_URL}.",
    show_default=False,
)


def gpunet_home() -> Path:
    """``$GPUNET_HOME`` if set, else ``~/.gpunet``: where keys and node data live."""
    home = os.environ.get(HOME_ENV)
    return Path(home).expanduser() if home else Path.home() / ".gpunet"


def print_error(message: str) -> None:
    """One red line on stderr, never wrapped, never read as Rich markup."""
    err.print(Text(f"error: {message}", style="red"), soft_wrap=True)


def print_json(value: object) -> None:
    """Plain JSON on stdout, for scripts (no colours, no wrapping)."""
    typer.echo(json.dumps(value, indent=2, sort_keys=False))


def note(message: str) -> None:
    """A progress line on stderr, so stdout stays clean for tables and JSON."""
    err.print(Text(message), soft_wrap=True)


def setup_logging(level: int = logging.INFO) -> None:
    """Send ``gpunet.*`` log records to stderr, one timestamped line each."""
    logger = logging.getLogger("gpunet")
    if any(getattr(h, "gpunet_cli", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    handler.gpunet_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
