"""What one indexer app holds: settings, clock, database and metrics.

Built by ``create_app`` and kept on ``app.state``; dependencies read it from the
request, so nothing is global and several apps can share a process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from gpunet.indexer.database import Database
from gpunet.indexer.dispatch import Dispatcher
from gpunet.indexer.metrics import IndexerMetrics
from gpunet.indexer.settings import IndexerSettings
from gpunet.indexer.settlement import ChainPoster

Clock = Callable[[], float]


@dataclass(frozen=True)
class IndexerContext:
    """One app's settings, clock, database and metrics."""

    settings: IndexerSettings
    clock: Clock
    database: Database
    metrics: IndexerMetrics
    dispatch: Dispatcher = field(default_factory=Dispatcher)
    # Where settled epochs' roots and stake slashes go; None: they stay in the store.
    chain: ChainPoster | None = None

    def liveness_cutoff(self, now: float) -> float:
        """Nodes whose last heartbeat is before this are offline at ``now``."""
        return now - self.settings.heartbeat_timeout_s


def app_context(app: Starlette) -> IndexerContext:
    """The context ``create_app`` attached to ``app``."""
    context = app.state.indexer
    assert isinstance(context, IndexerContext)
    return context


def indexer_context(connection: HTTPConnection) -> IndexerContext:
    """The context of the app serving ``connection``."""
    return app_context(connection.app)
