"""Job matching in the pure core: speed at network scale, and quality against the optimum.

Two measurements of ``gpunet.protocol.matching.match``:

- speed: ``DEMANDS`` pending demands over ``CANDIDATES`` offers (a seeded, plausible
  mix: catalogue GPU models, 1/2/4/8 GPUs, ten regions, prices around the catalogue's
  reference prices, 80% of nodes idle; jobs and latency-bound sessions, budgets around
  the reference prices, some overdue, some excluding nodes), best of ``REPEATS`` runs;
- quality: a ``QUALITY_SIZE`` x ``QUALITY_SIZE`` instance built so that every demand
  can be placed (each demand is derived from one offer it qualifies for). Its cost
  matrix (``score`` where a pair qualifies, ``INFEASIBLE`` elsewhere) is solved exactly
  with ``scipy.optimize.linear_sum_assignment``; the matcher's total score is compared
  with the optimum's over the same jobs (the optimum is re-solved on the jobs the
  matcher placed when it placed fewer than all), and the two are timed.

Run alone: ``.venv/bin/python benchmarks/bench_matching.py``.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
from bench_offers import MODEL_WEIGHTS, REGIONS
from report import Figure, Section, Table, machine_markdown, ms, section_markdown
from scipy.optimize import linear_sum_assignment

from gpunet.protocol.catalogue import CATALOGUE, CPU_MODEL
from gpunet.protocol.matching import (
    Assignment,
    Candidate,
    Demand,
    Weights,
    disqualification,
    match,
    score,
)

DEMANDS = 10_000
CANDIDATES = 100_000
REPEATS = 3
GOAL_SPEED_S = 1.0
QUALITY_SIZE = 2_000
QUALITY_REPEATS = 3
GOAL_GAP = 0.03
GOAL_SPEEDUP = 10.0
INFEASIBLE = 1e6
SPOT_CHECKS = 2_000
SEED = 20261125
NOW = 1_800_000_000.0
MAX_WAIT_S = 600.0

# The market's mix of models and regions is bench_offers.py's.
# What demands ask for: none, a continent, or one region.
WANTED_REGIONS = (None, None, None, "eu", "us", "ap", "eu-west", "us-east")
STATES = (("idle", 80), ("busy", 15), ("offline", 5))
GPU_COUNTS = ((1, 40), (2, 25), (4, 15), (8, 20))
DEMAND_COUNTS = ((0, 5), (1, 45), (2, 20), (4, 15), (8, 15))
DEFAULT_PRICE_MICROS = 500_000
CENT = 10_000

Progress = Callable[[str], None]
T = TypeVar("T")


def _pick(rng: random.Random, weighted: Sequence[tuple[T, int]]) -> T:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def _reference(model: str) -> int:
    return CATALOGUE[model].reference_price_micros or DEFAULT_PRICE_MICROS


def _candidate(rng: random.Random, index: int) -> Candidate:
    model = rng.choices(list(MODEL_WEIGHTS), weights=list(MODEL_WEIGHTS.values()))[0]
    spec = CATALOGUE[model]
    count = 0 if model == CPU_MODEL else _pick(rng, GPU_COUNTS)
    price = max(CENT, int(round(_reference(model) * rng.uniform(0.25, 1.2), -4)))
    new_node = rng.random() < 0.2
    return Candidate(
        node_id=f"n-{index:08x}",
        gpu_model=model,
        gpu_count=count,
        vram_gib=spec.vram_gib,
        fp16_tflops=spec.fp16_tflops,
        cpu_cores=rng.choice((8, 16, 32, 64, 128)),
        memory_mib=rng.choice((32, 64, 128, 256, 512)) * 1024,
        disk_gib=rng.choice((200, 500, 1000, 4000)),
        price_micros=price,
        region=rng.choice(REGIONS),
        runtimes=frozenset({"bwrap", "docker"}) if rng.random() < 0.4 else frozenset({"bwrap"}),
        allows_network=rng.random() < 0.5,
        latency_ms=round(rng.uniform(5, 200), 1) if rng.random() < 0.6 else None,
        reputation=0.5 if new_node else round(rng.betavariate(5, 2), 3),
        failure_rate=0.0 if new_node else round(rng.uniform(0, 0.1), 3),
        benchmark_gflops=round(spec.fp32_tflops * 1000 * rng.uniform(0.7, 1.0), 1),
        state=_pick(rng, STATES),
    )


def candidates(count: int, seed: int = SEED) -> list[Candidate]:
    """``count`` seeded offers; the same seed gives the same offers."""
    rng = random.Random(seed)
    return [_candidate(rng, index) for index in range(count)]


@dataclass(frozen=True)
class _Wish:
    """What a demand asks of the GPU and what it will pay per GPU-hour (node-hour)."""

    model: str | None
    min_tflops: float
    min_vram: int
    budget: int


def _wish(rng: random.Random, count: int) -> _Wish:
    if count == 0:
        return _Wish(None, 0.0, 0, int(round(rng.uniform(0.2, 2.0) * 1e6, -4)))
    if rng.random() < 0.7:
        names = list(MODEL_WEIGHTS)[:-1]
        model = rng.choices(names, weights=[MODEL_WEIGHTS[m] for m in names])[0]
        budget = int(round(_reference(model) * rng.uniform(0.6, 1.5), -4))
        return _Wish(model, 0.0, 0, budget)
    floor = rng.choice((60.0, 120.0, 300.0))
    budget = int(round(rng.uniform(0.4, 3.0) * floor / 100 * 1e6, -4))
    return _Wish(None, floor, rng.choice((0, 24, 40)), budget)


def _demand(rng: random.Random, index: int, node_ids: Sequence[str]) -> Demand:
    count = _pick(rng, DEMAND_COUNTS)
    session = rng.random() < 0.15
    wish = _wish(rng, count)
    return Demand(
        job_id=f"j-{index:08x}",
        gpu_count=count,
        gpu_model=wish.model,
        min_fp16_tflops=wish.min_tflops,
        min_vram_gib=wish.min_vram,
        cpu_cores=rng.choice((1, 2, 4, 8, 16)),
        memory_mib=rng.choice((512, 4096, 16384, 65536)),
        disk_gib=rng.choice((0, 10, 100, 500)),
        max_price_micros=wish.budget,
        region=rng.choice(WANTED_REGIONS),
        max_latency_ms=float(rng.choice((50, 100, 150))) if session else None,
        runtime="docker" if rng.random() < 0.2 else "bwrap",
        needs_network=rng.random() < 0.2,
        submitted_at=NOW - rng.uniform(0, 2 * MAX_WAIT_S),
        exclude_nodes=frozenset(rng.sample(node_ids, 2)) if rng.random() < 0.05 else frozenset(),
    )


def demands(count: int, node_ids: Sequence[str], seed: int = SEED + 1) -> list[Demand]:
    """``count`` seeded demands, some excluding nodes among ``node_ids``."""
    rng = random.Random(seed)
    return [_demand(rng, index, node_ids) for index in range(count)]


# Quality: an instance where every demand can be placed, and its exact optimum.


def _fitting_demand(rng: random.Random, index: int, offer: Candidate) -> Demand:
    """A demand that ``offer`` qualifies for, as a buyer of that hardware might write it."""
    count = 0
    if offer.gpu_count:
        count = rng.choice([n for n in (1, 2, 4, 8) if n <= offer.gpu_count])
    named = count > 0 and rng.random() < 0.7
    floors = [f for f in (0.0, 60.0, 120.0, 300.0) if f <= offer.fp16_tflops]
    unit = offer.price_micros * (max(offer.gpu_count, 1) if count == 0 else 1)
    latency = offer.latency_ms
    session = latency is not None and rng.random() < 0.15
    bounds = [b for b in (50, 100, 150, 200) if latency is not None and b >= latency]
    return Demand(
        job_id=f"q-{index:06d}",
        gpu_count=count,
        gpu_model=offer.gpu_model if named else None,
        min_fp16_tflops=rng.choice(floors) if count and not named else 0.0,
        cpu_cores=rng.choice([c for c in (1, 2, 4, 8, 16) if c <= offer.cpu_cores]),
        memory_mib=rng.choice([m for m in (512, 4096, 16384, 65536) if m <= offer.memory_mib]),
        disk_gib=rng.choice([g for g in (0, 10, 100, 500) if g <= offer.disk_gib]),
        max_price_micros=int(round(unit * rng.uniform(1.0, 1.6), -4)) + CENT,
        region=rng.choice((None, offer.region.split("-")[0], offer.region)),
        max_latency_ms=float(rng.choice(bounds)) if session and bounds else None,
        runtime=rng.choice(sorted(offer.runtimes)),
        needs_network=offer.allows_network and rng.random() < 0.3,
        submitted_at=NOW - rng.uniform(0, 2 * MAX_WAIT_S),
    )


def quality_instance(size: int, seed: int = SEED + 2) -> tuple[list[Demand], list[Candidate]]:
    """``size`` idle offers and ``size`` demands, each demand fitting a different offer."""
    rng = random.Random(seed)
    offers = [replace(_candidate(rng, index), state="idle") for index in range(size)]
    wanted = [_fitting_demand(rng, index, offer) for index, offer in enumerate(offers)]
    rng.shuffle(wanted)
    return wanted, offers


@dataclass(frozen=True)
class _OfferColumns:
    """The offers' fields as arrays, for scoring one demand against all of them."""

    node: list[str]
    model: np.ndarray
    count: np.ndarray
    vram: np.ndarray
    tflops: np.ndarray
    cpu: np.ndarray
    memory: np.ndarray
    disk: np.ndarray
    price: np.ndarray
    region: list[str]
    network: np.ndarray
    latency: np.ndarray
    r1: np.ndarray
    runtimes: list[frozenset[str]]


