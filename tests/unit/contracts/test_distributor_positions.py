"""RewardDistributor after the claim: vesting, release, early release, slashing,
sweeping expired epochs, the pool balance, and the gas of a claim at 100,000 leaves."""

from __future__ import annotations

from typing import Any

import boa
import pytest

from gpunet.protocol.units import ONE_TOKEN

from .distributor_fixtures import (
    BPS,
    CLAIM_WINDOW_S,
    FEE_VEST_S,
    PENALTY_BPS,
    POOL,
    REWARD_VEST_S,
    Params,
    System,
    claim,
    deploy_system,
    fund,
    now,
    post,
    tree_of,
    warp,
)

pytestmark = pytest.mark.slow

REWARD = 1_000 * ONE_TOKEN
FEE = 50 * 10**6
CLAIM_GAS_LIMIT = 70_000


@pytest.fixture
def system(distributor_system: System) -> System:
    return distributor_system


def balance(token: Any, account: str) -> int:
    return int(token.balanceOf(account))


def opened(system: System, account: str, reward: int = REWARD, fee: int = FEE) -> int:
    """Post epoch 1 with one leaf for ``account`` and claim it; returns the position id."""
    return claim(system, post(system, 1, [(account, reward, fee)]), account)


def release(system: System, account: str, position_id: int, early: bool = False) -> Any:
    function = system.distributor.release_early if early else system.distributor.release
    with boa.env.prank(account):
        return function(position_id)


