"""The checker registry: who checks, whom they must never check, and their standing.

A checker is an Ethereum account that registered with a signed request. It is active
while it polls for tasks; only active checkers sit on new panels. Its standing (results
against the majority in the last week, a ban from rewards) follows
``protocol.vote.checker_standing``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gpunet.api.checks import CheckerPublic, CheckerRegistration
from gpunet.errors import NotFoundError
from gpunet.indexer.orm import CheckerRecord, CheckVoteRecord
from gpunet.protocol.vote import checker_standing

WEEK_S = 7 * 86_400.0
# Dissents older than this cannot matter: a ban lasts 30 days from the second one.
STANDING_HORIZON_S = 37 * 86_400.0
# A poll refreshes last_seen_at at most this often, so polling costs no write each time.
TOUCH_EVERY_S = 10.0


def register_checker(
    session: Session, address: str, body: CheckerRegistration, now: float
) -> CheckerRecord:
    """Add the signer as a checker, or refresh its version and operator."""
    key = address.lower()
    record = session.get(CheckerRecord, key)
    if record is None:
        record = CheckerRecord(
            address=key,
            registered_at=now,
            results_total=0,
            against_majority=0,
        )
        session.add(record)
    record.operator = body.operator.lower() if body.operator else None
    record.agent_version = body.agent_version
    record.last_seen_at = now
    session.flush()
    return record


def get_checker(session: Session, address: str) -> CheckerRecord:
    record = session.get(CheckerRecord, address.lower())
    if record is None:
        raise NotFoundError(f"no checker {address}: register it first with `gpunet checker start`")
    return record


def touch(record: CheckerRecord, now: float) -> bool:
    """Mark the checker seen; True when that changed the record."""
    if now - record.last_seen_at < TOUCH_EVERY_S:
        return False
    record.last_seen_at = now
    return True


def active_checkers(session: Session, now: float, seen_within_s: float) -> list[CheckerRecord]:
    """Checkers that polled within ``seen_within_s``, in address order."""
    query = (
        select(CheckerRecord)
        .where(CheckerRecord.last_seen_at >= now - seen_within_s)
        .order_by(CheckerRecord.address)
    )
    return list(session.scalars(query))


def record_outcomes(
    session: Session, reported: list[str], dissenters: list[str], now: float
) -> None:
    """Count a closed check's results and re-judge the standing of those who dissented."""
    for address in reported:
        record = session.get(CheckerRecord, address)
        if record is None:
            continue
        record.results_total += 1
        if address in dissenters:
            record.against_majority += 1
            times = _dissent_times(session, address, now)
            standing = checker_standing(times, now)
            if standing.banned_until is not None:
                record.banned_until = max(record.banned_until or 0.0, standing.banned_until)


def _dissent_times(session: Session, address: str, now: float) -> list[float]:
    query = select(CheckVoteRecord.reported_at).where(
        CheckVoteRecord.checker == address,
        CheckVoteRecord.with_majority.is_(False),
        CheckVoteRecord.reported_at >= now - STANDING_HORIZON_S,
    )
    return [t for t in session.scalars(query) if t is not None]


def _week_dissents(session: Session, address: str, now: float) -> int:
    query = select(func.count()).where(
        CheckVoteRecord.checker == address,
        CheckVoteRecord.with_majority.is_(False),
        CheckVoteRecord.reported_at >= now - WEEK_S,
    )
    return int(session.scalar(query) or 0)


def checker_public(session: Session, record: CheckerRecord, now: float) -> CheckerPublic:
    banned = record.banned_until is not None and record.banned_until > now
    return CheckerPublic(
        address=record.address,
        operator=record.operator,
        registered_at=_utc(record.registered_at),
        last_seen_at=_utc(record.last_seen_at),
        results_total=record.results_total,
        against_majority=record.against_majority,
        against_majority_week=_week_dissents(session, record.address, now),
        banned_until=_utc(record.banned_until) if banned and record.banned_until else None,
        reward_eligible=not banned,
    )


def list_checkers(session: Session, now: float) -> list[CheckerPublic]:
    records = session.scalars(select(CheckerRecord).order_by(CheckerRecord.address))
    return [checker_public(session, r, now) for r in records]


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC)
