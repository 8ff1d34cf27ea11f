"""Checks, votes, penalties and reputation as the API shows them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpunet.api.checks import (
    CheckPublic,
    NodeChecks,
    PenaltyPublic,
    ReputationView,
    VotePublic,
)
from gpunet.errors import NotFoundError
from gpunet.indexer.orm import CheckRecord, CheckVoteRecord, NodeRecord, PenaltyRecord
from gpunet.protocol.reputation import Reputation


def reputation_of(node: NodeRecord) -> Reputation:
    return Reputation(node.rep_capacity, node.rep_liveness, node.rep_delivery)


def reputation_view(node: NodeRecord) -> ReputationView:
    reputation = reputation_of(node)
    return ReputationView(
        score=round(reputation.score, 4),
        capacity=round(reputation.capacity, 4),
        liveness=round(reputation.liveness, 4),
        delivery=round(reputation.delivery, 4),
    )


def check_public(session: Session, check: CheckRecord) -> CheckPublic:
    seats = session.scalars(
        select(CheckVoteRecord)
        .where(CheckVoteRecord.check_id == check.check_id)
        .order_by(CheckVoteRecord.checker)
    )
    votes = [_vote(seat) for seat in seats if seat.verdict is not None]
    return CheckPublic(
        check_id=check.check_id,
        kind=check.kind,
        epoch=check.epoch,
        node_id=check.node_id,
        panel=check.panel.split(","),
        created_at=_utc(check.created_at),
        due_at=_utc(check.due_at),
        closed_at=_utc(check.closed_at) if check.closed_at is not None else None,
        verdict=check.verdict,
        finding=check.finding,
        votes=votes,
    )


def _vote(seat: CheckVoteRecord) -> VotePublic:
    return VotePublic(
        checker=seat.checker,
        verdict=seat.verdict,
        detail=seat.detail or "",
        evidence=json.loads(seat.evidence_json or "{}"),
        signature=seat.signature or "",
        reported_at=_utc(seat.reported_at or 0.0),
        with_majority=seat.with_majority,
    )


def penalty_public(record: PenaltyRecord) -> PenaltyPublic:
    return PenaltyPublic(
        penalty_id=record.penalty_id,
        node_id=record.node_id,
        operator=record.operator,
        kind=record.kind,
        amount=record.amount,
        check_id=record.check_id,
        job_id=record.job_id,
        epoch=record.epoch,
        created_at=_utc(record.created_at),
        reason=record.reason,
    )


def node_checks(session: Session, node_id: str, limit: int) -> NodeChecks:
    """A node's latest checks (newest first), its penalties and its reputation."""
    node = session.get(NodeRecord, node_id)
    if node is None:
        raise NotFoundError(f"no node {node_id}; list nodes with `gpunet nodes`")
    checks = session.scalars(
        select(CheckRecord)
        .where(CheckRecord.node_id == node_id)
        .order_by(CheckRecord.created_at.desc(), CheckRecord.check_id)
        .limit(limit)
    )
    penalties = session.scalars(
        select(PenaltyRecord)
        .where(PenaltyRecord.node_id == node_id)
        .order_by(PenaltyRecord.created_at.desc())
        .limit(limit)
    )
    return NodeChecks(
        node_id=node_id,
        reputation=reputation_view(node),
        checks=[check_public(session, c) for c in checks],
        penalties=[penalty_public(p) for p in penalties],
    )


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC)
