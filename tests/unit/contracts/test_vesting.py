"""Vesting.vy: schedules, exact unlock boundaries, releases, and agreement with the protocol.

The contract works in seconds after the TGE; ``gpunet.protocol.vesting`` in months and
days. With months of 2_629_800 s (1461/48 days) the two must agree at every month start
(monthly schedules) and every day start (daily schedules), which these tests check for
the default allocation; ``reference_vested`` restates the rule in seconds for any time.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import boa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.contracts.conftest import (
    BPS,
    DAY_S,
    MAX_UINT256,
    MISSING_ROLE,
    MONTH_S,
    VESTING_POOL,
    Args,
    load,
    now,
    reference_vested,
    warp,
)

from gpunet.protocol.allocation import DEFAULT_ALLOCATION, pool_amount
from gpunet.protocol.vesting import (
    VestingSchedule,
    end_day,
    end_month,
    first_day_of_month,
    unlocked_at_day,
    unlocked_at_month,
)

# Compiling and checking every default schedule takes several seconds.
pytestmark = pytest.mark.slow

# Execution gas (without the 21,000 base cost) of a release.
RELEASE_GAS_BUDGET = 100_000
# The airdrop: 25% at TGE, 25% at month 8, 50% at month 16.
AIRDROP: Args = (2_500, 0, 0, [8 * MONTH_S, 16 * MONTH_S], [2_500, 5_000])


def schedule_args(schedule: VestingSchedule) -> Args:
    """The contract's arguments for a protocol schedule."""
    return (
        schedule.tge_bps,
        schedule.cliff_months * MONTH_S,
        schedule.linear_months * MONTH_S,
        [month * MONTH_S for month, _ in schedule.steps],
        [bps for _, bps in schedule.steps],
    )


def add(vesting: Any, admin: str, beneficiary: str, total: int, args: Args) -> int:
    with boa.env.prank(admin):
        return int(vesting.add_schedule(beneficiary, total, *args))


@pytest.fixture
def airdrop(vesting: Any, admin: str, alice: str) -> int:
    return add(vesting, admin, alice, 1_000_000, AIRDROP)


# ---------------------------------------------------------------- agreement with protocol
def _vesting_pools() -> list[Any]:
    return [pool for pool in DEFAULT_ALLOCATION if pool.schedule is not None]


@pytest.fixture
def genesis_vesting(token: Any, admin: str, alice: str, tge: int) -> tuple[Any, list[int]]:
    """A Vesting contract holding every default vesting pool, one schedule each."""
    contract = load("Vesting", token.address, admin, tge)
    pools = _vesting_pools()
    with boa.env.prank(admin):
        token.transfer(contract.address, sum(pool_amount(pool) for pool in pools))
    ids = [
        add(contract, admin, alice, pool_amount(pool), schedule_args(pool.schedule))
        for pool in pools
    ]
    return contract, ids


def test_matches_protocol_at_every_month_start(genesis_vesting: Any, tge: int) -> None:
    contract, ids = genesis_vesting
    for pool, schedule_id in zip(_vesting_pools(), ids, strict=True):
        total = pool_amount(pool)
        for month in range(end_month(pool.schedule) + 2):
            at = tge + month * MONTH_S
            expected = unlocked_at_month(pool.schedule, total, month)
            assert contract.vested(schedule_id, at) == expected, (pool.name, month)


def _checked_days(schedule: VestingSchedule) -> list[int]:
    # Every day around each month start, plus a regular sample in between.
    days = set(range(0, end_day(schedule) + 40, 11))
    for month in range(end_month(schedule) + 2):
        first = first_day_of_month(month)
        days.update({max(first - 1, 0), first, first + 1})
    return sorted(days)


def test_matches_protocol_daily_semantics_at_day_starts(genesis_vesting: Any, tge: int) -> None:
    contract, ids = genesis_vesting
    for pool, schedule_id in zip(_vesting_pools(), ids, strict=True):
        daily = dataclasses.replace(pool.schedule, daily=True)
        total = pool_amount(pool)
        for day in _checked_days(daily):
            expected = unlocked_at_day(daily, total, day)
            assert contract.vested(schedule_id, tge + day * DAY_S) == expected, (pool.name, day)


