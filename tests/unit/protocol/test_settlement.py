from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpunet.errors import ValidationError
from gpunet.protocol.reputation import PRIOR, Reputation, reward_weight
from gpunet.protocol.reward_tree import RewardLeaf, leaf_hash, verify_proof
from gpunet.protocol.settlement import (
    CheckerWork,
    EpochWork,
    NodeWork,
    Settlement,
    StakeSlash,
    reputation_bps,
    settle_epoch,
    split_budget,
)
from gpunet.protocol.settlement_budget import EpochBudget

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
CAROL = "0x" + "c0" * 20
DAVE = "0x" + "d0" * 20
ACCOUNTS = [f"0x{i:040x}" for i in range(1, 9)]
HALF_UNIT: Any = {ALICE: 1.5}


def rewards(result: Settlement) -> dict[str, int]:
    return {leaf.account: leaf.reward for leaf in result.leaves}


def test_the_documented_example() -> None:
    """The worked example of docs/settlement.md, to the base unit."""
    work = EpochWork(
        epoch=7,
        budget=EpochBudget(capacity=1_000, delivery=500, checkers=100),
        carry=EpochBudget(capacity=1, delivery=0, checkers=0),
        nodes=[
            NodeWork(ALICE, capacity_units=100, reputation_bps=8_000, eligible=True),
            NodeWork(ALICE, capacity_units=45, reputation_bps=6_000, eligible=True),
            NodeWork(BOB, capacity_units=100, reputation_bps=5_000, eligible=True),
            NodeWork(CAROL, capacity_units=100, reputation_bps=9_000, eligible=False),
        ],
        delivery_gpu_seconds={ALICE: 3_600, BOB: 7_200},
        checkers=[CheckerWork(DAVE, correct_checks=30), CheckerWork(CAROL, 10, barred=True)],
        fees={BOB: 2_500, CAROL: 40},
        penalties={BOB: 700},
    )
    result = settle_epoch(work)
    # Capacity weights: Alice 800,000 + 270,000 = 1,070,000; Bob 500,000; W = 1,570,000.
    # Alice 1001 * 1,070,000 // 1,570,000 = 682; Bob 1001 * 500,000 // 1,570,000 = 318.
    # Delivery: Alice 500 * 1/3 -> 166, Bob 333. Checkers: Dave all 100.
    # Bob's penalty 700 takes his 318 + 333 = 651 and leaves a 49 slash.
    assert result.leaves == (
        RewardLeaf(ALICE, 682 + 166, 0),
        RewardLeaf(BOB, 0, 2_500),
        RewardLeaf(CAROL, 0, 40),
        RewardLeaf(DAVE, 100, 0),
    )
    assert result.slashes == (StakeSlash(BOB, 49),)
    assert result.paid == EpochBudget(682, 166, 100)
    assert result.dust == EpochBudget(1, 1, 0)
    assert result.forfeited == EpochBudget(318, 333, 0)
    assert result.carry == EpochBudget(319, 334, 0)
    assert (result.reward_total, result.fee_total) == (948, 2_540)
    tree = result.tree()
    assert tree is not None
    assert tree.root.hex() == "245456b7b954b7c172689f6d09a7f02d28c89babdfa3d5e81063a282dcc87b65"
    assert tree.leaf_hash(ALICE).hex().startswith("dde56a1d")
    assert [p.hex()[:8] for p in tree.proof(ALICE)] == ["f600876a", "5baf6712"]


def test_an_operators_nodes_merge_and_round_once() -> None:
    # Per node, 10 * 1 // 3 floors to 3 three times (9); per account it is 10 * 3 // 4 = 7.
    nodes = [NodeWork(ALICE, 1, 10_000, True) for _ in range(3)] + [NodeWork(BOB, 1, 10_000, True)]
    result = settle_epoch(EpochWork(epoch=1, budget=EpochBudget(capacity=10), nodes=nodes))
    assert rewards(result) == {ALICE: 7, BOB: 2}
    assert result.dust.capacity == 1


def test_ineligible_and_zero_reputation_nodes_earn_nothing() -> None:
    nodes = [
        NodeWork(ALICE, 100, 10_000, eligible=False),
        NodeWork(BOB, 100, 0, eligible=True),
        NodeWork(CAROL, 1, 1, eligible=True),
    ]
    result = settle_epoch(EpochWork(epoch=1, budget=EpochBudget(capacity=999), nodes=nodes))
    assert rewards(result) == {CAROL: 999}


def test_barred_checkers_earn_nothing() -> None:
    checkers = [CheckerWork(ALICE, 5, barred=True), CheckerWork(BOB, 1)]
    result = settle_epoch(EpochWork(epoch=1, budget=EpochBudget(checkers=50), checkers=checkers))
    assert rewards(result) == {BOB: 50}


