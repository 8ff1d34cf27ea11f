"""Queries over the indexer's tables: nodes, liveness and request nonces.

A node is online when its state is not offline and its last heartbeat is no older
than the timeout; queries apply that rule themselves (``online_clause``), so answers
are right between two liveness sweeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gpunet.indexer.orm import NodeRecord, RequestNonce
from gpunet.protocol.nodes import NodeState

OFFLINE = NodeState.OFFLINE.value


def online_clause(cutoff: float) -> ColumnElement[bool]:
    """Nodes that are not offline and heartbeat at or after ``cutoff``."""
    return and_(NodeRecord.state != OFFLINE, NodeRecord.last_heartbeat_at >= cutoff)


def state_clause(state: NodeState, cutoff: float) -> ColumnElement[bool]:
    """Nodes whose effective state is ``state``: a silent node counts as offline."""
    if state is NodeState.OFFLINE:
        return or_(NodeRecord.state == OFFLINE, NodeRecord.last_heartbeat_at < cutoff)
    return and_(NodeRecord.state == state.value, NodeRecord.last_heartbeat_at >= cutoff)


def get_node(session: Session, node_id: str, *, for_update: bool = False) -> NodeRecord | None:
    """The node named ``node_id``, locked for update when asked (PostgreSQL)."""
    query = select(NodeRecord).where(NodeRecord.node_id == node_id)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


@dataclass(frozen=True)
class NodePage:
    """One page of nodes and the number of nodes on all pages."""

    nodes: Sequence[NodeRecord]
    total: int


def list_nodes(
    session: Session,
    *,
    cutoff: float,
    state: NodeState | None,
    operator: str | None,
    limit: int,
    offset: int,
) -> NodePage:
    """Nodes by id, filtered by effective state and operator."""
    conditions: list[ColumnElement[bool]] = []
    if state is not None:
        conditions.append(state_clause(state, cutoff))
    if operator is not None:
        conditions.append(NodeRecord.operator == operator.lower())
    total = session.scalar(select(func.count()).select_from(NodeRecord).where(*conditions))
    query = select(NodeRecord).where(*conditions).order_by(NodeRecord.node_id)
    nodes = session.scalars(query.limit(limit).offset(offset)).all()
    return NodePage(nodes=nodes, total=total or 0)


def count_online(session: Session, cutoff: float) -> int:
    """How many nodes are online."""
    query = select(func.count()).select_from(NodeRecord).where(online_clause(cutoff))
    return session.scalar(query) or 0


def stale_online_nodes(session: Session, cutoff: float) -> Sequence[NodeRecord]:
    """Nodes still marked online whose last heartbeat is before ``cutoff``."""
    query = select(NodeRecord).where(
        NodeRecord.state != OFFLINE, NodeRecord.last_heartbeat_at < cutoff
    )
    return session.scalars(query.with_for_update()).all()


def remember_nonce(session: Session, address: str, nonce: str, seen_at: float) -> bool:
    """Record a signer's nonce; False when it was recorded before (a replay)."""
    statement = insert(RequestNonce).values(address=address.lower(), nonce=nonce, seen_at=seen_at)
    try:
        with session.begin_nested():
            session.execute(statement)
    except IntegrityError:
        return False
    return True


def prune_nonces(session: Session, before: float) -> int:
    """Forget nonces seen before ``before``; a request that old is refused as stale."""
    result = session.execute(delete(RequestNonce).where(RequestNonce.seen_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
