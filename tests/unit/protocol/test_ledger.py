from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpunet.errors import ValidationError
from gpunet.protocol.ledger import (
    DEFAULT_FEE_BPS,
    PROTOCOL_FEES,
    WORLD,
    Posting,
    Transfer,
    apply,
    billed_seconds,
    buyer_account,
    deposit,
    escrow_account,
    fee_for,
    hold,
    hold_amount,
    operator_account,
    pay_partial,
    release,
    settle,
    total_inside,
    usage_charge,
    withdraw,
)

BUYER = "0xAbC0000000000000000000000000000000000001"
OPERATOR = "0xDeF0000000000000000000000000000000000002"
BUYER_ACCT = buyer_account(BUYER)
OPERATOR_ACCT = operator_account(OPERATOR)
ESCROW = escrow_account("j-1")


def postings(transfer: Transfer) -> dict[str, int]:
    return {p.account: p.amount for p in transfer.postings}


def test_account_names_lowercase_addresses() -> None:
    assert BUYER_ACCT == "buyer:0xabc0000000000000000000000000000000000001"
    assert OPERATOR_ACCT == "operator:0xdef0000000000000000000000000000000000002"
    assert ESCROW == "escrow:j-1"
    assert DEFAULT_FEE_BPS == 2000


@pytest.mark.parametrize("bad", ["", "a b", "x:y", "a" * 65])
def test_account_names_refuse_ambiguous_keys(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        buyer_account(bad)
    assert info.value.field == "address"
    with pytest.raises(ValidationError) as info:
        escrow_account(bad)
    assert info.value.field == "job_id"


def test_transfer_must_balance() -> None:
    with pytest.raises(ValidationError, match="must sum to zero"):
        Transfer("deposit", (Posting(WORLD, -5), Posting(BUYER_ACCT, 4)))


def test_transfer_drops_zero_postings() -> None:
    transfer = Transfer(
        "settle", (Posting(ESCROW, -5), Posting(OPERATOR_ACCT, 5), Posting(PROTOCOL_FEES, 0))
    )
    assert postings(transfer) == {ESCROW: -5, OPERATOR_ACCT: 5}


def test_transfer_refuses_an_account_twice() -> None:
    with pytest.raises(ValidationError, match="at most once"):
        Transfer("x", (Posting(BUYER_ACCT, -5), Posting(BUYER_ACCT, 5)))


@pytest.mark.parametrize("amount", [1.5, True, "3"])
def test_posting_amounts_are_integers(amount: Any) -> None:
    with pytest.raises(ValidationError, match="integer"):
        Posting(BUYER_ACCT, amount)


@pytest.mark.parametrize("account", ["buyer:", "bank:x", "escrow:a b", "protocol:other"])
def test_posting_refuses_unknown_accounts(account: str) -> None:
    with pytest.raises(ValidationError) as info:
        Posting(account, 1)
    assert info.value.value == account


def test_deposit_and_withdraw() -> None:
    assert postings(deposit(BUYER, 7)) == {WORLD: -7, BUYER_ACCT: 7}
    assert postings(withdraw(BUYER, 3, available=7)) == {BUYER_ACCT: -3, WORLD: 3}
    assert deposit(BUYER, 7).kind == "deposit"


@pytest.mark.parametrize("amount", [0, -1, 2.0])
def test_deposit_needs_a_positive_integer(amount: Any) -> None:
    with pytest.raises(ValidationError) as info:
        deposit(BUYER, amount)
    assert info.value.field == "amount"


def test_withdraw_refuses_an_overdraft_saying_what_is_available() -> None:
    with pytest.raises(ValidationError, match=r"only 1\.50 USD is available"):
        withdraw(BUYER, 1_500_001, available=1_500_000)


def test_hold_moves_funds_into_the_job_escrow() -> None:
    assert postings(hold(BUYER, "j-1", 40, available=100)) == {BUYER_ACCT: -40, ESCROW: 40}


def test_hold_says_how_much_more_to_deposit() -> None:
    with pytest.raises(ValidationError, match=r"deposit at least 2\.50 USD more"):
        hold(BUYER, "j-1", 4_000_000, available=1_500_000)


def test_settle_splits_the_charge_and_returns_the_rest() -> None:
    transfer = settle("j-1", BUYER, OPERATOR, held=4_000_000, charge=1_372_222)
    assert postings(transfer) == {
        ESCROW: -4_000_000,
        OPERATOR_ACCT: 1_097_778,
        PROTOCOL_FEES: 274_444,
        BUYER_ACCT: 2_627_778,
    }


def test_settle_floors_the_fee_and_gives_the_remainder_to_the_operator() -> None:
    transfer = settle("j-1", BUYER, OPERATOR, held=10, charge=9, fee_bps=2000)
    assert postings(transfer) == {ESCROW: -10, OPERATOR_ACCT: 8, PROTOCOL_FEES: 1, BUYER_ACCT: 1}


def test_settle_with_no_charge_returns_everything() -> None:
    assert postings(settle("j-1", BUYER, OPERATOR, held=10, charge=0)) == {
        ESCROW: -10,
        BUYER_ACCT: 10,
    }


@pytest.mark.parametrize(("held", "charge"), [(10, 11), (10, -1), (-1, 0)])
def test_settle_refuses_charges_outside_the_hold(held: int, charge: int) -> None:
    with pytest.raises(ValidationError):
        settle("j-1", BUYER, OPERATOR, held=held, charge=charge)


@pytest.mark.parametrize("fee_bps", [-1, 10_001])
def test_fee_rate_is_between_zero_and_everything(fee_bps: int) -> None:
    with pytest.raises(ValidationError) as info:
        settle("j-1", BUYER, OPERATOR, held=10, charge=5, fee_bps=fee_bps)
    assert info.value.field == "fee_bps"


def test_pay_partial_leaves_the_rest_of_the_hold_in_escrow() -> None:
    transfer = pay_partial("j-1", OPERATOR, charge=100, held=1000)
    assert postings(transfer) == {ESCROW: -100, OPERATOR_ACCT: 80, PROTOCOL_FEES: 20}
    with pytest.raises(ValidationError, match="charge at most the hold"):
        pay_partial("j-1", OPERATOR, charge=1001, held=1000)


def test_release_returns_the_whole_hold() -> None:
    assert postings(release("j-1", BUYER, 55)) == {ESCROW: -55, BUYER_ACCT: 55}


def test_apply_moves_money_without_mutating_its_input() -> None:
    before = {WORLD: -100, BUYER_ACCT: 100}
    after = apply(before, hold(BUYER, "j-1", 60, available=100))
    assert after == {WORLD: -100, BUYER_ACCT: 40, ESCROW: 60}
    assert before == {WORLD: -100, BUYER_ACCT: 100}
    assert total_inside(after) == 100


def test_apply_refuses_to_overdraw_and_names_the_account() -> None:
    balances = {WORLD: -100, BUYER_ACCT: 100, ESCROW: 0}
    with pytest.raises(ValidationError) as info:
        apply(balances, release("j-1", BUYER, 5))
    assert info.value.field == ESCROW
    assert "below zero" in info.value.message


def test_world_may_go_negative() -> None:
    assert apply({}, deposit(BUYER, 5)) == {WORLD: -5, BUYER_ACCT: 5}


def test_usage_bills_started_seconds_and_floors_micros() -> None:
    # 3.6 USD/hour is 1,000 micro-USD a second.
    assert usage_charge(3_600_000, 1, 0.0) == 0
    assert usage_charge(3_600_000, 1, 0.001) == 1_000
    assert usage_charge(3_600_000, 2, 10.0) == 20_000
    assert usage_charge(2_000_000, 2, 1234.4) == 1_372_222
    assert billed_seconds(1234.0) == 1234


@pytest.mark.parametrize(
    ("price", "units", "seconds"), [(0, 1, 1.0), (1, 0, 1.0), (1, 1, -1.0), (1, 1, float("inf"))]
)
def test_usage_charge_refuses_bad_inputs(price: int, units: int, seconds: float) -> None:
    with pytest.raises(ValidationError):
        usage_charge(price, units, seconds)


@given(
    st.integers(1, 500_000_000),
    st.integers(1, 16),
    st.floats(0, 10**7, allow_nan=False, allow_infinity=False),
)
def test_usage_charge_is_at_most_one_second_over_the_exact_cost(
    price: int, units: int, seconds: float
) -> None:
    charge = usage_charge(price, units, seconds)
    exact = Decimal(price) * units * Decimal(seconds) / 3600
    one_second = Decimal(price) * units / 3600
    assert exact - 1 < charge <= exact + one_second


@given(st.integers(1, 500_000_000), st.integers(1, 16), st.integers(1, 10**6), st.data())
def test_no_run_within_the_limit_costs_more_than_the_hold(
    price: int, units: int, max_duration: int, data: st.DataObject
) -> None:
    held = hold_amount(price, units, max_duration)
    seconds = data.draw(st.floats(0, max_duration, allow_nan=False))
    assert usage_charge(price, units, seconds) <= held
    assert held == usage_charge(price, units, max_duration) or (
        held == usage_charge(price, units, max_duration) + 1
    )
    assert held >= 1


def test_hold_amount_rounds_up() -> None:
    assert hold_amount(1, 1, 1) == 1
    assert hold_amount(3600, 1, 1) == 1
    assert hold_amount(3601, 1, 1) == 2
    assert hold_amount(2_000_000, 2, 3600) == 4_000_000
    with pytest.raises(ValidationError) as info:
        hold_amount(1, 1, 0)
    assert info.value.field == "max_duration_s"


@given(st.integers(0, 10**15), st.integers(0, 10_000))
def test_fee_never_exceeds_its_rate(charge: int, fee_bps: int) -> None:
    fee = fee_for(charge, fee_bps)
    assert 0 <= fee * 10_000 <= charge * fee_bps < (fee + 1) * 10_000
