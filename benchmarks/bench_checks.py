"""Checks (issue 4): what verifying costs, what it catches, how many nodes a checker serves.

- verification cost: ``judge_capacity`` against ``CapacityProver.prove`` (NumPy) on a
  CPU challenge sized from this CPU's benchmark with the most tiles a spec allows and the
  CPU policy's openings, in operations (``verifier_ops / prover_ops``) and in time; for
  the production GPU challenge, operations, and one opened tile recomputed here;
- over-claim detection: a node with a quarter of its claimed speed gets right only the
  share of tiles ``overclaim_tile_fraction`` allows, random values elsewhere, in real
  challenges (leaves, Merkle root, ``pick_tiles``, ``open_tiles``, ``judge_capacity``);
- canaries: a seeded Monte-Carlo of nodes skipping 10% of their jobs at the default
  canary rate, against ``canary.detection_probability``; real canaries through the
  checker's delivery check, run and skipped;
- one checker's load: one uvicorn process serves ``FARM_NODES`` honest node check
  endpoints (each its own node id and operator key) under ``/n/{i}``; a checker process
  (``CheckerAgent``, the real ``CheckRunner``, an in-process stand-in for the indexer)
  probes every node's liveness, then challenges the capacity of every ``CAPACITY_STEP``-th.

Run alone: ``.venv/bin/python benchmarks/bench_checks.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from check_farm import (
    CAPACITY_STEP,
    EPOCH_S,
    FARM_CLAIM,
    FARM_NODES,
    WINDOW_S,
    WORKERS,
    Phase,
    Progress,
    farm_task,
    measure_checker,
)
from harness import (
    BenchmarkError,
)
from report import Figure, Section, Table, machine_markdown, section_markdown
from scipy.stats import beta

from gpunet.api.checks import (
    DeliveryTask,
)
from gpunet.api.jobs import FileRef
from gpunet.checker.delivery import check_delivery
from gpunet.node.benchmark import run_benchmark
from gpunet.node.capacity import CapacityProver
from gpunet.protocol import canary
from gpunet.protocol import challenge as ch
from gpunet.protocol.challenge_inputs import MAX_K, tile_product
from gpunet.protocol.merkle import MerkleTree

SEED = 20261126
GOAL_RATIO = 0.01
# Verification cost: CPU_POLICY's 20 openings of 65,536 tiles (the most a spec allows) on
# products of BIG_SIZES (n, tile), each aimed at BIG_TARGET_S at this CPU's benchmark; the
# first (the largest this CPU proves in a few seconds) is judged.
BIG_SIZES, BIG_TARGET_S = ((8_192, 32), (4_096, 16)), 2.0
PROVE_REPEATS, JUDGE_REPEATS = 2, 3
CPU_CLAIM = 20e9  # a CPU node's claim, as in docs/checks-capacity.md
GPU_MODEL = "H100"
# Over-claim: only the tile count, the share right and the openings decide a pass, so
# simulated challenges keep the CPU policy's tile grid and openings on a small product.
FACTOR = 4.0
CHEAT_TRIALS, CHEAT_N, CHEAT_K = 2_000, 256, 8
SANITY_TRIALS, SANITY_OPENS, SANITY_FRACTION = 1_000, 3, 0.5
SKIP_FRACTION, CANARY_NODES, CANARY_CHUNK = 0.1, 1_000_000, 100_000
DELIVERY_SAMPLES = 10  # canaries run, and as many skipped


def upper_95(hits: int, trials: int) -> float:
    """One-sided 95% Clopper-Pearson upper bound on a rate seen ``hits`` times in ``trials``."""
    return 1.0 if hits >= trials else float(beta.ppf(0.95, hits + 1, trials - hits))


def interval_95(hits: int, trials: int) -> tuple[float, float]:
    """Two-sided 95% Clopper-Pearson interval."""
    low = 0.0 if hits == 0 else float(beta.ppf(0.025, hits, trials - hits + 1))
    return low, 1.0 if hits == trials else float(beta.ppf(0.975, hits + 1, trials - hits))


def _best(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


# --- 1. verification cost ---


@dataclass(frozen=True)
class CostRow:
    name: str
    spec: ch.ChallengeSpec
    prove_s: float = math.nan
    judge_s: float = math.nan

    @property
    def ops_ratio(self) -> float:
        return ch.verifier_ops(self.spec) / ch.prover_ops(self.spec)


def _timed_costs(name: str, spec: ch.ChallengeSpec, rng: np.random.Generator) -> CostRow:
    prover = CapacityProver("numpy")
    prove_s = _best(lambda: prover.prove(spec), PROVE_REPEATS)
    proven = prover.prove(spec)
    judge_times = []
    for _ in range(JUDGE_REPEATS):
        indices = ch.pick_tiles(spec, proven.root, rng.bytes(32))
        openings = prover.open(proven, indices)
        started = time.perf_counter()
        finding = ch.judge_capacity(spec, proven.root, 0.0, indices, openings)
        judge_times.append(time.perf_counter() - started)
        if not finding.passed:
            raise BenchmarkError(f"an honest proof failed: {finding.reason}")
    return CostRow(name, spec, prove_s, min(judge_times))


def challenge_for(claim: float, policy: ch.DeadlinePolicy) -> ch.ChallengeSpec:
    """What ``new_challenge`` asks of ``claim``, the RTT at the policy's cap."""
    return ch.new_challenge("bench", "n-bench", claim, bytes(32), policy.max_rtt_s, policy)


