"""Offer search: the filter language of ``protocol.query`` translated to SQL.

``protocol.query.matches`` states what a filter means; ``condition_clause`` must keep
that meaning (a property test checks it on random nodes and filters). Each condition
becomes a comparison on a plain column, so the database does the work.

Finding the first page takes one or two tries. The probe reads the ``PROBE_ROWS``
first nodes in the requested order through its index and filters those; when that
yields the whole page, it is the right page. When the filter is rare among them (or
anti-correlated with the order, such as ``vram>=80`` by ascending TFLOPS), a
filtered scan and top-N sort finds it instead: sorting by an expression keeps the
database from walking the whole order index, row by row, through the table.
"""

from __future__ import annotations

import operator as op
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, func, not_, or_, select, true
from sqlalchemy.orm import Session

from gpunet.errors import QuerySyntaxError
from gpunet.indexer.orm import NodeRecord
from gpunet.indexer.store import online_clause
from gpunet.protocol.query import Condition

OfferOrder = Literal["price", "-price", "tflops", "-tflops"]
PROBE_ROWS = 2000

# Every stored integer is far below this, so clamping a larger filter value to it
# keeps each comparison's truth and keeps the value inside a 64-bit column.
_INT_BOUND = 2**62
_FLOAT_BOUND = 1e300

# Filter attribute (``OfferView`` field) -> NodeRecord column name.
_COLUMNS: dict[str, str] = {
    "gpu": "gpu_model",
    "gpu_count": "gpu_count",
    "vram_gib": "vram_gib",
    "price_micros": "price_micros",
    "region": "region",
    "fp16_tflops": "fp16_tflops",
    "cpu_cores": "cpu_cores",
    "memory_mib": "memory_mib",
    "disk_gib": "disk_gib",
    "state": "state",
    "operator": "operator",
}

_COMPARE: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": op.eq,
    "!=": op.ne,
    "<": op.lt,
    "<=": op.le,
    ">": op.gt,
    ">=": op.ge,
}

# Sort key and direction; ties are broken by node id, ascending.
_ORDERS: dict[str, tuple[str, bool]] = {
    "price": ("price_micros", False),
    "-price": ("price_micros", True),
    "tflops": ("fp16_tflops", False),
    "-tflops": ("fp16_tflops", True),
}


def _clamped(value: object) -> object:
    if isinstance(value, int):
        return max(-_INT_BOUND, min(_INT_BOUND, value))
    if isinstance(value, float):
        return max(-_FLOAT_BOUND, min(_FLOAT_BOUND, value))
    return value


def _membership(inside: ColumnElement[bool], condition: Condition) -> ColumnElement[bool]:
    return inside if condition.op == "=" else not_(inside)


def condition_clause(condition: Condition) -> ColumnElement[bool]:
    """The SQL form of one parsed filter condition."""
    name = _COLUMNS.get(condition.attribute)
    compare = _COMPARE.get(condition.op)
    if name is None or compare is None:
        raise QuerySyntaxError(
            "where", condition.attribute, "this indexer cannot filter on that field yet"
        )
    column = getattr(NodeRecord, name)
    value = condition.value
    if condition.attribute == "gpu" and isinstance(value, tuple):
        return _membership(column.in_(value), condition)
    if condition.attribute == "region" and isinstance(value, str):
        subregion = column.startswith(value + "-", autoescape=True)
        return _membership(or_(column == value, subregion), condition)
    return compare(column, _clamped(value))


def filter_clause(conditions: Sequence[Condition]) -> ColumnElement[bool]:
    """All conditions together; an empty filter matches every node."""
    return and_(true(), *(condition_clause(c) for c in conditions))


def _sort_key(order: str) -> tuple[Any, bool]:
    name, descending = _ORDERS[order]
    return getattr(NodeRecord, name), descending


def _ordered(query: Select[Any], order: str, *, by_index: bool = True) -> Select[Any]:
    key, descending = _sort_key(order)
    if not by_index:
        # Same order, but an expression no index provides: the planner scans and sorts.
        key = key + 0
    return query.order_by(key.desc() if descending else key.asc(), NodeRecord.node_id.asc())


@dataclass(frozen=True)
class OfferPage:
    """The first ``limit`` matching online nodes and how many match in all."""

    nodes: Sequence[NodeRecord]
    total: int


def _matching(conditions: Sequence[Condition], cutoff: float) -> ColumnElement[bool]:
    return and_(online_clause(cutoff), filter_clause(conditions))


def _probe_bound(session: Session, order: str) -> Any:
    """The sort key of the ``PROBE_ROWS``-th node in order; None if there are fewer."""
    key, descending = _sort_key(order)
    query = select(key).order_by(key.desc() if descending else key.asc())
    return session.scalar(query.offset(PROBE_ROWS - 1).limit(1))


def _first_page(
    session: Session, where: ColumnElement[bool], order: str, limit: int, wanted: int
) -> Sequence[NodeRecord]:
    bound = _probe_bound(session, order)
    if bound is not None:
        key, descending = _sort_key(order)
        within = key >= bound if descending else key <= bound
        probe = _ordered(select(NodeRecord).where(where, within), order).limit(limit)
        found = session.scalars(probe).all()
        if len(found) >= wanted:
            return found
    query = _ordered(select(NodeRecord).where(where), order, by_index=False)
    return session.scalars(query.limit(limit)).all()


def _probe_is_promising(matching: int, all_nodes: int, wanted: int) -> bool:
    """Whether the first ``PROBE_ROWS`` nodes likely hold ``wanted`` matches."""
    return all_nodes > 0 and PROBE_ROWS * matching >= 2 * wanted * all_nodes


def search_offers(
    session: Session,
    conditions: Sequence[Condition],
    *,
    cutoff: float,
    order: OfferOrder = "price",
    limit: int = 100,
) -> OfferPage:
    """Online nodes matching ``conditions``, sorted by ``order``, ties by node id."""
    where = _matching(conditions, cutoff)
    counts = select(func.count().filter(where), func.count()).select_from(NodeRecord)
    matching, all_nodes = session.execute(counts).one()
    if matching == 0:
        return OfferPage(nodes=[], total=0)
    wanted = min(limit, matching)
    if _probe_is_promising(matching, all_nodes, wanted):
        found = _first_page(session, where, order, limit, wanted)
    else:
        query = _ordered(select(NodeRecord).where(where), order, by_index=False)
        found = session.scalars(query.limit(limit)).all()
    return OfferPage(nodes=found, total=matching)
