"""Offer search: the filter language of ``protocol.query`` translated to SQL.

``protocol.query.matches`` states what a filter means; ``condition_clause`` must keep
that meaning (a property test checks it on random nodes and filters). Each condition
becomes a comparison on a plain column, so the database does the work.

The total is counted first, up to ``COUNT_LIMIT`` matches: a filter that matches
more gets ``total_is_exact=False`` and the count stops early.

Finding the first page then takes one or two tries. A filter that pins one GPU model
(``gpu=H100``) sorted by price walks the ``(gpu_model, price_micros)`` index and
stops when the page is full. Otherwise the probe reads the ``PROBE_ROWS`` first
nodes in the requested order through its index and filters those; when that yields
the whole page, it is the right page. When the filter is rare among them (or
anti-correlated with the order, such as ``vram>=80`` by ascending TFLOPS), a
filtered scan and top-N sort finds it instead: sorting by an expression keeps the
database from walking the whole order index, row by row, through the table.
"""

from __future__ import annotations

import operator as op
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from gpunet.errors import QuerySyntaxError
from gpunet.indexer.orm import NodeRecord
from gpunet.indexer.store import online_clause
from gpunet.protocol.query import Condition

OfferOrder = Literal["price", "-price", "tflops", "-tflops", "value", "-value"]
PROBE_ROWS = 2000
COUNT_LIMIT = 10_000
"""Totals are counted up to this many matches; a larger total is not exact."""

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

# Columns whose index always narrows a search down: an operator runs few nodes.
_SELECTIVE_INDEXES = frozenset({"operator"})

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


class _Unindexed(ColumnElement[Any]):
    """A column SQLite must read from the row, not look up through an index.

    Rendered ``+column`` on SQLite (the unary plus changes no value but hides the
    column from the planner) and as the plain column elsewhere: PostgreSQL keeps
    statistics and chooses well.
    """

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(_Unindexed)
def _compile_unindexed(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(_Unindexed, "sqlite")
def _compile_unindexed_sqlite(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)


def condition_clause(condition: Condition, *, unindexed: bool = False) -> ColumnElement[bool]:
    """The SQL form of one parsed filter condition.

    ``unindexed`` hides the column from SQLite's planner (``_Unindexed``) unless its
    index is always selective (the operator's).
    """
    name = _COLUMNS.get(condition.attribute)
    compare = _COMPARE.get(condition.op)
    if name is None or compare is None:
        raise QuerySyntaxError(
            "where", condition.attribute, "this indexer cannot filter on that field yet"
        )
    column = getattr(NodeRecord, name)
    if unindexed and name not in _SELECTIVE_INDEXES:
        column = _Unindexed(column)
    value = condition.value
    if condition.attribute == "gpu" and isinstance(value, tuple):
        return _membership(column.in_(value), condition)
    if condition.attribute == "region" and isinstance(value, str):
        subregion = column.startswith(value + "-", autoescape=True)
        return _membership(or_(column == value, subregion), condition)
    return compare(column, _clamped(value))


def filter_clause(
    conditions: Sequence[Condition], *, unindexed: bool = False
) -> ColumnElement[bool]:
    """All conditions together; an empty filter matches every node."""
    return and_(true(), *(condition_clause(c, unindexed=unindexed) for c in conditions))


def value_expression() -> ColumnElement[float]:
    """``protocol.matching.reliability_adjusted_value`` in SQL: benchmark GFLOPS per
    USD-hour, discounted by the node's share of failed leases."""
    failure_rate = case(
        (NodeRecord.leases_total > 0, NodeRecord.leases_failed * 1.0 / NodeRecord.leases_total),
        else_=0.0,
    )
    price = case((NodeRecord.price_micros > 0, NodeRecord.price_micros), else_=1)
    return NodeRecord.benchmark_gflops * 1_000_000.0 / price * (1.0 - failure_rate)


def _sort_key(order: str) -> tuple[Any, bool]:
    if order in ("value", "-value"):
        return value_expression(), order == "-value"
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
    """The first ``limit`` matching online nodes and how many match in all.

    ``total`` is exact when ``total_is_exact``; otherwise more than
    ``COUNT_LIMIT`` nodes match and ``total`` is ``COUNT_LIMIT``.
    """

    nodes: Sequence[NodeRecord]
    total: int
    total_is_exact: bool = True


def _matching(
    conditions: Sequence[Condition], cutoff: float, *, unindexed: bool = False
) -> ColumnElement[bool]:
    # The filter first: it is usually more selective than the liveness rule, which
    # nearly every node passes, so a scan rejects most rows after fewer comparisons.
    return and_(filter_clause(conditions, unindexed=unindexed), online_clause(cutoff))


def _count_capped(session: Session, where: ColumnElement[bool], limit: int) -> int:
    """How many nodes satisfy ``where``, counting no further than ``limit``."""
    capped = select(literal(1)).select_from(NodeRecord).where(where).limit(limit).subquery()
    return session.scalar(select(func.count()).select_from(capped)) or 0


def _pinned_model(conditions: Sequence[Condition]) -> str | None:
    """The one GPU model the filter requires (``gpu=X``), if it names exactly one."""
    for condition in conditions:
        value = condition.value
        pins = condition.attribute == "gpu" and condition.op == "="
        if pins and isinstance(value, tuple) and len(value) == 1:
            return value[0]
    return None


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
    return _scanned_page(session, where, order, limit)


def _scanned_page(
    session: Session, where: ColumnElement[bool], order: str, limit: int
) -> Sequence[NodeRecord]:
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
    """Online nodes matching ``conditions``, sorted by ``order``, ties by node id.

    The total is counted up to ``COUNT_LIMIT`` matches (``OfferPage.total_is_exact``).
    The count, the probe and the filtered scan test the filter without indexes on
    SQLite (``_Unindexed``): an index that selects a large share of the table (a
    popular GPU model, a wide price range) fetches those rows one at a time, two to
    five times slower than a scan, and without statistics SQLite cannot tell which
    index would pay off. The count scans in storage order and stops at the limit, so
    a common filter costs little.
    """
    scanned = _matching(conditions, cutoff, unindexed=True)
    matching = _count_capped(session, scanned, COUNT_LIMIT + 1)
    if matching == 0:
        return OfferPage(nodes=[], total=0)
    exact = matching <= COUNT_LIMIT
    # How many rows the page must hold; the true count is unknown past the limit.
    wanted = min(limit, matching) if exact else limit
    if _pinned_model(conditions) is not None and order in ("price", "-price"):
        # The (gpu_model, price_micros) index walks this model's nodes in price order:
        # the database reads them until the page is full and stops there.
        query = select(NodeRecord).where(_matching(conditions, cutoff))
        found = session.scalars(_ordered(query, order).limit(limit)).all()
    elif not exact or _probe_is_promising(matching, _count_all(session), wanted):
        found = _first_page(session, scanned, order, limit, wanted)
    else:
        found = _scanned_page(session, scanned, order, limit)
    return OfferPage(nodes=found, total=min(matching, COUNT_LIMIT), total_is_exact=exact)


def _count_all(session: Session) -> int:
    # SQLite counts a table from its b-tree pages without reading rows (~0.02 ms).
    return session.scalar(select(func.count()).select_from(NodeRecord)) or 0
