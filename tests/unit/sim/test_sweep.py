"""Sweeps: parsing the grid, running points on local cores, streaming rows to CSV."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpunet.sim.errors import SimError
from gpunet.sim.sweep import (
    Axis,
    PointResult,
    PointTask,
    grid,
    import_ray,
    parse_param,
    run_points,
)
from gpunet.sim.sweep_report import write_sweep_report


def fake_point(task: PointTask) -> PointResult:
    """Spirals more as growth falls and volatility rises; module level so workers import it."""
    growth = float(task.overrides.get("demand.growth_per_year", 0.0))  # type: ignore[arg-type]
    volatility = float(task.overrides.get("market.volatility", 0.5))  # type: ignore[arg-type]
    probability = min(1.0, max(0.0, 0.5 - growth + (volatility - 0.5)))
    day = 400.0 if probability > 0 else None
    return PointResult(task.index, task.overrides, probability, day, 0.05 * (1 + growth), 10, 0.0)


def tasks_for(axes: list[Axis]) -> list[PointTask]:
    return [PointTask(i, Path("x.toml"), point, 10, 1) for i, point in enumerate(grid(axes))]


ROOT = Path(__file__).parents[3]
AXES = [
    parse_param("demand.growth_per_year=-0.5:0.5:5"),
    parse_param("market.volatility=0.2,0.6,1.0"),
]


def test_range_is_evenly_spaced() -> None:
    assert parse_param("a.b=-0.5:0.5:5") == Axis("a.b", (-0.5, -0.25, 0.0, 0.25, 0.5))


def test_integer_range_stays_integer() -> None:
    assert parse_param("simulation.years=1:3:3").values == (1, 2, 3)


def test_list_values_are_toml_literals() -> None:
    axis = parse_param("design.staking=true,false")
    other = parse_param("x=0.2, 3, abc")

    assert axis.values == (True, False)
    assert other.values == (0.2, 3, "abc")


@pytest.mark.parametrize("spec", ["nokey", "=1,2", "a=", "a=1:2", "a=1:2:1", "a=x:2:3"])
def test_malformed_param_is_refused(spec: str) -> None:
    with pytest.raises(SimError, match="--param"):
        parse_param(spec)


def test_grid_is_the_cartesian_product() -> None:
    points = grid(AXES)

    assert len(points) == 15
    assert points[0] == {"demand.growth_per_year": -0.5, "market.volatility": 0.2}
    assert points[1] == {"demand.growth_per_year": -0.5, "market.volatility": 0.6}


def test_grid_refuses_duplicate_and_empty_axes() -> None:
    with pytest.raises(SimError, match="must differ"):
        grid([Axis("a", (1,)), Axis("a", (2,))])
    with pytest.raises(SimError, match="at least one"):
        grid([])


@pytest.mark.parametrize("workers", [1, 2])
def test_points_stream_to_csv(
    tmp_path: Path, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # spawned workers import fake_point from here
    seen: list[int] = []

    results = run_points(
        tasks_for(AXES),
        tmp_path / "sweep.csv",
        evaluate=fake_point,
        workers=workers,
        on_point=lambda point, done, total: seen.append(done),
    )

    with (tmp_path / "sweep.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 15 and seen == list(range(1, 16))
    assert [r.index for r in results] == list(range(15))
    assert list(rows[0])[:3] == [
        "demand.growth_per_year",
        "market.volatility",
        "spiral_probability",
    ]
    by_point = {(r["demand.growth_per_year"], r["market.volatility"]): r for r in rows}
    assert float(by_point[("-0.5", "1.0")]["spiral_probability"]) == 1.0
    assert float(by_point[("0.5", "0.2")]["spiral_probability"]) == 0.0


class FakeRay:
    """What the sweep uses of Ray's API, run in-process, to test the Ray code path."""

    def __init__(self) -> None:
        self.init_args: list[dict[str, object]] = []

    def is_initialized(self) -> bool:
        return bool(self.init_args)

    def init(self, **kwargs: object) -> None:
        self.init_args.append(kwargs)

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": 2.0}

    def remote(self, function: Callable[[PointTask], PointResult]) -> Any:
        class Remote:
            @staticmethod
            def remote(task: PointTask) -> PointResult:
                return function(task)

        return Remote

    def wait(self, pending: list[Any], num_returns: int) -> tuple[list[Any], list[Any]]:
        return pending[-num_returns:], pending[:-num_returns]  # out of order, as Ray may

    def get(self, ref: PointResult) -> PointResult:
        return ref


def test_ray_path_runs_every_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)

    results = run_points(tasks_for(AXES), tmp_path / "s.csv", evaluate=fake_point, use_ray=True)

    assert [r.index for r in results] == list(range(15))
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 16
    assert fake.init_args == [
        {"num_cpus": None, "include_dashboard": False, "log_to_driver": False}
    ]


def test_asking_for_ray_without_ray_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError

    with pytest.raises(SimError, match=r"pip install 'gpunet\[ray\]'"):
        import_ray()


@pytest.mark.parametrize("axes", [AXES, AXES[:1], [*AXES, parse_param("x=1,2")]])
def test_report_has_heatmap_and_table(tmp_path: Path, axes: list[Axis]) -> None:
    points = run_points(tasks_for(axes), tmp_path / "sweep.csv", evaluate=fake_point, workers=1)

    index = write_sweep_report("bear", axes, points, tmp_path, paths=10, seed=1)

    page = index.read_text(encoding="utf-8")
    assert 'src="sweep.png"' in page and "sweep.csv" in page
    png = (tmp_path / "sweep.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "spiral probability" in page
