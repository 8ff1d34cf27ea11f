"""RewardDistributor: deployment, roles, emission caps, posting epochs and claims."""

from __future__ import annotations

from typing import Any

import boa
import pytest

from gpunet.protocol.reward_tree import leaf_hash
from gpunet.protocol.units import ONE_TOKEN

from .distributor_fixtures import (
    BPS,
    CLAIM_WINDOW_S,
    FEE_VEST_S,
    MAX_AMOUNT,
    MISSING_ROLE,
    MONTH_S,
    POOL,
    REWARD_VEST_S,
    Params,
    System,
    claim,
    deploy_system,
    fund,
    load,
    now,
    post,
    reference_root,
    tree_of,
    warp,
)

pytestmark = pytest.mark.slow

REWARD = 1_000 * ONE_TOKEN
FEE = 50 * 10**6


@pytest.fixture
def system(distributor_system: System) -> System:
    return distributor_system


def balance(token: Any, account: str) -> int:
    return int(token.balanceOf(account))


def position(system: System, position_id: int) -> Any:
    return system.distributor.positions(position_id)


# ---------------------------------------------------------------- deployment, roles
def test_admin_holds_the_admin_role_and_the_deployer_none(system: System) -> None:
    d = system.distributor
    role = d.DEFAULT_ADMIN_ROLE()
    assert d.hasRole(role, system.admin)
    assert not d.hasRole(role, boa.env.eoa)
    assert d.SETTLER_ROLE() == boa.eval('keccak256("SETTLER_ROLE")')
    assert d.pool_balance() == POOL


@pytest.mark.parametrize(
    ("index", "reason"),
    [
        (0, "distributor: zero token"),
        (1, "distributor: zero fee token"),
        (2, "distributor: zero admin"),
    ],
)
def test_constructor_rejects_zero_addresses(system: System, index: int, reason: str) -> None:
    args: list[Any] = [system.token.address, system.usd.address, system.admin, 0, 0, 0, 0, 0]
    args[index] = "0x" + "00" * 20
    with boa.reverts(reason):
        load("RewardDistributor", *args)


def test_constructor_rejects_a_penalty_above_100_percent(system: System) -> None:
    with boa.reverts("distributor: penalty above 100%"):
        load(
            "RewardDistributor",
            system.token.address,
            system.usd.address,
            system.admin,
            0,
            0,
            0,
            BPS + 1,
            0,
        )


def _privileged_calls(system: System) -> list[tuple[str, tuple[Any, ...]]]:
    return [
        ("set_emission_caps", (0, [1])),
        ("set_staking", (system.staking,)),
        ("set_escrow", (system.escrow,)),
        ("seal", ()),
        ("post_epoch", (1, b"\x01" * 32, 0, 0)),
        ("sweep_expired", (1,)),
        ("fund_fees", (1, 0)),
    ]


def test_every_privileged_function_needs_its_role(system: System, alice: str) -> None:
    for name, args in _privileged_calls(system):
        with boa.env.prank(alice), boa.reverts(MISSING_ROLE):
            getattr(system.distributor, name)(*args)


def test_settler_cannot_configure_and_admin_cannot_post(system: System) -> None:
    with boa.env.prank(system.settler), boa.reverts(MISSING_ROLE):
        system.distributor.set_staking(system.settler)
    with boa.env.prank(system.admin), boa.reverts(MISSING_ROLE):
        system.distributor.post_epoch(1, b"\x01" * 32, 0, 0)


def test_only_staking_may_slash_pending(system: System, alice: str) -> None:
    for sender in (alice, system.admin, system.settler):
        with boa.env.prank(sender), boa.reverts("distributor: caller is not staking"):
            system.distributor.slash_pending(alice, 1)


# ---------------------------------------------------------------- emission caps, seal
def test_caps_must_not_decrease_and_must_exist(system: System) -> None:
    d = load(
        "RewardDistributor", system.token.address, system.usd.address, system.admin, 0, 0, 0, 0, 0
    )
    with boa.env.prank(system.admin):
        with boa.reverts("distributor: caps must not decrease"):
            d.set_emission_caps(0, [5, 7, 6])
        with boa.reverts("distributor: no caps"):
            d.set_emission_caps(0, [])
        with boa.reverts("distributor: caps leave a gap"):
            d.set_emission_caps(1, [5])
        d.set_emission_caps(0, [5, 7, 9])
        with boa.reverts("distributor: caps must not decrease"):
            d.set_emission_caps(3, [8])
        with boa.reverts("distributor: caps must not decrease"):
            d.set_emission_caps(1, [10])
        with boa.reverts("distributor: caps must not decrease"):
            d.set_emission_caps(1, [4])
    assert d.cap_months() == 3