# ---------------------------------------------------------------- release
def test_reward_vests_linearly_and_fee_after_its_cliff(system: System, alice: str) -> None:
    position_id = opened(system, alice)
    start = now()
    warp(start + REWARD_VEST_S // 10)
    assert release(system, alice, position_id) == (REWARD // 10, 0)
    warp(start + FEE_VEST_S)
    expected = REWARD * FEE_VEST_S // REWARD_VEST_S - REWARD // 10
    assert release(system, alice, position_id) == (expected, FEE)
    warp(start + REWARD_VEST_S)
    assert release(system, alice, position_id)[0] == REWARD - REWARD * FEE_VEST_S // REWARD_VEST_S
    assert (balance(system.token, alice), balance(system.usd, alice)) == (REWARD, FEE)
    assert system.distributor.position_ids(alice) == []
    assert system.distributor.pending_rewards(alice) == 0


def test_release_needs_something_vested(system: System, alice: str) -> None:
    position_id = opened(system, alice)
    with boa.reverts("distributor: nothing releasable"):
        release(system, alice, position_id)
    assert system.distributor.releasable(position_id) == (0, 0)


def test_release_needs_the_owner_and_a_position(system: System, alice: str, bob: str) -> None:
    position_id = opened(system, alice)
    warp(now() + REWARD_VEST_S)
    with boa.reverts("distributor: not your position"):
        release(system, bob, position_id)
    with boa.reverts("distributor: unknown position"):
        release(system, alice, position_id + 1)
    with boa.reverts("distributor: unknown position"):
        release(system, alice, position_id + 1, early=True)


def test_positions_close_in_any_order_and_stay_oldest_first(system: System, alice: str) -> None:
    ids = [claim(system, post(system, e, [(alice, REWARD, 0)]), alice) for e in range(1, 5)]
    warp(now() + REWARD_VEST_S)
    release(system, alice, ids[1])
    release(system, alice, ids[3])
    assert system.distributor.position_ids(alice) == [ids[0], ids[2]]
    release(system, alice, ids[0])
    assert system.distributor.position_ids(alice) == [ids[2]]


# ---------------------------------------------------------------- release_early
def test_release_early_pays_the_rest_less_the_penalty_on_the_locked_part(
    system: System, alice: str
) -> None:
    d = system.distributor
    position_id = opened(system, alice)
    pool_before = d.pool_balance()
    warp(now() + REWARD_VEST_S // 5)  # before the fee's cliff
    vested = REWARD // 5
    penalty = (REWARD - vested) * PENALTY_BPS // BPS
    assert release(system, alice, position_id, early=True) == (REWARD - penalty, 0)
    assert d.recycled() == penalty
    assert d.pool_balance() == pool_before + penalty
    assert balance(system.token, alice) == REWARD - penalty
    assert d.pending_rewards(alice) == 0
    assert d.position_ids(alice) == [position_id]  # the fee is still locked
    with boa.reverts("distributor: fees cannot be released early"):
        release(system, alice, position_id, early=True)
    warp(now() + FEE_VEST_S)
    assert release(system, alice, position_id, early=True) == (0, FEE)
    assert d.position_ids(alice) == []


def test_release_early_after_full_vesting_has_no_penalty(system: System, alice: str) -> None:
    position_id = opened(system, alice, fee=0)
    warp(now() + REWARD_VEST_S)
    assert release(system, alice, position_id, early=True) == (REWARD, 0)
    assert system.distributor.recycled() == 0
    with boa.reverts("distributor: unknown position"):
        release(system, alice, position_id + 7, early=True)


def test_release_early_of_a_finished_position_reverts(system: System, alice: str) -> None:
    position_id = opened(system, alice, fee=0)
    release(system, alice, position_id, early=True)
    with boa.reverts("distributor: nothing releasable"):
        release(system, alice, position_id, early=True)


def test_a_full_penalty_recycles_the_whole_locked_reward(alice: str) -> None:
    system = deploy_system(Params(penalty_bps=BPS))
    position_id = opened(system, alice, fee=0)
    assert release(system, alice, position_id, early=True) == (0, 0)
    assert system.distributor.recycled() == REWARD
    assert system.distributor.pool_balance() == POOL


# ---------------------------------------------------------------- slash_pending
def slash(system: System, account: str, amount: int) -> int:
    with boa.env.prank(system.staking):
        taken: int = system.distributor.slash_pending(account, amount)
    return taken


def test_slash_takes_oldest_positions_first_and_pays_staking(system: System, alice: str) -> None:
    d = system.distributor
    first = claim(system, post(system, 1, [(alice, REWARD, 0)]), alice)
    second = claim(system, post(system, 2, [(alice, REWARD, FEE)]), alice)
    assert slash(system, alice, REWARD + 5) == REWARD + 5
    assert balance(system.token, system.staking) == REWARD + 5
    assert d.position_ids(alice) == [second]
    assert d.positions(first).reward == 0
    assert d.positions(second).reward == REWARD - 5
    assert d.pending_rewards(alice) == REWARD - 5
    assert slash(system, alice, 10 * REWARD) == REWARD - 5
    assert d.position_ids(alice) == [second]  # its fee is untouched and still owed
    warp(now() + FEE_VEST_S)
    assert release(system, alice, second) == (0, FEE)


def test_slash_reaches_vested_but_unreleased_reward(system: System, alice: str) -> None:
    position_id = opened(system, alice, fee=0)
    warp(now() + REWARD_VEST_S // 2)
    release(system, alice, position_id)
    assert slash(system, alice, REWARD) == REWARD // 2
    with boa.reverts("distributor: nothing releasable"):
        release(system, alice, position_id)
    assert system.distributor.position_ids(alice) == []


def test_slash_of_an_account_without_rewards_takes_nothing(system: System, alice: str) -> None:
    assert slash(system, alice, REWARD) == 0
    assert slash(system, alice, 0) == 0
    assert balance(system.token, system.staking) == 0


def test_slash_after_partial_vesting_slows_later_releases(system: System, alice: str) -> None:
    position_id = opened(system, alice, fee=0)
    warp(now() + REWARD_VEST_S // 2)
    assert slash(system, alice, REWARD // 4) == REWARD // 4
    left = REWARD - REWARD // 4
    assert release(system, alice, position_id) == (left // 2, 0)
    warp(now() + REWARD_VEST_S)
    assert release(system, alice, position_id) == (left - left // 2, 0)


def test_slash_is_unavailable_until_staking_is_set(alice: str) -> None:
    system = deploy_system()
    with boa.env.prank(system.admin):
        system.distributor.set_staking("0x" + "00" * 20)
    with boa.env.prank("0x" + "00" * 20), boa.reverts("distributor: caller is not staking"):
        system.distributor.slash_pending(alice, 1)


# ---------------------------------------------------------------- sweep_expired
def test_sweep_recycles_unclaimed_rewards_and_fees_once(
    system: System, alice: str, bob: str
) -> None:
    d = system.distributor
    tree = post(system, 1, [(alice, REWARD, FEE), (bob, 2 * REWARD, 3 * FEE)])
    claim(system, tree, alice)
    with boa.env.prank(system.settler):
        with boa.reverts("distributor: epoch not expired"):
            d.sweep_expired(1)
        warp(now() + CLAIM_WINDOW_S + 1)
        d.sweep_expired(1)
        with boa.reverts("distributor: epoch already swept"):
            d.sweep_expired(1)
        with boa.reverts("distributor: unknown epoch"):
            d.sweep_expired(2)
    assert (d.recycled(), d.recycled_fees()) == (2 * REWARD, 3 * FEE)
    assert d.epochs(1).swept
    assert d.pool_balance() == POOL - REWARD
    with boa.reverts("distributor: epoch expired"):
        claim(system, tree, bob)


def test_swept_fees_can_be_posted_by_a_later_epoch(system: System, alice: str) -> None:
    d = system.distributor
    post(system, 1, [(alice, 0, FEE - 1)])
    fund(system, 1, 1)  # arrived after posting: it is recycled by the sweep too
    warp(now() + CLAIM_WINDOW_S + 1)
    with boa.env.prank(system.settler):
        d.sweep_expired(1)
        later = tree_of(2, [(alice, 0, FEE)])
        d.post_epoch(2, later.root, 0, FEE)
    assert d.recycled_fees() == 0
    position_id = claim(system, later, alice)
    warp(now() + FEE_VEST_S)
    assert release(system, alice, position_id) == (0, FEE)


# ---------------------------------------------------------------- gas
def _claim_gas(leaf_count: int) -> tuple[int, int]:
    """Gas of a claim from a fresh account in a tree of ``leaf_count`` leaves, measured in a
    separate environment so every slot starts cold, as in a real transaction."""
    accounts = [f"0x{i + 1:040x}" for i in range(leaf_count)]
    tree = tree_of(1, [(account, ONE_TOKEN, 0) for account in accounts])
    with boa.swap_env(boa.Env()):
        system = deploy_system(Params(reward_vest_s=0))
        with boa.env.prank(system.settler):
            system.distributor.post_epoch(1, tree.root, leaf_count * ONE_TOKEN, 0)
        gas = []
        for account in accounts[:2]:
            boa.env.reset_gas_used()
            claim(system, tree, account)
            gas.append(boa.env.get_gas_used())
        assert balance(system.token, accounts[1]) == ONE_TOKEN
    return len(tree.proof(accounts[1])), max(gas)


def test_a_direct_claim_at_100k_leaves_stays_under_the_gas_target() -> None:
    proof_length, gas = _claim_gas(100_000)
    assert proof_length == 17
    assert gas <= CLAIM_GAS_LIMIT