def gpu_challenge() -> tuple[ch.ChallengeSpec, float, ch.DeadlinePolicy]:
    """The production challenge for one ``GPU_MODEL``, its claim and its policy."""
    claim, policy = ch.claimed_ops_per_s(GPU_MODEL, 1, 0.0), ch.policy_for(GPU_MODEL)
    return challenge_for(claim, policy), claim, policy


@dataclass(frozen=True)
class Costs:
    gflops: float  # this CPU's benchmark
    rows: list[CostRow]  # BIG_SIZES' challenges, CPU_POLICY as shipped, the GPU's
    gpu_tile_s: float  # one opened GPU tile recomputed here


def measure_costs(progress: Progress, rng: np.random.Generator) -> Costs:
    progress("checks: this CPU's matrix benchmark")
    gflops = run_benchmark(prefer_gpu=False).gflops
    rows = []
    for n, tile in BIG_SIZES:
        policy = replace(ch.CPU_POLICY, tile=tile, min_n=n, max_n=n, max_k=MAX_K)
        big = challenge_for(gflops * 1e9, replace(policy, target_s=BIG_TARGET_S))
        progress(f"checks: proving and judging n={n:,}, k={big.k:,}, tile {tile}")
        rows.append(_timed_costs(f"{tile}-wide tiles, claim = this CPU", big, rng))
    shipped = challenge_for(CPU_CLAIM, ch.CPU_POLICY)
    rows.append(_timed_costs(f"CPU_POLICY, {CPU_CLAIM / 1e9:g} GFLOPS claim", shipped, rng))
    gpu, _, _ = gpu_challenge()
    progress(f"checks: recomputing one {GPU_MODEL} tile (k={gpu.k:,}) on this CPU")
    tile_s = _best(lambda: tile_product(gpu, 0), 1)
    return Costs(gflops, [*rows, CostRow(f"{GPU_MODEL}, production policy", gpu)], tile_s)


# --- 2. over-claim detection ---


@dataclass(frozen=True)
class CheatRow:
    name: str
    fraction: float  # the share of tiles the cheater gets right
    opens: int
    tiles: int
    passes: int | None = None  # None: analytic only
    trials: int = 0

    @property
    def right(self) -> int:
        return math.floor(self.fraction * self.tiles)

    @property
    def bound(self) -> float:
        return float(self.fraction**self.opens)

    @property
    def exact(self) -> float:
        return math.comb(self.right, self.opens) / math.comb(self.tiles, self.opens)


def cheater_passes(
    spec: ch.ChallengeSpec, right: int, trial: int, rng: np.random.Generator
) -> bool:
    """One real challenge answered by a node that got only ``right`` tiles right."""
    spec = replace(spec, challenge_id=f"cheat-{trial}", seed=rng.bytes(32))
    side, tile = spec.tiles_per_side, spec.tile
    correct = np.zeros(spec.tile_count, dtype=bool)
    correct[rng.choice(spec.tile_count, right, replace=False)] = True
    mask = correct.reshape(side, side).repeat(tile, axis=0).repeat(tile, axis=1)
    garbage = rng.integers(-(2**31), 2**31, size=(spec.n, spec.n), dtype=np.int32)
    answer = np.where(mask, ch.compute_product(spec), garbage)
    tree = MerkleTree(ch.tile_leaves(spec, answer))
    indices = ch.pick_tiles(spec, tree.root, rng.bytes(32))
    openings = ch.open_tiles(spec, answer, indices, tree)
    # It answers just in time: f is the share of tiles the deadline lets it compute.
    return ch.judge_capacity(spec, tree.root, spec.deadline_s, indices, openings).passed