def test_emission_cap_follows_months_from_tge(system: System) -> None:
    d, tge = system.distributor, system.tge
    with boa.env.prank(system.admin):
        d.set_emission_caps(0, [10, 20])
        d.set_emission_caps(2, [20, 35])  # a long schedule is written in batches
        d.set_emission_caps(1, [15])  # a batch may rewrite months already set
    assert [d.caps_by_month(m) for m in range(5)] == [10, 15, 20, 35, 0]
    assert d.cap_months() == 4
    assert d.emission_cap(tge - 1) == 0
    assert d.emission_cap(tge) == 10
    assert d.emission_cap(tge + MONTH_S - 1) == 10
    assert d.emission_cap(tge + MONTH_S) == 15
    assert d.emission_cap(tge + 4 * MONTH_S - 1) == 35
    assert d.emission_cap(tge + 600 * MONTH_S) == 35


def test_no_caps_means_nothing_can_be_posted(system: System, alice: str) -> None:
    d = load(
        "RewardDistributor", system.token.address, system.usd.address, system.admin, 0, 0, 0, 0, 0
    )
    assert d.emission_cap(now()) == 0
    with boa.env.prank(system.admin):
        d.grantRole(d.SETTLER_ROLE(), system.settler)
    with boa.env.prank(system.settler), boa.reverts("distributor: above the emission cap"):
        d.post_epoch(1, tree_of(1, [(alice, 1, 0)]).root, 1, 0)


def test_seal_freezes_caps_staking_and_escrow(system: System) -> None:
    d = system.distributor
    with boa.env.prank(system.admin):
        d.seal()
        assert d.sealed()
        for name, args in _privileged_calls(system)[:4]:
            with boa.reverts("distributor: sealed"):
                getattr(d, name)(*args)


def test_seal_needs_caps(system: System) -> None:
    d = load(
        "RewardDistributor", system.token.address, system.usd.address, system.admin, 0, 0, 0, 0, 0
    )
    with boa.env.prank(system.admin), boa.reverts("distributor: no caps"):
        d.seal()


def test_posting_is_bounded_by_the_cap_of_the_current_month(system: System, alice: str) -> None:
    d = system.distributor
    with boa.env.prank(system.admin):
        d.set_emission_caps(0, [100, 250])
    post(system, 1, [(alice, 60, 0)])
    tree = tree_of(2, [(alice, 41, 0)])
    with boa.env.prank(system.settler):
        with boa.reverts("distributor: above the emission cap"):
            d.post_epoch(2, tree.root, 41, 0)
        d.post_epoch(2, tree_of(2, [(alice, 40, 0)]).root, 40, 0)
    warp(system.tge + MONTH_S)
    post(system, 3, [(alice, 150, 0)])
    assert d.posted_rewards() == 250


def test_recycled_rewards_raise_the_headroom(system: System, alice: str) -> None:
    d = system.distributor
    with boa.env.prank(system.admin):
        d.set_emission_caps(0, [100])
    post(system, 1, [(alice, 100, 0)])
    warp(now() + CLAIM_WINDOW_S + 1)
    with boa.env.prank(system.settler):
        d.sweep_expired(1)
    assert d.recycled() == 100
    post(system, 2, [(alice, 100, 0)])
    assert d.pool_balance() == POOL - 100


# ---------------------------------------------------------------- post_epoch
def test_post_epoch_rejects_repeats_zero_roots_and_large_totals(system: System, alice: str) -> None:
    tree = post(system, 1, [(alice, REWARD, 0)])
    with boa.env.prank(system.settler):
        with boa.reverts("distributor: epoch already posted"):
            system.distributor.post_epoch(1, tree.root, 0, 0)
        with boa.reverts("distributor: zero root"):
            system.distributor.post_epoch(2, b"\x00" * 32, 0, 0)
        with boa.reverts("distributor: amount too large"):
            system.distributor.post_epoch(2, tree.root, MAX_AMOUNT + 1, 0)


def test_post_epoch_needs_funded_fees(system: System, alice: str) -> None:
    tree = tree_of(1, [(alice, 0, FEE)])
    fund(system, 1, FEE - 1)
    fund(system, 2, FEE)
    with boa.env.prank(system.settler), boa.reverts("distributor: fees not funded"):
        system.distributor.post_epoch(1, tree.root, 0, FEE)
    fund(system, 1, 1)
    with boa.env.prank(system.settler):
        system.distributor.post_epoch(1, tree.root, 0, FEE)
    assert system.distributor.fee_funded(1) == 0
    assert system.distributor.fee_funded(2) == FEE