def test_a_part_nobody_earned_carries_its_whole_budget() -> None:
    work = EpochWork(
        epoch=3,
        budget=EpochBudget(capacity=100, delivery=200, checkers=300),
        carry=EpochBudget(capacity=1, delivery=2, checkers=3),
        nodes=[NodeWork(ALICE, 10, 10_000, eligible=False)],
        checkers=[CheckerWork(BOB, 0)],
    )
    result = settle_epoch(work)
    assert result.leaves == ()
    assert result.tree() is None
    assert result.carry == EpochBudget(101, 202, 303)


def test_fees_pass_through_untouched_by_penalties() -> None:
    work = EpochWork(
        epoch=2,
        budget=EpochBudget(delivery=100),
        delivery_gpu_seconds={ALICE: 1},
        fees={ALICE: 70, BOB: 30},
        penalties={ALICE: 10**6},
    )
    result = settle_epoch(work)
    assert result.leaves == (RewardLeaf(ALICE, 0, 70), RewardLeaf(BOB, 0, 30))
    assert result.slashes == (StakeSlash(ALICE, 10**6 - 100),)
    assert result.fee_total == 100


def test_a_penalty_below_the_reward_only_reduces_it() -> None:
    work = EpochWork(
        epoch=2,
        budget=EpochBudget(capacity=100, checkers=50),
        nodes=[NodeWork(ALICE, 1, 10_000, True)],
        checkers=[CheckerWork(ALICE, 1)],
        penalties={ALICE: 120, BOB: 5},
    )
    result = settle_epoch(work)
    assert rewards(result) == {ALICE: 30}
    assert result.forfeited == EpochBudget(capacity=100, checkers=20)
    assert result.slashes == (StakeSlash(BOB, 5),)


def test_the_tree_of_a_settlement_proves_every_leaf() -> None:
    nodes = [NodeWork(a, 10 * i + 1, 7_000, True) for i, a in enumerate(ACCOUNTS)]
    result = settle_epoch(EpochWork(epoch=11, budget=EpochBudget(capacity=10**24), nodes=nodes))
    tree = result.tree()
    assert tree is not None
    for leaf in result.leaves:
        hashed = leaf_hash(11, leaf.account, leaf.reward, leaf.fee)
        assert verify_proof(tree.root, hashed, tree.proof(leaf.account))


def test_accounts_ignore_case_in_every_input() -> None:
    upper = ALICE.upper().replace("0X", "0x")
    work = EpochWork(
        epoch=1,
        budget=EpochBudget(capacity=10, delivery=10),
        nodes=[NodeWork(upper, 1, 10_000, True), NodeWork(ALICE, 1, 10_000, True)],
        delivery_gpu_seconds={upper: 5},
        fees={upper: 3},
    )
    assert settle_epoch(work).leaves == (RewardLeaf(ALICE, 20, 3),)


@pytest.mark.parametrize("field", ["delivery_gpu_seconds", "fees", "penalties"])
def test_an_account_twice_in_a_mapping_is_an_error(field: str) -> None:
    amounts: dict[str, Any] = {ALICE: 1, ALICE.upper().replace("0X", "0x"): 2}
    changes: dict[str, Any] = {field: amounts}
    work = replace(EpochWork(epoch=1, budget=EpochBudget()), **changes)
    with pytest.raises(ValidationError, match=field):
        settle_epoch(work)


def test_a_checker_twice_is_an_error() -> None:
    work = EpochWork(epoch=1, budget=EpochBudget(), checkers=[CheckerWork(BOB, 1)] * 2)
    with pytest.raises(ValidationError, match=BOB):
        settle_epoch(work)


@pytest.mark.parametrize(
    "make",
    [
        lambda: NodeWork(ALICE, -1, 0, True),
        lambda: NodeWork(ALICE, 1, 10_001, True),
        lambda: NodeWork("alice", 1, 1, True),
        lambda: CheckerWork(BOB, -2),
        lambda: settle_epoch(EpochWork(epoch=-1, budget=EpochBudget())),
        lambda: settle_epoch(EpochWork(epoch=1, budget=EpochBudget(), fees={ALICE: -1})),
        lambda: settle_epoch(EpochWork(epoch=1, budget=EpochBudget(), penalties=HALF_UNIT)),
    ],
)
def test_bad_inputs_are_refused(make: Any) -> None:
    with pytest.raises(ValidationError):
        make()


def test_reputation_weights_become_floored_bps() -> None:
    assert reputation_bps(reward_weight(Reputation(1.0, 1.0, 1.0))) == 10_000
    assert reputation_bps(reward_weight(Reputation(0.1, 0.1, 0.1))) == 0  # below the floor
    assert reputation_bps(reward_weight(PRIOR)) in (4_999, 5_000)
    assert reputation_bps(0.12349) == 1_234
    assert reputation_bps(0) == 0
    for bad in (-0.01, 1.01, float("nan"), float("inf"), True):
        with pytest.raises(ValidationError):
            reputation_bps(bad)


