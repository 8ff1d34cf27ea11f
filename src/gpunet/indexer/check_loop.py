"""The check loop: opens each epoch's checks, sends canaries, closes overdue checks.

Epochs are numbered from the unix epoch (``floor(now / epoch_s)``), so every indexer
replica agrees on the current one; the first replica to open it wins (the epoch row's
primary key refuses the second). Each tick is one write transaction. The entropy
behind an epoch's panels is drawn here, fresh, and kept with the epoch.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gpunet.indexer import canaries, checks, settlement
from gpunet.indexer.context import IndexerContext
from gpunet.indexer.database import session_on
from gpunet.indexer.orm import EpochRecord
from gpunet.indexer.rules import job_rules
from gpunet.protocol.settlement_budget import EmissionParams
from gpunet.protocol.vote import panel_size

log = logging.getLogger("gpunet.indexer.checks")

# A checker that has not polled for this long sits on no new panel.
CHECKER_SEEN_WITHIN_S = 90.0


@dataclass
class TickReport:
    """What one tick changed, so the loop can wake who waits on it."""

    epoch: int
    opened: int = 0
    closed: int = 0
    canaries: list[str] = field(default_factory=list)
    checkers: set[str] = field(default_factory=set)
    settled: list[int] = field(default_factory=list)


def current_epoch(now: float, epoch_s: float) -> int:
    return int(now // epoch_s)


def tick_on(context: IndexerContext, connection: Connection) -> TickReport:
    """One pass: open the epoch if new, send due canaries, open and close checks."""
    settings = context.settings
    now = context.clock()
    cutoff = context.liveness_cutoff(now)
    epoch = current_epoch(now, settings.epoch_s)
    report = TickReport(epoch=epoch)
    window = settings.check_window()
    with session_on(connection) as session:
        every = settings.capacity_every_epochs
        opened = (
            checks.open_epoch(
                session,
                epoch,
                secrets.token_bytes(32),
                now=now,
                cutoff=cutoff,
                checker_n=settings.checker_n,
                window_s=window,
                with_capacity=every > 0 and epoch % every == 0,
                seen_within_s=CHECKER_SEEN_WITHIN_S,
                deadline_factor=settings.capacity_deadline_factor,
            )
            or []
        )
        plan = canaries.CanaryPlan(settings.canaries_per_epoch, settings.epoch_s)
        report.canaries = canaries.send_canaries(session, plan, now, cutoff, job_rules(settings))
        opened += canaries.open_delivery_checks(
            session,
            epoch=epoch,
            now=now,
            window_s=window,
            checker_n=settings.checker_n,
            seen_within_s=CHECKER_SEEN_WITHIN_S,
        )
        report.closed = len(checks.close_overdue(session, now, panel_size(settings.checker_n)))
        report.settled = [
            s.epoch
            for s in settlement.settle_due(
                session,
                epoch_s=settings.epoch_s,
                current=epoch,
                now=now,
                tge_at=_tge_at(context, session),
                params=EmissionParams(),
                on_chain=context.chain is not None,
            )
        ]
    report.opened = len(opened)
    report.checkers = {c for check in opened for c in check.panel.split(",")}
    return report


def _tge_at(context: IndexerContext, session: Session) -> float:
    """When emission started: configured, the chain's TGE, or the first epoch's start."""
    if context.settings.tge_at is not None:
        return context.settings.tge_at
    chain_tge = getattr(context.chain, "tge_at", None)
    if isinstance(chain_tge, int | float):
        return float(chain_tge)
    first = session.scalar(select(func.min(EpochRecord.epoch)))
    return 0.0 if first is None else first * context.settings.epoch_s


async def tick(context: IndexerContext) -> TickReport | None:
    """One pass through the app's writer; wakes nodes given canaries and checkers given tasks."""
    try:
        report = await context.database.run_write(partial(tick_on, context))
    except IntegrityError:
        return None  # another replica opened this epoch first; the next tick goes on
    for node_id in report.canaries:
        context.dispatch.notify(node_id)
    for address in report.checkers:
        context.dispatch.notify(checker_key(address))
    if report.opened or report.closed or report.canaries:
        log.info(
            "epoch %d: %d check(s) opened, %d closed, %d canary job(s) sent",
            report.epoch,
            report.opened,
            report.closed,
            len(report.canaries),
        )
    for settled in report.settled:
        log.info("epoch %d settled", settled)
    return report


async def post_settlements(context: IndexerContext, chain: settlement.ChainPoster) -> None:
    """Send computed roots and pending slashes to the chain, oldest first.

    Each goes on its own, so a revert (shown in the settlement's ``post_error``) holds
    back only what follows it: epochs must reach the distributor in order.
    """
    with context.database.reading() as session:
        posts = settlement.pending_posts(session)
        slashes = settlement.pending_slashes(session)
    for post in posts:
        try:
            tx = await asyncio.to_thread(
                chain.post_epoch, post.epoch, post.root, post.reward_total, post.fee_total
            )
        except Exception as exc:
            failed = partial(settlement.mark_post_failed, epoch=post.epoch, error=str(exc))
            await _record(context, failed)
            log.warning("epoch %d: posting its root failed: %s", post.epoch, exc)
            return
        now = context.clock()
        await _record(context, partial(settlement.mark_posted, epoch=post.epoch, tx=tx, now=now))
        log.info("epoch %d: root posted on chain (%s)", post.epoch, tx)
    for slash in slashes:
        reason = f"epoch {slash.epoch} penalties above its rewards"
        taken, tx = await asyncio.to_thread(chain.slash, slash.account, slash.amount, reason)
        now = context.clock()
        await _record(
            context, partial(settlement.mark_slashed, slash=slash, taken=taken, tx=tx, now=now)
        )


async def _record(context: IndexerContext, change: Callable[..., None]) -> None:
    def write(connection: Connection) -> None:
        with session_on(connection) as session:
            change(session)

    await context.database.run_write(write)


def checker_key(address: str) -> str:
    """The dispatcher key a checker's task long-poll waits on."""
    return "checker:" + address.lower()


async def run_check_loop(context: IndexerContext) -> None:
    """Tick every ``check_tick_s`` (at most a tenth of the epoch) until cancelled."""
    interval = min(context.settings.epoch_s / 10, context.settings.check_tick_s)
    while True:
        try:
            await tick(context)
        except Exception:
            log.exception("check loop tick failed; retrying")
        if context.chain is not None:
            try:
                await post_settlements(context, context.chain)
            except Exception:
                log.exception("posting settlements failed; retrying")
        await asyncio.sleep(interval)
