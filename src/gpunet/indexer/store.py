"""Queries over the indexer's tables: nodes, liveness and request nonces.

A node is online when its state is not offline and its last heartbeat is no older
than the timeout; queries apply that rule themselves (``online_clause``), so answers
are right between two liveness sweeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gpunet.indexer.database import DriverStatement
from gpunet.indexer.orm import NodeRecord, RequestNonce
from gpunet.protocol.nodes import NodeState

OFFLINE = NodeState.OFFLINE.value
NODES = cast(Table, NodeRecord.__table__)


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


def stale_online_nodes(
    session: Session, cutoff: float, limit: int | None = None
) -> Sequence[NodeRecord]:
    """Nodes still marked online whose last heartbeat is before ``cutoff``, up to ``limit``."""
    query = select(NodeRecord).where(
        NodeRecord.state != OFFLINE, NodeRecord.last_heartbeat_at < cutoff
    )
    return session.scalars(query.limit(limit).with_for_update()).all()


NONCES = cast(Table, RequestNonce.__table__)
_NONCE_ROW: dict[str, Any] = {
    "address": bindparam("n_address"),
    "nonce": bindparam("n_nonce"),
    "seen_at": bindparam("n_seen_at"),
}
# An INSERT that does nothing when the (address, nonce) key exists: one statement, no
# savepoint; run on the driver's cursor, whose row count says whether it was new.
_INSERT_NONCE_IF_NEW: dict[str, DriverStatement] = {
    "sqlite": DriverStatement(sqlite.insert(NONCES).values(_NONCE_ROW).on_conflict_do_nothing()),
    "postgresql": DriverStatement(
        postgresql.insert(NONCES).values(_NONCE_ROW).on_conflict_do_nothing()
    ),
}


def record_nonce(connection: Connection, address: str, nonce: str, seen_at: float) -> bool:
    """Record a signer's nonce in the open transaction; False when it was recorded before.

    A replay writes nothing. On PostgreSQL a concurrent insert of the same nonce waits
    for the first transaction, then counts as a replay if that one committed.
    """
    row = {"n_address": address.lower(), "n_nonce": nonce, "n_seen_at": seen_at}
    statement = _INSERT_NONCE_IF_NEW.get(connection.dialect.name)
    if statement is not None:
        with closing(statement.execute(connection, row)) as cursor:
            return cursor.rowcount == 1
    try:  # Any other database: the primary key refuses the second use.
        with connection.begin_nested():
            connection.execute(insert(NONCES).values(_NONCE_ROW), row)
    except IntegrityError:
        return False
    return True


def prune_nonces(session: Session, before: float, limit: int | None = None) -> int:
    """Forget nonces seen before ``before``, up to ``limit`` of them; return how many.

    A request that old is refused as stale anyway.
    """
    old = NONCES.c.seen_at < before
    if limit is not None:
        oldest = select(NONCES.c.address, NONCES.c.nonce).where(old).limit(limit)
        old = tuple_(NONCES.c.address, NONCES.c.nonce).in_(oldest)
    result = session.execute(delete(NONCES).where(old))
    return int(getattr(result, "rowcount", 0) or 0)