def _simulate(
    row: CheatRow, spec: ch.ChallengeSpec, trials: int, rng: np.random.Generator
) -> CheatRow:
    passes = sum(cheater_passes(spec, row.right, i, rng) for i in range(trials))
    return replace(row, passes=passes, trials=trials)


def measure_cheating(progress: Progress, rng: np.random.Generator) -> list[CheatRow]:
    cpu, gpu_spec = challenge_for(CPU_CLAIM, ch.CPU_POLICY), gpu_challenge()
    small = replace(cpu, n=CHEAT_N, tile=CHEAT_N // cpu.tiles_per_side, k=CHEAT_K)
    rows = []
    for label, (spec, claim, policy) in (
        ("CPU", (cpu, CPU_CLAIM, ch.CPU_POLICY)),
        (GPU_MODEL, gpu_spec),
    ):
        for overheads, speedup in (("at policy rates", 1.0), ("free", math.inf)):
            f = ch.overclaim_tile_fraction(
                spec, claim, policy, factor=FACTOR, overhead_speedup=speedup
            )
            row = CheatRow(f"{label}, overheads {overheads}", f, spec.opens, spec.tile_count)
            if label == "CPU":
                progress(f"checks: {CHEAT_TRIALS:,} challenges of a 4x over-claimer, {row.name}")
                row = _simulate(row, small, CHEAT_TRIALS, rng)
            rows.append(row)
    progress(f"checks: {SANITY_TRIALS:,} challenges, half the tiles right, 3 openings")
    sanity = CheatRow("check: half right", SANITY_FRACTION, SANITY_OPENS, small.tile_count)
    rows.append(_simulate(sanity, replace(small, opens=SANITY_OPENS), SANITY_TRIALS, rng))
    return rows


# --- 3. canaries ---


@dataclass(frozen=True)
class Canaries:
    epochs: int
    caught: int  # simulated nodes caught within ``epochs``
    caught_before: int  # ... within ``epochs - 1``
    honest_passed: int
    skipped_failed: int


def _first_catch(rng: np.random.Generator, nodes: int, canaries: int) -> np.ndarray:
    """Per node, the first canary (0-based) that met a skipped job; ``canaries`` if none."""
    skipped = rng.random((nodes, canaries)) < SKIP_FRACTION
    return np.where(skipped.any(axis=1), skipped.argmax(axis=1), canaries)


class _Blobs:
    """The outputs the indexer stores, for the delivery check."""

    def __init__(self, outputs: dict[str, bytes]) -> None:
        self._blobs = {hashlib.sha256(data).hexdigest(): data for data in outputs.values()}

    def check_output(self, check_id: str, sha256: str) -> bytes:
        return self._blobs[sha256]


def delivery_passes(seed: bytes, skip: bool, rng: np.random.Generator) -> bool:
    """The checker's delivery check of one canary the node ran, or skipped."""
    job = canary.canary_job(seed)
    data_path = next(path for path in job.inputs if path != canary.SCRIPT_PATH)
    outputs = canary.summarize(job.inputs[data_path].decode(), data_path)
    if skip:  # as --misbehave skip-jobs does: random bytes for outputs
        outputs = {path: rng.bytes(len(data)) for path, data in outputs.items()}
    refs = [
        FileRef(path=p, sha256=hashlib.sha256(d).hexdigest(), size=len(d))
        for p, d in outputs.items()
    ]
    delivery = DeliveryTask(job_id="j-1", canary_seed=seed.hex(), expected_outputs={}, outputs=refs)
    return check_delivery(farm_task("delivery", 0, "", "", delivery), _Blobs(outputs)).passed


def measure_canaries(progress: Progress, rng: np.random.Generator) -> Canaries:
    per_epoch = canary.DEFAULT_CANARIES_PER_EPOCH
    epochs = canary.epochs_to_detect(SKIP_FRACTION, per_epoch)
    progress(f"checks: {CANARY_NODES:,} simulated nodes skipping 10% of their jobs")
    chunks = [
        _first_catch(rng, CANARY_CHUNK, per_epoch * epochs)
        for _ in range(CANARY_NODES // CANARY_CHUNK)
    ]
    first = np.concatenate(chunks)
    progress(f"checks: {2 * DELIVERY_SAMPLES} canaries through the delivery check")
    seeds = [rng.bytes(32) for _ in range(2 * DELIVERY_SAMPLES)]
    return Canaries(
        epochs=epochs,
        caught=int((first < per_epoch * epochs).sum()),
        caught_before=int((first < per_epoch * (epochs - 1)).sum()),
        honest_passed=sum(delivery_passes(s, False, rng) for s in seeds[::2]),
        skipped_failed=sum(not delivery_passes(s, True, rng) for s in seeds[1::2]),
    )


# --- the section ---


def _pct(value: float) -> str:
    return f"{value:.3%}" if value < 0.01 else f"{value:.2%}"


def _prob(value: float) -> str:
    return f"{value:.2g}" if value < 0.001 else f"{value:.4f}"


def _within_goal(name: str, ratio: float) -> Figure:
    return Figure(name, _pct(ratio), "≤ 1%", ratio <= GOAL_RATIO)


def _cost_cells(row: CostRow) -> tuple[str, ...]:
    spec = row.spec
    shape = f"{spec.n:,} / {spec.k:,} / {spec.tile} / {spec.tile_count:,} / {spec.opens}"
    if math.isnan(row.prove_s):
        return (row.name, shape, "", "", _pct(row.ops_ratio), "")
    timed = (f"{row.prove_s:.3f} s", f"{row.judge_s * 1000:.1f} ms", _pct(row.ops_ratio))
    return (row.name, shape, *timed, _pct(row.judge_s / row.prove_s))


def _cost_part(costs: Costs) -> tuple[list[Figure], Table]:
    big, gpu = costs.rows[0], costs.rows[-1]
    opens = gpu.spec.opens
    shape = f"n={big.spec.n:,}, k={big.spec.k:,}, {big.spec.tile_count:,} tiles, 20 opened"
    verify = f"a CPU checker verifying one {GPU_MODEL} challenge (1 tile timed, x {opens})"
    timed = "judge_capacity / CapacityProver.prove time, same challenge"
    figures = [
        _within_goal(f"verifier / prover ops, CPU ({shape})", big.ops_ratio),
        _within_goal(timed, big.judge_s / big.prove_s),
        _within_goal(f"verifier / prover ops, {GPU_MODEL}, production policy", gpu.ops_ratio),
        Figure(verify, f"{costs.gpu_tile_s * opens:,.0f} s"),
    ]
    rows = [_cost_cells(row) for row in costs.rows]
    headers = ("challenge", "n / k / tile / tiles / opened", "prove", "judge", "ops", "time")
    return figures, Table("Verification cost (best of runs)", headers, rows)


def _cheat_part(rows: list[CheatRow]) -> tuple[list[Figure], Table]:
    figures = []
    for row in rows[:2]:
        passes = row.passes or 0
        high = upper_95(passes, row.trials)
        name = f"4x over-claim passes, {row.name} (f = {row.fraction:.3f}, {row.opens} opened)"
        value = f"{passes} / {row.trials:,} (≤ {_pct(high)} at 95%)"
        figures.append(Figure(name, value, "≤ 1% (95% bound)", high <= GOAL_RATIO))
    gpu, free = rows[2], rows[3]
    name = f"4x over-claim pass probability, {gpu.name} (f = {gpu.fraction:.3f}, f^{gpu.opens})"
    figures.append(Figure(name, _prob(gpu.bound), "≤ 1%", gpu.bound <= GOAL_RATIO))
    figures.append(Figure(f"the same, {free.name} (f = {free.fraction:.2f})", _prob(free.bound)))
    table = []
    for row in rows:
        simulated = "analytic only"
        if row.passes is not None:
            low, high = interval_95(row.passes, row.trials)
            simulated = f"{row.passes:,} / {row.trials:,} (95%: {_prob(low)}-{_prob(high)})"
        cells = (f"{row.fraction:.4f}", f"{row.right:,} / {row.tiles:,}", str(row.opens))
        table.append((row.name, *cells, _prob(row.bound), _prob(row.exact), simulated))
    headers = ("challenge", "f", "tiles right", "opened", "f^opens", "exact", "simulated passes")
    return figures, Table("Over-claim detection", headers, table)


def _canary_part(result: Canaries) -> tuple[list[Figure], Table]:
    per_epoch, e, n = canary.DEFAULT_CANARIES_PER_EPOCH, result.epochs, DELIVERY_SAMPLES
    formula = canary.detection_probability(SKIP_FRACTION, per_epoch, e)
    rate = result.caught / CANARY_NODES
    low, high = interval_95(result.caught, CANARY_NODES)
    name = f"10% skipper caught within {e} epochs ({per_epoch} canaries each), simulated"
    value = f"{rate:.3%} of {CANARY_NODES:,} (95%: {low:.3%}-{high:.3%})"
    delivery = f"{result.honest_passed} / {n} run pass, {result.skipped_failed} / {n} skipped fail"
    figures = [
        Figure(name, value, "≥ 99%", rate >= 0.99),
        Figure(
            "the formula, 1 - 0.9^(2 e)",
            f"{formula:.3%}",
            "in the 95% interval",
            low <= formula <= high,
        ),
        Figure(
            "the delivery check on real canaries",
            delivery,
            "all",
            result.honest_passed == result.skipped_failed == n,
        ),
    ]
    before = canary.detection_probability(SKIP_FRACTION, per_epoch, e - 1)
    rows = [
        (str(e - 1), f"{result.caught_before / CANARY_NODES:.3%}", f"{before:.3%}"),
        (str(e), f"{rate:.3%}", f"{formula:.3%}"),
    ]
    return figures, Table("Canary detection", ("epochs", "simulated", "formula"), rows)


def _phase_cells(p: Phase) -> tuple[str, ...]:
    times = (f"{p.wall_s:.1f} s", f"{p.nodes / p.wall_s:,.1f}/s", f"{p.cpu_s:.1f} s")
    votes = ", ".join(f"{vote} {count:,}" for vote, count in sorted(p.votes.items()) if count)
    timing = f"{p.answer_s * 1000:.0f} / {p.deadline_s * 1000:.0f} ms" if p.deadline_s else ""
    return (p.name, f"{p.nodes:,}", *times, f"{p.farm_cpu_s:.1f} s", votes, timing)


def _checker_part(phases: list[Phase]) -> tuple[list[Figure], Table]:
    live, cap, one = phases
    per_node = live.per_node_s + cap.per_node_s
    total = per_node * FARM_NODES
    late = per_node + cap.deadline_s - cap.answer_s  # every node answering at its deadline
    cpu_ms = (live.cpu_s / live.nodes + cap.cpu_s / cap.nodes) * 1000
    one_ms = (live.cpu_s / live.nodes + one.cpu_s / one.nodes) * 1000
    one_window = WINDOW_S / (live.per_node_s + one.per_node_s)
    passed, checks = sum(p.votes.get("pass", 0) for p in phases), sum(p.nodes for p in phases)
    what = f"{FARM_NODES:,} nodes' liveness + capacity checks, one checker"
    value = f"{total:,.0f} s (capacity: {cap.nodes:,} timed, x {FARM_NODES / cap.nodes:g})"
    figures = [
        Figure(what, value, f"< {EPOCH_S:,.0f} s (1-day epoch)", total < EPOCH_S),
        Figure(
            "the same, in the check window",
            f"{total:,.0f} s",
            f"< {WINDOW_S:,.0f} s",
            total < WINDOW_S,
        ),
        Figure(
            f"nodes per {EPOCH_S:,.0f} s epoch",
            f"{EPOCH_S / per_node:,.0f}",
            f"≥ {FARM_NODES:,}",
            EPOCH_S / per_node >= FARM_NODES,
        ),
        Figure(
            f"nodes per {WINDOW_S:,.0f} s window (all answering at the deadline)",
            f"{WINDOW_S / per_node:,.0f} ({WINDOW_S / late:,.0f})",
        ),
        Figure("checker CPU per node, both checks", f"{cpu_ms:.1f} ms"),
        Figure(
            "the same with 1 BLAS thread in the checker",
            f"{one_ms:.1f} ms CPU per node; {one_window:,.0f} nodes per window",
        ),
        Figure("honest nodes' checks passed", f"{passed:,} / {checks:,}", "all", passed == checks),
    ]
    rows = [_phase_cells(p) for p in phases]
    headers: tuple[str, ...] = ("checks", "nodes", "wall", "checks/s", "checker CPU")
    headers += ("nodes' CPU", "votes", "answer / deadline")
    return figures, Table(f"One checker against {FARM_NODES:,} node endpoints", headers, rows)


def _notes(costs: Costs) -> list[str]:
    sizes = ", ".join(f"{tile} wide on n = {n:,}" for n, tile in BIG_SIZES)
    return [
        f"Verification cost: the claim is this CPU's NumPy benchmark ({costs.gflops:,.0f} "
        f"GFLOPS); `CPU_POLICY` with 65,536 tiles ({sizes}), the product aimed at "
        f"{BIG_TARGET_S:g} s. Prove: `CapacityProver('numpy').prove`, best of "
        f"{PROVE_REPEATS}; judge: `judge_capacity` on fresh `pick_tiles`, best of "
        f"{JUDGE_REPEATS}. Ops count a multiply-add as 2 and a derived input entry as 4; an "
        "entry costs far more than 4 BLAS operations in time, so the time ratio is the larger. "
        "The shipped `CPU_POLICY` (1,024 tiles) is above 1% in both. GPU: one opened tile "
        "recomputed with `tile_product`, times the openings.",
        f"Over-claim: f = `overclaim_tile_fraction` (4x, {CPU_CLAIM / 1e9:g} GFLOPS claim, RTT "
        "at the cap). Each trial is a fresh challenge with the same tiles and openings on a "
        f"{CHEAT_N} x {CHEAT_N} product, k = {CHEAT_K}: floor(f x tiles) random tiles right, "
        "random int32 elsewhere; real leaves, root, `pick_tiles`, `open_tiles`, and "
        "`judge_capacity` at the deadline. 'exact' = C(right, opened) / C(tiles, opened); "
        f"bounds are Clopper-Pearson. {GPU_MODEL} with free overheads is not caught: see "
        "docs/checks-capacity.md, 'Security argument'.",
        f"Canaries: seed {SEED}; each canary meets a skipped job with probability "
        f"{SKIP_FRACTION:g}. Delivery: `check_delivery` on `canary_job` canaries carrying the "
        "script's outputs, or random bytes.",
        f"Checker: {FARM_NODES:,} honest nodes (`CheckService`, NumPy prover, own id and "
        f"operator key, {FARM_CLAIM / 1e9:g} GFLOPS claims, `CPU_POLICY`) in one uvicorn "
        f"process; the checker in a second: `CheckerAgent` ({WORKERS} workers, `CheckRunner`, "
        "results signed to an in-process stand-in indexer), no HTTP keep-alive. Capacity on "
        f"every {CAPACITY_STEP}th node, its per-node time x {FARM_NODES:,}. Challenges are "
        "timed one at a time (`CapacityContext.timing`), so they run in series; these nodes "
        "answer early, and 'at the deadline' adds each challenge's unused time. '1 BLAS "
        "thread': the checker with OPENBLAS_NUM_THREADS=1; by default OpenBLAS's threads spin "
        "after each tiny tile product, and that is most of the checker's CPU.",
    ]


def _section(
    costs: Costs, cheats: list[CheatRow], canaries: Canaries, phases: list[Phase]
) -> Section:
    parts = [_cost_part(costs), _cheat_part(cheats), _canary_part(canaries), _checker_part(phases)]
    return Section(
        title="Checks: verification cost, detection, one checker's load",
        figures=[figure for figures, _ in parts for figure in figures],
        tables=[table for _, table in parts],
        notes=_notes(costs),
    )


def run(progress: Progress = lambda _: None) -> Section:
    """Measure verification cost, over-claim and skip detection, and one checker's load."""
    rng = np.random.default_rng(SEED)
    costs = measure_costs(progress, rng)
    cheats = measure_cheating(progress, rng)
    canaries = measure_canaries(progress, rng)
    return _section(costs, cheats, canaries, measure_checker(progress))


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description="The checks benchmark; prints its table.").parse_args(argv)
    section = run(progress=lambda text: print(text, file=sys.stderr))
    print(machine_markdown())
    print("command: `.venv/bin/python benchmarks/bench_checks.py`\n")
    print(section_markdown(section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
