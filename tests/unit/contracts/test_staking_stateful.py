"""Staking.vy against a Python model, driven by a hypothesis state machine.

The model keeps every account's collateral, pending unstake and locks, and for each
reward token the exact (rational) amount each account should have earned, integrating
`rate * weight / total_weight` over time. After every step the machine checks that:

- the staked token balance equals `staked_total()` and the model's stake accounting;
- no account ever receives more than its exact share, and what all accounts are short of
  it stays under the documented dust bound: `sum over accumulator updates of
  total_weight / 1e36` (one more for the update an `earned` view computes), plus one
  base unit per account settlement and per `earned` view;
- funded = paid + still owed + dust + scheduled + idle, so every owed reward is payable;
- a slash changes only the slashed account, and the sink receives exactly what was taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import boa
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from .staking_fixtures import (
    DAY_S,
    MAX_LOCK_S,
    MAX_MULTIPLIER_BPS,
    MIN_LOCK_S,
    WEEK_S,
    build_system,
    deploy_partner_token,
)

pytestmark = pytest.mark.slow

PRECISION = 10**36
UNSTAKE_DELAY_S = 10 * DAY_S
N_USERS = 3

amounts = st.one_of(st.integers(1, 1_000), st.integers(1, 10**24))
durations = st.one_of(
    st.sampled_from([MIN_LOCK_S, MIN_LOCK_S + 1, 30 * DAY_S, MAX_LOCK_S]),
    st.integers(MIN_LOCK_S, MAX_LOCK_S),
)
users = st.integers(0, N_USERS - 1)


@dataclass
class Account:
    """One account's stake as the model sees it."""

    collateral: int = 0
    pending: int = 0
    ready_at: int = 0
    credit: int = 0
    lock_ids: list[int] = field(default_factory=list)


@dataclass
class Stream:
    """One reward token: the contract's integer schedule and each account's exact share."""

    token: Any
    rate: int = 0
    period_end: int = 0
    updated_at: int = 0
    idle: int = 0
    funded: int = 0
    dust_bound: Fraction = Fraction(0)
    ideal: list[Fraction] = field(default_factory=lambda: [Fraction(0)] * N_USERS)
    paid: list[int] = field(default_factory=lambda: [0] * N_USERS)


def multiplier(duration: int) -> int:
    span = MAX_LOCK_S - MIN_LOCK_S
    return 10_000 + (MAX_MULTIPLIER_BPS - 10_000) * (duration - MIN_LOCK_S) // span


