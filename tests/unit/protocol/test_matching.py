from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from gpunet.errors import ValidationError
from gpunet.protocol.matching import (
    MIN_VALUE_PRICE_MICROS,
    NEUTRAL_LATENCY,
    Assignment,
    Candidate,
    Demand,
    Weights,
    demand_priority,
    disqualification,
    match,
    reliability_adjusted_value,
    score,
    tie_break_key,
    unit_price_micros,
)

NOW = 1_800_000_000.0


def node(node_id: str = "n-aaa", **change: object) -> Candidate:
    base = Candidate(
        node_id=node_id,
        gpu_model="H100",
        gpu_count=2,
        vram_gib=80,
        fp16_tflops=989.0,
        cpu_cores=32,
        memory_mib=262_144,
        disk_gib=1000,
        price_micros=2_000_000,
        region="eu-west-1",
        runtimes=frozenset({"bwrap", "docker"}),
        allows_network=True,
        latency_ms=20.0,
        reputation=0.8,
    )
    return dataclasses.replace(base, **change)  # type: ignore[arg-type]


def job(job_id: str = "j-1", **change: object) -> Demand:
    base = Demand(job_id=job_id, gpu_count=1, gpu_model="H100", max_price_micros=3_000_000)
    return dataclasses.replace(base, **change)  # type: ignore[arg-type]


# Qualify


def test_a_fitting_node_qualifies() -> None:
    assert disqualification(job(), node()) is None


@pytest.mark.parametrize(
    ("demand_change", "node_change", "reason"),
    [
        ({}, {"state": "busy"}, "state busy"),
        ({}, {"state": "offline"}, "state offline"),
        ({"exclude_nodes": frozenset({"n-aaa"})}, {}, "excluded for this job"),
        ({"gpu_count": 4}, {}, "needs 4 GPUs, node has 2"),
        ({}, {"gpu_model": "CPU", "gpu_count": 0}, "needs 1 GPU, node has 0"),
        ({"gpu_model": "A100-80GB"}, {}, "needs A100-80GB, node has H100"),
        ({"gpu_model": None, "min_fp16_tflops": 1000.0}, {}, "FP16 989 TFLOPS per GPU below 1000"),
        ({"min_vram_gib": 141}, {}, "VRAM 80 GiB per GPU below 141"),
        ({"cpu_cores": 64}, {}, "needs 64 CPU cores, node has 32"),
        ({"memory_mib": 300_000}, {}, "needs 300000 MiB memory, node has 262144"),
        ({"disk_gib": 2000}, {}, "needs 2000 GiB disk, node has 1000"),
        ({}, {"runtimes": frozenset({"bwrap"})}, "runtime docker not offered (node offers bwrap)"),
        ({"needs_network": True}, {"allows_network": False}, "needs network, node allows none"),
        ({"region": "us"}, {}, "region eu-west-1 outside us"),
        ({"region": "eu-west-10"}, {}, "region eu-west-1 outside eu-west-10"),
        ({"max_latency_ms": 50.0}, {"latency_ms": None}, "latency unknown, bound 50 ms"),
        ({"max_latency_ms": 10.0}, {}, "latency 20 ms above bound 10 ms"),
        ({"max_price_micros": 1_500_000}, {}, "price 2.00 USD/h above budget 1.50 USD/h"),
    ],
)
def test_each_rule_names_its_reason(
    demand_change: dict[str, object], node_change: dict[str, object], reason: str
) -> None:
    demand_change.setdefault("runtime", "docker")
    got = disqualification(job(**demand_change), node(**node_change))
    assert got is not None
    assert got.startswith(reason)


def test_region_prefix_matches_subregions() -> None:
    for wanted in ("eu", "eu-west", "eu-west-1"):
        assert disqualification(job(region=wanted), node()) is None


def test_latency_at_the_bound_qualifies() -> None:
    assert disqualification(job(max_latency_ms=20.0), node(latency_ms=20.0)) is None


def test_price_at_the_budget_qualifies() -> None:
    assert disqualification(job(max_price_micros=2_000_000), node()) is None


def test_cpu_work_runs_on_any_node_with_the_cpu_and_memory() -> None:
    cpu_job = Demand("j-cpu", gpu_count=0, cpu_cores=8, memory_mib=16_384)
    assert disqualification(cpu_job, node(gpu_model="CPU", gpu_count=0, vram_gib=0)) is None
    assert disqualification(cpu_job, node()) is None
    assert disqualification(dataclasses.replace(cpu_job, cpu_cores=64), node()) is not None


def test_cpu_work_on_a_gpu_node_pays_for_the_whole_node() -> None:
    cpu_job = Demand("j-cpu", gpu_count=0, max_price_micros=3_000_000)
    assert unit_price_micros(cpu_job, node()) == 2 * 2_000_000
    assert unit_price_micros(job(), node()) == 2_000_000
    reason = disqualification(cpu_job, node())
    assert reason == "price 4.00 USD/h above budget 3.00 USD/h"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gpu_count", -1),
        ("cpu_cores", -1),
        ("max_price_micros", 0),
        ("min_fp16_tflops", float("nan")),
        ("max_latency_ms", 0.0),
        ("max_latency_ms", float("inf")),
    ],
)
def test_bad_demands_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        job(**{field: value})
    assert info.value.field == field


