"""Epoch settlement in the indexer: settle closed epochs, keep their trees, post them.

Once every check of an epoch has closed, the check loop settles it here, in order and
exactly once: the epoch's facts (``epoch_facts``), its budget from the emission
schedule (``protocol.settlement_budget``) plus the dust the previous epoch carried,
and ``protocol.settlement.settle_epoch``. The leaves are stored, so the indexer can
hand anyone their Merkle proof, and the settlement row keeps the root and totals.

Posting is a second step, outside the database transaction: ``pending_posts`` lists
what is computed but not yet on chain, the check loop sends it to the chain
(``ChainPoster``) and ``mark_posted`` / ``mark_post_failed`` record the outcome, so a
chain that is down delays rewards but loses nothing; the next tick tries again.
Penalties the epoch's rewards could not cover become stake slashes, posted the same way.

Client fees are not in the leaves yet (``fee`` is 0): buyers' deposits live in the
indexer's ledger, not in the escrow contract, so there is nothing on chain to pay them
from. The escrow contract exists and is tested on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpunet.indexer.epoch_facts import EpochFacts, epoch_closed, gather
from gpunet.indexer.orm import (
    EpochRecord,
    RewardLeafRecord,
    SettlementRecord,
    StakeSlashRecord,
)
from gpunet.protocol.reward_tree import RewardLeaf, RewardTree, build_tree
from gpunet.protocol.settlement import (
    PARTS,
    CheckerWork,
    EpochWork,
    NodeWork,
    Settlement,
    settle_epoch,
)
from gpunet.protocol.settlement_budget import (
    ZERO_BUDGET,
    EmissionParams,
    EpochBudget,
    epoch_budget,
)

COMPUTED, POSTED, EMPTY, LOCAL = "computed", "posted", "empty", "local"
PENDING, APPLIED = "pending", "applied"
MAX_EPOCHS_PER_TICK = 16
MAX_ERROR_CHARS = 500


class ChainPoster(Protocol):
    """What settlement needs of the chain: post a root, slash a stake."""

    def post_epoch(self, epoch: int, root: bytes, reward_total: int, fee_total: int) -> str:
        """Post the epoch's root; returns the transaction hash."""
        ...

    def slash(self, account: str, amount: int, reason: str) -> tuple[int, str]:
        """Slash pending rewards, then stake; returns (amount taken, transaction hash)."""
        ...


@dataclass(frozen=True)
class PendingPost:
    """A computed epoch waiting for its root to reach the chain."""

    epoch: int
    root: bytes
    reward_total: int
    fee_total: int


@dataclass(frozen=True)
class PendingSlash:
    epoch: int
    account: str
    amount: int


def settle_due(
    session: Session,
    *,
    epoch_s: float,
    current: int,
    now: float,
    tge_at: float,
    params: EmissionParams,
    on_chain: bool,
) -> list[Settlement]:
    """Settle, oldest first, every epoch before ``current`` whose checks have all closed."""
    settled = select(SettlementRecord.epoch).scalar_subquery()
    due = session.scalars(
        select(EpochRecord.epoch)
        .where(EpochRecord.epoch < current, EpochRecord.epoch.not_in(settled))
        .order_by(EpochRecord.epoch)
        .limit(MAX_EPOCHS_PER_TICK)
    )
    done = []
    for epoch in list(due):
        if not epoch_closed(session, epoch):
            break  # epochs settle in order: the carry of one is the next one's input
        facts = gather(session, epoch, epoch_s, now)
        budget = budget_for(params, facts, tge_at)
        settlement = settle_epoch(work_from(facts, budget, last_carry(session)))
        store(session, settlement, budget, now, on_chain)
        done.append(settlement)
    return done


def budget_for(params: EmissionParams, facts: EpochFacts, tge_at: float) -> EpochBudget:
    """The emission between the epoch's start and end, in seconds since the TGE."""
    start_s = max(0, int(facts.start_at - tge_at))
    end_s = max(start_s, int(facts.end_at - tge_at))
    return epoch_budget(params, start_s, end_s)


def work_from(facts: EpochFacts, budget: EpochBudget, carry: EpochBudget) -> EpochWork:
    return EpochWork(
        epoch=facts.epoch,
        budget=budget,
        carry=carry,
        nodes=[
            NodeWork(n.operator, n.capacity_units, n.reputation_bps, n.eligible)
            for n in facts.nodes
        ],
        delivery_gpu_seconds=facts.delivery_gpu_s,
        checkers=[CheckerWork(c.address, c.correct_checks, c.barred) for c in facts.checkers],
        penalties=facts.penalties,
    )


