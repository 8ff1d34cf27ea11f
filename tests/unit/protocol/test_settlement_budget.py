from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpunet.errors import ValidationError
from gpunet.protocol.emissions import (
    DEFAULT_CHECKER_EMISSION,
    DEFAULT_PROVIDER_EMISSION,
    CheckerSchedule,
    EmissionSchedule,
    checker_cumulative,
    cumulative_emission,
    emitted_at_day,
)
from gpunet.protocol.settlement_budget import (
    DAY_S,
    MONTH_S,
    EmissionParams,
    EpochBudget,
    checkers_emitted_at,
    emission_caps_by_month,
    emitted_at,
    epoch_budget,
    provider_emitted_at,
)

DEFAULTS = EmissionParams()
WEEK_S = 604_800
# A small pool over a short schedule, so that properties can walk past its end quickly.
SMALL = EmissionParams(
    provider=EmissionSchedule(total=10**9 + 7, duration_days=30, annual_decay_bps=5_000),
    checkers=CheckerSchedule(base_total=10**8 + 3, bonus_total=10**7 + 1),
)
seconds = st.integers(0, 200 * DAY_S)


def test_whole_days_agree_with_the_daily_schedules() -> None:
    for day in (0, 1, 2, 30, 31, 365, 1461, 3652, 3653, 4000):
        released = checker_cumulative(DEFAULT_CHECKER_EMISSION, day)
        at = day * DAY_S
        assert provider_emitted_at(DEFAULTS, at) == cumulative_emission(
            DEFAULT_PROVIDER_EMISSION, day
        )
        assert checkers_emitted_at(DEFAULTS, at) == released.base + released.bonus
        assert emitted_at(DEFAULTS, at) == emitted_at_day(
            DEFAULT_PROVIDER_EMISSION, DEFAULT_CHECKER_EMISSION, day
        )


def test_inside_a_day_the_amount_is_interpolated_and_floored() -> None:
    before = cumulative_emission(DEFAULT_PROVIDER_EMISSION, 10)
    after = cumulative_emission(DEFAULT_PROVIDER_EMISSION, 11)
    at = 10 * DAY_S + 3_600
    assert provider_emitted_at(DEFAULTS, at) == before + (after - before) * 3_600 // DAY_S


@settings(max_examples=100)
@given(a=seconds, b=seconds)
def test_cumulative_emission_never_decreases(a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert emitted_at(SMALL, low) <= emitted_at(SMALL, high)
    assert provider_emitted_at(SMALL, low) <= provider_emitted_at(SMALL, high)
    assert checkers_emitted_at(SMALL, low) <= checkers_emitted_at(SMALL, high)


@settings(max_examples=60)
@given(cuts=st.lists(seconds, min_size=2, max_size=12, unique=True))
def test_consecutive_epochs_telescope_exactly(cuts: list[int]) -> None:
    cuts.sort()
    budgets = [epoch_budget(SMALL, start, end) for start, end in pairwise(cuts)]
    total = sum(b.total for b in budgets)
    assert total == emitted_at(SMALL, cuts[-1]) - emitted_at(SMALL, cuts[0])
    provider = sum(b.capacity + b.delivery for b in budgets)
    assert provider == provider_emitted_at(SMALL, cuts[-1]) - provider_emitted_at(SMALL, cuts[0])


def test_the_whole_schedule_is_paid_exactly_once_over_its_epochs() -> None:
    end = 1_500 * DAY_S
    budgets = [epoch_budget(SMALL, t, min(t + WEEK_S, end)) for t in range(0, end, WEEK_S)]
    pools = SMALL.provider.total + SMALL.checkers.base_total + SMALL.checkers.bonus_total
    assert sum(b.total for b in budgets) == pools
    assert epoch_budget(SMALL, end, end + WEEK_S) == EpochBudget()


def test_the_provider_emission_is_split_by_the_delivery_share() -> None:
    budget = epoch_budget(DEFAULTS, 5 * DAY_S, 12 * DAY_S)
    provider = provider_emitted_at(DEFAULTS, 12 * DAY_S) - provider_emitted_at(DEFAULTS, 5 * DAY_S)
    assert budget.delivery == provider * 3_000 // 10_000
    assert budget.capacity == provider - budget.delivery
    all_delivery = EmissionParams(delivery_share_bps=10_000)
    assert epoch_budget(all_delivery, 0, DAY_S).capacity == 0
    assert epoch_budget(EmissionParams(delivery_share_bps=0), 0, DAY_S).delivery == 0


def test_the_checker_pools_pay_the_checkers() -> None:
    budget = epoch_budget(DEFAULTS, 0, 100 * DAY_S)
    released = checker_cumulative(DEFAULT_CHECKER_EMISSION, 100)
    assert budget.checkers == released.base + released.bonus
    assert released.bonus > 0  # the first quarterly bonus is inside


def test_an_empty_epoch_has_an_empty_budget() -> None:
    assert epoch_budget(DEFAULTS, DAY_S, DAY_S) == EpochBudget()


@pytest.mark.parametrize(("start", "end"), [(10, 5), (-1, 5), (0, 10**20), (0.5, 1)])
def test_bad_epoch_bounds_are_refused(start: int, end: int) -> None:
    with pytest.raises(ValidationError):
        epoch_budget(DEFAULTS, start, end)


def test_delivery_share_is_bps() -> None:
    with pytest.raises(ValidationError, match="delivery_share_bps"):
        EmissionParams(delivery_share_bps=10_001)


def test_budgets_refuse_negative_parts() -> None:
    with pytest.raises(ValidationError, match="capacity"):
        EpochBudget(capacity=-1)


def test_monthly_caps_are_the_cumulative_emission_at_each_month_end() -> None:
    caps = emission_caps_by_month(DEFAULTS, 122)
    assert caps == [emitted_at(DEFAULTS, (i + 1) * MONTH_S) for i in range(122)]
    assert all(a <= b for a, b in pairwise(caps))
    full = (
        DEFAULT_PROVIDER_EMISSION.total
        + DEFAULT_CHECKER_EMISSION.base_total
        + DEFAULT_CHECKER_EMISSION.bonus_total
    )
    assert caps[119] < full  # month 119 ends half a day before the provider schedule
    assert caps[120] == caps[121] == full


def test_weekly_epochs_never_pay_above_the_cap_of_their_last_second() -> None:
    months = 8
    caps = emission_caps_by_month(SMALL, months)
    posted = 0
    for start in range(0, months * MONTH_S - WEEK_S, WEEK_S):
        end = start + WEEK_S
        posted += epoch_budget(SMALL, start, end).total
        assert posted <= caps[(end - 1) // MONTH_S]


def test_no_months_no_caps() -> None:
    assert emission_caps_by_month(DEFAULTS, 0) == []
    with pytest.raises(ValidationError, match="months"):
        emission_caps_by_month(DEFAULTS, -1)