def test_cpu_work_cannot_name_a_gpu() -> None:
    with pytest.raises(ValidationError, match="CPU-only work"):
        Demand("j-cpu", gpu_count=0, gpu_model="H100")


@pytest.mark.parametrize("field", ["price", "reputation", "latency"])
def test_weights_must_be_finite_and_not_negative(field: str) -> None:
    for bad in (-0.1, float("inf")):
        with pytest.raises(ValidationError) as info:
            Weights(**{field: bad})
        assert info.value.field == field


# Rank


def test_score_follows_the_documented_formula() -> None:
    weights = Weights(price=0.5, reputation=0.3, latency=0.2)
    batch = job(max_price_micros=4_000_000)
    expected = 0.5 * (2_000_000 / 4_000_000) + 0.3 * (1 - 0.8) + 0.2 * NEUTRAL_LATENCY
    assert score(batch, node(), weights) == pytest.approx(expected)
    session = job(max_price_micros=4_000_000, max_latency_ms=80.0)
    expected = 0.5 * 0.5 + 0.3 * (1 - 0.8) + 0.2 * (20.0 / 80.0)
    assert score(session, node(), weights) == pytest.approx(expected)


def test_cheaper_more_reputable_and_closer_nodes_score_lower() -> None:
    session, weights = job(max_latency_ms=100.0), Weights()
    base = score(session, node(), weights)
    assert score(session, node(price_micros=1_000_000), weights) < base
    assert score(session, node(reputation=0.95), weights) < base
    assert score(session, node(latency_ms=5.0), weights) < base


def test_latency_is_neutral_without_a_bound() -> None:
    weights = Weights()
    assert score(job(), node(latency_ms=5.0), weights) == score(
        job(), node(latency_ms=90.0), weights
    )


def test_value_per_dollar_discounts_failures() -> None:
    offer = node(benchmark_gflops=50_000.0, price_micros=2_000_000, failure_rate=0.1)
    assert reliability_adjusted_value(offer) == pytest.approx(50_000.0 / 2.0 * 0.9)
    always_fails = dataclasses.replace(offer, failure_rate=1.0)
    assert reliability_adjusted_value(always_fails) == 0.0


def test_a_free_offer_ranks_first_and_stays_finite() -> None:
    free = node(benchmark_gflops=1_000.0, price_micros=0)
    priced = node(benchmark_gflops=1_000_000.0, price_micros=10_000)
    value = reliability_adjusted_value(free)
    assert value == pytest.approx(1_000.0 / (MIN_VALUE_PRICE_MICROS / 1e6))
    assert value > reliability_adjusted_value(priced)


def test_failure_rates_outside_zero_to_one_are_clamped() -> None:
    offer = node(benchmark_gflops=1_000.0, price_micros=1_000_000)
    assert reliability_adjusted_value(dataclasses.replace(offer, failure_rate=-1.0)) == 1_000.0
    assert reliability_adjusted_value(dataclasses.replace(offer, failure_rate=3.0)) == 0.0


def test_priority_puts_overdue_then_larger_then_older_first() -> None:
    wait = 600.0
    demands = [
        job("j-new-small", submitted_at=NOW - 10),
        job("j-new-large", gpu_count=8, submitted_at=NOW - 10),
        job("j-old-small", submitted_at=NOW - 100),
        job("j-overdue-small", submitted_at=NOW - 700),
        job("j-overdue-large", gpu_count=4, submitted_at=NOW - 650),
    ]
    ordered = sorted(demands, key=lambda d: demand_priority(d, NOW, wait))
    assert [d.job_id for d in ordered] == [
        "j-overdue-large",
        "j-overdue-small",
        "j-new-large",
        "j-old-small",
        "j-new-small",
    ]


def test_tie_break_key_depends_on_seed_job_and_node() -> None:
    key = tie_break_key(0, "j-1", "n-1")
    assert key == tie_break_key(0, "j-1", "n-1")
    assert len({key, tie_break_key(1, "j-1", "n-1"), tie_break_key(0, "j-2", "n-1")}) == 3
    assert 0 <= key < 2**64


# Match


def test_match_places_each_demand_on_its_best_node() -> None:
    nodes = [
        node("n-cheap", price_micros=1_000_000),
        node("n-dear", price_micros=2_500_000),
        node("n-busy", price_micros=500_000, state="busy"),
    ]
    placed = match([job()], nodes, now=NOW)
    assert placed == [Assignment("j-1", "n-cheap", 1_000_000)]


def test_each_node_runs_one_demand_and_each_demand_one_node() -> None:
    nodes = [node(f"n-{i:03d}", price_micros=1_000_000 + i) for i in range(3)]
    demands = [job(f"j-{i}") for i in range(5)]
    placed = match(demands, nodes, now=NOW)
    assert len(placed) == 3
    assert len({a.node_id for a in placed}) == 3
    assert len({a.job_id for a in placed}) == 3


