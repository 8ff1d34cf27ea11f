from __future__ import annotations

import dataclasses
from fractions import Fraction
from itertools import pairwise
from math import floor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpunet.errors import ValidationError
from gpunet.protocol.allocation import (
    DEFAULT_ALLOCATION,
    TOTAL_SUPPLY,
    Pool,
    circulating_at_day,
    circulating_at_month,
    emission_capacity,
    pool_amount,
    pool_named,
    unlock_table,
    validate_allocation,
    vested_at_month,
    vesting_end_month,
)
from gpunet.protocol.vesting import VestingSchedule, first_day_of_month

SUPPLY_TOKENS = 42_000_000_000
WEI = 10**18
TABLE_MONTHS = (0, 1, 8, 12, 13, 16, 18, 24, 30, 36, 48, 54, 60)


def tokens(amount: Fraction) -> int:
    """Base units of a token amount, rounded down like the vesting rules."""
    return floor(amount * WEI)


def share(percent: str) -> Fraction:
    return Fraction(SUPPLY_TOKENS) * Fraction(percent) / 100


def linear(months_done: int, months_total: int) -> Fraction:
    return Fraction(min(max(months_done, 0), months_total), months_total)


# The published terms (DESIGN.md section 4), written out independently of the code.
def published_unlocks(month: int) -> dict[str, int]:
    return {
        # 12.5%, 18-month cliff, then 36 months linear.
        "team": tokens(share("12.5") * linear(month - 18, 36)),
        # 11.5%, 12-month cliff, then 24 months linear.
        "investors": tokens(share("11.5") * linear(month - 12, 24)),
        # 8%: half at TGE, the other half over 24 months.
        "ecosystem": tokens(share("8") / 2 + share("8") / 2 * linear(month, 24)),
        # 7% over 48 months.
        "dao_treasury": tokens(share("7") * linear(month, 48)),
        # 6%: 25% at TGE, 25% at month 8, 50% at month 16.
        "airdrop": tokens(
            share("6")
            * (Fraction(1, 4) + Fraction(1, 4) * (month >= 8) + Fraction(1, 2) * (month >= 16))
        ),
        # 5%, 18-month cliff, then 36 months linear.
        "advisors": tokens(share("5") * linear(month - 18, 36)),
    }


def test_shares_are_the_published_ones() -> None:
    assert {pool.name: pool.share_bps for pool in DEFAULT_ALLOCATION} == {
        "compute_providers": 3500,
        "checkers_base": 1000,
        "checkers_bonus": 500,
        "team": 1250,
        "investors": 1150,
        "ecosystem": 800,
        "dao_treasury": 700,
        "airdrop": 600,
        "advisors": 500,
    }


def test_pool_amounts_add_up_to_the_supply_exactly() -> None:
    assert TOTAL_SUPPLY == 42 * 10**9 * 10**18
    assert sum(pool_amount(pool) for pool in DEFAULT_ALLOCATION) == TOTAL_SUPPLY
    assert pool_amount(pool_named(DEFAULT_ALLOCATION, "team")) == tokens(share("12.5"))


@pytest.mark.parametrize("month", TABLE_MONTHS)
def test_circulating_supply_matches_the_published_terms(month: int) -> None:
    expected = published_unlocks(month)
    row = unlock_table(DEFAULT_ALLOCATION, month)[month]
    assert {name: row[name] for name in expected} == expected
    assert row["vested"] == sum(expected.values())
    assert circulating_at_month(DEFAULT_ALLOCATION, month) == sum(expected.values())


def test_published_table_spot_values_in_tokens() -> None:
    # A few values a reader can check on paper.
    assert published_unlocks(0)["ecosystem"] == 1_680_000_000 * WEI
    assert published_unlocks(30)["team"] == 1_750_000_000 * WEI
    assert published_unlocks(24)["investors"] == 2_415_000_000 * WEI
    assert published_unlocks(16)["airdrop"] == 2_520_000_000 * WEI
    assert vested_at_month(DEFAULT_ALLOCATION, 0) == (1_680_000_000 + 630_000_000) * WEI


def test_everything_is_vested_at_month_54() -> None:
    vesting_total = TOTAL_SUPPLY - emission_capacity(DEFAULT_ALLOCATION)
    assert vesting_end_month(DEFAULT_ALLOCATION) == 54
    assert vested_at_month(DEFAULT_ALLOCATION, 53) < vesting_total
    assert vested_at_month(DEFAULT_ALLOCATION, 54) == vesting_total
    assert circulating_at_month(DEFAULT_ALLOCATION, 120, emission_capacity(DEFAULT_ALLOCATION)) == (
        TOTAL_SUPPLY
    )


def test_unlock_table_rows_are_monotone_per_pool() -> None:
    table = unlock_table(DEFAULT_ALLOCATION, 60)
    assert [row["month"] for row in table] == list(range(61))
    for before, after in pairwise(table):
        assert all(before[key] <= after[key] for key in before)


@given(st.integers(0, 3000))
def test_daily_circulation_agrees_with_the_month_it_lies_in(day: int) -> None:
    # Every default pool unlocks monthly, so a day reads its month's value.
    month = max(m for m in range(200) if first_day_of_month(m) <= day)
    assert circulating_at_day(DEFAULT_ALLOCATION, day) == circulating_at_month(
        DEFAULT_ALLOCATION, month
    )


def test_emitted_is_added_and_bounded_by_the_emission_pools() -> None:
    capacity = emission_capacity(DEFAULT_ALLOCATION)
    assert capacity == tokens(share("50"))
    base = circulating_at_month(DEFAULT_ALLOCATION, 5)
    assert circulating_at_month(DEFAULT_ALLOCATION, 5, 123) == base + 123
    for bad in (-1, capacity + 1):
        with pytest.raises(ValidationError) as info:
            circulating_at_month(DEFAULT_ALLOCATION, 5, bad)
        assert info.value.field == "emitted"


def test_allocation_must_sum_to_10000_bps() -> None:
    short = DEFAULT_ALLOCATION[:-1]
    with pytest.raises(ValidationError, match="exactly 10000") as info:
        validate_allocation(short)
    assert info.value.value == 9500


def test_pool_names_must_be_unique() -> None:
    twice = (*DEFAULT_ALLOCATION[:-1], dataclasses.replace(DEFAULT_ALLOCATION[-1], name="team"))
    with pytest.raises(ValidationError, match="unique"):
        validate_allocation(twice)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        (("x", 100, None, "vesting"), "schedule"),
        (("x", 100, VestingSchedule(0, 0, 12), "emission"), "schedule"),
        (("x", 100, None, "minted"), "kind"),
        (("x", 0, None, "emission"), "share_bps"),
        (("x", 10_001, None, "emission"), "share_bps"),
    ],
)
def test_bad_pools_name_the_field(arguments: tuple[object, ...], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Pool(*arguments)  # type: ignore[arg-type]
    assert info.value.field == field


def test_unknown_pool_name_is_refused() -> None:
    with pytest.raises(ValidationError, match="no pool"):
        pool_named(DEFAULT_ALLOCATION, "founders")
