"""Vesting schedules: how much of an allocation is unlocked at a month or a day.

A schedule has three parts, each a share of the allocation ``total``:

- ``tge_bps`` unlocks at the token generation event (month 0, day 0);
- ``steps`` unlock ``bps`` each at the start of their month (the airdrop's 25% at month 8);
- the linear part, the remainder (``total`` less TGE and steps), unlocks evenly over
  ``linear_months`` after ``cliff_months``: nothing before the cliff ends, then at month
  ``m`` ``remainder * clamp(m - cliff, 0, linear) // linear``, all of it at
  ``cliff + linear``. With ``linear_months == 0`` the whole remainder unlocks at the cliff.

Calendar: a month is 365.25 / 12 = 30.4375 days (1461/48, exact), so ten years are 120
months and 3652.5 days. Day ``d`` lies in month ``d * 48 // 1461``, and month ``m``
begins on day ``ceil(m * 1461 / 48)``. Amounts are "as of the start of" a month or day,
with that month's or day's unlocks included; month 0 and day 0 are the TGE.

Granularity: with ``daily=False`` the linear part moves once a month, on the first day of
each month. With ``daily=True`` it moves every day by the elapsed fraction of the linear
period measured in days: ``remainder * clamp(48*d - 1461*cliff, 0, 1461*linear)
// (1461*linear)``; it equals the monthly value whenever a month starts on a whole day
and lies between two consecutive monthly values otherwise. TGE and steps happen on the
first day of their month either way.

Rounding: every amount is an ``int`` and rounds down. TGE and steps are floored on their
cumulative share (``total * bps_so_far // 10_000``) and the linear part is whatever the
fixed parts leave, so each part is monotone and the schedule reaches ``total`` exactly at
``end_month``: rounding can delay a base unit, never create or lose one.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpunet.errors import ValidationError

BPS = 10_000
# A month is 1461/48 days (365.25 / 12); kept as a ratio of ints so that day and month
# arithmetic is exact.
MONTH_DAYS_NUM = 1461
MONTH_DAYS_DEN = 48


@dataclass(frozen=True)
class VestingSchedule:
    """How an allocation unlocks: at TGE, in steps, and linearly after a cliff."""

    tge_bps: int
    cliff_months: int
    linear_months: int
    steps: tuple[tuple[int, int], ...] = ()
    daily: bool = False

    def __post_init__(self) -> None:
        _require_int("tge_bps", self.tge_bps, 0, BPS)
        _require_int("cliff_months", self.cliff_months, 0, 1200)
        _require_int("linear_months", self.linear_months, 0, 1200)
        _check_steps(self.steps)
        if not isinstance(self.daily, bool):
            raise ValidationError("daily", self.daily, "must be True or False")
        fixed = self.fixed_bps
        if fixed > BPS:
            raise ValidationError(
                "steps", self.steps, f"TGE and steps add up to {fixed} bps; at most 10000"
            )
        if fixed == BPS and (self.cliff_months or self.linear_months):
            raise ValidationError(
                "linear_months",
                (self.cliff_months, self.linear_months),
                "TGE and steps already unlock everything; set cliff and linear months to 0",
            )

    @property
    def fixed_bps(self) -> int:
        """Share unlocked at TGE and in steps, in basis points."""
        return self.tge_bps + sum(bps for _, bps in self.steps)


def _require_int(field: str, value: object, low: int, high: int) -> None:
    # bool is an int subclass; True as a month count is always a mistake.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(field, value, "must be an integer")
    if not low <= value <= high:
        raise ValidationError(field, value, f"must be between {low} and {high}")


def _check_steps(steps: tuple[tuple[int, int], ...]) -> None:
    previous = 0
    for step in steps:
        if not (isinstance(step, tuple) and len(step) == 2):
            raise ValidationError("steps", steps, "each step is a (month, bps) pair")
        month, bps = step
        _require_int("steps", month, 1, 1200)
        _require_int("steps", bps, 1, BPS)
        if month <= previous:
            raise ValidationError(
                "steps", steps, "step months must be increasing and after month 0 (TGE)"
            )
        previous = month


def month_of_day(day: int) -> int:
    """The month that day ``day`` lies in (day 0 is in month 0)."""
    _require_int("day", day, 0, 10**9)
    return day * MONTH_DAYS_DEN // MONTH_DAYS_NUM


def first_day_of_month(month: int) -> int:
    """The first whole day of month ``month`` (``ceil(month * 30.4375)``)."""
    _require_int("month", month, 0, 10**8)
    return -(-month * MONTH_DAYS_NUM // MONTH_DAYS_DEN)


def end_month(schedule: VestingSchedule) -> int:
    """The first month at which the whole allocation is unlocked."""
    last_step = schedule.steps[-1][0] if schedule.steps else 0
    if schedule.fixed_bps == BPS:
        return last_step
    return max(last_step, schedule.cliff_months + schedule.linear_months)


def end_day(schedule: VestingSchedule) -> int:
    """The first day at which the whole allocation is unlocked."""
    return first_day_of_month(end_month(schedule))


def _fixed_unlocked(schedule: VestingSchedule, total: int, month: int) -> int:
    bps = schedule.tge_bps + sum(b for m, b in schedule.steps if m <= month)
    return total * bps // BPS


def _linear_remainder(schedule: VestingSchedule, total: int) -> int:
    return total - total * schedule.fixed_bps // BPS


def _linear_share(remainder: int, elapsed: int, period: int) -> int:
    # A zero-length linear period is a plain cliff: everything once it has passed.
    if period == 0:
        return remainder if elapsed >= 0 else 0
    return remainder * min(max(elapsed, 0), period) // period


def _require_total(total: int) -> None:
    _require_int("total", total, 0, 10**40)


def unlocked_at_month(schedule: VestingSchedule, total: int, month: int) -> int:
    """Base units of ``total`` unlocked as of the start of ``month`` (month 0 is the TGE)."""
    _require_total(total)
    _require_int("month", month, 0, 10**8)
    remainder = _linear_remainder(schedule, total)
    elapsed = month - schedule.cliff_months
    linear = _linear_share(remainder, elapsed, schedule.linear_months)
    return _fixed_unlocked(schedule, total, month) + linear


def unlocked_at_day(schedule: VestingSchedule, total: int, day: int) -> int:
    """Base units of ``total`` unlocked as of the start of ``day`` (day 0 is the TGE).

    A monthly schedule gives its value for the month the day lies in; a daily one
    releases its linear part day by day (see the module docstring).
    """
    _require_total(total)
    month = month_of_day(day)
    if not schedule.daily:
        return unlocked_at_month(schedule, total, month)
    remainder = _linear_remainder(schedule, total)
    # Time in 48ths of a day, so that 30.4375-day months are whole numbers.
    elapsed = day * MONTH_DAYS_DEN - schedule.cliff_months * MONTH_DAYS_NUM
    period = schedule.linear_months * MONTH_DAYS_NUM
    linear = _linear_share(remainder, elapsed, period)
    return _fixed_unlocked(schedule, total, month) + linear
