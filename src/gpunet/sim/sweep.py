"""Parameter sweeps: where the economy holds and where it spirals.

A sweep varies dotted-key parameters over a grid (the cartesian product of each
``--param`` axis), runs every point with the same paths and seed (common random numbers,
so differences between points come from the parameters, not from noise), and records per
point the spiral probability, the median spiral day and the final median price.

Points run on local cores (``ProcessPoolExecutor``) by default, or on Ray when asked and
installed (``pip install 'gpunet[ray]'``; ``ray.init()`` honours ``RAY_ADDRESS``). At most
two points per worker are in flight, and each point's row is appended to ``sweep.csv`` as
it completes: memory grows with the number of grid points (a few numbers each), never
with paths or steps.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from gpunet.sim.errors import SimError
from gpunet.sim.runs import literal
from gpunet.sim.summary import band, median_spiral_day

PARAM_HELP = "KEY=LOW:HIGH:COUNT (evenly spaced) or KEY=V1,V2,... (e.g. market.volatility=0.2,0.6)"
IN_FLIGHT_PER_WORKER = 2
# Workers start clean ("spawn"), not forked: a fork would copy locks held by the CLI's
# progress-bar thread. Importing the model costs about a second per worker, once.
START_METHOD = "spawn"


@dataclass(frozen=True)
class Axis:
    """One swept parameter: its dotted key and the values it takes."""

    key: str
    values: tuple[object, ...]


@dataclass(frozen=True)
class PointTask:
    """One grid point to run: what a worker process receives."""

    index: int
    scenario: Path
    overrides: dict[str, object]
    paths: int | None
    seed: int | None
    base_overrides: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class PointResult:
    """What a sweep keeps of one grid point."""

    index: int
    overrides: dict[str, object]
    spiral_probability: float
    median_spiral_day: float | None
    final_median_price: float
    paths: int
    seconds: float


Evaluate = Callable[[PointTask], PointResult]
OnPoint = Callable[[PointResult, int, int], None]


def parse_param(spec: str) -> Axis:
    """``key=low:high:count`` or ``key=v1,v2,...`` as an axis; ``SimError`` if malformed."""
    key, sep, values = spec.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise SimError(f"--param {spec!r}: expected {PARAM_HELP}")
    if ":" in values:
        return Axis(key, _range(spec, values))
    return Axis(key, tuple(literal(token.strip()) for token in values.split(",")))


def _range(spec: str, text: str) -> tuple[object, ...]:
    parts = text.split(":")
    try:
        low, high, count = float(parts[0]), float(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        raise SimError(f"--param {spec!r}: expected {PARAM_HELP}") from None
    if len(parts) != 3 or count < 2:
        raise SimError(f"--param {spec!r}: a range needs LOW:HIGH:COUNT with COUNT >= 2")
    values = np.linspace(low, high, count)
    integral = all("." not in p and "e" not in p.lower() for p in parts[:2])
    if integral and np.allclose(values, np.round(values)):
        return tuple(int(v) for v in np.round(values))
    return tuple(float(f"{v:.10g}") for v in values)


def grid(axes: Sequence[Axis]) -> list[dict[str, object]]:
    """Every combination of the axes' values, first axis slowest."""
    if not axes:
        raise SimError(f"a sweep needs at least one --param {PARAM_HELP}")
    keys = [axis.key for axis in axes]
    if len(set(keys)) != len(keys):
        raise SimError(f"--param keys must differ; got {', '.join(keys)}")
    return [
        dict(zip(keys, combo, strict=True))
        for combo in itertools.product(*(a.values for a in axes))
    ]


def evaluate_point(task: PointTask) -> PointResult:
    """Run one grid point with the model and keep its headline numbers."""
    from gpunet.sim.runs import run_scenario

    started = time.perf_counter()
    overrides = {**task.base_overrides, **task.overrides}
    result = run_scenario(task.scenario, paths=task.paths, seed=task.seed, overrides=overrides)
    price = float(band(result.series["price"][:, -1:]).median[0])
    return PointResult(
        task.index,
        task.overrides,
        result.spiral_probability(),
        median_spiral_day(result),
        price,
        result.paths,
        time.perf_counter() - started,
    )