def test_genesis_schedules_reach_their_totals(genesis_vesting: Any, tge: int) -> None:
    contract, ids = genesis_vesting
    far = tge + 100 * 12 * MONTH_S
    assert [contract.vested(i, far) for i in ids] == [pool_amount(p) for p in _vesting_pools()]
    assert contract.unallocated() == 0


_schedules = st.integers(0, 8).flatmap(
    lambda n: st.tuples(
        st.integers(0, BPS),
        st.integers(0, 60 * MONTH_S),
        st.integers(0, 60 * MONTH_S),
        st.lists(st.integers(1, 60 * MONTH_S), min_size=n, max_size=n, unique=True).map(sorted),
        st.lists(st.integers(1, 1_250), min_size=n, max_size=n),
    )
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    total=st.integers(1, VESTING_POOL),
    args=_schedules.filter(lambda a: a[0] + sum(a[4]) <= BPS),
    times=st.lists(st.integers(-MONTH_S, 130 * MONTH_S), min_size=1, max_size=8),
)
def test_matches_reference_at_any_second(
    vesting: Any, admin: str, alice: str, tge: int, total: int, args: Args, times: list[int]
) -> None:
    schedule_id = add(vesting, admin, alice, total, args)
    for since in times:
        assert vesting.vested(schedule_id, tge + since) == reference_vested(total, args, since)


# ---------------------------------------------------------------- exact boundaries
def test_nothing_vests_before_tge(vesting: Any, airdrop: int, tge: int) -> None:
    assert vesting.vested(airdrop, tge - 1) == 0
    assert vesting.vested(airdrop, tge) == 250_000


def test_steps_unlock_at_their_exact_second(vesting: Any, airdrop: int, tge: int) -> None:
    step8, step16 = tge + 8 * MONTH_S, tge + 16 * MONTH_S
    assert vesting.vested(airdrop, step8 - 1) == 250_000
    assert vesting.vested(airdrop, step8) == 500_000
    assert vesting.vested(airdrop, step16 - 1) == 500_000
    assert vesting.vested(airdrop, step16) == 1_000_000
    assert vesting.vested(airdrop, step16 + 1) == 1_000_000


def test_linear_starts_at_the_cliff(vesting: Any, admin: str, alice: str, tge: int) -> None:
    cliff, linear = 12 * MONTH_S, 24 * MONTH_S
    schedule_id = add(vesting, admin, alice, 24_000_000, (0, cliff, linear, [], []))
    assert vesting.vested(schedule_id, tge + cliff - 1) == 0
    assert vesting.vested(schedule_id, tge + cliff) == 0
    assert vesting.vested(schedule_id, tge + cliff + 1) == 24_000_000 // linear
    assert vesting.vested(schedule_id, tge + cliff + linear - 1) == 24_000_000 - 1
    assert vesting.vested(schedule_id, tge + cliff + linear) == 24_000_000


def test_zero_linear_period_unlocks_all_at_the_cliff(
    vesting: Any, admin: str, alice: str, tge: int
) -> None:
    schedule_id = add(vesting, admin, alice, 1_000, (1_000, 6 * MONTH_S, 0, [], []))
    assert vesting.vested(schedule_id, tge + 6 * MONTH_S - 1) == 100
    assert vesting.vested(schedule_id, tge + 6 * MONTH_S) == 1_000


# ---------------------------------------------------------------- release
def test_release_before_tge_reverts(vesting: Any, airdrop: int) -> None:
    assert vesting.releasable(airdrop) == 0
    with boa.reverts("vesting: nothing releasable"):
        vesting.release(airdrop)


