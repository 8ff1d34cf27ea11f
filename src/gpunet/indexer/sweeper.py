"""The liveness sweeper: a background loop that keeps stored states honest.

Queries already treat silent nodes as offline, so the sweeper is not needed for
correct answers; it writes the offline state down (for listings by state and for
later epochs), forgets old request nonces and refreshes the nodes-online gauge.
A failed sweep is logged and retried at the next interval; it never stops the loop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from gpunet.indexer import registry, store
from gpunet.indexer.context import IndexerContext

log = logging.getLogger("gpunet.indexer.sweeper")


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    marked_offline: int
    nonces_pruned: int
    nodes_online: int


def sweep_once(context: IndexerContext) -> SweepReport:
    """Mark silent nodes offline, prune old nonces and update the gauge, once."""
    settings = context.settings
    now = context.clock()
    with context.database.writing() as session:
        marked = registry.sweep(session, now, settings.heartbeat_timeout_s)
        pruned = store.prune_nonces(session, now - 2 * settings.max_skew_s)
    with context.database.reading() as session:
        online = store.count_online(session, context.liveness_cutoff(now))
    context.metrics.nodes_online.set(online)
    if marked:
        log.info("liveness sweep marked %d node(s) offline", marked)
    return SweepReport(marked_offline=marked, nonces_pruned=pruned, nodes_online=online)


async def run_sweeper(context: IndexerContext) -> None:
    """Sweep every ``sweep_interval_s`` until cancelled."""
    interval = context.settings.sweep_interval_s
    while True:
        try:
            await asyncio.to_thread(sweep_once, context)
        except Exception:
            log.exception("liveness sweep failed; retrying in %gs", interval)
        await asyncio.sleep(interval)
