"""What a simulation run hands to reports, comparisons and sweeps.

Every series is an array of shape ``(paths, steps + 1)``: one row per Monte Carlo
path, one column per time step, column 0 being the initial state. ``SERIES`` names
each series the model produces and its unit, so a report can label its axes without
knowing the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# name -> (unit, one-line meaning); the model fills every one of these.
SERIES: dict[str, tuple[str, str]] = {
    "price": ("USD per token", "market price of the token"),
    "circulating": ("tokens", "supply free to trade: unlocked and emitted, less staked and burned"),
    "locked": ("tokens", "supply still under vesting or unemitted in reward pools"),
    "staked": ("tokens", "supply locked by stakers"),
    "burned": ("tokens", "cumulative tokens burned"),
    "sell_pressure": ("USD per step", "value of tokens sold in the step"),
    "buy_pressure": ("USD per step", "value of tokens bought in the step"),
    "sell_buy_ratio": ("ratio", "sell pressure over buy pressure"),
    "providers": ("count", "active provider machines"),
    "capacity": ("GPU-hours per step", "GPU-hours the network can serve"),
    "utilization": ("fraction", "demand served over capacity"),
    "revenue": ("USD per step", "buyers' payments for compute"),
    "staking_yield": ("fraction per year", "annualized yield of stakers, partner tokens included"),
    "treasury": ("USD", "value of the treasury's holdings"),
}


@dataclass(frozen=True)
class SimulationResult:
    """The series of one scenario over many paths, and when each path spiralled."""

    scenario: str
    seed: int
    step_days: float
    series: Mapping[str, FloatArray]
    # Step at which the death-spiral detector fired on each path; -1 where it never did.
    spiral_step: IntArray
    parameters: Mapping[str, object] = field(default_factory=dict)

    @property
    def paths(self) -> int:
        return int(self.spiral_step.shape[0])

    @property
    def days(self) -> FloatArray:
        steps = next(iter(self.series.values())).shape[1]
        return np.arange(steps, dtype=np.float64) * self.step_days

    def spiral_probability(self) -> float:
        return float(np.mean(self.spiral_step >= 0))