class StakingMachine(RuleBasedStateMachine):
    """Random users lock, stake, fund, claim, get slashed and wait."""

    def __init__(self) -> None:
        super().__init__()
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.s = build_system(N_USERS, unstake_delay_s=UNSTAKE_DELAY_S)
        self.st = self.s.staking
        self.accounts = [Account() for _ in range(N_USERS)]
        self.locks: dict[int, list[int]] = {}  # id -> [owner index, amount, weight, end]
        self.next_lock_id = 0
        # An 18-decimal and a 6-decimal reward token.
        self.streams = [Stream(self.add_reward_token(f"R{d}", d)) for d in (18, 6)]
        self.t = self.now()

    def add_reward_token(self, symbol: str, decimals: int) -> Any:
        reward = deploy_partner_token(self.s.admin, symbol, decimals, supply=10**30)
        self.st.add_reward_token(reward.address, sender=self.s.admin)
        reward.approve(self.st.address, 2**256 - 1, sender=self.s.admin)
        return reward

    def teardown(self) -> None:
        self._anchor.__exit__(None, None, None)

    # Model bookkeeping

    def now(self) -> int:
        return int(boa.env.evm.patch.timestamp)

    def weight(self, who: int) -> int:
        return sum(lk[2] for lk in self.locks.values() if lk[0] == who)

    def total_weight(self) -> int:
        return sum(lk[2] for lk in self.locks.values())

    def advance(self) -> None:
        """Integrates every stream's exact shares from the last step up to now."""
        now, total = self.now(), self.total_weight()
        weights = [self.weight(i) for i in range(N_USERS)]
        for stream in self.streams:
            end = min(now, stream.period_end)
            if end <= self.t:
                continue
            streamed = stream.rate * (end - self.t)
            if total == 0:
                stream.idle += streamed
                continue
            for i in range(N_USERS):
                stream.ideal[i] += Fraction(streamed * weights[i], total)
        self.t = now

    def accrue(self, stream: Stream) -> None:
        """Mirrors the contract's accumulator update and what it may floor away."""
        applicable = min(self.now(), stream.period_end)
        if applicable > stream.updated_at:
            stream.dust_bound += Fraction(self.total_weight(), PRECISION)
            stream.updated_at = applicable

    def checkpoint(self) -> None:
        for stream in self.streams:
            self.accrue(stream)
            stream.dust_bound += 1

    # Holder locks

    @rule(who=users, amount=amounts, duration=durations)
    def lock(self, who: int, amount: int, duration: int) -> None:
        self.advance()
        lock_id = self.st.lock(amount, duration, sender=self.s.users[who])
        self.checkpoint()
        assert lock_id == self.next_lock_id
        self.next_lock_id += 1
        weight = amount * multiplier(duration) // 10_000
        self.locks[lock_id] = [who, amount, weight, self.now() + duration]
        self.accounts[who].lock_ids.append(lock_id)

    @rule(who=users, pick=st.integers(0, 127))
    def unlock(self, who: int, pick: int) -> None:
        self.advance()
        ids = self.accounts[who].lock_ids
        if not ids:
            return
        lock_id = ids[pick % len(ids)]
        if self.now() < self.locks[lock_id][3]:
            with boa.reverts("staking: still locked"):
                self.st.unlock(lock_id, sender=self.s.users[who])
            return
        assert self.st.unlock(lock_id, sender=self.s.users[who]) == self.locks[lock_id][1]
        self.checkpoint()
        del self.locks[lock_id]
        position = ids.index(lock_id)
        ids[position] = ids[-1]
        ids.pop()

    # Node collateral

    @rule(who=users, amount=amounts)
    def stake_collateral(self, who: int, amount: int) -> None:
        self.advance()
        self.st.stake_collateral(amount, sender=self.s.users[who])
        self.accounts[who].collateral += amount

    @rule(who=users, amount=amounts)
    def request_unstake(self, who: int, amount: int) -> None:
        self.advance()
        account = self.accounts[who]
        if amount > account.collateral:
            with boa.reverts("staking: not enough collateral"):
                self.st.request_unstake(amount, sender=self.s.users[who])
            return
        self.st.request_unstake(amount, sender=self.s.users[who])
        account.collateral -= amount
        account.pending += amount
        account.ready_at = self.now() + UNSTAKE_DELAY_S

    @rule(who=users)
    def withdraw_unstaked(self, who: int) -> None:
        self.advance()
        account, user = self.accounts[who], self.s.users[who]
        if account.pending == 0:
            with boa.reverts("staking: nothing to withdraw"):
                self.st.withdraw_unstaked(sender=user)
        elif self.now() < account.ready_at:
            with boa.reverts("staking: unstake not ready"):
                self.st.withdraw_unstaked(sender=user)
        else:
            assert self.st.withdraw_unstaked(sender=user) == account.pending
            account.pending = 0

    # Reward streams

    @rule(index=st.integers(0, 1), amount=amounts, duration=st.integers(1, 8 * WEEK_S))
    def fund(self, index: int, amount: int, duration: int) -> None:
        self.advance()
        stream, now = self.streams[index], self.now()
        leftover = (stream.period_end - now) * stream.rate if now < stream.period_end else 0
        total = amount + leftover + stream.idle
        rate = total // duration
        reason = None
        if rate == 0:
            reason = "staking: reward rate is zero"
        elif leftover and rate < stream.rate:
            reason = "staking: funding would lower the rate"
        if reason is not None:
            with boa.reverts(reason):
                self.st.fund(stream.token.address, amount, duration, sender=self.s.admin)
            return
        self.st.fund(stream.token.address, amount, duration, sender=self.s.admin)
        self.accrue(stream)
        stream.rate, stream.idle = rate, total - rate * duration
        stream.period_end, stream.updated_at = now + duration, now
        stream.funded += amount
        assert self.st.idle_rewards(stream.token.address) == stream.idle

    @rule(who=users, index=st.integers(0, 1))
    def claim_rewards(self, who: int, index: int) -> None:
        self.advance()
        stream, user = self.streams[index], self.s.users[who]
        owed = self.st.earned(user, stream.token.address)
        assert self.st.claim_rewards(stream.token.address, sender=user) == owed
        self.accrue(stream)
        stream.dust_bound += 1
        stream.paid[who] += owed

    @rule(who=users)
    def claim_all(self, who: int) -> None:
        self.advance()
        user = self.s.users[who]
        owed = [self.st.earned(user, stream.token.address) for stream in self.streams]
        before = [stream.token.balanceOf(user) for stream in self.streams]
        self.st.claim_all(sender=user)
        self.checkpoint()
        for stream, paid, held in zip(self.streams, owed, before, strict=True):
            assert stream.token.balanceOf(user) == held + paid
            stream.paid[who] += paid

    # Slashing

    @rule(who=users, amount=amounts)
    def credit_distributor_rewards(self, who: int, amount: int) -> None:
        self.s.token.transfer(self.s.distributor.address, amount, sender=self.s.admin)
        self.s.distributor.credit(self.s.users[who], amount)
        self.accounts[who].credit += amount

    @rule(who=users, amount=amounts)
    def slash(self, who: int, amount: int) -> None:
        self.advance()
        account = self.accounts[who]
        sink_before = self.s.token.balanceOf(self.s.sink)
        from_rewards = min(amount, account.credit)
        rest = amount - from_rewards
        taken = min(rest, account.collateral)
        account.collateral -= taken
        from_pending = min(rest - taken, account.pending)
        account.pending -= from_pending
        taken += from_pending
        if taken < rest:
            self.checkpoint()
            taken += self.slash_locks(account, rest - taken)
        account.credit -= from_rewards
        got = self.st.slash(self.s.users[who], amount, "test", sender=self.s.slasher)
        assert got == from_rewards + taken
        assert self.s.token.balanceOf(self.s.sink) == sink_before + got

    def slash_locks(self, account: Account, amount: int) -> int:
        taken, kept = 0, []
        for lock_id in account.lock_ids:
            entry = self.locks[lock_id]
            part = min(amount - taken, entry[1])
            if part:
                entry[2] = entry[2] * (entry[1] - part) // entry[1]
                entry[1] -= part
            taken += part
            if entry[1]:
                kept.append(lock_id)
            else:
                del self.locks[lock_id]
        account.lock_ids = kept
        return taken

    @rule(seconds=st.one_of(st.integers(0, 3 * DAY_S), st.integers(0, 60 * DAY_S)))
    def wait(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)
        self.advance()

    # Invariants

    @invariant()
    def stake_accounting_matches(self) -> None:
        locked = sum(lk[1] for lk in self.locks.values())
        staked = sum(a.collateral + a.pending for a in self.accounts) + locked
        assert self.st.staked_total() == staked == self.s.token.balanceOf(self.st.address)
        assert self.st.total_weight() == self.total_weight()
        for i, account in enumerate(self.accounts):
            user = self.s.users[i]
            assert self.st.collateral_of(user) == account.collateral
            assert self.st.pending_unstake(user)[0] == account.pending
            assert self.st.lock_ids(user) == account.lock_ids
            assert self.s.distributor.pending_rewards(user) == account.credit
        for lock_id, (who, amount, weight, end) in self.locks.items():
            assert self.st.locks(lock_id) == (self.s.users[who], amount, weight, end)

    @invariant()
    def rewards_are_exact_up_to_the_dust_bound(self) -> None:
        for stream in self.streams:
            address = stream.token.address
            owed = [self.st.earned(user, address) for user in self.s.users]
            got = [paid + now for paid, now in zip(stream.paid, owed, strict=True)]
            assert all(g <= ideal for g, ideal in zip(got, stream.ideal, strict=True))
            dust = sum(stream.ideal) - sum(got)
            view_update = Fraction(self.total_weight(), PRECISION)
            assert dust <= stream.dust_bound + view_update + N_USERS
            future = stream.rate * max(0, stream.period_end - self.t)
            assert stream.funded == sum(stream.ideal) + future + stream.idle
            held = stream.token.balanceOf(self.st.address)
            assert held == stream.funded - sum(stream.paid)
            assert held - sum(owed) >= future + stream.idle


StakingMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestStakingMatchesTheModel = StakingMachine.TestCase
