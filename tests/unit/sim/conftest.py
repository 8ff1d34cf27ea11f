"""Synthetic simulation results, so reports and comparisons are tested without the model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from gpunet.sim.result import SERIES, FloatArray, SimulationResult

MakeResult = Callable[..., SimulationResult]


def synthetic_result(
    scenario: str = "synthetic bear",
    paths: int = 40,
    steps: int = 120,
    seed: int = 1,
    drift: float = -0.004,
    step_days: float = 3.0,
) -> SimulationResult:
    """Every series of the contract, as seeded random walks; about a third of paths spiral."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(drift, 0.03, size=(paths, steps))
    walk = np.exp(np.concatenate([np.zeros((paths, 1)), np.cumsum(shocks, axis=1)], axis=1))
    series: dict[str, FloatArray] = {name: walk * (index + 1) for index, name in enumerate(SERIES)}
    series["price"] = 0.05 * walk
    series["providers"] = np.round(1000 * walk)
    series["utilization"] = np.clip(0.5 * walk, 0, 1)
    series["sell_pressure"] = 2000.0 + 0 * walk
    series["buy_pressure"] = 1000.0 * walk
    series["sell_buy_ratio"] = series["sell_pressure"] / series["buy_pressure"]
    spiral = np.where(np.arange(paths) % 3 == 0, steps // 2 + np.arange(paths) % 7, -1)
    return SimulationResult(scenario, seed, step_days, series, spiral.astype(np.int64))


@pytest.fixture(scope="session")
def make_result() -> MakeResult:
    return synthetic_result