def test_release_pays_the_beneficiary_whoever_calls(
    vesting: Any, token: Any, airdrop: int, alice: str, bob: str, tge: int
) -> None:
    warp(tge)
    with boa.env.prank(bob):
        assert vesting.release(airdrop) == 250_000
    released = vesting.get_logs()[-1]
    assert (released.id, released.beneficiary, released.amount) == (airdrop, alice, 250_000)
    assert token.balanceOf(alice) == 250_000
    assert token.balanceOf(bob) == 0
    assert vesting.schedules(airdrop)[2] == 250_000


def test_release_twice_in_a_step_reverts(vesting: Any, airdrop: int, tge: int) -> None:
    warp(tge + 8 * MONTH_S - 1)
    vesting.release(airdrop)
    with boa.reverts("vesting: nothing releasable"):
        vesting.release(airdrop)
    boa.env.time_travel(seconds=1)
    assert vesting.release(airdrop) == 250_000


def test_release_pays_everything_once(vesting: Any, token: Any, airdrop: int, tge: int) -> None:
    warp(tge + 20 * MONTH_S)
    assert vesting.release(airdrop) == 1_000_000
    assert vesting.unreleased() == 0
    assert vesting.unallocated() == VESTING_POOL - 1_000_000
    with boa.reverts("vesting: nothing releasable"):
        vesting.release(airdrop)


def test_release_costs_less_than_budget(vesting: Any, airdrop: int, tge: int) -> None:
    warp(tge + 8 * MONTH_S)
    vesting.release(airdrop)
    assert vesting._computation.get_gas_used() < RELEASE_GAS_BUDGET


def test_unknown_schedule_reverts(vesting: Any, tge: int) -> None:
    with boa.reverts("vesting: unknown schedule"):
        vesting.vested(0, tge)
    with boa.reverts("vesting: unknown schedule"):
        vesting.releasable(0)
    with boa.reverts("vesting: unknown schedule"):
        vesting.release(0)
    with boa.reverts("vesting: unknown schedule"):
        vesting.steps(0)


# ---------------------------------------------------------------- adding schedules
def test_add_schedule_records_it(vesting: Any, admin: str, alice: str) -> None:
    assert add(vesting, admin, alice, 1_000_000, AIRDROP) == 0
    added = vesting.get_logs()[-1]
    assert (added.id, added.beneficiary, added.total, added.step_bps) == (
        0,
        alice,
        10**6,
        [2_500, 5_000],
    )
    assert vesting.schedule_count() == 1
    assert vesting.schedules(0) == (alice, 1_000_000, 0, 2_500, 0, 0)
    assert vesting.steps(0) == (AIRDROP[3], AIRDROP[4])
    assert vesting.ids_of(alice) == [0]
    assert vesting.unreleased() == 1_000_000
    assert vesting.unallocated() == VESTING_POOL - 1_000_000


def test_ids_count_from_zero_per_beneficiary(
    vesting: Any, admin: str, alice: str, bob: str
) -> None:
    ids = [add(vesting, admin, who, 1, (BPS, 0, 0, [], [])) for who in (alice, bob, alice)]
    assert ids == [0, 1, 2]
    assert vesting.ids_of(alice) == [0, 2]
    assert vesting.ids_of(bob) == [1]


@pytest.mark.parametrize("caller", ["deployer", "alice"])
def test_add_schedule_needs_the_admin_role(
    vesting: Any, caller: str, deployer: str, alice: str
) -> None:
    account = {"deployer": deployer, "alice": alice}[caller]
    with boa.env.prank(account), boa.reverts(MISSING_ROLE):
        vesting.add_schedule(account, 1, BPS, 0, 0, [], [])


