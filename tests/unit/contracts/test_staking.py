"""Staking.vy: holder locks, reward streams, node collateral, slashing and roles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boa
import pytest
from eth_hash.auto import keccak

from gpunet.protocol.units import ONE_TOKEN

from .staking_fixtures import (
    BURN_ADDRESS,
    MAX_LOCK_S,
    MIN_LOCK_S,
    MISSING_ROLE,
    REWARD_VEST_S,
    UNSTAKE_DELAY_S,
    WEEK_S,
    StakingSystem,
    build_system,
    deploy_partner_token,
    deploy_staking,
    deploy_token,
    post_and_claim,
)

pytestmark = pytest.mark.slow

H100 = keccak(b"NVIDIA H100 80GB HBM3")
ZERO = "0x" + "00" * 20


@pytest.fixture(scope="module")
def base() -> Iterator[StakingSystem]:
    with boa.env.anchor():
        yield build_system()


@pytest.fixture
def s(base: StakingSystem) -> Iterator[StakingSystem]:
    with boa.env.anchor():
        yield base


def add_reward(s: StakingSystem, symbol: str = "PTR") -> Any:
    """A registered partner token whose supply (and approval) sits with the admin."""
    reward = deploy_partner_token(s.admin, symbol)
    s.staking.add_reward_token(reward.address, sender=s.admin)
    reward.approve(s.staking.address, 2**256 - 1, sender=s.admin)
    return reward


# Holder locks and the multiplier


def test_multiplier_is_linear_from_one_to_four_x(s: StakingSystem) -> None:
    st = s.staking
    assert st.multiplier_bps(MIN_LOCK_S) == 10_000
    assert st.multiplier_bps(MAX_LOCK_S) == 40_000
    assert st.multiplier_bps((MIN_LOCK_S + MAX_LOCK_S) // 2) == 25_000
    with boa.reverts("staking: lock too short"):
        st.multiplier_bps(MIN_LOCK_S - 1)
    with boa.reverts("staking: lock too long"):
        st.multiplier_bps(MAX_LOCK_S + 1)


def test_lock_records_weight_and_moves_tokens(s: StakingSystem) -> None:
    user, st = s.users[0], s.staking
    before = s.token.balanceOf(user)
    lock_id = st.lock(1000 * ONE_TOKEN, MAX_LOCK_S, sender=user)
    assert lock_id == 0
    owner, amount, weight, end = st.locks(lock_id)
    assert (owner, amount, weight) == (user, 1000 * ONE_TOKEN, 4000 * ONE_TOKEN)
    assert end == boa.env.evm.patch.timestamp + MAX_LOCK_S
    assert st.lock_ids(user) == [0]
    assert st.weight_of(user) == st.total_weight() == 4000 * ONE_TOKEN
    assert s.token.balanceOf(user) == before - 1000 * ONE_TOKEN
    assert st.staked_total() == s.token.balanceOf(st.address) == 1000 * ONE_TOKEN


def test_lock_rejects_zero_and_bad_durations(s: StakingSystem) -> None:
    user = s.users[0]
    with boa.reverts("staking: zero amount"):
        s.staking.lock(0, WEEK_S, sender=user)
    with boa.reverts("staking: lock too short"):
        s.staking.lock(1, MIN_LOCK_S - 1, sender=user)
    with boa.reverts("staking: lock too long"):
        s.staking.lock(1, MAX_LOCK_S + 1, sender=user)


def test_one_wei_lock_has_one_weight(s: StakingSystem) -> None:
    lock_id = s.staking.lock(1, MAX_LOCK_S, sender=s.users[0])
    assert s.staking.locks(lock_id)[2] == 4
    lock_id = s.staking.lock(1, MIN_LOCK_S, sender=s.users[0])
    assert s.staking.locks(lock_id)[2] == 1


def test_unlock_only_by_owner_after_end(s: StakingSystem) -> None:
    a, b, st = s.users[0], s.users[1], s.staking
    first = st.lock(5 * ONE_TOKEN, WEEK_S, sender=a)
    second = st.lock(7 * ONE_TOKEN, WEEK_S, sender=a)
    with boa.reverts("staking: still locked"):
        st.unlock(first, sender=a)
    boa.env.time_travel(seconds=WEEK_S)
    with boa.reverts("staking: not your lock"):
        st.unlock(first, sender=b)
    before = s.token.balanceOf(a)
    assert st.unlock(first, sender=a) == 5 * ONE_TOKEN
    assert s.token.balanceOf(a) == before + 5 * ONE_TOKEN
    assert st.lock_ids(a) == [second]
    assert st.weight_of(a) == st.total_weight() == 7 * ONE_TOKEN
    with boa.reverts("staking: lock already closed"):
        st.unlock(first, sender=a)
    with boa.reverts("staking: not your lock"):
        st.unlock(99, sender=a)


def test_at_most_128_open_locks(s: StakingSystem) -> None:
    for _ in range(128):
        s.staking.lock(1, WEEK_S, sender=s.users[0])
    with boa.reverts("staking: too many locks"):
        s.staking.lock(1, WEEK_S, sender=s.users[0])
    boa.env.time_travel(seconds=WEEK_S)
    s.staking.unlock(5, sender=s.users[0])
    s.staking.lock(1, WEEK_S, sender=s.users[0])
    assert len(s.staking.lock_ids(s.users[0])) == 128


def test_whole_supply_at_max_multiplier_does_not_overflow(s: StakingSystem) -> None:
    reward = add_reward(s)
    whale = boa.env.generate_address("whale")
    everything = s.token.balanceOf(s.admin)
    s.give(whale, everything)
    s.staking.lock(everything, MAX_LOCK_S, sender=whale)
    funded = reward.balanceOf(s.admin)
    s.staking.fund(reward.address, funded, MAX_LOCK_S, sender=s.admin)
    boa.env.time_travel(seconds=MAX_LOCK_S)
    paid = s.staking.claim_rewards(reward.address, sender=whale)
    assert 0 <= funded - paid <= 2 + everything * 4 // 10**18


def test_weight_must_fit_128_bits(s: StakingSystem) -> None:
    holder = boa.env.generate_address("holder")
    huge = deploy_token(holder, supply=2**130)
    staking = deploy_staking(huge.address, s.admin, ZERO, BURN_ADDRESS)
    huge.approve(staking.address, 2**256 - 1, sender=holder)
    limit = 2**128 - 1
    with boa.reverts("staking: amount too large"):
        staking.lock(limit // 4 + 1, MAX_LOCK_S, sender=holder)
    lock_id = staking.lock(limit // 4, MAX_LOCK_S, sender=holder)
    assert staking.locks(lock_id)[1:3] == (limit // 4, limit // 4 * 4)
    with boa.reverts("staking: amount too large"):
        staking.lock(limit + 1, MIN_LOCK_S, sender=holder)


def test_funding_total_must_fit_128_bits(s: StakingSystem) -> None:
    huge = deploy_token(s.admin, supply=2**130, symbol="HUGE")
    s.staking.add_reward_token(huge.address, sender=s.admin)
    huge.approve(s.staking.address, 2**256 - 1, sender=s.admin)
    with boa.reverts("staking: amount too large"):
        s.staking.fund(huge.address, 2**128, WEEK_S, sender=s.admin)
    s.staking.fund(huge.address, 2**128 - 1, WEEK_S, sender=s.admin)
    s.staking.lock(1, MIN_LOCK_S, sender=s.users[0])
    boa.env.time_travel(seconds=2 * WEEK_S)
    assert (
        s.staking.claim_rewards(huge.address, sender=s.users[0]) == (2**128 - 1) // WEEK_S * WEEK_S
    )


# Reward streams


def test_six_decimal_rewards_survive_the_whole_supply_at_4x(s: StakingSystem) -> None:
    usd = deploy_partner_token(s.admin, "USDC", decimals=6)
    s.staking.add_reward_token(usd.address, sender=s.admin)
    usd.approve(s.staking.address, 2**256 - 1, sender=s.admin)
    whale, minnow = boa.env.generate_address("whale"), s.users[0]
    s.give(whale, s.token.balanceOf(s.admin))
    s.staking.lock(s.token.balanceOf(whale), MAX_LOCK_S, sender=whale)
    s.staking.lock(ONE_TOKEN, MIN_LOCK_S, sender=minnow)
    s.staking.fund(usd.address, 1_000 * 10**6, WEEK_S, sender=s.admin)
    rate = s.staking.reward_data(usd.address)[0]
    for _ in range(60):
        boa.env.time_travel(seconds=60)
        s.staking.claim_rewards(usd.address, sender=whale)
    assert rate * 3600 - 60 <= usd.balanceOf(whale) <= rate * 3600
    assert s.staking.earned(minnow, usd.address) == 0


def test_single_staker_earns_the_whole_stream(s: StakingSystem) -> None:
    reward, st, user = add_reward(s), s.staking, s.users[0]
    st.lock(100 * ONE_TOKEN, WEEK_S, sender=user)
    st.fund(reward.address, 7_000 * ONE_TOKEN, WEEK_S, sender=s.admin)
    rate, period_end, _, updated_at = st.reward_data(reward.address)
    assert rate == 7_000 * ONE_TOKEN // WEEK_S
    assert period_end - updated_at == WEEK_S
    boa.env.time_travel(seconds=WEEK_S // 2)
    assert st.earned(user, reward.address) == rate * (WEEK_S // 2)
    boa.env.time_travel(seconds=WEEK_S)
    paid = st.claim_rewards(reward.address, sender=user)
    assert paid == rate * WEEK_S == reward.balanceOf(user)
    assert st.idle_rewards(reward.address) == 7_000 * ONE_TOKEN - rate * WEEK_S
    assert st.claim_rewards(reward.address, sender=user) == 0


def test_rewards_split_by_weight(s: StakingSystem) -> None:
    reward, st = add_reward(s), s.staking
    a, b = s.users[0], s.users[1]
    st.lock(300 * ONE_TOKEN, MIN_LOCK_S, sender=a)
    st.lock(100 * ONE_TOKEN, MAX_LOCK_S, sender=b)
    st.fund(reward.address, 700 * ONE_TOKEN, WEEK_S, sender=s.admin)
    boa.env.time_travel(seconds=2 * WEEK_S)
    earned_a, earned_b = st.earned(a, reward.address), st.earned(b, reward.address)
    total = st.reward_data(reward.address)[0] * WEEK_S
    assert total - 2 <= earned_a + earned_b <= total
    assert abs(earned_a * 4 - earned_b * 3) <= 7


def test_weight_change_checkpoints_earlier_rewards(s: StakingSystem) -> None:
    reward, st = add_reward(s), s.staking
    a, b = s.users[0], s.users[1]
    st.lock(ONE_TOKEN, WEEK_S, sender=a)
    st.fund(reward.address, 1_000 * ONE_TOKEN, 10 * WEEK_S, sender=s.admin)
    boa.env.time_travel(seconds=WEEK_S)
    alone = st.earned(a, reward.address)
    st.lock(ONE_TOKEN, WEEK_S, sender=b)
    assert st.earned(a, reward.address) == alone
    assert st.earned(b, reward.address) == 0
    boa.env.time_travel(seconds=WEEK_S)
    st.unlock(0, sender=a)
    half = st.earned(a, reward.address) - alone
    boa.env.time_travel(seconds=WEEK_S)
    assert st.earned(a, reward.address) == alone + half
    assert abs(half - alone // 2) <= 1


def test_several_reward_tokens_and_claim_all(s: StakingSystem) -> None:
    st, user = s.staking, s.users[0]
    tokens = [add_reward(s, f"R{i}") for i in range(3)]
    st.lock(ONE_TOKEN, WEEK_S, sender=user)
    for i, reward in enumerate(tokens):
        st.fund(reward.address, (i + 1) * WEEK_S * 1000, WEEK_S, sender=s.admin)
    boa.env.time_travel(seconds=WEEK_S)
    st.claim_all(sender=user)
    assert [t.balanceOf(user) for t in tokens] == [(i + 1) * WEEK_S * 1000 for i in range(3)]
    assert st.reward_tokens() == [t.address for t in tokens]


def test_staked_token_can_be_a_reward_token(s: StakingSystem) -> None:
    st, user = s.staking, s.users[0]
    st.add_reward_token(s.token.address, sender=s.admin)
    s.token.approve(st.address, 2**256 - 1, sender=s.admin)
    st.lock(ONE_TOKEN, WEEK_S, sender=user)
    st.fund(s.token.address, WEEK_S * 10, WEEK_S, sender=s.admin)
    boa.env.time_travel(seconds=WEEK_S)
    st.unlock(0, sender=user)
    assert st.claim_rewards(s.token.address, sender=user) == WEEK_S * 10
    assert s.token.balanceOf(st.address) == st.staked_total() == 0


def test_funding_mid_period_rolls_leftover_in(s: StakingSystem) -> None:
    reward, st = add_reward(s), s.staking
    st.lock(ONE_TOKEN, WEEK_S, sender=s.users[0])
    st.fund(reward.address, WEEK_S * 100, WEEK_S, sender=s.admin)
    boa.env.time_travel(seconds=WEEK_S // 2)
    with boa.reverts("staking: funding would lower the rate"):
        st.fund(reward.address, 1, 10 * WEEK_S, sender=s.admin)
    st.fund(reward.address, WEEK_S * 150, WEEK_S, sender=s.admin)
    assert st.reward_data(reward.address)[0] == 200
    boa.env.time_travel(seconds=2 * WEEK_S)
    assert st.earned(s.users[0], reward.address) == WEEK_S * 250


def test_empty_period_rolls_into_next_funding(s: StakingSystem) -> None:
    reward, st = add_reward(s), s.staking
    st.fund(reward.address, WEEK_S * 10, WEEK_S, sender=s.admin)
    boa.env.time_travel(seconds=WEEK_S // 2)
    st.lock(ONE_TOKEN, WEEK_S, sender=s.users[0])
    boa.env.time_travel(seconds=WEEK_S)
    assert st.earned(s.users[0], reward.address) == WEEK_S * 5
    st.fund(reward.address, WEEK_S * 10, WEEK_S, sender=s.admin)
    assert st.idle_rewards(reward.address) == 0
    boa.env.time_travel(seconds=WEEK_S)
    assert st.earned(s.users[0], reward.address) == WEEK_S * 20


def test_fund_rejects_bad_input(s: StakingSystem) -> None:
    reward, st = add_reward(s), s.staking
    other = deploy_partner_token(s.admin, "NOP")
    with boa.reverts("staking: unknown reward token"):
        st.fund(other.address, 10, 1, sender=s.admin)
    with boa.reverts("staking: unknown reward token"):
        st.claim_rewards(other.address, sender=s.admin)
    with boa.reverts("staking: zero duration"):
        st.fund(reward.address, 10, 0, sender=s.admin)
    with boa.reverts("staking: zero amount"):
        st.fund(reward.address, 0, 1, sender=s.admin)
    with boa.reverts("staking: reward rate is zero"):
        st.fund(reward.address, WEEK_S - 1, WEEK_S, sender=s.admin)


def test_reward_token_registry_limits(s: StakingSystem) -> None:
    tokens = [add_reward(s, f"R{i}") for i in range(8)]
    with boa.reverts("staking: reward token exists"):
        s.staking.add_reward_token(tokens[0].address, sender=s.admin)
    with boa.reverts("staking: too many reward tokens"):
        s.staking.add_reward_token(s.token.address, sender=s.admin)
    with boa.reverts("staking: zero address"):
        s.staking.add_reward_token(ZERO, sender=s.admin)


# Node collateral


def test_collateral_requirement_by_gpu_class(s: StakingSystem) -> None:
    st, node = s.staking, s.users[0]
    assert not st.is_collateralized(node, H100)
    st.set_requirement(H100, 5_000 * ONE_TOKEN, sender=s.admin)
    assert st.required_collateral(H100) == 5_000 * ONE_TOKEN
    st.stake_collateral(4_999 * ONE_TOKEN, sender=node)
    assert not st.is_collateralized(node, H100)
    st.stake_collateral(ONE_TOKEN, sender=node)
    assert st.collateral_of(node) == 5_000 * ONE_TOKEN
    assert st.is_collateralized(node, H100)
    assert st.weight_of(node) == 0
    with boa.reverts("staking: zero amount"):
        st.stake_collateral(0, sender=node)


def test_unstake_waits_180_days(s: StakingSystem) -> None:
    st, node = s.staking, s.users[0]
    st.stake_collateral(100, sender=node)
    with boa.reverts("staking: not enough collateral"):
        st.request_unstake(101, sender=node)
    with boa.reverts("staking: zero amount"):
        st.request_unstake(0, sender=node)
    with boa.reverts("staking: nothing to withdraw"):
        st.withdraw_unstaked(sender=node)
    st.request_unstake(60, sender=node)
    now = boa.env.evm.patch.timestamp
    assert st.pending_unstake(node) == (60, now + UNSTAKE_DELAY_S)
    assert (st.collateral_of(node), st.staked_total()) == (40, 100)
    boa.env.time_travel(seconds=UNSTAKE_DELAY_S - 1)
    with boa.reverts("staking: unstake not ready"):
        st.withdraw_unstaked(sender=node)
    st.request_unstake(40, sender=node)
    boa.env.time_travel(seconds=1)
    with boa.reverts("staking: unstake not ready"):
        st.withdraw_unstaked(sender=node)
    boa.env.time_travel(seconds=UNSTAKE_DELAY_S)
    before = s.token.balanceOf(node)
    assert st.withdraw_unstaked(sender=node) == 100
    assert s.token.balanceOf(node) == before + 100
    assert st.staked_total() == s.token.balanceOf(st.address) == 0


# Slashing


def stake_everywhere(s: StakingSystem, account: str, rewards: int = 10) -> None:
    """Rewards at the distributor, collateral, a pending unstake and two locks."""
    s.token.transfer(s.distributor.address, rewards, sender=s.admin)
    s.distributor.credit(account, rewards)
    s.staking.stake_collateral(30, sender=account)
    s.staking.request_unstake(10, sender=account)
    s.staking.lock(40, WEEK_S, sender=account)
    s.staking.lock(60, MAX_LOCK_S, sender=account)


def test_slash_takes_rewards_then_collateral_then_unstake_then_locks(s: StakingSystem) -> None:
    st, victim, bystander = s.staking, s.users[0], s.users[1]
    stake_everywhere(s, victim)
    stake_everywhere(s, bystander)
    weight_before = st.weight_of(bystander)
    assert st.slash(victim, 25, "downtime", sender=s.slasher) == 25
    assert s.distributor.pending_rewards(victim) == 0
    assert st.collateral_of(victim) == 5
    assert st.slash(victim, 20, "bad spec", sender=s.slasher) == 20
    assert (st.collateral_of(victim), st.pending_unstake(victim)[0]) == (0, 0)
    assert st.locks(0) == (victim, 35, 35, st.locks(0)[3])
    assert st.slash(victim, 55, "fraud", sender=s.slasher) == 55
    assert st.lock_ids(victim) == [1]
    assert st.locks(1)[1:3] == (40, st.multiplier_bps(MAX_LOCK_S) * 40 // 10_000)
    assert s.token.balanceOf(s.sink) == 100
    assert st.weight_of(bystander) == weight_before
    assert st.collateral_of(bystander) == 20
    assert s.distributor.pending_rewards(bystander) == 10
    assert s.token.balanceOf(st.address) == st.staked_total()


def test_slash_event_reports_shortfall(s: StakingSystem) -> None:
    st, victim = s.staking, s.users[0]
    stake_everywhere(s, victim)
    assert st.slash(victim, 10**30, "malicious", sender=s.slasher) == 140
    event = st.get_logs()[-1]
    assert type(event).__name__ == "Slashed"
    assert (event.requested, event.from_rewards, event.from_stake) == (10**30, 10, 130)
    assert event.reason == "malicious"
    assert st.lock_ids(victim) == []
    assert st.weight_of(victim) == st.total_weight() == 0
    assert st.slash(victim, 1, "nothing left", sender=s.slasher) == 0
    with boa.reverts("staking: zero amount"):
        st.slash(victim, 0, "zero", sender=s.slasher)


def test_slash_keeps_rewards_earned_before_it(s: StakingSystem) -> None:
    reward, st, victim = add_reward(s), s.staking, s.users[0]
    st.lock(ONE_TOKEN, WEEK_S, sender=victim)
    st.lock(ONE_TOKEN, WEEK_S, sender=s.users[1])
    st.fund(reward.address, WEEK_S * 100, 2 * WEEK_S, sender=s.admin)
    boa.env.time_travel(seconds=WEEK_S)
    st.slash(victim, ONE_TOKEN // 2, "downtime", sender=s.slasher)
    boa.env.time_travel(seconds=WEEK_S)
    assert st.earned(victim, reward.address) == WEEK_S * 25 + WEEK_S * 50 // 3
    assert abs(st.earned(s.users[1], reward.address) - WEEK_S * 25 - WEEK_S * 100 // 3) <= 1


@pytest.fixture(scope="module")
def real_base() -> Iterator[StakingSystem]:
    with boa.env.anchor():
        yield build_system(real_distributor=True)


@pytest.fixture
def real(real_base: StakingSystem) -> Iterator[StakingSystem]:
    with boa.env.anchor():
        yield real_base


def test_slash_takes_unreleased_rewards_from_the_real_distributor(real: StakingSystem) -> None:
    st, dist, victim, bystander = real.staking, real.distributor, real.users[0], real.users[1]
    post_and_claim(real, 1, victim, 100 * ONE_TOKEN)
    post_and_claim(real, 2, bystander, 70 * ONE_TOKEN)
    st.stake_collateral(50 * ONE_TOKEN, sender=victim)
    boa.env.time_travel(seconds=REWARD_VEST_S // 2)
    assert dist.pending_rewards(victim) == 100 * ONE_TOKEN
    got = st.slash(victim, 120 * ONE_TOKEN, "fraud", sender=real.slasher)
    assert got == 120 * ONE_TOKEN
    event = st.get_logs()[-1]
    assert (event.from_rewards, event.from_stake) == (100 * ONE_TOKEN, 20 * ONE_TOKEN)
    assert dist.pending_rewards(victim) == 0
    assert dist.pending_rewards(bystander) == 70 * ONE_TOKEN
    assert st.collateral_of(victim) == 30 * ONE_TOKEN
    assert real.token.balanceOf(real.sink) == 120 * ONE_TOKEN
    assert real.token.balanceOf(st.address) == st.staked_total()
    with boa.reverts("distributor: caller is not staking"):
        dist.slash_pending(bystander, 1, sender=real.slasher)


def test_slash_without_distributor(s: StakingSystem) -> None:
    staking = deploy_staking(s.token.address, s.admin, ZERO, BURN_ADDRESS)
    staking.grantRole(staking.SLASHER_ROLE(), s.slasher, sender=s.admin)
    s.give(s.users[0], 0, spender=staking)
    staking.stake_collateral(50, sender=s.users[0])
    before = s.token.balanceOf(BURN_ADDRESS)
    assert staking.slash(s.users[0], 80, "downtime", sender=s.slasher) == 50
    assert s.token.balanceOf(BURN_ADDRESS) == before + 50


# Roles and construction


def privileged_calls(s: StakingSystem) -> dict[str, tuple[Any, ...]]:
    """Every role-gated function with valid arguments."""
    slasher_role = s.staking.SLASHER_ROLE()
    return {
        "set_requirement": (H100, 1),
        "add_reward_token": (s.token.address,),
        "slash": (s.users[1], 1, "reason"),
        "grantRole": (slasher_role, s.users[0]),
        "revokeRole": (slasher_role, s.slasher),
        "set_role_admin": (slasher_role, keccak(b"OTHER_ROLE")),
    }


@pytest.mark.parametrize(
    "name",
    ["set_requirement", "add_reward_token", "slash", "grantRole", "revokeRole", "set_role_admin"],
)
def test_privileged_function_needs_its_role(s: StakingSystem, name: str) -> None:
    args = privileged_calls(s)[name]
    function = getattr(s.staking, name)
    with boa.reverts(MISSING_ROLE):
        function(*args, sender=s.users[0])
    holder = s.slasher if name == "slash" else s.admin
    if name == "slash":
        with boa.reverts(MISSING_ROLE):
            function(*args, sender=s.admin)
    function(*args, sender=holder)


def test_deployer_keeps_no_role(s: StakingSystem) -> None:
    admin_role = s.staking.DEFAULT_ADMIN_ROLE()
    assert s.staking.hasRole(admin_role, s.admin)
    assert not s.staking.hasRole(admin_role, boa.env.eoa)
    assert s.staking.SLASHER_ROLE() == keccak(b"SLASHER_ROLE")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("token", ZERO, "staking: zero address"),
        ("admin", ZERO, "staking: zero address"),
        ("sink", ZERO, "staking: zero address"),
        ("max_lock_s", MIN_LOCK_S, "staking: invalid lock range"),
        ("max_lock_s", 2**64 + 1, "staking: invalid lock range"),
        ("max_multiplier_bps", 9_999, "staking: multiplier below 1x"),
    ],
)
def test_constructor_validates(s: StakingSystem, field: str, value: Any, message: str) -> None:
    token, admin, sink = s.token.address, s.admin, BURN_ADDRESS
    overrides: dict[str, int] = {}
    if field == "token":
        token = value
    elif field == "admin":
        admin = value
    elif field == "sink":
        sink = value
    else:
        overrides[field] = value
    with boa.reverts(message):
        deploy_staking(token, admin, ZERO, sink, **overrides)
