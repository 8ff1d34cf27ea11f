"""Settlements and reward claims as API models, read from the settlement records.

A claim's proof is rebuilt from the epoch's stored leaves; trees never change once
stored, so the last few are kept in memory (``_tree``) for accounts claiming in turn.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import UTC, datetime
from threading import Lock

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpunet.api.rewards import (
    RewardClaim,
    RewardClaims,
    SettlementPart,
    SettlementPublic,
)
from gpunet.errors import NotFoundError
from gpunet.indexer.orm import RewardLeafRecord, SettlementRecord
from gpunet.indexer.settlement import epoch_tree
from gpunet.protocol.reward_tree import RewardTree

TREES_KEPT = 8
_trees: OrderedDict[tuple[int, str], RewardTree] = OrderedDict()
_trees_lock = Lock()


def _utc(at: float | None) -> datetime | None:
    return None if at is None else datetime.fromtimestamp(at, UTC)


def settlement_public(record: SettlementRecord) -> SettlementPublic:
    summary = json.loads(record.summary_json)
    return SettlementPublic(
        epoch=record.epoch,
        settled_at=datetime.fromtimestamp(record.settled_at, UTC),
        status=record.status,
        root=record.root,
        reward_total=record.reward_total,
        fee_total=record.fee_total,
        carry_out=record.carry_out,
        leaves=record.leaves,
        parts={name: SettlementPart(**part) for name, part in summary["parts"].items()},
        slashed=summary["slashes"],
        posted_at=_utc(record.posted_at),
        post_tx=record.post_tx,
        post_error=record.post_error,
    )


def list_settlements(session: Session, limit: int) -> list[SettlementPublic]:
    records = session.scalars(
        select(SettlementRecord).order_by(SettlementRecord.epoch.desc()).limit(limit)
    )
    return [settlement_public(r) for r in records]


def get_settlement(session: Session, epoch: int) -> SettlementPublic:
    record = session.get(SettlementRecord, epoch)
    if record is None:
        raise NotFoundError(f"epoch {epoch} is not settled (yet); see GET /v1/settlements")
    return settlement_public(record)


def claims_of(session: Session, account: str, limit: int) -> RewardClaims:
    """The account's leaves, newest epoch first, each with its proof."""
    key = account.lower()
    rows = session.execute(
        select(RewardLeafRecord, SettlementRecord)
        .join(SettlementRecord, SettlementRecord.epoch == RewardLeafRecord.epoch)
        .where(RewardLeafRecord.account == key)
        .order_by(RewardLeafRecord.epoch.desc())
        .limit(limit)
    )
    claims = []
    for leaf, settlement in rows:
        if settlement.root is None:
            continue
        tree = _tree(session, settlement.epoch, settlement.root)
        claims.append(
            RewardClaim(
                epoch=leaf.epoch,
                reward=leaf.reward,
                fee=leaf.fee,
                proof=["0x" + node.hex() for node in tree.proof(key)],
                root=settlement.root,
                status=settlement.status,
            )
        )
    return RewardClaims(account=key, claims=claims)


def _tree(session: Session, epoch: int, root: str) -> RewardTree:
    with _trees_lock:
        cached = _trees.get((epoch, root))
        if cached is not None:
            _trees.move_to_end((epoch, root))
            return cached
    tree = epoch_tree(session, epoch)
    if tree is None or "0x" + tree.root.hex() != root:
        raise RuntimeError(f"the stored leaves of epoch {epoch} no longer give root {root}")
    with _trees_lock:
        _trees[(epoch, root)] = tree
        while len(_trees) > TREES_KEPT:
            _trees.popitem(last=False)
    return tree