def test_excluded_nodes_are_skipped() -> None:
    nodes = [node("n-cheap", price_micros=1_000_000), node("n-dear", price_micros=2_000_000)]
    placed = match([job(exclude_nodes=frozenset({"n-cheap"}))], nodes, now=NOW)
    assert [a.node_id for a in placed] == ["n-dear"]


def test_unknown_runtime_or_model_places_nothing() -> None:
    assert match([job(runtime="podman")], [node()], now=NOW) == []
    assert match([job(gpu_model="B200")], [node()], now=NOW) == []
    assert match([], [node()], now=NOW) == []
    assert match([job()], [], now=NOW) == []


def test_cpu_work_is_billed_per_node_hour() -> None:
    cpu_node = node("n-cpu", gpu_model="CPU", gpu_count=0, vram_gib=0, price_micros=300_000)
    gpu_node = node("n-gpu", price_micros=100_000)
    placed = match([Demand("j-cpu", gpu_count=0)], [cpu_node, gpu_node], now=NOW)
    # The GPU node costs 2 x 0.10 = 0.20 USD per node-hour, less than the CPU node.
    assert placed == [Assignment("j-cpu", "n-gpu", 200_000)]


@pytest.mark.parametrize("what", ["job_id", "node_id"])
def test_duplicate_ids_are_refused(what: str) -> None:
    demands, nodes = [job("j-1"), job("j-2")], [node("n-1"), node("n-2")]
    if what == "job_id":
        demands.append(job("j-1"))
    else:
        nodes.append(node("n-1"))
    with pytest.raises(ValidationError) as info:
        match(demands, nodes, now=NOW)
    assert info.value.field == what


@pytest.mark.parametrize(
    ("field", "value"),
    [("price_micros", -1), ("latency_ms", -5.0), ("reputation", float("nan"))],
)
def test_offers_the_bounds_cannot_hold_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        match([job()], [node(**{field: value})], now=NOW)
    assert info.value.field == field


def test_equal_scores_are_shared_out_fairly() -> None:
    nodes = [node(f"n-{i:03d}") for i in range(8)]
    firsts = Counter(
        match([job(f"j-{k}")], nodes, now=NOW, seed=seed)[0].node_id
        for k in range(40)
        for seed in range(3)
    )
    # 120 draws over 8 identical nodes: every node wins some, none wins most.
    assert set(firsts) == {c.node_id for c in nodes}
    assert max(firsts.values()) < 40


def test_the_tie_break_is_deterministic_for_a_seed() -> None:
    nodes = [node(f"n-{i:03d}") for i in range(8)]
    demands = [job(f"j-{k}") for k in range(5)]
    first = match(demands, nodes, now=NOW, seed=7)
    assert match(demands, list(reversed(nodes)), now=NOW, seed=7) == first
    assert any(match(demands, nodes, now=NOW, seed=s) != first for s in range(8))


def test_an_overdue_large_job_goes_before_newer_small_ones() -> None:
    only_node = node("n-big", gpu_count=8)
    small = [job(f"j-small-{i}", submitted_at=NOW - 10) for i in range(20)]
    large = job("j-large", gpu_count=8, submitted_at=NOW - 3600)
    placed = match([*small, large], [only_node], now=NOW)
    assert placed == [Assignment("j-large", "n-big", only_node.price_micros)]


def test_assignments_come_back_in_pick_order() -> None:
    nodes = [node(f"n-{i:03d}", gpu_count=8) for i in range(3)]
    demands = [
        job("j-young", submitted_at=NOW - 5),
        job("j-old", submitted_at=NOW - 50),
        job("j-large", gpu_count=8, submitted_at=NOW - 1),
    ]
    assert [a.job_id for a in match(demands, nodes, now=NOW)] == ["j-large", "j-old", "j-young"]


def test_swaps_give_the_cheap_node_to_the_tight_budget() -> None:
    # The older job can afford either node and, by score, takes the cheap one; the
    # newer job's budget makes the cheap node worth more to it: a swap lowers the sum.
    nodes = [node("n-cheap", price_micros=1_000_000), node("n-dear", price_micros=1_900_000)]
    rich = job("j-rich", max_price_micros=20_000_000, submitted_at=NOW - 100)
    tight = job("j-tight", max_price_micros=2_000_000, submitted_at=NOW - 10)
    greedy = match([rich, tight], nodes, now=NOW, improve=False)
    assert [(a.job_id, a.node_id) for a in greedy] == [("j-rich", "n-cheap"), ("j-tight", "n-dear")]
    improved = match([rich, tight], nodes, now=NOW)
    assert [(a.job_id, a.node_id) for a in improved] == [
        ("j-rich", "n-dear"),
        ("j-tight", "n-cheap"),
    ]
    assert [a.price_micros for a in improved] == [1_900_000, 1_000_000]