def run_points(
    tasks: Sequence[PointTask],
    out_csv: Path,
    *,
    evaluate: Evaluate = evaluate_point,
    workers: int | None = None,
    use_ray: bool = False,
    on_point: OnPoint | None = None,
) -> list[PointResult]:
    """Run every task, appending each result to ``out_csv`` as it completes."""
    keys = list(tasks[0].overrides) if tasks else []
    results = []
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*keys, *RESULT_COLUMNS])
        stream = _ray_results if use_ray else _local_results
        for point in stream(tasks, evaluate, workers):
            writer.writerow([*(point.overrides[k] for k in keys), *_result_cells(point)])
            handle.flush()
            results.append(point)
            if on_point:
                on_point(point, len(results), len(tasks))
    return sorted(results, key=lambda p: p.index)


RESULT_COLUMNS = (
    "spiral_probability",
    "median_spiral_day",
    "final_median_price",
    "paths",
    "seconds",
)


def _result_cells(point: PointResult) -> list[object]:
    day = "" if point.median_spiral_day is None else point.median_spiral_day
    return [
        point.spiral_probability,
        day,
        point.final_median_price,
        point.paths,
        round(point.seconds, 3),
    ]


def default_workers() -> int:
    return os.cpu_count() or 1


def _local_results(
    tasks: Sequence[PointTask], evaluate: Evaluate, workers: int | None
) -> Iterator[PointResult]:
    count = workers or default_workers()
    if count == 1:
        yield from (evaluate(task) for task in tasks)
        return
    context = get_context(START_METHOD)
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        yield from _bounded(pool.submit, tasks, evaluate, count * IN_FLIGHT_PER_WORKER)


def _bounded(
    submit: Callable[..., Future[PointResult]],
    tasks: Iterable[PointTask],
    evaluate: Evaluate,
    limit: int,
) -> Iterator[PointResult]:
    queue = iter(tasks)
    pending = {submit(evaluate, task) for task in itertools.islice(queue, limit)}
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            yield future.result()
        pending |= {submit(evaluate, task) for task in itertools.islice(queue, len(done))}


def _ray_results(
    tasks: Sequence[PointTask], evaluate: Evaluate, workers: int | None
) -> Iterator[PointResult]:
    ray = import_ray()
    if not ray.is_initialized():
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(evaluate)
    limit = IN_FLIGHT_PER_WORKER * int(workers or ray.cluster_resources().get("CPU", 1))
    queue = iter(tasks)
    pending = [remote.remote(task) for task in itertools.islice(queue, limit)]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])
        pending += [remote.remote(task) for task in itertools.islice(queue, 1)]


def import_ray() -> Any:
    """The ``ray`` module, or a ``SimError`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SimError(
            "--ray needs Ray, an optional extra that is not installed: "
            "pip install 'gpunet[ray]' (or leave out --ray to run on local cores)"
        ) from None
    return ray


def best_and_worst(points: Sequence[PointResult]) -> tuple[PointResult, PointResult]:
    ordered = sorted(points, key=lambda p: (p.spiral_probability, -_finite(p.final_median_price)))
    return ordered[0], ordered[-1]


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def run_sweep(
    scenario: Path,
    specs: Sequence[str],
    out_dir: Path,
    *,
    paths: int | None = None,
    seed: int | None = None,
    workers: int | None = None,
    use_ray: bool = False,
    base_overrides: dict[str, object] | None = None,
    evaluate: Evaluate = evaluate_point,
    on_point: OnPoint | None = None,
) -> Path:
    """Run the grid of ``specs`` over ``scenario``; write ``out_dir``; return its page."""
    from gpunet.sim.sweep_report import write_sweep_report  # keeps matplotlib out of workers

    axes = [parse_param(spec) for spec in specs]
    points = grid(axes)
    name = _check_points(scenario, points, base_overrides or {})
    tasks = [
        PointTask(i, scenario, point, paths, seed, dict(base_overrides or {}))
        for i, point in enumerate(points)
    ]
    results = run_points(
        tasks,
        out_dir / "sweep.csv",
        evaluate=evaluate,
        workers=workers,
        use_ray=use_ray,
        on_point=on_point,
    )
    return write_sweep_report(name, axes, results, out_dir, paths=paths, seed=seed)


def _check_points(
    scenario: Path, points: Sequence[dict[str, object]], base: dict[str, object]
) -> str:
    """Apply every point's overrides once here, so a bad key fails before any worker starts."""
    from gpunet.sim.scenario import load_scenario

    loaded = load_scenario(scenario)
    for point in points:
        loaded.with_overrides({**base, **point})
    return loaded.name
