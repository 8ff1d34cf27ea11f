"""The ledger's conservation rules under random sequences of operations.

A model tracks what should have happened (deposits, withdrawals, open holds, fees and
earnings computed with the floor rule); the ledger's transfers are applied to real
balances, and the two are compared after every step. Refused operations must raise
``ValidationError`` and leave the balances untouched.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gpunet.errors import ValidationError
from gpunet.protocol.ledger import (
    PROTOCOL_FEES,
    WORLD,
    Transfer,
    apply,
    buyer_account,
    deposit,
    escrow_account,
    hold,
    operator_account,
    pay_partial,
    release,
    settle,
    total_inside,
    withdraw,
)

BUYERS = ("0xB0", "0xB1", "0xb2")
OPERATORS = ("0xA0", "0xa1")
JOBS = ("j-0", "j-1", "j-2", "j-3")
AMOUNTS = st.integers(1, 10**9)
FEES = st.sampled_from([0, 1, 1999, 2000, 3333, 10_000])


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.balances: dict[str, int] = {}
        self.deposited = 0
        self.withdrawn = 0
        self.fees = 0
        self.earned = dict.fromkeys(map(operator_account, OPERATORS), 0)
        self.open: dict[str, tuple[str, int]] = {}  # job -> (buyer, held)
        self.closed: set[str] = set()

    def _apply(self, transfer: Transfer) -> None:
        self.balances = apply(self.balances, transfer)

    def _refused(self, build: Callable[[], Transfer]) -> None:
        before = dict(self.balances)
        with pytest.raises(ValidationError):
            self._apply(build())
        assert self.balances == before

    def _available(self, buyer: str) -> int:
        return self.balances.get(buyer_account(buyer), 0)

    def _pay(self, operator: str, charge: int, fee_bps: int) -> None:
        fee = charge * fee_bps // 10_000
        self.fees += fee
        self.earned[operator_account(operator)] += charge - fee

    @rule(buyer=st.sampled_from(BUYERS), amount=AMOUNTS)
    def deposit(self, buyer: str, amount: int) -> None:
        self._apply(deposit(buyer, amount))
        self.deposited += amount

    @rule(buyer=st.sampled_from(BUYERS), amount=st.integers(-5, 2 * 10**9))
    def withdraw(self, buyer: str, amount: int) -> None:
        available = self._available(buyer)
        if 0 < amount <= available:
            self._apply(withdraw(buyer, amount, available))
            self.withdrawn += amount
        else:
            self._refused(lambda: withdraw(buyer, amount, available))

    @rule(buyer=st.sampled_from(BUYERS), job=st.sampled_from(JOBS), amount=AMOUNTS)
    def hold(self, buyer: str, job: str, amount: int) -> None:
        if job in self.open:
            return
        available = self._available(buyer)
        if amount <= available:
            self._apply(hold(buyer, job, amount, available))
            self.open[job] = (buyer, amount)
            self.closed.discard(job)
        else:
            self._refused(lambda: hold(buyer, job, amount, available))

    @precondition(lambda self: self.open)
    @rule(data=st.data(), operator=st.sampled_from(OPERATORS), fee_bps=FEES)
    def pay_partial(self, data: st.DataObject, operator: str, fee_bps: int) -> None:
        job = data.draw(st.sampled_from(sorted(self.open)))
        buyer, held = self.open[job]
        charge = data.draw(st.integers(0, held + held // 2 + 1))
        if charge <= held:
            self._apply(pay_partial(job, operator, charge, held, fee_bps))
            self.open[job] = (buyer, held - charge)
            self._pay(operator, charge, fee_bps)
        else:
            self._refused(lambda: pay_partial(job, operator, charge, held, fee_bps))

    @precondition(lambda self: self.open)
    @rule(data=st.data(), operator=st.sampled_from(OPERATORS), fee_bps=FEES)
    def settle(self, data: st.DataObject, operator: str, fee_bps: int) -> None:
        job = data.draw(st.sampled_from(sorted(self.open)))
        buyer, held = self.open[job]
        charge = data.draw(st.integers(0, held + 1))
        if charge > held:
            self._refused(lambda: settle(job, buyer, operator, held, charge, fee_bps))
            return
        self._apply(settle(job, buyer, operator, held, charge, fee_bps))
        self._pay(operator, charge, fee_bps)
        self._close(job)

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        job = data.draw(st.sampled_from(sorted(self.open)))
        buyer, held = self.open[job]
        self._apply(release(job, buyer, held))
        self._close(job)

    @rule(job=st.sampled_from(JOBS), buyer=st.sampled_from(BUYERS), extra=st.integers(1, 100))
    def release_more_than_held(self, job: str, buyer: str, extra: int) -> None:
        held = self.open[job][1] if job in self.open else 0
        self._refused(lambda: release(job, buyer, held + extra))

    def _close(self, job: str) -> None:
        del self.open[job]
        self.closed.add(job)

    @invariant()
    def money_is_conserved(self) -> None:
        assert sum(self.balances.values()) == 0
        assert total_inside(self.balances) == self.deposited - self.withdrawn
        assert self.balances.get(WORLD, 0) == self.withdrawn - self.deposited

    @invariant()
    def only_world_goes_negative(self) -> None:
        assert all(v >= 0 for account, v in self.balances.items() if account != WORLD)

    @invariant()
    def escrows_hold_what_the_model_says(self) -> None:
        for job in self.closed:
            assert self.balances.get(escrow_account(job), 0) == 0
        for job, (_, held) in self.open.items():
            assert self.balances[escrow_account(job)] == held

    @invariant()
    def fees_and_earnings_follow_the_floor_rule(self) -> None:
        assert self.balances.get(PROTOCOL_FEES, 0) == self.fees
        for account, earned in self.earned.items():
            assert self.balances.get(account, 0) == earned


LedgerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40)
TestLedgerMachine = LedgerMachine.TestCase
