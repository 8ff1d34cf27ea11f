"""A state machine over Token, Vesting and Escrow, kept in step with a Python model.

Random transfers, releases, time jumps, deposits, withdrawals and settlements run against
freshly deployed contracts (titanoboa anchors each example). After every step:

- the token's total supply is the genesis supply and every balance equals the model;
- no schedule has released more than the reference rule had unlocked by then, nor more
  than its total, and ``unreleased`` is the model's sum;
- every escrow balance equals the model, and the escrow holds exactly their sum.
"""

from __future__ import annotations

import boa
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from tests.unit.contracts.conftest import (
    BPS,
    DAY_S,
    MONTH_S,
    USD_SUPPLY,
    Args,
    load,
    now,
    reference_vested,
)

from gpunet.protocol.allocation import TOTAL_SUPPLY

pytestmark = pytest.mark.slow

VESTED = 10**12
FEE_BPS = 1_500
NAMES = ("admin", "alice", "bob", "carol")
CLIENTS = ("alice", "bob", "carol")

_steps = st.integers(0, 3).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(1, 24 * MONTH_S), min_size=n, max_size=n, unique=True).map(sorted),
        st.lists(st.integers(1, 2_000), min_size=n, max_size=n),
    )
)
_schedules = st.tuples(
    st.integers(0, 2_000), st.integers(0, 12 * MONTH_S), st.integers(0, 24 * MONTH_S), _steps
).map(lambda s: (s[0], s[1], s[2], s[3][0], s[3][1]))
_totals = st.integers(1, VESTED // 4)
_amounts = st.integers(0, 10**6)


class TokenVestingEscrow(RuleBasedStateMachine):
    """Drives the three contracts and checks them against ``self`` as the model."""

    def __init__(self) -> None:
        super().__init__()
        self.who = {name: str(boa.env.generate_address(name)) for name in NAMES}
        admin = self.who["admin"]
        self.tge = now() + DAY_S
        self.token = load("Token", "gpunet", "GPU", [admin], [TOTAL_SUPPLY])
        self.vesting = load("Vesting", self.token.address, admin, self.tge)
        self.usd = load("PartnerToken", "USD Coin", "USDC", 6, admin, USD_SUPPLY)
        distributor = load(
            "RewardDistributor", self.token.address, self.usd.address, admin, self.tge, 0, 0, 0, 1
        )
        self.escrow = load("Escrow", self.usd.address, admin, admin, distributor.address, FEE_BPS)
        with boa.env.prank(admin):
            self.escrow.grantRole(self.escrow.SETTLER_ROLE(), admin)
            distributor.set_escrow(self.escrow.address)
            self.token.transfer(self.vesting.address, VESTED)
        self.balances = dict.fromkeys(NAMES, 0) | {"admin": TOTAL_SUPPLY - VESTED}
        self.schedules: list[tuple[str, int, Args]] = []
        self.released: list[int] = []
        self.deposits = dict.fromkeys(CLIENTS, 0)
        self.epoch = 0

    @initialize(
        plan=st.lists(st.tuples(st.sampled_from(NAMES[1:]), _totals, _schedules), max_size=4)
    )
    def add_schedules(self, plan: list[tuple[str, int, Args]]) -> None:
        # At most 4 schedules of at most VESTED // 4 each always fit the pool.
        for name, total, args in plan:
            with boa.env.prank(self.who["admin"]):
                self.vesting.add_schedule(self.who[name], total, *args)
            self.schedules.append((name, total, args))
            self.released.append(0)

    # ------------------------------------------------------------ token
    @rule(sender=st.sampled_from(NAMES), receiver=st.sampled_from(NAMES), share=st.floats(0, 1.2))
    def transfer(self, sender: str, receiver: str, share: float) -> None:
        amount = int(self.balances[sender] * share)
        with boa.env.prank(self.who[sender]):
            if amount > self.balances[sender]:
                with boa.reverts("erc20: transfer amount exceeds balance"):
                    self.token.transfer(self.who[receiver], amount)
                return
            self.token.transfer(self.who[receiver], amount)
        self.balances[sender] -= amount
        self.balances[receiver] += amount

    # ------------------------------------------------------------ vesting
    @rule(seconds=st.one_of(st.integers(0, 3 * MONTH_S), st.sampled_from([1, MONTH_S])))
    def wait(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        if not self.schedules:
            return
        index = data.draw(st.integers(0, len(self.schedules) - 1))
        name, total, args = self.schedules[index]
        due = reference_vested(total, args, now() - self.tge) - self.released[index]
        if due == 0:
            with boa.reverts("vesting: nothing releasable"):
                self.vesting.release(index)
            return
        assert self.vesting.release(index) == due
        self.released[index] += due
        self.balances[name] += due

    # ------------------------------------------------------------ escrow
    @rule(client=st.sampled_from(CLIENTS), amount=_amounts)
    def deposit(self, client: str, amount: int) -> None:
        with boa.env.prank(self.who["admin"]):
            self.usd.transfer(self.who[client], amount)
        with boa.env.prank(self.who[client]):
            self.usd.approve(self.escrow.address, amount)
            if amount == 0:
                with boa.reverts("escrow: zero amount"):
                    self.escrow.deposit(amount)
                return
            self.escrow.deposit(amount)
        self.deposits[client] += amount

    @rule(client=st.sampled_from(CLIENTS), amount=_amounts)
    def withdraw(self, client: str, amount: int) -> None:
        with boa.env.prank(self.who[client]):
            if 0 < amount <= self.deposits[client]:
                self.escrow.withdraw(amount)
                self.deposits[client] -= amount
            elif amount > 0:
                with boa.reverts("escrow: insufficient balance"):
                    self.escrow.withdraw(amount)

    @rule(charges=st.lists(st.tuples(st.sampled_from(CLIENTS), _amounts), max_size=5))
    def settle(self, charges: list[tuple[str, int]]) -> None:
        owed = dict.fromkeys(CLIENTS, 0)
        for client, amount in charges:
            owed[client] += amount
        clients = [self.who[client] for client, _ in charges]
        amounts = [amount for _, amount in charges]
        self.epoch += 1
        with boa.env.prank(self.who["admin"]):
            if any(owed[c] > self.deposits[c] for c in CLIENTS):
                with boa.reverts("escrow: insufficient balance"):
                    self.escrow.settle(self.epoch, clients, amounts)
                return
            total = sum(amounts)
            assert (
                self.escrow.settle(self.epoch, clients, amounts) == total - total * FEE_BPS // BPS
            )
        for client in CLIENTS:
            self.deposits[client] -= owed[client]

    # ------------------------------------------------------------ invariants
    @invariant()
    def supply_is_constant_and_balances_match(self) -> None:
        assert self.token.totalSupply() == TOTAL_SUPPLY
        for name in NAMES:
            assert self.token.balanceOf(self.who[name]) == self.balances[name]
        assert self.token.balanceOf(self.vesting.address) == VESTED - sum(self.released)

    @invariant()
    def vesting_never_pays_early_or_too_much(self) -> None:
        since = now() - self.tge
        for index, (_, total, args) in enumerate(self.schedules):
            released = self.vesting.schedules(index)[2]
            assert released == self.released[index]
            assert released <= reference_vested(total, args, since) <= total
        owed = sum(total for _, total, _ in self.schedules) - sum(self.released)
        assert self.vesting.unreleased() == owed

    @invariant()
    def escrow_matches_the_model(self) -> None:
        for client in CLIENTS:
            assert self.escrow.balance_of(self.who[client]) == self.deposits[client]
        held = sum(self.deposits.values())
        assert self.usd.balanceOf(self.escrow.address) == held == self.escrow.total_deposits()


TokenVestingEscrow.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_token_vesting_escrow = TokenVestingEscrow.TestCase
