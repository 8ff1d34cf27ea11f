"""Emission schedules: how the compute-provider and checker pools are released over time.

Compute providers. Their pool is emitted over ``duration_days`` (default 3653 days, the
first day of month 120: ten years of 365.25 days) at a rate that decays exponentially,
falling by ``annual_decay_bps`` every 365.25 days. With ``r = annual_decay_bps / 10_000``,
``k = -ln(1 - r) / 365.25`` per day and ``T = duration_days``, the share emitted after
``d`` whole days is

    F(d) = (1 - exp(-k d)) / (1 - exp(-k T))        (F(d) = d / T when r = 0)

normalised so that ``F(T) = 1``: the whole pool is emitted by the end, none after.

Checker nodes. Their 15% is two pools: the base (10% of supply) is released linearly day
by day over 48 months (1461 days), the bonus (5%) in sixteen equal quarterly amounts
(months 3, 6, ..., 48), each on the last day of its quarter. These are the most the
rules release; who earns them (correct checks, uptime above 95%) is the simulator's and
the node's business.

Rounding. Everything is defined by cumulative amounts: ``cumulative_emission(s, d)`` is
what days ``0 .. d-1`` released, ``floor(total * F(d))``, and a day's amount is the
difference of two cumulative values. So daily amounts always sum to the cumulative
value, nothing is created or lost by rounding, and the sum over the schedule is exactly
``total``. ``F`` is computed with ``decimal`` at 50 significant digits and round half
even, whose ``ln``, ``exp`` and arithmetic are correctly rounded: the result is the same
on every platform, and monotone because each step is a monotone function rounded
correctly. ``emission_curve`` gives floats in tokens, for the simulator only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal
from functools import lru_cache
from itertools import pairwise
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from gpunet.errors import ValidationError
from gpunet.protocol.allocation import DEFAULT_ALLOCATION, pool_amount, pool_named
from gpunet.protocol.units import ONE_TOKEN
from gpunet.protocol.vesting import (
    BPS,
    VestingSchedule,
    first_day_of_month,
    unlocked_at_day,
)

YEAR_DAYS = Decimal("365.25")
# Enough digits that floor(total * F) is decided by F itself for totals up to 1e40.
DECIMAL_DIGITS = 50
MAX_TOTAL = 10**40
MAX_DAYS = 10**6

PROVIDER_EMISSION_DAYS = first_day_of_month(120)
# Not a published figure: a 20% yearly decline emits about 22% of the pool in year one.
PROVIDER_ANNUAL_DECAY_BPS = 2_000


def _require_int(field: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, value, "must be an integer")
    if not low <= value <= high:
        raise ValidationError(field, value, f"must be between {low} and {high}")


@dataclass(frozen=True)
class EmissionSchedule:
    """A pool of ``total`` base units emitted over ``duration_days`` at a decaying rate."""

    total: int
    duration_days: int = PROVIDER_EMISSION_DAYS
    annual_decay_bps: int = PROVIDER_ANNUAL_DECAY_BPS

    def __post_init__(self) -> None:
        _require_int("total", self.total, 0, MAX_TOTAL)
        _require_int("duration_days", self.duration_days, 1, MAX_DAYS)
        _require_int("annual_decay_bps", self.annual_decay_bps, 0, BPS - 1)


def _context() -> Context:
    # A fresh, explicit context: the caller's decimal settings must not change results.
    return Context(prec=DECIMAL_DIGITS, rounding=ROUND_HALF_EVEN)


@lru_cache(maxsize=64)
def _decay_per_day(annual_decay_bps: int) -> Decimal:
    ctx = _context()
    kept_per_year = ctx.divide(Decimal(BPS - annual_decay_bps), Decimal(BPS))
    return ctx.divide(ctx.minus(ctx.ln(kept_per_year)), YEAR_DAYS)


def _released_share(annual_decay_bps: int, day: int) -> Decimal:
    """``1 - exp(-k day)``: the unnormalised share released after ``day`` days."""
    ctx = _context()
    exponent = ctx.minus(ctx.multiply(_decay_per_day(annual_decay_bps), Decimal(day)))
    return ctx.subtract(Decimal(1), ctx.exp(exponent))


@lru_cache(maxsize=64)
def _full_share(annual_decay_bps: int, duration_days: int) -> Decimal:
    return _released_share(annual_decay_bps, duration_days)


def _require_day(day: int) -> None:
    _require_int("day", day, 0, MAX_DAYS)


def cumulative_emission(schedule: EmissionSchedule, day: int) -> int:
    """Base units emitted by days ``0 .. day-1``; ``total`` from ``duration_days`` on."""
    _require_day(day)
    if day >= schedule.duration_days:
        return schedule.total
    if schedule.annual_decay_bps == 0:
        return schedule.total * day // schedule.duration_days
    ctx = _context()
    share = ctx.divide(
        _released_share(schedule.annual_decay_bps, day),
        _full_share(schedule.annual_decay_bps, schedule.duration_days),
    )
    amount = ctx.multiply(Decimal(schedule.total), share)
    return int(amount.to_integral_value(rounding=ROUND_FLOOR))


def emission_for_day(schedule: EmissionSchedule, day: int) -> int:
    """Base units emitted on ``day`` (0 after the schedule ends)."""
    return cumulative_emission(schedule, day + 1) - cumulative_emission(schedule, day)


def cumulative_emission_at_month(schedule: EmissionSchedule, month: int) -> int:
    """Base units emitted before ``month`` begins (its first whole day)."""
    return cumulative_emission(schedule, first_day_of_month(month))


def emission_curve(schedule: EmissionSchedule, days: int) -> NDArray[np.float64]:
    """Tokens (not base units) emitted on each of days ``0 .. days-1``, as float64."""
    _require_int("days", days, 0, MAX_DAYS)
    cumulative = [cumulative_emission(schedule, day) for day in range(days + 1)]
    # Differences stay exact ints; only the final division to tokens is a float.
    daily = [(after - before) / ONE_TOKEN for before, after in pairwise(cumulative)]
    return np.array(daily, dtype=np.float64)


CHECKER_BASE_RELEASE = VestingSchedule(tge_bps=0, cliff_months=0, linear_months=48, daily=True)
CHECKER_BONUS_RELEASE = VestingSchedule(
    tge_bps=0,
    cliff_months=0,
    linear_months=0,
    steps=tuple((3 * quarter, BPS // 16) for quarter in range(1, 17)),
)


@dataclass(frozen=True)
class CheckerSchedule:
    """The checker pools: a base released daily and a bonus released quarterly."""

    base_total: int
    bonus_total: int
    base_release: VestingSchedule = CHECKER_BASE_RELEASE
    bonus_release: VestingSchedule = CHECKER_BONUS_RELEASE

    def __post_init__(self) -> None:
        _require_int("base_total", self.base_total, 0, MAX_TOTAL)
        _require_int("bonus_total", self.bonus_total, 0, MAX_TOTAL)


class CheckerRelease(NamedTuple):
    """Base units of the checker base and bonus pools."""

    base: int
    bonus: int


def checker_cumulative(schedule: CheckerSchedule, day: int) -> CheckerRelease:
    """Base units released by days ``0 .. day-1`` from each checker pool."""
    return CheckerRelease(
        unlocked_at_day(schedule.base_release, schedule.base_total, day),
        unlocked_at_day(schedule.bonus_release, schedule.bonus_total, day),
    )


def checker_emission_for_day(schedule: CheckerSchedule, day: int) -> CheckerRelease:
    """Base units each checker pool releases on ``day``."""
    before = checker_cumulative(schedule, day)
    after = checker_cumulative(schedule, day + 1)
    return CheckerRelease(after.base - before.base, after.bonus - before.bonus)


def emitted_at_day(provider: EmissionSchedule, checkers: CheckerSchedule, day: int) -> int:
    """Base units all emission pools have released by days ``0 .. day-1``."""
    released = checker_cumulative(checkers, day)
    return cumulative_emission(provider, day) + released.base + released.bonus


DEFAULT_PROVIDER_EMISSION = EmissionSchedule(
    total=pool_amount(pool_named(DEFAULT_ALLOCATION, "compute_providers"))
)
DEFAULT_CHECKER_EMISSION = CheckerSchedule(
    base_total=pool_amount(pool_named(DEFAULT_ALLOCATION, "checkers_base")),
    bonus_total=pool_amount(pool_named(DEFAULT_ALLOCATION, "checkers_bonus")),
)
