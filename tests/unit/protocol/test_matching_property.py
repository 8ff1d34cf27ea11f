"""Property tests of ``match`` against a slow, literal reference.

The reference is the definition in the module docstring, written as plainly as
possible: demands in priority order, each taking the qualifying free node with the
smallest rank key. The fast matcher (``improve=False``) must return exactly the same
assignments; with the improvement pass it must keep the same demands on the same
nodes between them, never raise the total score, and stay maximal.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from gpunet.protocol.matching import (
    Assignment,
    Candidate,
    Demand,
    Weights,
    demand_priority,
    disqualification,
    match,
    rank_key,
    score,
    unit_price_micros,
)

NOW = 1_800_000_000.0
WAIT = 600.0
# Few distinct values, so that equal scores (and the tie-break) come up often.
MODELS = ("H100", "A100-80GB", "RTX4090", "CPU")
REGIONS = ("eu", "eu-west", "eu-west-1", "us-east", "euro")
PRICES = (0, 100_000, 500_000, 1_000_000, 2_000_000)
REPUTATIONS = (0.0, 0.5, 0.9, 1.0)
LATENCIES = (None, 0.0, 10.0, 50.0, 100.0)


def reference_match(
    demands: Sequence[Demand],
    candidates: Sequence[Candidate],
    weights: Weights,
    seed: int,
) -> list[Assignment]:
    taken: set[str] = set()
    placed = []
    for demand in sorted(demands, key=lambda d: demand_priority(d, NOW, WAIT)):
        free = [c for c in candidates if c.node_id not in taken]
        fits = [c for c in free if disqualification(demand, c) is None]
        if fits:
            best = min(fits, key=lambda c: rank_key(demand, c, weights, seed))
            taken.add(best.node_id)
            price = unit_price_micros(demand, best)
            placed.append(Assignment(demand.job_id, best.node_id, price))
    return placed


@st.composite
def offer(draw: st.DrawFn) -> Candidate:
    model = draw(st.sampled_from(MODELS))
    gpus = 0 if model == "CPU" else draw(st.sampled_from((1, 2, 4, 8)))
    return Candidate(
        node_id="n-template",
        gpu_model=model,
        gpu_count=gpus,
        vram_gib=draw(st.sampled_from((0, 24, 80))) if gpus else 0,
        fp16_tflops=draw(st.sampled_from((0.0, 165.0, 989.0))),
        cpu_cores=draw(st.sampled_from((2, 8, 32))),
        memory_mib=draw(st.sampled_from((1024, 8192, 65_536))),
        disk_gib=draw(st.sampled_from((0, 100, 1000))),
        price_micros=draw(st.sampled_from(PRICES)),
        region=draw(st.sampled_from(REGIONS)),
        runtimes=frozenset(draw(st.sets(st.sampled_from(("bwrap", "docker"))))),
        allows_network=draw(st.booleans()),
        latency_ms=draw(st.sampled_from(LATENCIES)),
        reputation=draw(st.sampled_from(REPUTATIONS)),
        state=draw(st.sampled_from(("idle", "idle", "idle", "busy", "offline"))),
    )


@st.composite
def candidates(draw: st.DrawFn) -> list[Candidate]:
    """Up to 30 offers: a few kinds, each repeated, so that equal scores are common."""
    kinds = draw(st.lists(offer(), max_size=8))
    copies = [draw(st.integers(1, 5)) for _ in kinds]
    offers = [kind for kind, n in zip(kinds, copies, strict=True) for _ in range(n)][:30]
    return [replace(o, node_id=f"n-{i:03d}") for i, o in enumerate(offers)]


@st.composite
def demands(draw: st.DrawFn, node_ids: Sequence[str]) -> list[Demand]:
    count = draw(st.integers(0, 20))
    wanted = []
    for index in range(count):
        gpus = draw(st.sampled_from((0, 1, 2, 4, 8)))
        exclude = draw(st.sets(st.sampled_from(node_ids))) if node_ids else set()
        wanted.append(
            Demand(
                job_id=f"j-{index:03d}",
                gpu_count=gpus,
                gpu_model=draw(st.sampled_from((None, "H100", "RTX4090"))) if gpus else None,
                min_fp16_tflops=draw(st.sampled_from((0.0, 100.0))) if gpus else 0.0,
                min_vram_gib=draw(st.sampled_from((0, 24, 48))) if gpus else 0,
                cpu_cores=draw(st.sampled_from((1, 4, 16))),
                memory_mib=draw(st.sampled_from((512, 4096))),
                disk_gib=draw(st.sampled_from((0, 50))),
                max_price_micros=draw(st.sampled_from((100_000, 600_000, 2_000_000, 5_000_000))),
                region=draw(st.sampled_from((None, None, "eu", "eu-west", "us"))),
                max_latency_ms=draw(st.sampled_from((None, None, 10.0, 60.0))),
                runtime=draw(st.sampled_from(("bwrap", "bwrap", "docker"))),
                needs_network=draw(st.booleans()),
                submitted_at=NOW - draw(st.sampled_from((0.0, 100.0, 1000.0, 5000.0))),
                exclude_nodes=frozenset(exclude),
            )
        )
    return wanted


weights = st.sampled_from((Weights(), Weights(1.0, 0.0, 0.0), Weights(0.2, 0.2, 2.0)))


@st.composite
def instances(draw: st.DrawFn) -> tuple[list[Demand], list[Candidate], Weights, int]:
    offers = draw(candidates())
    wanted = draw(demands([c.node_id for c in offers]))
    return wanted, offers, draw(weights), draw(st.integers(0, 3))


def total(
    placed: Sequence[Assignment], wanted: Sequence[Demand], offers: Sequence[Candidate], w: Weights
) -> float:
    by_job = {d.job_id: d for d in wanted}
    by_node = {c.node_id: c for c in offers}
    return sum(score(by_job[a.job_id], by_node[a.node_id], w) for a in placed)


@settings(max_examples=150, deadline=None)
@given(instances())
def test_fast_greedy_equals_the_reference(
    instance: tuple[list[Demand], list[Candidate], Weights, int],
) -> None:
    wanted, offers, w, seed = instance
    fast = match(wanted, offers, weights=w, now=NOW, seed=seed, max_wait_s=WAIT, improve=False)
    assert fast == reference_match(wanted, offers, w, seed)


@settings(max_examples=150, deadline=None)
@given(instances())
def test_improvement_keeps_jobs_and_nodes_and_never_costs_more(
    instance: tuple[list[Demand], list[Candidate], Weights, int],
) -> None:
    wanted, offers, w, seed = instance
    greedy = match(wanted, offers, weights=w, now=NOW, seed=seed, max_wait_s=WAIT, improve=False)
    improved = match(wanted, offers, weights=w, now=NOW, seed=seed, max_wait_s=WAIT)
    assert [a.job_id for a in improved] == [a.job_id for a in greedy]
    assert {a.node_id for a in improved} == {a.node_id for a in greedy}
    assert total(improved, wanted, offers, w) <= total(greedy, wanted, offers, w) + 1e-9
    by_node = {c.node_id: c for c in offers}
    by_job = {d.job_id: d for d in wanted}
    for a in improved:
        demand, offer = by_job[a.job_id], by_node[a.node_id]
        assert disqualification(demand, offer) is None
        assert a.price_micros == unit_price_micros(demand, offer)


@settings(max_examples=150, deadline=None)
@given(instances(), st.booleans())
def test_no_free_node_is_left_that_an_unplaced_demand_could_use(
    instance: tuple[list[Demand], list[Candidate], Weights, int], improve: bool
) -> None:
    wanted, offers, w, seed = instance
    placed = match(wanted, offers, weights=w, now=NOW, seed=seed, improve=improve)
    jobs = [a.job_id for a in placed]
    nodes = [a.node_id for a in placed]
    assert len(set(jobs)) == len(jobs)
    assert len(set(nodes)) == len(nodes)
    free = [c for c in offers if c.node_id not in set(nodes)]
    for demand in (d for d in wanted if d.job_id not in set(jobs)):
        assert all(disqualification(demand, c) is not None for c in free)


@settings(max_examples=100, deadline=None)
@given(instances())
def test_nodes_an_unplaced_demand_could_use_went_to_demands_before_it(
    instance: tuple[list[Demand], list[Candidate], Weights, int],
) -> None:
    wanted, offers, w, seed = instance
    placed = match(wanted, offers, weights=w, now=NOW, seed=seed, max_wait_s=WAIT, improve=False)
    holder = {a.node_id: a.job_id for a in placed}
    by_job = {d.job_id: d for d in wanted}
    for demand in (d for d in wanted if d.job_id not in {a.job_id for a in placed}):
        mine = demand_priority(demand, NOW, WAIT)
        for offer in offers:
            if disqualification(demand, offer) is None:
                assert demand_priority(by_job[holder[offer.node_id]], NOW, WAIT) < mine


@settings(max_examples=100, deadline=None)
@given(
    small=st.integers(0, 60),
    small_overdue=st.booleans(),
    big_nodes=st.integers(0, 3),
    small_nodes=st.integers(0, 40),
    seed=st.integers(0, 1000),
    improve=st.booleans(),
)
def test_an_overdue_large_job_is_placed_whenever_a_node_qualifies(
    small: int, small_overdue: bool, big_nodes: int, small_nodes: int, seed: int, improve: bool
) -> None:
    rng = random.Random(seed)
    offers = [
        Candidate(f"n-big-{i}", "H100", 8, 80, 989.0, 64, 524_288, 2000,
                  rng.choice(PRICES), "eu-west", frozenset({"bwrap"}), reputation=rng.random())
        for i in range(big_nodes)
    ] + [
        Candidate(f"n-small-{i}", "H100", rng.choice((1, 2)), 80, 989.0, 16, 65_536, 500,
                  rng.choice(PRICES), "eu-west", frozenset({"bwrap"}), reputation=rng.random())
        for i in range(small_nodes)
    ]  # fmt: skip
    age = WAIT * 2 if small_overdue else 10.0
    wanted = [
        Demand(f"j-small-{i}", 1, "H100", submitted_at=NOW - age * rng.random())
        for i in range(small)
    ]
    large = Demand("j-large", 8, "H100", submitted_at=NOW - WAIT - 1.0)
    wanted.insert(rng.randrange(len(wanted) + 1), large)
    placed = match(wanted, offers, now=NOW, seed=seed, max_wait_s=WAIT, improve=improve)
    assert any(a.job_id == "j-large" for a in placed) == (big_nodes > 0)


@settings(max_examples=100, deadline=None)
@given(instances(), st.randoms(use_true_random=False))
def test_the_greedy_result_does_not_depend_on_input_order(
    instance: tuple[list[Demand], list[Candidate], Weights, int], shuffler: random.Random
) -> None:
    wanted, offers, w, seed = instance
    first = match(wanted, offers, weights=w, now=NOW, seed=seed, improve=False)
    wanted, offers = list(wanted), list(offers)
    shuffler.shuffle(wanted)
    shuffler.shuffle(offers)
    assert match(wanted, offers, weights=w, now=NOW, seed=seed, improve=False) == first
    assert match(wanted, offers, weights=w, now=NOW, seed=seed) == match(
        wanted, offers, weights=w, now=NOW, seed=seed
    )
