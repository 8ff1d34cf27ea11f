"""What one epoch's settlement needs to know, read from the indexer's records.

Settlement itself is pure (``protocol.settlement``); this module only gathers its
inputs for a closed epoch:

- nodes: every node a panel checked in the epoch, with its capacity units (catalogue
  model x GPU count), its reputation's reward weight in basis points, and whether it is
  eligible for capacity rewards: at least one check passed and none failed;
- delivery: verified GPU-seconds per operator, from jobs that succeeded within the
  epoch's window and whose buyer did not dispute the outputs;
- checkers: per checker, the results it reported with the majority, and whether it is
  barred from rewards (two or more against the majority in a week);
- penalties: the token amounts the epoch's checks charged, per operator.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpunet.errors import UnknownGpuModel
from gpunet.indexer.orm import (
    CheckerRecord,
    CheckRecord,
    CheckVoteRecord,
    JobRecord,
    NodeRecord,
    PenaltyRecord,
)
from gpunet.protocol.catalogue import gpu_model
from gpunet.protocol.leases import LeaseState
from gpunet.protocol.receipts import ClientVerdict
from gpunet.protocol.reputation import Reputation, reward_weight
from gpunet.protocol.vote import Verdict

BPS = 10_000


@dataclass(frozen=True)
class NodeFact:
    """One checked node's standing in the epoch."""

    node_id: str
    operator: str
    capacity_units: int
    reputation_bps: int
    eligible: bool


@dataclass(frozen=True)
class CheckerFact:
    """One checker's work in the epoch."""

    address: str
    correct_checks: int
    barred: bool


@dataclass
class EpochFacts:
    """Everything settlement reads about one epoch; addresses are lowercase."""

    epoch: int
    start_at: float
    end_at: float
    nodes: list[NodeFact] = field(default_factory=list)
    delivery_gpu_s: dict[str, int] = field(default_factory=dict)
    checkers: list[CheckerFact] = field(default_factory=list)
    penalties: dict[str, int] = field(default_factory=dict)


def epoch_closed(session: Session, epoch: int) -> bool:
    """True when every check of ``epoch`` has closed (so its verdicts are final)."""
    still_open = select(CheckRecord.check_id).where(
        CheckRecord.epoch == epoch, CheckRecord.closed_at.is_(None)
    )
    return session.scalars(still_open.limit(1)).first() is None


def gather(session: Session, epoch: int, epoch_s: float, now: float) -> EpochFacts:
    """The facts of ``epoch`` (its window is ``[epoch, epoch + 1) * epoch_s``)."""
    facts = EpochFacts(epoch=epoch, start_at=epoch * epoch_s, end_at=(epoch + 1) * epoch_s)
    checks = list(session.scalars(select(CheckRecord).where(CheckRecord.epoch == epoch)))
    facts.nodes = _nodes(session, checks)
    facts.delivery_gpu_s = _delivery(session, facts.start_at, facts.end_at)
    facts.checkers = _checkers(session, [c.check_id for c in checks], now)
    facts.penalties = _penalties(session, epoch)
    return facts


def _nodes(session: Session, checks: list[CheckRecord]) -> list[NodeFact]:
    verdicts: dict[str, set[str]] = defaultdict(set)
    for check in checks:
        if check.closed_at is not None and check.verdict is not None:
            verdicts[check.node_id].add(check.verdict)
    if not verdicts:
        return []
    records = session.scalars(select(NodeRecord).where(NodeRecord.node_id.in_(list(verdicts))))
    facts = []
    for node in sorted(records, key=lambda n: n.node_id):
        seen = verdicts[node.node_id]
        facts.append(
            NodeFact(
                node_id=node.node_id,
                operator=node.operator.lower(),
                capacity_units=_capacity_units(node),
                reputation_bps=reputation_bps(node),
                eligible=Verdict.PASS.value in seen and Verdict.FAIL.value not in seen,
            )
        )
    return facts


def _capacity_units(node: NodeRecord) -> int:
    try:
        per_gpu = gpu_model(node.gpu_model).capacity_units
    except UnknownGpuModel:  # a model no longer in the catalogue earns no capacity rewards
        return 0
    return per_gpu * max(node.gpu_count, 1)


def reputation_bps(node: NodeRecord) -> int:
    """The node's reward weight (``protocol.reputation.reward_weight``) in whole bps."""
    rep = Reputation(
        capacity=node.rep_capacity, liveness=node.rep_liveness, delivery=node.rep_delivery
    )
    return min(BPS, max(0, int(reward_weight(rep) * BPS)))


def _delivery(session: Session, start_at: float, end_at: float) -> dict[str, int]:
    query = select(JobRecord).where(
        JobRecord.state == LeaseState.SUCCEEDED.value,
        JobRecord.finished_at >= start_at,
        JobRecord.finished_at < end_at,
        JobRecord.operator.is_not(None),
    )
    seconds: dict[str, int] = defaultdict(int)
    for job in session.scalars(query):
        if _disputed(job):
            continue
        gpu_s = int(job.billed_usage_s) * max(job.gpu_count or 1, 1)
        if gpu_s > 0 and job.operator:
            seconds[job.operator.lower()] += gpu_s
    return dict(seconds)


def _disputed(job: JobRecord) -> bool:
    receipt = job.client_receipt_json or ""
    return f'"{ClientVerdict.DISPUTED.value}"' in receipt


def _checkers(session: Session, check_ids: list[str], now: float) -> list[CheckerFact]:
    if not check_ids:
        return []
    votes = session.scalars(select(CheckVoteRecord).where(CheckVoteRecord.check_id.in_(check_ids)))
    correct: dict[str, int] = defaultdict(int)
    for vote in votes:
        if vote.with_majority:
            correct[vote.checker.lower()] += 1
        else:
            correct.setdefault(vote.checker.lower(), 0)
    records = session.scalars(select(CheckerRecord).where(CheckerRecord.address.in_(list(correct))))
    barred = {
        r.address.lower() for r in records if r.banned_until is not None and r.banned_until > now
    }
    return [
        CheckerFact(address=a, correct_checks=n, barred=a in barred)
        for a, n in sorted(correct.items())
    ]


def _penalties(session: Session, epoch: int) -> dict[str, int]:
    amounts: dict[str, int] = defaultdict(int)
    for penalty in session.scalars(select(PenaltyRecord).where(PenaltyRecord.epoch == epoch)):
        amounts[penalty.operator.lower()] += int(penalty.amount)
    return dict(amounts)