def _columns(offers: Sequence[Candidate]) -> _OfferColumns:
    def array(name: str) -> np.ndarray:
        return np.array([getattr(c, name) for c in offers], dtype=np.float64)

    return _OfferColumns(
        node=[c.node_id for c in offers],
        model=np.array([c.gpu_model for c in offers]),
        count=array("gpu_count"),
        vram=array("vram_gib"),
        tflops=array("fp16_tflops"),
        cpu=array("cpu_cores"),
        memory=array("memory_mib"),
        disk=array("disk_gib"),
        price=array("price_micros"),
        region=[c.region for c in offers],
        network=np.array([c.allows_network for c in offers]),
        latency=np.array([np.nan if c.latency_ms is None else c.latency_ms for c in offers]),
        r1=1.0 - array("reputation"),
        runtimes=[c.runtimes for c in offers],
    )


def _row(demand: Demand, o: _OfferColumns, weights: Weights) -> np.ndarray:
    """``score`` of one demand against every offer, ``INFEASIBLE`` where it does not qualify."""
    ok = (o.cpu >= demand.cpu_cores) & (o.memory >= demand.memory_mib) & (o.disk >= demand.disk_gib)
    ok &= np.array([demand.runtime in r for r in o.runtimes])
    ok &= o.network | (not demand.needs_network)
    ok &= np.array([c not in demand.exclude_nodes for c in o.node])
    if demand.region is not None:
        wanted = demand.region
        ok &= np.array([r == wanted or r.startswith(wanted + "-") for r in o.region])
    unit = o.price
    if demand.gpu_count:
        ok &= (o.count >= demand.gpu_count) & (o.tflops >= demand.min_fp16_tflops)
        ok &= o.vram >= demand.min_vram_gib
        if demand.gpu_model is not None:
            ok &= o.model == demand.gpu_model
    else:
        unit = o.price * np.maximum(o.count, 1)
    ok &= unit <= demand.max_price_micros
    total = weights.price * (unit / demand.max_price_micros) + weights.reputation * o.r1
    if demand.max_latency_ms is None:
        total = total + weights.latency * 0.5
    else:
        with np.errstate(invalid="ignore"):
            ok &= o.latency <= demand.max_latency_ms
        total = total + weights.latency * (o.latency / demand.max_latency_ms)
    return np.where(ok, total, INFEASIBLE)


