"""The indexer's FastAPI app factory.

``create_app`` builds everything an app needs (settings, engine, metrics) and
nothing at import time. Starting the app migrates the database and starts the
liveness sweeper, then freezes the startup objects for the garbage collector;
stopping it cancels the sweeper and closes the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gpunet import __version__
from gpunet.indexer.chain_link import open_chain_link
from gpunet.indexer.check_loop import run_check_loop
from gpunet.indexer.context import Clock, IndexerContext, app_context
from gpunet.indexer.database import Database, ensure_sqlite_directory, make_engine
from gpunet.indexer.error_handlers import install_error_handlers
from gpunet.indexer.matcher import run_matcher
from gpunet.indexer.metrics import IndexerMetrics
from gpunet.indexer.middleware import BodyLimitMiddleware, MetricsMiddleware
from gpunet.indexer.migrate import upgrade_database
from gpunet.indexer.routes import (
    accounts,
    checks,
    health,
    jobs,
    nodes,
    offers,
    receipts,
    rewards,
    work,
)
from gpunet.indexer.settings import IndexerSettings, load_settings
from gpunet.indexer.sweeper import run_sweeper

DESCRIPTION = """\
The gpunet indexer keeps the registry of nodes and their offers, tracks liveness,
matches jobs and sessions to nodes, tracks their leases and keeps the ledger; each
epoch it draws panels of checkers that verify nodes and vote on the results.

Every state-changing request is signed with an Ethereum key: the headers
`X-Gpunet-Address`, `X-Gpunet-Timestamp`, `X-Gpunet-Nonce` and `X-Gpunet-Signature`
carry an EIP-191 signature over the method, path with query, SHA-256 of the body,
timestamp and nonce (see `gpunet.protocol.auth`). Errors are `ErrorBody` objects.
"""

TAGS = [
    {"name": "nodes", "description": "Register nodes, heartbeat, leave, list and show."},
    {"name": "offers", "description": "Search the offers of online nodes."},
    {"name": "jobs", "description": "Buyers: upload inputs, quote, submit, follow, cancel."},
    {"name": "work", "description": "Nodes: wait for work, start, log, bill, finish."},
    {"name": "accounts", "description": "Deposits, withdrawals, balances and earnings."},
    {"name": "checks", "description": "Checkers: tasks, signed results, votes, reputation."},
    {"name": "rewards", "description": "Epoch settlements and reward claims with proofs."},
    {"name": "operations", "description": "Health and Prometheus metrics of the indexer."},
]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    context = app_context(app)
    ensure_sqlite_directory(context.settings.resolved_database_url())
    await asyncio.to_thread(upgrade_database, context.database.engine)
    tasks = [
        asyncio.create_task(run_sweeper(context), name="gpunet-liveness-sweeper"),
        asyncio.create_task(run_matcher(context), name="gpunet-matcher"),
        asyncio.create_task(run_check_loop(context), name="gpunet-check-loop"),
    ]
    _freeze_startup_objects()
    try:
        yield
    finally:
        gc.unfreeze()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        context.database.close()


def _freeze_startup_objects() -> None:
    """Keep the objects alive at startup out of the cyclic garbage collector's passes.

    Modules, the app, the engine and the caches filled by the first requests stay
    alive for the whole run, yet each full collection walks them all: about 70 ms
    with the event loop stopped, every few seconds at a few thousand requests per
    second. Frozen (``gc.freeze``), they are skipped; they are still freed by
    reference counting, and ``gc.unfreeze`` at shutdown hands them (and any garbage
    cycle frozen with them) back to the collector.
    """
    gc.freeze()


def create_app(settings: IndexerSettings | None = None, clock: Clock = time.time) -> FastAPI:
    """A ready indexer app; ``settings`` default to the environment (``GPUNET_*``)."""
    settings = settings if settings is not None else load_settings()
    database = Database.from_engine(make_engine(settings.resolved_database_url()))
    context = IndexerContext(
        settings=settings,
        clock=clock,
        database=database,
        metrics=IndexerMetrics.create(),
        chain=open_chain_link(settings),
    )
    app = FastAPI(
        title="gpunet indexer",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=_lifespan,
    )
    app.state.indexer = context
    install_error_handlers(app)
    routers = (
        health.router,
        nodes.router,
        offers.router,
        jobs.router,
        receipts.router,
        work.router,
        accounts.router,
        checks.router,
        rewards.router,
    )
    for router in routers:
        app.include_router(router)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_file_bytes=settings.max_blob_bytes,
    )
    app.add_middleware(MetricsMiddleware, metrics=context.metrics)
    return app