def last_carry(session: Session) -> EpochBudget:
    """What the latest settled epoch carried out (dust and forfeits), per part."""
    record = session.scalars(
        select(SettlementRecord).order_by(SettlementRecord.epoch.desc()).limit(1)
    ).first()
    if record is None:
        return ZERO_BUDGET
    carry = json.loads(record.summary_json)["carry"]
    return EpochBudget(*(int(carry[name]) for name in PARTS))


def store(
    session: Session, settlement: Settlement, budget: EpochBudget, now: float, on_chain: bool
) -> None:
    """The settlement row, its leaves and its stake slashes."""
    tree = settlement.tree()
    status = EMPTY if tree is None else (COMPUTED if on_chain else LOCAL)
    session.add(
        SettlementRecord(
            epoch=settlement.epoch,
            settled_at=now,
            status=status,
            root=None if tree is None else "0x" + tree.root.hex(),
            reward_total=str(settlement.reward_total),
            fee_total=str(settlement.fee_total),
            carry_out=str(settlement.carry.total),
            leaves=len(settlement.leaves),
            summary_json=json.dumps(summary(settlement, budget)),
        )
    )
    for leaf in settlement.leaves:
        session.add(
            RewardLeafRecord(
                epoch=settlement.epoch,
                account=leaf.account.lower(),
                reward=str(leaf.reward),
                fee=str(leaf.fee),
            )
        )
    for slash in settlement.slashes:
        session.add(
            StakeSlashRecord(
                epoch=settlement.epoch,
                account=slash.account.lower(),
                amount=str(slash.amount),
                status=PENDING if on_chain else LOCAL,
            )
        )


def summary(settlement: Settlement, budget: EpochBudget) -> dict[str, Any]:
    """Each part's budget (with carry in), what it paid, and what carries on."""
    available = {
        name: getattr(settlement.paid, name) + getattr(settlement.carry, name) for name in PARTS
    }
    return {
        "parts": {
            name: {
                "emission": str(getattr(budget, name)),
                "budget": str(available[name]),
                "paid": str(getattr(settlement.paid, name)),
                "carry": str(getattr(settlement.carry, name)),
            }
            for name in PARTS
        },
        "carry": {name: str(getattr(settlement.carry, name)) for name in PARTS},
        "slashes": {s.account.lower(): str(s.amount) for s in settlement.slashes},
    }


def pending_posts(session: Session) -> list[PendingPost]:
    records = session.scalars(
        select(SettlementRecord)
        .where(SettlementRecord.status == COMPUTED)
        .order_by(SettlementRecord.epoch)
    )
    return [
        PendingPost(r.epoch, bytes.fromhex(r.root[2:]), int(r.reward_total), int(r.fee_total))
        for r in records
        if r.root
    ]


def mark_posted(session: Session, epoch: int, tx: str, now: float) -> None:
    record = session.get_one(SettlementRecord, epoch)
    record.status, record.post_tx, record.posted_at, record.post_error = POSTED, tx, now, None


def mark_post_failed(session: Session, epoch: int, error: str) -> None:
    session.get_one(SettlementRecord, epoch).post_error = error[:MAX_ERROR_CHARS]


def pending_slashes(session: Session) -> list[PendingSlash]:
    records = session.scalars(
        select(StakeSlashRecord)
        .where(StakeSlashRecord.status == PENDING)
        .order_by(StakeSlashRecord.epoch, StakeSlashRecord.account)
    )
    return [PendingSlash(r.epoch, r.account, int(r.amount)) for r in records]


def mark_slashed(session: Session, slash: PendingSlash, taken: int, tx: str, now: float) -> None:
    record = session.get_one(StakeSlashRecord, (slash.epoch, slash.account))
    record.status, record.taken, record.tx, record.applied_at = APPLIED, str(taken), tx, now


def epoch_tree(session: Session, epoch: int) -> RewardTree | None:
    """The stored leaves of ``epoch`` as a tree again (the same root as when settled)."""
    leaves = session.scalars(
        select(RewardLeafRecord)
        .where(RewardLeafRecord.epoch == epoch)
        .order_by(RewardLeafRecord.account)
    )
    return build_tree(epoch, [RewardLeaf(r.account, int(r.reward), int(r.fee)) for r in leaves])
