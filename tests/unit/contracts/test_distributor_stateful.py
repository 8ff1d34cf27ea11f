"""RewardDistributor against a Python model, driven by a hypothesis state machine.

The model keeps every epoch's leaves, every position and every payment. After each step
the contract must agree with it exactly, which checks that no claim pays above its leaf
or twice, that nothing is released before it vests, that early-release penalties and
swept rewards go back to the pool, and that tokens are conserved: the distributor's
balance plus everything paid out equals what it was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boa
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from gpunet.protocol.reward_tree import RewardTree

from .distributor_fixtures import (
    BPS,
    DAY_S,
    FEE_VEST_S,
    PENALTY_BPS,
    POOL,
    REWARD_VEST_S,
    Params,
    System,
    deploy_system,
    now,
    post,
    warp,
)

pytestmark = pytest.mark.slow

ACCOUNTS = 3
# A short claim window, so that a run of a few dozen steps also sees epochs expire.
CLAIM_WINDOW_S = 20 * DAY_S
PARAMS = Params(claim_window_s=CLAIM_WINDOW_S)
amounts = st.integers(min_value=0, max_value=10**24)
reward_lists = st.lists(amounts, min_size=ACCOUNTS, max_size=ACCOUNTS)
fee_lists = st.lists(st.integers(0, 10**9), min_size=ACCOUNTS, max_size=ACCOUNTS)
# Waits around the fee cliff, the claim window and the vesting period, and anything between.
waits = st.one_of(
    st.sampled_from([DAY_S, 8 * DAY_S, 21 * DAY_S, 31 * DAY_S]), st.integers(1, 12 * DAY_S)
)


@dataclass
class Epoch:
    tree: RewardTree
    posted_at: int
    claimed: set[str] = field(default_factory=set)
    swept: bool = False


@dataclass
class Position:
    owner: str
    reward: int
    fee: int
    start: int
    released: int = 0
    fee_released: bool = False

    def releasable(self, at: int) -> tuple[int, int]:
        vested = self.reward
        if at < self.start + REWARD_VEST_S:
            vested = self.reward * (at - self.start) // REWARD_VEST_S
        fee = 0 if self.fee_released or at < self.start + FEE_VEST_S else self.fee
        return max(vested - self.released, 0), fee

    def open(self) -> bool:
        return self.released < self.reward or (self.fee > 0 and not self.fee_released)


class DistributorMachine(RuleBasedStateMachine):
    """Posts, claims (honest and forged), releases, slashes, sweeps and lets time pass."""

    @initialize(rewards=reward_lists, fees=fee_lists)
    def deploy(self, rewards: list[int], fees: list[int]) -> None:
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.system: System = deploy_system(PARAMS)
        self.accounts = [str(boa.env.generate_address(f"user{i}")) for i in range(ACCOUNTS)]
        self.epochs: dict[int, Epoch] = {}
        self.positions: dict[int, Position] = {}
        self.paid: dict[str, int] = dict.fromkeys(self.accounts, 0)
        self.fees_paid: dict[str, int] = dict.fromkeys(self.accounts, 0)
        self.slashed = 0
        self.recycled = 0
        self.recycled_fees = 0
        self.funded = 0
        self._post(rewards, fees, ACCOUNTS)

    def teardown(self) -> None:
        if hasattr(self, "_anchor"):
            self._anchor.__exit__(None, None, None)

    @property
    def d(self) -> Any:
        return self.system.distributor

    def _pay(self, account: str, reward: int, fee: int) -> None:
        self.paid[account] += reward
        self.fees_paid[account] += fee

    # ------------------------------------------------------------ rules
    @rule(rewards=reward_lists, fees=fee_lists, count=st.integers(1, ACCOUNTS))
    def post_epoch(self, rewards: list[int], fees: list[int], count: int) -> None:
        self._post(rewards, fees, count)

    def _post(self, rewards: list[int], fees: list[int], count: int) -> None:
        leaves = list(zip(self.accounts, rewards, fees, strict=True))[:count]
        epoch = len(self.epochs) + 1
        self.epochs[epoch] = Epoch(post(self.system, epoch, leaves), now())
        self.funded += sum(fees[:count])

    @precondition(lambda self: self.epochs)
    @rule(pick=st.integers(0, 2**16), who=st.integers(0, 2**16))
    def claim(self, pick: int, who: int) -> None:
        self._claim(pick, who, forged=False)

    @precondition(lambda self: self.epochs)
    @rule(pick=st.integers(0, 2**16), who=st.integers(0, 2**16), forged=st.booleans())
    def claim_or_forge(self, pick: int, who: int, forged: bool) -> None:
        self._claim(pick, who, forged)

    def _claim(self, pick: int, who: int, forged: bool) -> None:
        epoch = sorted(self.epochs)[pick % len(self.epochs)]
        record = self.epochs[epoch]
        leaf = record.tree.leaves[who % len(record.tree)]
        account = leaf.account
        proof = record.tree.proof(account)
        args = (epoch, account, leaf.reward + forged, leaf.fee, proof)
        expected = self._claim_error(record, account, forged)
        if expected:
            with boa.reverts(expected):
                self.d.claim(*args)
            return
        with boa.env.prank(self.accounts[who % ACCOUNTS]):  # anyone may claim for anyone
            position_id = self.d.claim(*args)
        record.claimed.add(account)
        if position_id:
            self.positions[position_id] = Position(
                self._owner(account), leaf.reward, leaf.fee, now()
            )
        else:
            assert leaf.reward == leaf.fee == 0

    def _owner(self, account: str) -> str:
        return next(a for a in self.accounts if a.lower() == account)

    def _claim_error(self, record: Epoch, account: str, forged: bool) -> str | None:
        if now() > record.posted_at + CLAIM_WINDOW_S:
            return "distributor: epoch expired"
        if account in record.claimed:
            return "distributor: already claimed"
        return "distributor: invalid proof" if forged else None

    @rule(seconds=waits)
    def wait(self, seconds: int) -> None:
        warp(now() + seconds)

    @precondition(lambda self: self.positions)
    @rule(index=st.integers(0, 2**16), early=st.booleans())
    def release(self, index: int, early: bool) -> None:
        position_id = sorted(self.positions)[index % len(self.positions)]
        p = self.positions[position_id]
        reward, fee = p.releasable(now())
        penalty = 0
        if early:
            locked = p.reward - p.released - reward
            penalty = locked * PENALTY_BPS // BPS
            reward += locked - penalty
        with boa.env.prank(p.owner):
            if reward == fee == penalty == 0:
                with boa.reverts():
                    self.d.release_early(position_id) if early else self.d.release(position_id)
                return
            paid = self.d.release_early(position_id) if early else self.d.release(position_id)
        assert tuple(paid) == (reward, fee)
        p.released += reward + penalty
        p.fee_released = p.fee_released or fee > 0
        self.recycled += penalty
        self._pay(p.owner, reward, fee)

    @rule(who=st.integers(0, ACCOUNTS - 1), amount=amounts)
    def slash(self, who: int, amount: int) -> None:
        account = self.accounts[who]
        with boa.env.prank(self.system.staking):
            taken = self.d.slash_pending(account, amount)
        left = amount
        for position_id in sorted(self.positions):
            p = self.positions[position_id]
            if p.owner == account and p.open():
                take = min(left, p.reward - p.released)
                p.reward -= take
                left -= take
        assert taken == amount - left
        self.slashed += taken

    @precondition(lambda self: self.epochs)
    @rule(pick=st.integers(0, 2**16))
    def sweep(self, pick: int) -> None:
        epoch = sorted(self.epochs)[pick % len(self.epochs)]
        record = self.epochs[epoch]
        if record.swept or now() <= record.posted_at + CLAIM_WINDOW_S:
            return
        with boa.env.prank(self.system.settler):
            self.d.sweep_expired(epoch)
        record.swept = True
        unclaimed = [leaf for leaf in record.tree.leaves if leaf.account not in record.claimed]
        self.recycled += sum(leaf.reward for leaf in unclaimed)
        self.recycled_fees += sum(leaf.fee for leaf in unclaimed)

    # ------------------------------------------------------------ invariants
    @invariant()
    def payments_match_the_model(self) -> None:
        if not hasattr(self, "system"):
            return
        for account in self.accounts:
            assert self.system.token.balanceOf(account) == self.paid[account]
            assert self.system.usd.balanceOf(account) == self.fees_paid[account]
            owned = [i for i, p in self.positions.items() if p.owner == account and p.open()]
            assert self.d.position_ids(account) == owned
            pending = sum(self.positions[i].reward - self.positions[i].released for i in owned)
            assert self.d.pending_rewards(account) == pending

    @invariant()
    def tokens_are_conserved_and_penalties_return_to_the_pool(self) -> None:
        if not hasattr(self, "system"):
            return
        held = self.system.token.balanceOf(self.d.address)
        assert held + sum(self.paid.values()) + self.slashed == POOL
        assert self.system.token.balanceOf(self.system.staking) == self.slashed
        fees_held = self.system.usd.balanceOf(self.d.address)
        assert fees_held + sum(self.fees_paid.values()) == self.funded
        assert self.d.recycled() == self.recycled
        assert self.d.recycled_fees() == self.recycled_fees
        posted = sum(sum(leaf.reward for leaf in e.tree.leaves) for e in self.epochs.values())
        assert self.d.posted_rewards() == posted
        assert self.d.pool_balance() == POOL - posted + self.recycled


TestDistributorMachine = DistributorMachine.TestCase
TestDistributorMachine.settings = settings(
    max_examples=20,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