def cost_matrix(
    wanted: Sequence[Demand], offers: Sequence[Candidate], weights: Weights
) -> np.ndarray:
    """The score of every (demand, offer) pair, ``INFEASIBLE`` where it does not qualify."""
    columns = _columns(offers)
    return np.vstack([_row(demand, columns, weights) for demand in wanted])


def spot_check(
    cost: np.ndarray,
    wanted: Sequence[Demand],
    offers: Sequence[Candidate],
    weights: Weights,
    rng: random.Random,
) -> int:
    """Compare ``SPOT_CHECKS`` random cells with ``disqualification`` and ``score``."""
    for _ in range(SPOT_CHECKS):
        i, j = rng.randrange(len(wanted)), rng.randrange(len(offers))
        reason = disqualification(wanted[i], offers[j])
        expected = INFEASIBLE if reason is not None else score(wanted[i], offers[j], weights)
        if cost[i, j] != expected:
            raise AssertionError(f"cost[{i},{j}] = {cost[i, j]} but the matcher says {expected}")
    return SPOT_CHECKS


@dataclass(frozen=True)
class SpeedResult:
    times: list[float]
    placed: int
    greedy_times: list[float]


@dataclass(frozen=True)
class QualityResult:
    placed: int
    greedy_placed: int
    total: float
    greedy_total: float
    optimum_same_jobs: float
    greedy_optimum_same_jobs: float
    optimum_all: float
    optimum_all_placed: int
    match_s: float
    solver_s: float
    cost_matrix_s: float
    checked: int

    @property
    def gap(self) -> float:
        return (self.total - self.optimum_same_jobs) / self.optimum_same_jobs

    @property
    def greedy_gap(self) -> float:
        return (self.greedy_total - self.greedy_optimum_same_jobs) / self.greedy_optimum_same_jobs