def test_post_epoch_cannot_promise_more_than_the_pool(alice: str) -> None:
    system = deploy_system(caps=[POOL * 2])
    tree = tree_of(1, [(alice, POOL + 1, 0)])
    with boa.env.prank(system.settler), boa.reverts("distributor: pool too small"):
        system.distributor.post_epoch(1, tree.root, POOL + 1, 0)


def test_posting_reserves_the_rewards_from_the_pool(system: System, alice: str) -> None:
    post(system, 1, [(alice, REWARD, 0)])
    epoch = system.distributor.epochs(1)
    assert (epoch.reward_total, epoch.claimed_reward, epoch.posted_at) == (REWARD, 0, now())
    assert system.distributor.pool_balance() == POOL - REWARD


# ---------------------------------------------------------------- fund_fees
def test_fund_fees_needs_the_tokens_first(system: System) -> None:
    with boa.env.prank(system.escrow), boa.reverts("distributor: fees not received"):
        system.distributor.fund_fees(1, 1)


def test_settler_may_fund_fees_too(system: System) -> None:
    with boa.env.prank(system.admin):
        system.usd.transfer(system.distributor.address, FEE)
    with boa.env.prank(system.settler):
        system.distributor.fund_fees(4, FEE)
    assert system.distributor.fee_funded(4) == FEE
    assert system.distributor.fee_liabilities() == FEE


def test_fees_in_the_reward_token_are_never_promised_twice(alice: str) -> None:
    system = deploy_system(same_fee_token=True)
    d = system.distributor
    fund(system, 1, FEE)
    assert d.pool_balance() == POOL
    with boa.env.prank(system.escrow):
        d.fund_fees(1, 7)  # no transfer: the tokens now come out of the pool
        with boa.reverts("distributor: fees not received"):
            d.fund_fees(1, POOL)
    assert d.pool_balance() == POOL - 7
    tree = post(system, 2, [(alice, REWARD, 0)])
    claim(system, tree, alice)
    assert d.pool_balance() == POOL - 7 - REWARD


# ---------------------------------------------------------------- claim
def test_claim_opens_a_position_for_the_account(system: System, alice: str, bob: str) -> None:
    tree = post(system, 1, [(alice, REWARD, FEE), (bob, 2 * REWARD, 0)])
    position_id = claim(system, tree, alice)
    p = position(system, position_id)
    assert (p.owner, p.reward, p.reward_released, p.fee, p.fee_released, p.start) == (
        alice,
        REWARD,
        0,
        FEE,
        False,
        now(),
    )
    assert system.distributor.is_claimed(1, alice)
    assert not system.distributor.is_claimed(1, bob)
    assert system.distributor.position_ids(alice) == [position_id]
    assert system.distributor.pending_rewards(alice) == REWARD
    epoch = system.distributor.epochs(1)
    assert (epoch.claimed_reward, epoch.claimed_fee) == (REWARD, FEE)


def test_claim_for_another_account_pays_only_that_account(
    system: System, alice: str, bob: str
) -> None:
    tree = post(system, 1, [(alice, REWARD, 0)])
    position_id = claim(system, tree, alice, sender=bob)
    assert position(system, position_id).owner == alice
    assert system.distributor.position_ids(bob) == []
    warp(now() + REWARD_VEST_S)
    with boa.env.prank(bob), boa.reverts("distributor: not your position"):
        system.distributor.release(position_id)
    with boa.env.prank(alice):
        system.distributor.release(position_id)
    assert (balance(system.token, alice), balance(system.token, bob)) == (REWARD, 0)


def test_double_claim_reverts(system: System, alice: str) -> None:
    tree = post(system, 1, [(alice, REWARD, 0)])
    claim(system, tree, alice)
    with boa.reverts("distributor: already claimed"):
        claim(system, tree, alice)


def test_claim_of_an_unknown_epoch_reverts(system: System, alice: str) -> None:
    tree = tree_of(9, [(alice, REWARD, 0)])
    with boa.reverts("distributor: unknown epoch"):
        claim(system, tree, alice)


def test_claim_window_ends_exactly_at_its_last_second(system: System, alice: str, bob: str) -> None:
    tree = post(system, 1, [(alice, REWARD, 0), (bob, REWARD, 0)])
    warp(now() + CLAIM_WINDOW_S)
    claim(system, tree, alice)
    warp(now() + 1)
    with boa.reverts("distributor: epoch expired"):
        claim(system, tree, bob)


