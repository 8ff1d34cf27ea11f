"""What an epoch may pay: its share of the emission schedules, to the second.

The emission schedules (``gpunet.protocol.emissions``) are defined at whole days:
``cumulative_emission(schedule, d)`` is what days ``0 .. d-1`` released. Epochs need not
start or end on a day boundary, so the cumulative amount at ``t`` seconds after the TGE
is interpolated linearly inside the day, rounding down::

    d, s = divmod(t, 86_400)
    cum(t) = cum(d) + (cum(d + 1) - cum(d)) * s // 86_400

It equals the daily value at every whole day, never decreases, and is an integer, so
an epoch's budget ``cum(end) - cum(start)`` summed over consecutive epochs telescopes to
exactly ``cum(last end) - cum(first start)``: splitting time into epochs neither creates
nor loses a base unit.

Pools. The provider pool pays capacity and delivery rewards: ``delivery_share_bps``
(30% by default) of the epoch's provider emission, floored, goes to delivery and the
rest to capacity. The checker pools (base, released daily, and bonus, released
quarterly) pay the checkers. ``emission_caps_by_month`` turns the same function into the
RewardDistributor's cumulative caps: what both pools may have released by the end of
each contract month (2,629,800 s).
"""

from __future__ import annotations

from dataclasses import dataclass

from gpunet.errors import ValidationError
from gpunet.protocol.emissions import (
    DEFAULT_CHECKER_EMISSION,
    DEFAULT_PROVIDER_EMISSION,
    CheckerSchedule,
    EmissionSchedule,
    checker_cumulative,
    cumulative_emission,
)

BPS = 10_000
DAY_S = 86_400
MONTH_S = 2_629_800
DEFAULT_DELIVERY_SHARE_BPS = 3_000
# A million days, as the emissions module allows: far past any schedule's end.
MAX_SECONDS = 10**6 * DAY_S
MAX_MONTHS = 10**4


def _require_int(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, value, "must be an integer")
    if not low <= value <= high:
        raise ValidationError(field, value, f"must be between {low} and {high}")
    return value


@dataclass(frozen=True)
class EmissionParams:
    """The schedules that feed settlement and how the provider pool is split."""

    provider: EmissionSchedule = DEFAULT_PROVIDER_EMISSION
    checkers: CheckerSchedule = DEFAULT_CHECKER_EMISSION
    delivery_share_bps: int = DEFAULT_DELIVERY_SHARE_BPS

    def __post_init__(self) -> None:
        _require_int("delivery_share_bps", self.delivery_share_bps, 0, BPS)


@dataclass(frozen=True)
class EpochBudget:
    """Base units for each part of an epoch's rewards (also used for carried dust)."""

    capacity: int = 0
    delivery: int = 0
    checkers: int = 0

    def __post_init__(self) -> None:
        for name in ("capacity", "delivery", "checkers"):
            _require_int(name, getattr(self, name), 0, 2**256 - 1)

    @property
    def total(self) -> int:
        return self.capacity + self.delivery + self.checkers

    def __add__(self, other: EpochBudget) -> EpochBudget:
        return EpochBudget(
            self.capacity + other.capacity,
            self.delivery + other.delivery,
            self.checkers + other.checkers,
        )


ZERO_BUDGET = EpochBudget()


def _interpolate(before: int, after: int, seconds_into_day: int) -> int:
    return before + (after - before) * seconds_into_day // DAY_S


def provider_emitted_at(params: EmissionParams, t_s: int) -> int:
    """Base units the provider pool has released ``t_s`` seconds after the TGE."""
    day, into = divmod(_require_int("t_s", t_s, 0, MAX_SECONDS), DAY_S)
    before = cumulative_emission(params.provider, day)
    if into == 0:
        return before
    return _interpolate(before, cumulative_emission(params.provider, day + 1), into)


def checkers_emitted_at(params: EmissionParams, t_s: int) -> int:
    """Base units both checker pools have released ``t_s`` seconds after the TGE."""
    day, into = divmod(_require_int("t_s", t_s, 0, MAX_SECONDS), DAY_S)
    before = sum(checker_cumulative(params.checkers, day))
    if into == 0:
        return before
    return _interpolate(before, sum(checker_cumulative(params.checkers, day + 1)), into)


def emitted_at(params: EmissionParams, t_s: int) -> int:
    """Base units all emission pools have released ``t_s`` seconds after the TGE."""
    return provider_emitted_at(params, t_s) + checkers_emitted_at(params, t_s)


def epoch_budget(params: EmissionParams, start_s: int, end_s: int) -> EpochBudget:
    """What the epoch ``[start_s, end_s)`` (seconds after the TGE) may pay, per part."""
    _require_int("start_s", start_s, 0, MAX_SECONDS)
    _require_int("end_s", end_s, 0, MAX_SECONDS)
    if end_s < start_s:
        raise ValidationError("end_s", end_s, f"must not be before start_s ({start_s})")
    provider = provider_emitted_at(params, end_s) - provider_emitted_at(params, start_s)
    delivery = provider * params.delivery_share_bps // BPS
    checkers = checkers_emitted_at(params, end_s) - checkers_emitted_at(params, start_s)
    return EpochBudget(capacity=provider - delivery, delivery=delivery, checkers=checkers)


def emission_caps_by_month(params: EmissionParams, months: int) -> list[int]:
    """Cumulative emission (both pools) allowed by the end of each month ``0 .. months-1``.

    Month ``i`` ends ``(i + 1) * MONTH_S`` seconds after the TGE; the list is what
    ``RewardDistributor.set_emission_caps(0, caps)`` takes.
    """
    _require_int("months", months, 0, MAX_MONTHS)
    return [emitted_at(params, (month + 1) * MONTH_S) for month in range(months)]