def test_split_budget_floors_each_share() -> None:
    assert split_budget(10, {ALICE: 1, BOB: 1, CAROL: 1}) == ({ALICE: 3, BOB: 3, CAROL: 3}, 1)
    assert split_budget(10, {ALICE: 0}) == ({}, 10)


# Properties over random epochs.

amounts = st.integers(0, 10**27)
small_accounts = st.sampled_from(ACCOUNTS)
nodes_strategy = st.lists(
    st.builds(NodeWork, small_accounts, st.integers(0, 800), st.integers(0, 10_000), st.booleans()),
    max_size=20,
)
checkers_strategy = st.lists(
    st.builds(CheckerWork, small_accounts, st.integers(0, 500), st.booleans()),
    max_size=8,
    unique_by=lambda c: c.account,
)
per_account = st.dictionaries(small_accounts, st.integers(0, 10**9), max_size=8)
works = st.builds(
    EpochWork,
    epoch=st.integers(0, 10**6),
    budget=st.builds(EpochBudget, amounts, amounts, amounts),
    carry=st.builds(
        EpochBudget, st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6)
    ),
    nodes=nodes_strategy,
    delivery_gpu_seconds=per_account,
    checkers=checkers_strategy,
    fees=per_account,
    penalties=st.dictionaries(small_accounts, st.integers(0, 10**28), max_size=8),
)
PARTS = ("capacity", "delivery", "checkers")


def _weights(work: EpochWork) -> list[dict[str, int]]:
    capacity: dict[str, int] = {}
    for node in work.nodes:
        if node.eligible:
            capacity[node.account] = capacity.get(node.account, 0) + (
                node.capacity_units * node.reputation_bps
            )
    checkers = {c.account: 0 if c.barred else c.correct_checks for c in work.checkers}
    return [capacity, dict(work.delivery_gpu_seconds), checkers]


def _expected_gross(work: EpochWork) -> dict[str, int]:
    """Each account's reward before penalties, straight from the formula."""
    available = work.budget + work.carry
    gross: dict[str, int] = {}
    for name, weights in zip(PARTS, _weights(work), strict=True):
        total = sum(weights.values())
        for account, weight in weights.items():
            if total:
                share = getattr(available, name) * weight // total
                gross[account] = gross.get(account, 0) + share
    return gross


@settings(max_examples=100)
@given(work=works)
def test_never_pays_above_the_budget_and_conserves_it(work: EpochWork) -> None:
    result = settle_epoch(work)
    available = work.budget + work.carry
    assert sum(leaf.reward for leaf in result.leaves) == result.reward_total
    for name in PARTS:
        paid = getattr(result.paid, name)
        assert paid <= getattr(available, name)
        assert paid + getattr(result.carry, name) == getattr(available, name)
        assert getattr(result.dust, name) + getattr(result.forfeited, name) == getattr(
            result.carry, name
        )
    assert result.reward_total + result.carry.total == available.total


@settings(max_examples=100)
@given(work=works)
def test_each_account_gets_its_floored_share_net_of_penalties(work: EpochWork) -> None:
    result = settle_epoch(work)
    gross = _expected_gross(work)
    paid = rewards(result)
    slashes = {s.account: s.amount for s in result.slashes}
    for account in set(gross) | set(work.penalties):
        penalty = work.penalties.get(account, 0)
        before = gross.get(account, 0)
        assert paid.get(account, 0) == max(0, before - penalty)
        assert slashes.get(account, 0) == max(0, penalty - before)
    # Flooring loses less than one base unit per earning account and part.
    available = work.budget + work.carry
    for name, weights in zip(PARTS, _weights(work), strict=True):
        earning = sum(1 for w in weights.values() if w)
        dust = getattr(result.dust, name)
        assert dust < earning if earning else dust == getattr(available, name)


@settings(max_examples=100)
@given(work=works, seed=st.integers(0, 2**32))
def test_the_order_of_the_inputs_does_not_matter(work: EpochWork, seed: int) -> None:
    rng = random.Random(seed)

    def shuffled_list(items: Any) -> list[Any]:
        copy = list(items)
        rng.shuffle(copy)
        return copy

    def shuffled_dict(mapping: Any) -> dict[str, int]:
        return dict(shuffled_list(mapping.items()))

    permuted = replace(
        work,
        nodes=shuffled_list(work.nodes),
        checkers=shuffled_list(work.checkers),
        delivery_gpu_seconds=shuffled_dict(work.delivery_gpu_seconds),
        fees=shuffled_dict(work.fees),
        penalties=shuffled_dict(work.penalties),
    )
    first, second = settle_epoch(work), settle_epoch(permuted)
    assert first == second
    first_tree, second_tree = first.tree(), second.tree()
    assert (first_tree and first_tree.root) == (second_tree and second_tree.root)
    assert list(first.leaves) == sorted(first.leaves, key=lambda leaf: leaf.account)
