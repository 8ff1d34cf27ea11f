from __future__ import annotations

import math
from decimal import ROUND_UP, localcontext
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpunet.errors import ValidationError
from gpunet.protocol.allocation import DEFAULT_ALLOCATION, pool_amount, pool_named
from gpunet.protocol.emissions import (
    DEFAULT_CHECKER_EMISSION,
    DEFAULT_PROVIDER_EMISSION,
    CheckerSchedule,
    EmissionSchedule,
    checker_cumulative,
    checker_emission_for_day,
    cumulative_emission,
    cumulative_emission_at_month,
    emission_curve,
    emission_for_day,
    emitted_at_day,
)
from gpunet.protocol.units import ONE_TOKEN

PROVIDERS = DEFAULT_PROVIDER_EMISSION

schedules = st.builds(
    EmissionSchedule,
    total=st.integers(0, 10**30),
    duration_days=st.integers(1, 400),
    annual_decay_bps=st.integers(0, 9999),
)


def test_default_provider_schedule_emits_its_pool_over_ten_years() -> None:
    assert PROVIDERS.total == pool_amount(pool_named(DEFAULT_ALLOCATION, "compute_providers"))
    assert PROVIDERS.duration_days == 3653
    assert cumulative_emission(PROVIDERS, 0) == 0
    assert cumulative_emission(PROVIDERS, 3652) < PROVIDERS.total
    assert cumulative_emission(PROVIDERS, 3653) == PROVIDERS.total
    assert cumulative_emission(PROVIDERS, 10_000) == PROVIDERS.total
    assert cumulative_emission_at_month(PROVIDERS, 120) == PROVIDERS.total


def test_daily_amounts_sum_to_the_pool_exactly() -> None:
    days = range(PROVIDERS.duration_days + 5)
    assert sum(emission_for_day(PROVIDERS, day) for day in days) == PROVIDERS.total


def test_rate_falls_by_the_annual_decay() -> None:
    curve = emission_curve(PROVIDERS, 3653)
    # A year of 365.25 days keeps 80%; 365 days keep a hair more.
    expected = 0.8 ** (365 / 365.25)
    assert curve[365] / curve[0] == pytest.approx(expected, rel=1e-12)
    assert curve[3000] / curve[2635] == pytest.approx(expected, rel=1e-12)


def test_cumulative_follows_the_closed_form() -> None:
    k = -math.log(0.8) / 365.25
    for day in (1, 100, 1000, 3000):
        share = (1 - math.exp(-k * day)) / (1 - math.exp(-k * 3653))
        assert cumulative_emission(PROVIDERS, day) / PROVIDERS.total == pytest.approx(share)


def test_zero_decay_is_a_straight_line() -> None:
    flat = EmissionSchedule(total=1000, duration_days=10, annual_decay_bps=0)
    assert [emission_for_day(flat, day) for day in range(11)] == [100] * 10 + [0]


def test_curve_is_tokens_per_day_as_float64() -> None:
    curve = emission_curve(PROVIDERS, 4000)
    assert curve.dtype == np.float64
    assert curve.shape == (4000,)
    assert curve[0] == emission_for_day(PROVIDERS, 0) / ONE_TOKEN
    assert np.all(curve[3653:] == 0)
    assert np.all(np.diff(curve[:3653]) < 0)
    assert curve.sum() == pytest.approx(14_700_000_000, rel=1e-12)


def test_results_ignore_the_callers_decimal_settings() -> None:
    reference = cumulative_emission(PROVIDERS, 777)
    with localcontext(prec=5, rounding=ROUND_UP):
        assert cumulative_emission(PROVIDERS, 777) == reference


@given(schedules, st.integers(0, 500))
def test_cumulative_is_monotone_and_bounded(schedule: EmissionSchedule, day: int) -> None:
    now = cumulative_emission(schedule, day)
    after = cumulative_emission(schedule, day + 1)
    assert 0 <= now <= after <= schedule.total
    assert emission_for_day(schedule, day) == after - now
    assert (now == schedule.total) or day < schedule.duration_days


@settings(max_examples=30)
@given(schedules)
def test_days_sum_to_total_at_the_end(schedule: EmissionSchedule) -> None:
    days = range(schedule.duration_days)
    assert sum(emission_for_day(schedule, day) for day in days) == schedule.total
    assert emission_for_day(schedule, schedule.duration_days) == 0


@given(st.integers(1, 10**30), st.integers(2, 400), st.integers(1, 9999))
def test_decaying_schedules_front_load(total: int, duration: int, decay: int) -> None:
    schedule = EmissionSchedule(total, duration, decay)
    first_half = cumulative_emission(schedule, duration // 2)
    assert first_half >= total * (duration // 2) // duration


def test_checker_base_is_daily_over_48_months_and_bonus_quarterly() -> None:
    checkers = DEFAULT_CHECKER_EMISSION
    assert checkers.base_total == 4_200_000_000 * ONE_TOKEN
    assert checkers.bonus_total == 2_100_000_000 * ONE_TOKEN
    day_zero = checker_emission_for_day(checkers, 0)
    assert day_zero.base == checkers.base_total // 1461
    assert day_zero.bonus == 0
    # Quarter one ends with day 91 (month 3 starts at day 91.3125, i.e. on day 92).
    assert checker_emission_for_day(checkers, 91).bonus == checkers.bonus_total // 16
    assert checker_cumulative(checkers, 91).bonus == 0
    assert checker_cumulative(checkers, 1461) == (checkers.base_total, checkers.bonus_total)
    assert checker_cumulative(checkers, 1460).base < checkers.base_total


def test_checker_days_sum_to_the_pools() -> None:
    checkers = DEFAULT_CHECKER_EMISSION
    days = [checker_emission_for_day(checkers, day) for day in range(1500)]
    assert sum(day.base for day in days) == checkers.base_total
    assert sum(day.bonus for day in days) == checkers.bonus_total
    assert sum(1 for day in days if day.bonus) == 16


def test_emitted_at_day_adds_every_emission_pool() -> None:
    total = PROVIDERS.total + DEFAULT_CHECKER_EMISSION.base_total
    total += DEFAULT_CHECKER_EMISSION.bonus_total
    assert emitted_at_day(PROVIDERS, DEFAULT_CHECKER_EMISSION, 0) == 0
    assert emitted_at_day(PROVIDERS, DEFAULT_CHECKER_EMISSION, 3653) == total


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"total": -1}, "total"),
        ({"total": 1.5}, "total"),
        ({"duration_days": 0}, "duration_days"),
        ({"annual_decay_bps": 10_000}, "annual_decay_bps"),
        ({"annual_decay_bps": -1}, "annual_decay_bps"),
    ],
)
def test_bad_emission_schedules_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        EmissionSchedule(**({"total": 100} | kwargs))
    assert info.value.field == field


def test_bad_days_and_checker_totals_are_refused() -> None:
    with pytest.raises(ValidationError) as info:
        cumulative_emission(PROVIDERS, -1)
    assert info.value.field == "day"
    with pytest.raises(ValidationError) as info:
        CheckerSchedule(base_total=-1, bonus_total=0)
    assert info.value.field == "base_total"
