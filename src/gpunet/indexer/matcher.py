"""The matcher: a background loop that places waiting jobs on idle nodes.

It runs when woken (a job submitted or cancelled, a node registered, a deposit, an
attempt finished) and every ``match_interval_s`` otherwise. Each pass is one write
transaction (``jobs.match_pass``): the holds, leases and events of all placements
commit together; the nodes placed are then woken from their long-poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial

from sqlalchemy import Connection

from gpunet.indexer import jobs
from gpunet.indexer.context import IndexerContext
from gpunet.indexer.database import session_on
from gpunet.indexer.rules import job_rules
from gpunet.protocol import matching

log = logging.getLogger("gpunet.indexer.matcher")


def _pass(context: IndexerContext, seed: int, connection: Connection) -> list[tuple[str, str]]:
    settings = context.settings
    now = context.clock()
    weights = matching.Weights(
        price=settings.match_weight_price,
        reputation=settings.match_weight_reputation,
        latency=settings.match_weight_latency,
    )
    with session_on(connection) as session:
        return jobs.match_pass(
            session, now, context.liveness_cutoff(now), job_rules(settings), weights, seed
        )


async def match_once(context: IndexerContext, seed: int = 0) -> list[tuple[str, str]]:
    """One matching pass through the app's writer; wakes the nodes that got work."""
    placed = await context.database.run_write(partial(_pass, context, seed))
    for node_id, job_id in placed:
        context.dispatch.notify(node_id)
        context.dispatch.notify(job_id)
    if placed:
        log.info("matched %d job(s)", len(placed))
    return placed


def match_here(context: IndexerContext, seed: int = 0) -> list[tuple[str, str]]:
    """One matching pass on the calling thread (tests, scripts)."""
    return context.database.write_here(partial(_pass, context, seed))


async def run_matcher(context: IndexerContext) -> None:
    """Match when woken or every ``match_interval_s``, until cancelled."""
    wake = asyncio.Event()
    context.dispatch.matcher_wake = wake
    seed = 0
    while True:
        wake.clear()
        seed += 1
        try:
            await match_once(context, seed)
        except Exception:
            log.exception("matching pass failed; retrying")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), context.settings.match_interval_s)
