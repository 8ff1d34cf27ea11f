from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpunet.errors import ValidationError
from gpunet.protocol.vesting import (
    VestingSchedule,
    end_day,
    end_month,
    first_day_of_month,
    month_of_day,
    unlocked_at_day,
    unlocked_at_month,
)

TEAM = VestingSchedule(tge_bps=0, cliff_months=18, linear_months=36)
AIRDROP = VestingSchedule(
    tge_bps=2500, cliff_months=0, linear_months=0, steps=((8, 2500), (16, 5000))
)


@st.composite
def schedules(draw: st.DrawFn) -> VestingSchedule:
    tge = draw(st.integers(0, 10_000))
    months = draw(st.lists(st.integers(1, 80), unique=True, max_size=4).map(sorted))
    steps: list[tuple[int, int]] = []
    left = 10_000 - tge
    for month in months:
        if left == 0:
            break
        bps = draw(st.integers(1, left))
        steps.append((month, bps))
        left -= bps
    linear_ok = left > 0
    cliff = draw(st.integers(0, 40)) if linear_ok else 0
    linear = draw(st.integers(0, 60)) if linear_ok else 0
    return VestingSchedule(tge, cliff, linear, tuple(steps), draw(st.booleans()))


totals = st.integers(0, 10**30)


def test_team_vests_nothing_before_cliff_then_a_36th_a_month() -> None:
    total = 36 * 1000
    assert [unlocked_at_month(TEAM, total, m) for m in (0, 17, 18, 19, 30, 53, 54, 99)] == [
        0,
        0,
        0,
        1000,
        12_000,
        35_000,
        36_000,
        36_000,
    ]


def test_linear_release_rounds_down() -> None:
    schedule = VestingSchedule(tge_bps=0, cliff_months=0, linear_months=3)
    assert [unlocked_at_month(schedule, 10, m) for m in range(4)] == [0, 3, 6, 10]


def test_airdrop_steps_unlock_at_their_months() -> None:
    values = {m: unlocked_at_month(AIRDROP, 400, m) for m in (0, 7, 8, 15, 16, 40)}
    assert values == {0: 100, 7: 100, 8: 200, 15: 200, 16: 400, 40: 400}


def test_linear_months_zero_means_everything_at_the_cliff() -> None:
    schedule = VestingSchedule(tge_bps=1000, cliff_months=6, linear_months=0)
    assert [unlocked_at_month(schedule, 100, m) for m in (0, 5, 6)] == [10, 10, 100]
    assert end_month(schedule) == 6


def test_end_month_covers_the_latest_part() -> None:
    assert end_month(TEAM) == 54
    assert end_month(AIRDROP) == 16
    assert end_month(VestingSchedule(0, 2, 3, steps=((9, 100),))) == 9
    assert end_month(VestingSchedule(10_000, 0, 0)) == 0


def test_calendar_months_are_30_4375_days() -> None:
    assert first_day_of_month(1) == 31  # day 30.4375 is inside day 30, so day 31 is whole
    assert first_day_of_month(16) == 487  # 16 months = 487 days exactly
    assert first_day_of_month(120) == 3653  # 3652.5 days
    assert month_of_day(30) == 0
    assert month_of_day(31) == 1
    assert month_of_day(487) == 16
    assert end_day(TEAM) == first_day_of_month(54) == 1644


@given(st.integers(0, 10**6))
def test_first_day_of_month_is_the_first_day_in_it(month: int) -> None:
    day = first_day_of_month(month)
    assert month_of_day(day) == month
    assert day == 0 or month_of_day(day - 1) == month - 1


def test_daily_schedule_releases_linear_part_by_the_day() -> None:
    daily = VestingSchedule(tge_bps=0, cliff_months=0, linear_months=48, daily=True)
    # 48 months are exactly 1461 days, so a day releases 1/1461.
    assert [unlocked_at_day(daily, 1461, d) for d in (0, 1, 2, 1460, 1461, 2000)] == [
        0,
        1,
        2,
        1460,
        1461,
        1461,
    ]


