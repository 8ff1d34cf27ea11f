"""Supply curves of a run, computed once from the protocol's own rules.

Vesting unlocks come from ``gpunet.protocol.vesting.unlocked_at_day`` over
``DEFAULT_ALLOCATION``; provider emissions from ``gpunet.protocol.emissions.
cumulative_emission``; checker emissions from ``checker_cumulative``. The protocol works
in int base units; here each cumulative curve is converted once to float64 tokens, and
per-step amounts are differences of cumulative values, so nothing is lost between steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gpunet.protocol.allocation import DEFAULT_ALLOCATION, TOTAL_SUPPLY, pool_amount
from gpunet.protocol.emissions import (
    DEFAULT_CHECKER_EMISSION,
    EmissionSchedule,
    checker_cumulative,
    cumulative_emission,
)
from gpunet.protocol.units import ONE_TOKEN
from gpunet.protocol.vesting import BPS, first_day_of_month, unlocked_at_day
from gpunet.sim.result import FloatArray

TOTAL_TOKENS = TOTAL_SUPPLY / ONE_TOKEN


@dataclass(frozen=True)
class SupplyCurves:
    """Cumulative supply released by the start of each step's day, in tokens."""

    days: FloatArray  # day of each column
    vested: FloatArray  # vesting pools' unlocks, TGE included
    provider_emitted: FloatArray
    checker_emitted: FloatArray

    @property
    def locked(self) -> FloatArray:
        """Supply still vesting or unemitted."""
        released = self.vested + self.provider_emitted + self.checker_emitted
        return np.asarray(TOTAL_TOKENS - released, dtype=np.float64)

    def per_step(self, cumulative: FloatArray) -> FloatArray:
        """Amount released in each step (column 0 is 0: the TGE is the initial state)."""
        return np.asarray(np.diff(cumulative, prepend=cumulative[0]), dtype=np.float64)


def step_days_of(steps: int, step_days: float) -> list[int]:
    """Whole day of each column 0..steps (the protocol counts in whole days)."""
    return [round(step * step_days) for step in range(steps + 1)]


@lru_cache(maxsize=16)
def supply_curves(
    steps: int, step_days: float, emission_years: float, decay_per_year: float
) -> SupplyCurves:
    """Supply curves for ``steps`` steps of ``step_days`` days (cached: they are pure)."""
    days = step_days_of(steps, step_days)
    provider = provider_schedule(emission_years, decay_per_year)
    vested = [_vested_at_day(day) for day in days]
    emitted = [cumulative_emission(provider, day) for day in days]
    checkers = [sum(checker_cumulative(DEFAULT_CHECKER_EMISSION, day)) for day in days]
    return SupplyCurves(
        days=np.array(days, dtype=np.float64),
        vested=_tokens(vested),
        provider_emitted=_tokens(emitted),
        checker_emitted=_tokens(checkers),
    )


def provider_schedule(emission_years: float, decay_per_year: float) -> EmissionSchedule:
    """The providers' pool of the default allocation on the scenario's schedule."""
    pool = next(p for p in DEFAULT_ALLOCATION if p.name == "compute_providers")
    return EmissionSchedule(
        total=pool_amount(pool),
        duration_days=first_day_of_month(round(emission_years * 12)),
        annual_decay_bps=round(decay_per_year * BPS),
    )


def _vested_at_day(day: int) -> int:
    return sum(
        unlocked_at_day(pool.schedule, pool_amount(pool), day)
        for pool in DEFAULT_ALLOCATION
        if pool.schedule is not None
    )


def _tokens(base_units: list[int]) -> FloatArray:
    # Exact int arithmetic up to here; one division per value to float tokens.
    return np.array([amount / ONE_TOKEN for amount in base_units], dtype=np.float64)


def spread_sales(amounts: FloatArray, share: float, over_steps: int) -> FloatArray:
    """Sell ``share`` of each step's ``amounts`` evenly over the next ``over_steps`` steps."""
    kernel = np.full(max(over_steps, 1), 1.0 / max(over_steps, 1))
    spread = np.convolve(amounts * share, kernel)[: amounts.shape[0]]
    return np.asarray(spread, dtype=np.float64)