def _timed(action: Callable[[], list[Assignment]]) -> tuple[float, list[Assignment]]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def measure_speed(progress: Progress) -> SpeedResult:
    progress(f"matching: building {CANDIDATES:,} offers and {DEMANDS:,} demands")
    offers = candidates(CANDIDATES)
    wanted = demands(DEMANDS, [c.node_id for c in offers])
    times, greedy_times, placed = [], [], 0
    for run in range(REPEATS):
        progress(f"matching: {DEMANDS:,} x {CANDIDATES:,}, run {run + 1} of {REPEATS}")
        elapsed, result = _timed(lambda: match(wanted, offers, now=NOW, max_wait_s=MAX_WAIT_S))
        times.append(elapsed)
        placed = len(result)
        elapsed, _ = _timed(
            lambda: match(wanted, offers, now=NOW, max_wait_s=MAX_WAIT_S, improve=False)
        )
        greedy_times.append(elapsed)
    return SpeedResult(times, placed, greedy_times)


def _total(
    cost: np.ndarray, placed: Sequence[Assignment], rows: dict[str, int], cols: dict[str, int]
) -> tuple[float, list[int]]:
    jobs = [rows[a.job_id] for a in placed]
    nodes = [cols[a.node_id] for a in placed]
    return float(cost[jobs, nodes].sum()), jobs


def _optimum(cost: np.ndarray, jobs: Sequence[int]) -> float:
    """The least total score of ``jobs`` placed on distinct nodes (all must fit)."""
    sub = cost[np.sort(np.asarray(jobs, dtype=np.int64))]
    picked_rows, picked_cols = linear_sum_assignment(sub)
    chosen = sub[picked_rows, picked_cols]
    if (chosen >= INFEASIBLE).any():
        raise AssertionError("the optimum leaves a placed job without a qualifying node")
    return float(chosen.sum())


def measure_quality(progress: Progress) -> QualityResult:
    weights = Weights()
    progress(f"matching: quality instance {QUALITY_SIZE:,} x {QUALITY_SIZE:,}")
    wanted, offers = quality_instance(QUALITY_SIZE)
    started = time.perf_counter()
    cost = cost_matrix(wanted, offers, weights)
    cost_s = time.perf_counter() - started
    checked = spot_check(cost, wanted, offers, weights, random.Random(SEED))
    progress("matching: exact optimum with scipy.optimize.linear_sum_assignment")
    solver_times = []
    for _ in range(QUALITY_REPEATS):
        started = time.perf_counter()
        all_rows, all_cols = linear_sum_assignment(cost)
        solver_times.append(time.perf_counter() - started)
    best = cost[all_rows, all_cols]
    match_times = []
    for _ in range(QUALITY_REPEATS):
        elapsed, placed = _timed(lambda: match(wanted, offers, now=NOW, max_wait_s=MAX_WAIT_S))
        match_times.append(elapsed)
    greedy = match(wanted, offers, now=NOW, max_wait_s=MAX_WAIT_S, improve=False)
    rows = {d.job_id: i for i, d in enumerate(wanted)}
    cols = {c.node_id: j for j, c in enumerate(offers)}
    total, jobs = _total(cost, placed, rows, cols)
    greedy_total, greedy_jobs = _total(cost, greedy, rows, cols)
    progress("matching: optimum over the jobs the matcher placed")
    return QualityResult(
        placed=len(placed),
        greedy_placed=len(greedy),
        total=total,
        greedy_total=greedy_total,
        optimum_same_jobs=_optimum(cost, jobs),
        greedy_optimum_same_jobs=_optimum(cost, greedy_jobs),
        optimum_all=float(best[best < INFEASIBLE].sum()),
        optimum_all_placed=int((best < INFEASIBLE).sum()),
        match_s=min(match_times),
        solver_s=min(solver_times),
        cost_matrix_s=cost_s,
        checked=checked,
    )


