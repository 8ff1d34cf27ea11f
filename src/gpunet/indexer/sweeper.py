"""The liveness sweeper: a background loop that keeps stored states honest.

Queries already treat silent nodes as offline, so the sweeper is not needed for
correct answers; it writes the offline state down (for listings by state and for
later epochs), forgets old request nonces and refreshes the nodes-online gauge. It
also requeues the jobs of silent nodes, expires overdue jobs and closes sessions out
of funds (``jobs.sweep_jobs``).
A failed sweep is logged and retried at the next interval; it never stops the loop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial

from sqlalchemy import Connection

from gpunet.indexer import jobs, registry, store
from gpunet.indexer.context import IndexerContext
from gpunet.indexer.database import session_on
from gpunet.indexer.rules import job_rules

log = logging.getLogger("gpunet.indexer.sweeper")


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    marked_offline: int
    nonces_pruned: int
    nodes_online: int


SWEEP_BATCH = 500
"""Nodes marked or nonces pruned per write of the background sweeper."""


def sweep_once(context: IndexerContext) -> SweepReport:
    """Mark silent nodes offline, prune old nonces and update the gauge, once.

    Runs on the calling thread in one transaction (tests, scripts); the app's own
    sweeper (``run_sweeper``) does the same in short writes through the app's writer.
    """
    now = context.clock()
    marked, pruned = context.database.write_here(partial(_sweep_writes, context, now, None))
    return _report(context, marked, pruned, _count_online(context, now))


async def sweep_in_app(context: IndexerContext) -> SweepReport:
    """Sweep once from the event loop: writes through ``Database.run_write``.

    The writes go where the requests' writes go (on SQLite: the event loop's writer,
    so they never hold SQLite's lock from another thread), ``SWEEP_BATCH`` rows at a
    time so that a long sweep (many silent nodes, many old nonces) does not hold up
    requests; the count of online nodes, a read, runs in a thread.
    """
    now = context.clock()
    marked = pruned = 0
    while True:
        work = partial(_sweep_writes, context, now, SWEEP_BATCH)
        more_marked, more_pruned = await context.database.run_write(work)
        marked, pruned = marked + more_marked, pruned + more_pruned
        if more_marked < SWEEP_BATCH and more_pruned < SWEEP_BATCH:
            break
    online = await asyncio.to_thread(_count_online, context, now)
    return _report(context, marked, pruned, online)


def _sweep_writes(
    context: IndexerContext, now: float, limit: int | None, connection: Connection
) -> tuple[int, int]:
    settings = context.settings
    with session_on(connection) as session:
        marked = registry.sweep(session, now, settings.heartbeat_timeout_s, limit)
        pruned = store.prune_nonces(session, now - 2 * settings.max_skew_s, limit)
        jobs.sweep_jobs(session, now, context.liveness_cutoff(now), job_rules(settings), limit)
    return marked, pruned


def _count_online(context: IndexerContext, now: float) -> int:
    with context.database.reading() as session:
        return store.count_online(session, context.liveness_cutoff(now))


def _report(context: IndexerContext, marked: int, pruned: int, online: int) -> SweepReport:
    context.metrics.nodes_online.set(online)
    if marked:
        log.info("liveness sweep marked %d node(s) offline", marked)
    return SweepReport(marked_offline=marked, nonces_pruned=pruned, nodes_online=online)


async def run_sweeper(context: IndexerContext) -> None:
    """Sweep every ``sweep_interval_s`` until cancelled."""
    interval = context.settings.sweep_interval_s
    while True:
        try:
            await sweep_in_app(context)
        except Exception:
            log.exception("liveness sweep failed; retrying in %gs", interval)
        await asyncio.sleep(interval)
