"""Sweeps on a real Ray cluster (a local one, started by the sweep) give the same
numbers as on local processes: each point's paths depend only on its seed.

Ray is an optional extra (``pip install 'gpunet[ray]'``); CI installs it, so there a
missing Ray fails this test instead of skipping it.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpunet.sim.sweep import run_sweep

pytestmark = [pytest.mark.slow, pytest.mark.ray]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sim"
SPECS = ["demand.growth_per_year=-0.5,0.5", "market.volatility=0.4,0.8"]
SHORT = {"simulation.years": 0.25}


@pytest.fixture(scope="module")
def ray_module() -> Iterator[object]:
    try:
        import ray
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI must install the ray extra: pip install -e '.[dev,ray]'")
        pytest.skip("Ray is not installed: pip install -e '.[ray]'")
    yield ray
    if ray.is_initialized():
        ray.shutdown()


def _rows(out_dir: Path) -> list[dict[str, str]]:
    with (out_dir / "sweep.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row.pop("seconds")
    return sorted(rows, key=lambda r: (r["demand.growth_per_year"], r["market.volatility"]))


def test_ray_sweep_matches_local_processes(ray_module: object, tmp_path: Path) -> None:
    scenario = EXAMPLES / "default-sideways.toml"

    def sweep(out: str, use_ray: bool) -> Path:
        return run_sweep(
            scenario,
            SPECS,
            tmp_path / out,
            paths=8,
            seed=3,
            workers=2,
            use_ray=use_ray,
            base_overrides=SHORT,
        )

    page = sweep("ray", use_ray=True)
    sweep("local", use_ray=False)

    assert page.exists()
    assert (tmp_path / "ray" / "sweep.png").stat().st_size > 10_000
    on_ray = _rows(tmp_path / "ray")
    assert len(on_ray) == 4
    assert on_ray == _rows(tmp_path / "local")