def test_admin_role_moves_to_the_given_admin(vesting: Any, admin: str, deployer: str) -> None:
    role = vesting.DEFAULT_ADMIN_ROLE()
    assert vesting.hasRole(role, admin)
    assert not vesting.hasRole(role, deployer)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((BPS + 1, 0, 0, [], []), "vesting: shares above 100%"),
        ((5_000, 0, 0, [1, 2], [2_500, 2_501]), "vesting: shares above 100%"),
        ((0, 0, 0, [2, 2], [1, 1]), "vesting: steps out of order"),
        ((0, 0, 0, [3, 2], [1, 1]), "vesting: steps out of order"),
        ((0, 0, 0, [0], [1]), "vesting: steps out of order"),
        ((0, 0, 0, [1, 2], [1]), "vesting: steps and shares differ"),
        ((0, 0, 0, [1], [0]), "vesting: zero step share"),
    ],
)
def test_add_schedule_rejects_bad_shares(
    vesting: Any, admin: str, alice: str, args: Args, message: str
) -> None:
    with boa.env.prank(admin), boa.reverts(message):
        vesting.add_schedule(alice, 1, *args)


def test_add_schedule_rejects_zero_beneficiary_and_total(vesting: Any, admin: str) -> None:
    with boa.env.prank(admin), boa.reverts("vesting: zero beneficiary"):
        vesting.add_schedule("0x" + "00" * 20, 1, BPS, 0, 0, [], [])
    with boa.env.prank(admin), boa.reverts("vesting: zero total"):
        vesting.add_schedule(admin, 0, BPS, 0, 0, [], [])


def test_add_schedule_needs_unallocated_tokens(vesting: Any, admin: str, alice: str) -> None:
    add(vesting, admin, alice, VESTING_POOL - 10, (BPS, 0, 0, [], []))
    with boa.env.prank(admin), boa.reverts("vesting: not enough unallocated tokens"):
        vesting.add_schedule(alice, 11, BPS, 0, 0, [], [])
    assert add(vesting, admin, alice, 10, (BPS, 0, 0, [], [])) == 1
    assert vesting.unallocated() == 0


def test_released_tokens_do_not_free_room(vesting: Any, admin: str, alice: str, tge: int) -> None:
    schedule_id = add(vesting, admin, alice, VESTING_POOL, (BPS, 0, 0, [], []))
    warp(tge)
    vesting.release(schedule_id)
    assert vesting.unallocated() == 0
    with boa.env.prank(admin), boa.reverts("vesting: not enough unallocated tokens"):
        vesting.add_schedule(alice, 1, BPS, 0, 0, [], [])


def test_at_most_64_schedules_per_beneficiary(vesting: Any, admin: str, alice: str) -> None:
    for _ in range(64):
        add(vesting, admin, alice, 1, (BPS, 0, 0, [], []))
    with boa.env.prank(admin), boa.reverts("vesting: too many schedules"):
        vesting.add_schedule(alice, 1, BPS, 0, 0, [], [])


# ---------------------------------------------------------------- maximal values
def test_maximal_total_and_periods_do_not_overflow(admin: str, alice: str) -> None:
    partner = load("PartnerToken", "Partner", "PRT", 18, admin, MAX_UINT256)
    tge = now()
    contract = load("Vesting", partner.address, admin, tge)
    with boa.env.prank(admin):
        partner.transfer(contract.address, MAX_UINT256)
    steps = [MAX_UINT256 - tge - 1]
    schedule_id = add(contract, admin, alice, MAX_UINT256, (1, 0, MAX_UINT256, steps, [BPS - 2]))
    remainder = MAX_UINT256 - MAX_UINT256 * (BPS - 1) // BPS
    assert contract.vested(schedule_id, tge) == MAX_UINT256 // BPS + remainder // MAX_UINT256
    assert contract.vested(schedule_id, MAX_UINT256) == MAX_UINT256 * (BPS - 1) // BPS + (
        remainder * (MAX_UINT256 - tge) // MAX_UINT256
    )
    assert contract.releasable(schedule_id) == MAX_UINT256 // BPS


@pytest.mark.parametrize("caller", ["deployer", "alice"])
def test_only_the_admin_grants_roles(vesting: Any, caller: str, deployer: str, alice: str) -> None:
    account = {"deployer": deployer, "alice": alice}[caller]
    with boa.env.prank(account), boa.reverts(MISSING_ROLE):
        vesting.grantRole(vesting.DEFAULT_ADMIN_ROLE(), account)