def _section(speed: SpeedResult, quality: QualityResult) -> Section:
    best = min(speed.times)
    speedup = quality.solver_s / quality.match_s
    n = QUALITY_SIZE
    figures = [
        Figure(
            f"match {DEMANDS:,} demands x {CANDIDATES:,} offers, best of {REPEATS}",
            ms(best),
            f"< {GOAL_SPEED_S * 1000:,.0f} ms",
            best < GOAL_SPEED_S,
        ),
        Figure("demands placed", f"{speed.placed:,} / {DEMANDS:,}"),
        Figure(
            f"total score above the optimum, same jobs ({n:,} x {n:,})",
            f"{quality.gap:.2%}",
            f"<= {GOAL_GAP:.0%}",
            quality.gap <= GOAL_GAP,
        ),
        Figure("the same, greedy placement alone (no trades)", f"{quality.greedy_gap:.2%}"),
        Figure(
            f"speed-up over linear_sum_assignment ({n:,} x {n:,})",
            f"{speedup:,.1f}x",
            f">= {GOAL_SPEEDUP:.0f}x",
            speedup >= GOAL_SPEEDUP,
        ),
        Figure(
            f"jobs placed ({n:,} x {n:,}; every job can be placed)",
            f"matcher {quality.placed:,}, optimum {quality.optimum_all_placed:,}",
        ),
    ]
    rows = [
        (
            f"{DEMANDS:,} x {CANDIDATES:,}",
            ", ".join(ms(t) for t in speed.times),
            ", ".join(ms(t) for t in speed.greedy_times),
            "",
        ),
        (
            f"{n:,} x {n:,}",
            ms(quality.match_s),
            "",
            f"{ms(quality.solver_s)} (+ {ms(quality.cost_matrix_s)} to build the costs)",
        ),
    ]
    scores = [
        (
            "matcher",
            f"{quality.placed:,}",
            f"{quality.total:,.2f}",
            f"{quality.optimum_same_jobs:,.2f}",
        ),
        (
            "greedy alone",
            f"{quality.greedy_placed:,}",
            f"{quality.greedy_total:,.2f}",
            f"{quality.greedy_optimum_same_jobs:,.2f}",
        ),
        (
            "optimum, every job",
            f"{quality.optimum_all_placed:,}",
            f"{quality.optimum_all:,.2f}",
            "",
        ),
    ]
    return Section(
        title="Job matching: 10,000 demands over 100,000 offers, and the optimum",
        figures=figures,
        tables=[
            Table("Times", ("instance", "match", "greedy alone", "exact solver"), rows),
            Table(
                f"Scores on the {n:,} x {n:,} instance",
                ("placement", "jobs placed", "total score", "optimum for the same jobs"),
                scores,
            ),
        ],
        notes=[
            "`gpunet.protocol.matching.match` in this process, default weights. Offers "
            f"(seed {SEED}) mix the catalogue's models as bench_offers.py does, with "
            "1/2/4/8 GPUs, ten regions, prices 0.25-1.2x the reference price, 60% with a "
            "known latency, 80% idle. Demands: 5% CPU-only; GPU work names a model (70%, "
            "budget 0.6-1.5x its reference price) or a TFLOPS floor; 62% want a region "
            "or continent, 15% are sessions with a latency bound, 20% want docker, 20% "
            "the network, 5% exclude two nodes, half are overdue.",
            f"Quality: {n:,} idle offers and {n:,} demands, each demand written to fit one "
            "offer, shuffled. The cost of a pair is `score` where it qualifies, "
            f"{INFEASIBLE:g} elsewhere ({quality.checked:,} random cells checked against "
            "`disqualification` and `score`); the optimum is "
            "`scipy.optimize.linear_sum_assignment`, for all jobs and again for exactly "
            "the jobs the matcher placed, whose total is the one compared.",
            "Times are wall clock, best of the runs; the solver's excludes building "
            "its cost matrix.",
        ],
    )


def run(progress: Progress = lambda _: None) -> Section:
    """Time ``match`` at network scale and compare its placements with the optimum."""
    return _section(measure_speed(progress), measure_quality(progress))


def main() -> int:
    section = run(progress=lambda text: print(text, file=sys.stderr))
    print(machine_markdown())
    print("command: `.venv/bin/python benchmarks/bench_matching.py`\n")
    print(section_markdown(section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