@pytest.mark.parametrize("change", ["reward", "fee", "epoch", "account", "proof"])
def test_claim_with_a_wrong_leaf_or_proof_reverts(
    system: System, alice: str, bob: str, carol: str, change: str
) -> None:
    tree = post(system, 1, [(alice, REWARD, FEE), (bob, REWARD, 0), (carol, 1, 0)])
    post(system, 2, [(alice, REWARD, FEE), (bob, REWARD, 0)])
    args: dict[str, Any] = {"epoch": 1, "account": alice, "reward": REWARD, "fee": FEE}
    proof = tree.proof(alice)
    if change == "proof":
        proof[0] = bytes(32)
    elif change == "account":
        args["account"] = carol
    else:
        args[change] += 1
    with boa.reverts("distributor: invalid proof"):
        system.distributor.claim(*args.values(), proof)


def test_a_tree_of_one_leaf_has_the_leaf_as_root_and_an_empty_proof(
    system: System, alice: str
) -> None:
    tree = post(system, 5, [(alice, REWARD, 0)])
    assert tree.root == leaf_hash(5, alice, REWARD, 0)
    assert tree.proof(alice) == []
    assert claim(system, tree, alice) > 0


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13])
def test_python_tree_contract_and_reference_agree(system: System, size: int) -> None:
    leaves = [(str(boa.env.generate_address()), (i + 1) * ONE_TOKEN, i * 7) for i in range(size)]
    tree = post(system, 3, leaves)
    assert tree.root == reference_root(3, leaves)
    for account, _, _ in leaves:
        claim(system, tree, account)
    assert system.distributor.epochs(3).claimed_reward == sum(r for _, r, _ in leaves)


def test_a_zero_leaf_is_marked_claimed_without_a_position(system: System, alice: str) -> None:
    tree = post(system, 1, [(alice, 0, 0)])
    assert claim(system, tree, alice) == 0
    assert system.distributor.is_claimed(1, alice)
    assert system.distributor.position_ids(alice) == []


def test_leaves_above_the_posted_total_cannot_be_claimed(system: System, alice: str) -> None:
    bad = tree_of(1, [(alice, MAX_AMOUNT + 1, 0)])
    with boa.env.prank(system.settler):
        system.distributor.post_epoch(1, bad.root, REWARD, 0)
    with boa.reverts("distributor: above the epoch total"):
        claim(system, bad, alice)
    huge = tree_of(2, [(alice, 0, 2**256 - 1)])
    fund(system, 2, FEE)
    with boa.env.prank(system.settler):
        system.distributor.post_epoch(2, huge.root, 0, FEE)
    with boa.reverts("distributor: above the epoch total"):
        claim(system, huge, alice)


def test_the_largest_packed_amount_round_trips(alice: str) -> None:
    system = deploy_system(caps=[MAX_AMOUNT], supply=2**256 - 1)
    with boa.env.prank(system.admin):
        system.token.transfer(system.distributor.address, MAX_AMOUNT - POOL)
    tree = post(system, 2**256 - 1, [(alice, MAX_AMOUNT, 0)])
    position_id = claim(system, tree, alice)
    assert position(system, position_id).reward == MAX_AMOUNT
    assert system.distributor.is_claimed(2**256 - 1, alice)
    warp(now() + REWARD_VEST_S)
    with boa.env.prank(alice):
        assert system.distributor.release(position_id) == (MAX_AMOUNT, 0)


def test_claims_pay_directly_when_nothing_vests(alice: str, bob: str) -> None:
    system = deploy_system(Params(reward_vest_s=0, fee_vest_s=0))
    tree = post(system, 1, [(alice, REWARD, 0), (bob, REWARD, FEE)])
    assert claim(system, tree, alice) == 0
    assert claim(system, tree, bob) == 0
    assert balance(system.token, alice) == REWARD
    assert (balance(system.token, bob), balance(system.usd, bob)) == (REWARD, FEE)
    assert system.distributor.reward_liabilities() == 0
    assert system.distributor.fee_liabilities() == 0


def test_a_locked_fee_still_opens_a_position_without_reward_vesting(alice: str) -> None:
    system = deploy_system(Params(reward_vest_s=0))
    tree = post(system, 1, [(alice, REWARD, FEE)])
    position_id = claim(system, tree, alice)
    assert position_id > 0
    with boa.env.prank(alice):
        assert system.distributor.release(position_id) == (REWARD, 0)
    warp(now() + FEE_VEST_S)
    with boa.env.prank(alice):
        assert system.distributor.release(position_id) == (0, FEE)
    assert system.distributor.position_ids(alice) == []