def test_monthly_schedule_steps_on_the_first_day_of_each_month() -> None:
    treasury = VestingSchedule(tge_bps=0, cliff_months=0, linear_months=48)
    assert unlocked_at_day(treasury, 4800, 30) == 0
    assert unlocked_at_day(treasury, 4800, 31) == 100
    assert unlocked_at_day(treasury, 4800, 60) == 100
    assert unlocked_at_day(treasury, 4800, 61) == 200  # month 2 starts on day 60.875


def test_daily_cliff_holds_until_the_cliff_day() -> None:
    daily_team = dataclasses.replace(TEAM, daily=True)
    cliff_day = first_day_of_month(18)  # day 547.875 rounds up to 548
    assert unlocked_at_day(daily_team, 10**24, cliff_day - 1) == 0
    assert unlocked_at_day(daily_team, 10**24, cliff_day) > 0


@given(schedules(), totals, st.integers(0, 200))
def test_unlocked_is_monotone_bounded_and_complete(
    schedule: VestingSchedule, total: int, month: int
) -> None:
    now = unlocked_at_month(schedule, total, month)
    later = unlocked_at_month(schedule, total, month + 1)
    assert 0 <= now <= later <= total
    assert unlocked_at_month(schedule, total, end_month(schedule) + month) == total


@given(schedules(), totals)
def test_nothing_is_complete_before_the_end(schedule: VestingSchedule, total: int) -> None:
    end = end_month(schedule)
    if end > 0 and total >= 10_000:
        assert unlocked_at_month(schedule, total, end - 1) < total


@given(schedules(), totals)
def test_nothing_but_tge_before_cliff_and_first_step(schedule: VestingSchedule, total: int) -> None:
    first_step = schedule.steps[0][0] if schedule.steps else 10**6
    tge_amount = total * schedule.tge_bps // 10_000
    for month in range(min(schedule.cliff_months, first_step)):
        assert unlocked_at_month(schedule, total, month) == tge_amount


@given(schedules(), totals, st.integers(0, 8000))
def test_days_are_monotone_and_bracketed_by_months(
    schedule: VestingSchedule, total: int, day: int
) -> None:
    now = unlocked_at_day(schedule, total, day)
    assert now <= unlocked_at_day(schedule, total, day + 1) <= total
    month = month_of_day(day)
    assert unlocked_at_month(schedule, total, month) <= now
    assert now <= unlocked_at_month(schedule, total, month + 1)
    assert unlocked_at_day(schedule, total, end_day(schedule) + day) == total


@given(schedules(), totals, st.integers(0, 200))
def test_day_and_month_agree_at_whole_day_month_starts(
    schedule: VestingSchedule, total: int, sixteenths: int
) -> None:
    month = 16 * sixteenths  # every 16 months a month starts on a whole day
    day = first_day_of_month(month)
    assert unlocked_at_day(schedule, total, day) == unlocked_at_month(schedule, total, month)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tge_bps": -1}, "tge_bps"),
        ({"tge_bps": 10_001}, "tge_bps"),
        ({"cliff_months": -1}, "cliff_months"),
        ({"linear_months": 1.5}, "linear_months"),
        ({"linear_months": True}, "linear_months"),
        ({"tge_bps": 6000, "steps": ((3, 5000),)}, "steps"),
        ({"steps": ((0, 100),)}, "steps"),
        ({"steps": ((5, 100), (5, 100))}, "steps"),
        ({"steps": ((5, 100), (4, 100))}, "steps"),
        ({"steps": ((5, 0),)}, "steps"),
        ({"steps": ((5,),)}, "steps"),
        ({"tge_bps": 10_000, "linear_months": 12}, "linear_months"),
        ({"daily": 1}, "daily"),
    ],
)
def test_bad_schedules_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"tge_bps": 0, "cliff_months": 0, "linear_months": 12}
    with pytest.raises(ValidationError) as info:
        VestingSchedule(**(arguments | kwargs))
    assert info.value.field == field


@pytest.mark.parametrize(("total", "month"), [(-1, 0), (10, -1), (10.0, 0)])
def test_bad_amounts_and_months_are_refused(total: Any, month: int) -> None:
    with pytest.raises(ValidationError):
        unlocked_at_month(TEAM, total, month)


def test_negative_day_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        unlocked_at_day(TEAM, 10, -1)
    assert info.value.field == "day"
