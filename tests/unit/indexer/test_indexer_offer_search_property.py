"""Property: the SQL translation of a filter selects exactly what ``matches`` accepts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from gpunet.api.models import NodeRegistration
from gpunet.indexer import offer_search, registry
from gpunet.indexer.database import Database, make_engine
from gpunet.indexer.migrate import upgrade_database
from gpunet.indexer.orm import NodeRecord
from gpunet.indexer.views import offer_public
from gpunet.protocol.catalogue import CATALOGUE, CPU_MODEL
from gpunet.protocol.query import OfferView, matches, parse_filter
from gpunet.protocol.units import format_usd

NOW = 1_750_000_000.0
TIMEOUT = 30.0
REGIONS = ["eu", "eu-west", "eu-west-1", "euw", "us-east", "us-east-2", "ap-south"]
OPERATORS = ["0x" + c * 40 for c in "abc"]
ORDERING = ["<", "<=", ">", ">=", "=", "!="]
TFLOPS = sorted({m.fp16_tflops * n for m in CATALOGUE.values() for n in (1, 2, 8)})


@dataclass(frozen=True)
class NodeSpec:
    node_id: str
    operator: str
    registration: NodeRegistration
    state: str
    silent_for: float


@st.composite
def registrations(draw: st.DrawFn) -> NodeRegistration:
    model = draw(st.sampled_from(sorted(CATALOGUE.values(), key=lambda m: m.name)))
    cpu = model.name == CPU_MODEL
    max_vram = int(model.vram_gib * 1024 * 1.1)
    hardware = {
        "gpu_model": draw(st.sampled_from([model.name, model.name.lower()])),
        "gpu_count": 0 if cpu else draw(st.integers(1, 16)),
        "vram_mib": 0 if cpu else draw(st.integers(max(1, max_vram - 3000), max_vram)),
        "cpu_cores": draw(st.integers(1, 128)),
        "memory_mib": draw(st.integers(1, 4096)) * 256,
        "disk_gib": draw(st.integers(0, 5000)),
        "benchmark_gflops": 1.0,
    }
    offer = {
        "price_micros": draw(st.integers(1, 5_000_000)),
        "region": draw(st.sampled_from(REGIONS)),
    }
    return NodeRegistration.model_validate({"hardware": hardware, "offer": offer})


@st.composite
def node_specs(draw: st.DrawFn, index: int) -> NodeSpec:
    return NodeSpec(
        node_id=f"n-{index:03d}",
        operator=draw(st.sampled_from(OPERATORS)),
        registration=draw(registrations()),
        state=draw(st.sampled_from(["idle", "busy", "offline"])),
        silent_for=draw(st.sampled_from([0.0, TIMEOUT - 1, TIMEOUT, TIMEOUT + 1, 500.0])),
    )


@st.composite
def node_sets(draw: st.DrawFn) -> list[NodeSpec]:
    size = draw(st.integers(0, 25))
    return [draw(node_specs(i)) for i in range(size)]


def _number(low: int, high: int) -> st.SearchStrategy[str]:
    whole = st.integers(low, high).map(str)
    decimal = st.tuples(st.integers(low, high), st.integers(0, 99)).map(lambda p: f"{p[0]}.{p[1]}")
    return st.one_of(whole, decimal)


TERMS: dict[str, tuple[list[str], st.SearchStrategy[str]]] = {
    "gpu": (
        ["=", "!="],
        st.lists(st.sampled_from(sorted(CATALOGUE)), min_size=1, max_size=3).map(",".join),
    ),
    "count": (ORDERING, st.integers(0, 17).map(str)),
    "vram": (ORDERING, _number(0, 150)),
    "price": (ORDERING, st.integers(0, 5_000_000).map(format_usd)),
    "region": (["=", "!="], st.sampled_from([*REGIONS, "us", "ap-south-1"])),
    "tflops": (ORDERING, st.one_of(st.sampled_from(TFLOPS).map(str), _number(0, 16000))),
    "cpu": (ORDERING, st.integers(0, 130).map(str)),
    "ram": (ORDERING, _number(0, 1100)),
    "disk": (ORDERING, st.integers(0, 5001).map(str)),
    "state": (["=", "!="], st.sampled_from(["idle", "busy", "offline", "IDLE"])),
    "operator": (["=", "!="], st.sampled_from([*OPERATORS, "0x" + "AB" * 20, "0x" + "d" * 40])),
}


@st.composite
def terms(draw: st.DrawFn) -> str:
    field = draw(st.sampled_from(sorted(TERMS)))
    operators, values = TERMS[field]
    return f"{field}{draw(st.sampled_from(operators))}{draw(values)}"


filters = st.lists(terms(), max_size=4).map(" ".join)


@pytest.fixture(scope="module")
def database() -> Iterator[Database]:
    engine = make_engine("sqlite://")
    upgrade_database(engine)
    yield Database.from_engine(engine)
    engine.dispose()


def _store(database: Database, nodes: list[NodeSpec]) -> None:
    with database.writing() as session:
        session.execute(delete(NodeRecord))
        for spec in nodes:
            at = NOW - spec.silent_for
            record, _ = registry.register_node(
                session, spec.node_id, spec.operator, spec.registration, at
            )
            record.state = spec.state


def _view(record: NodeRecord) -> OfferView:
    fields = offer_public(record).model_dump()
    return OfferView(**{name: fields[name] for name in OfferView.__dataclass_fields__})


def _forcing_probe(force: bool) -> Any:
    """Small node sets rarely look worth a probe; make the search try it anyway."""
    if not force:
        return contextlib.nullcontext()
    return mock.patch.object(offer_search, "_probe_is_promising", lambda *_: True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nodes=node_sets(),
    where=filters,
    order=st.sampled_from(["price", "-price", "tflops", "-tflops"]),
    limit=st.integers(1, 30),
    probe_rows=st.sampled_from([1, 3, 10, 2000]),
    force_probe=st.booleans(),
    count_limit=st.sampled_from([1, 4, 10_000]),
)
def test_sql_filter_selects_exactly_the_matching_online_nodes(
    database: Database,
    nodes: list[NodeSpec],
    where: str,
    order: str,
    limit: int,
    probe_rows: int,
    force_probe: bool,
    count_limit: int,
) -> None:
    _store(database, nodes)
    conditions = parse_filter(where)
    cutoff = NOW - TIMEOUT

    with (
        database.reading() as session,
        mock.patch.object(offer_search, "PROBE_ROWS", probe_rows),
        mock.patch.object(offer_search, "COUNT_LIMIT", count_limit),
        _forcing_probe(force_probe),
    ):
        page = offer_search.search_offers(
            session,
            conditions,
            cutoff=cutoff,
            order=order,
            limit=limit,  # type: ignore[arg-type]
        )
        everything = session.query(NodeRecord).all()

    online = [r for r in everything if r.state != "offline" and r.last_heartbeat_at >= cutoff]
    expected = [r for r in online if matches(conditions, _view(r))]
    key, descending = {
        "price": ("price_micros", False),
        "-price": ("price_micros", True),
        "tflops": ("fp16_tflops", False),
        "-tflops": ("fp16_tflops", True),
    }[order]
    expected.sort(key=lambda r: r.node_id)
    expected.sort(key=lambda r: getattr(r, key), reverse=descending)
    assert page.total == min(len(expected), count_limit)
    assert page.total_is_exact == (len(expected) <= count_limit)
    assert [r.node_id for r in page.nodes] == [r.node_id for r in expected[:limit]]
