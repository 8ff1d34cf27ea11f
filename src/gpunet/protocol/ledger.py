"""The double-entry ledger: every movement of a buyer's money, in integer micro-USD.

Money moves only in ``Transfer``s whose postings sum to zero, so it is never created or
lost inside the system. Accounts are strings:

- ``world``: outside the system, the other side of deposits and withdrawals; the only
  account that may go negative (its balance is minus everything inside);
- ``buyer:<address>``: a buyer's available balance;
- ``escrow:<job_id>``: funds held for one job or session;
- ``operator:<address>``: an operator's earnings;
- ``protocol:fees``: the protocol fee.

Invariant: the sum over all accounts is 0, so the sum inside (all but ``world``) equals
deposits less withdrawals, and no account but ``world`` is ever negative.

SLA credit needs no account of its own: the buyer is never charged for lost time, so
the hold for it simply goes back to the buyer (``release``).

Rounding: usage is billed in whole seconds, rounded up, and the micro-dollars are
rounded down (``usage_charge``); a hold is the charge for the whole allowed duration,
rounded up (``hold_amount``), so a settlement never needs more than was held. The fee is
``charge * fee_bps // 10_000``, rounded down, and the operator gets the rest, so the
fee never exceeds its rate; with partial payments each slice is floored on its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from gpunet.errors import ValidationError
from gpunet.protocol.units import format_usd, usd_cost_micros

WORLD = "world"
PROTOCOL_FEES = "protocol:fees"
BUYER_PREFIX = "buyer:"
ESCROW_PREFIX = "escrow:"
OPERATOR_PREFIX = "operator:"
DEFAULT_FEE_BPS = 2000
BPS = 10_000
SECONDS_PER_HOUR = 3600

_ACCOUNT_KEY = re.compile(r"^[^\s:]{1,64}$")
_ACCOUNT = re.compile(r"^(buyer|escrow|operator):[^\s:]{1,64}$")


def _key(field: str, value: str, example: str) -> str:
    if not isinstance(value, str) or not _ACCOUNT_KEY.fullmatch(value):
        raise ValidationError(
            field, value, f"use 1-64 characters without spaces or colons, like {example}"
        )
    return value


def buyer_account(address: str) -> str:
    """The account of a buyer's available balance; addresses compare lowercased."""
    return BUYER_PREFIX + _key("address", address, "0xab12...").lower()


def escrow_account(job_id: str) -> str:
    """The account holding the funds of one job or session."""
    return ESCROW_PREFIX + _key("job_id", job_id, "j-3fa2c1")


def operator_account(address: str) -> str:
    """The account of an operator's earnings; addresses compare lowercased."""
    return OPERATOR_PREFIX + _key("address", address, "0xab12...").lower()


def is_account(name: str) -> bool:
    """True for ``world``, ``protocol:fees`` and well-formed prefixed accounts."""
    return name in (WORLD, PROTOCOL_FEES) or bool(_ACCOUNT.fullmatch(name))


def _require_amount(field: str, value: object, low: int = 0, unit: str = "micro-USD") -> int:
    # bool is an int subclass, and a float amount means a rounding rule was skipped.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(field, value, f"must be an integer number of {unit}")
    if value < low:
        raise ValidationError(field, value, f"must be at least {low}")
    return value


@dataclass(frozen=True)
class Posting:
    """One side of a transfer: a signed amount on one account (positive = credit)."""

    account: str
    amount: int

    def __post_init__(self) -> None:
        if not isinstance(self.account, str) or not is_account(self.account):
            raise ValidationError(
                "account", self.account, "use world, protocol:fees, or buyer:/escrow:/operator:<id>"
            )
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise ValidationError("amount", self.amount, "must be an integer number of micro-USD")


@dataclass(frozen=True)
class Transfer:
    """A balanced movement of money; zero postings are dropped, so it may be empty."""

    kind: str
    postings: tuple[Posting, ...]
    memo: str = ""

    def __post_init__(self) -> None:
        if not self.kind:
            raise ValidationError("kind", self.kind, "name the transfer, like settle")
        postings = tuple(p for p in self.postings if p.amount != 0)
        accounts = [p.account for p in postings]
        if len(set(accounts)) != len(accounts):
            raise ValidationError("postings", accounts, "name each account at most once")
        total = sum(p.amount for p in postings)
        if total != 0:
            raise ValidationError("postings", total, "must sum to zero; money cannot appear")
        object.__setattr__(self, "postings", postings)

    def amount_for(self, account: str) -> int:
        """The amount this transfer posts to ``account`` (0 when absent)."""
        return sum(p.amount for p in self.postings if p.account == account)


def _transfer(kind: str, *pairs: tuple[str, int]) -> Transfer:
    return Transfer(kind, tuple(Posting(account, amount) for account, amount in pairs))


def fee_for(charge: int, fee_bps: int = DEFAULT_FEE_BPS) -> int:
    """The protocol fee on ``charge``: rounded down, the remainder goes to the operator."""
    _require_amount("charge", charge)
    _require_amount("fee_bps", fee_bps, unit="basis points")
    if fee_bps > BPS:
        raise ValidationError("fee_bps", fee_bps, f"must be at most {BPS} (100%)")
    return charge * fee_bps // BPS


def deposit(buyer: str, amount: int) -> Transfer:
    """Money in: ``world`` -> the buyer's balance."""
    _require_amount("amount", amount, low=1)
    return _transfer("deposit", (WORLD, -amount), (buyer_account(buyer), amount))


def withdraw(buyer: str, amount: int, available: int) -> Transfer:
    """Money out: the buyer's balance -> ``world``; refuses more than ``available``."""
    _require_amount("amount", amount, low=1)
    _require_amount("available", available)
    if amount > available:
        raise ValidationError(
            "amount",
            amount,
            f"only {format_usd(available)} USD is available; withdraw at most that",
        )
    return _transfer("withdraw", (buyer_account(buyer), -amount), (WORLD, amount))


def hold(buyer: str, job_id: str, amount: int, available: int) -> Transfer:
    """Reserve a job's maximum charge: the buyer's balance -> ``escrow:<job_id>``."""
    _require_amount("amount", amount, low=1)
    _require_amount("available", available)
    if amount > available:
        missing = format_usd(amount - available)
        raise ValidationError(
            "amount",
            amount,
            f"the job needs {format_usd(amount)} USD held but {format_usd(available)} USD "
            f"is available; deposit at least {missing} USD more",
        )
    return _transfer("hold", (buyer_account(buyer), -amount), (escrow_account(job_id), amount))


def _require_charge(charge: int, held: int) -> None:
    _require_amount("held", held)
    _require_amount("charge", charge)
    if charge > held:
        raise ValidationError(
            "charge", charge, f"exceeds the {held} micro-USD held; charge at most the hold"
        )


def settle(
    job_id: str, buyer: str, operator: str, held: int, charge: int, fee_bps: int = DEFAULT_FEE_BPS
) -> Transfer:
    """Close a hold: ``charge`` to the operator and the fee, the rest back to the buyer."""
    _require_charge(charge, held)
    fee = fee_for(charge, fee_bps)
    return _transfer(
        "settle",
        (escrow_account(job_id), -held),
        (operator_account(operator), charge - fee),
        (PROTOCOL_FEES, fee),
        (buyer_account(buyer), held - charge),
    )


def pay_partial(
    job_id: str, operator: str, charge: int, held: int, fee_bps: int = DEFAULT_FEE_BPS
) -> Transfer:
    """Pay a slice of usage out of an open hold (``held`` is what remains in it)."""
    _require_charge(charge, held)
    fee = fee_for(charge, fee_bps)
    return _transfer(
        "pay_partial",
        (escrow_account(job_id), -charge),
        (operator_account(operator), charge - fee),
        (PROTOCOL_FEES, fee),
    )


def release(job_id: str, buyer: str, held: int) -> Transfer:
    """Return the whole remaining hold to the buyer, charging nothing."""
    _require_amount("held", held)
    return _transfer("release", (escrow_account(job_id), -held), (buyer_account(buyer), held))


def _require_rate(price_micros_per_hour: int, units: int) -> None:
    _require_amount("price_micros_per_hour", price_micros_per_hour, low=1)
    _require_amount("units", units, low=1, unit="GPUs")


def billed_seconds(seconds: float) -> int:
    """Seconds of use as billed: whole seconds, a started second counts."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValidationError("seconds", seconds, "must be a finite, non-negative duration")
    return math.ceil(seconds)


def usage_charge(price_micros_per_hour: int, units: int, seconds: float) -> int:
    """The charge for ``units`` GPUs (1 for CPU work) used ``seconds`` at an hourly price.

    Seconds round up to the whole second; the micro-dollars round down.
    """
    _require_rate(price_micros_per_hour, units)
    return usd_cost_micros(price_micros_per_hour, units, billed_seconds(seconds))


def hold_amount(price_micros_per_hour: int, units: int, max_duration_s: int) -> int:
    """What to hold at match: the charge for the whole allowed duration, rounded up."""
    _require_rate(price_micros_per_hour, units)
    _require_amount("max_duration_s", max_duration_s, low=1, unit="seconds")
    return -(-price_micros_per_hour * units * max_duration_s // SECONDS_PER_HOUR)


def apply(balances: Mapping[str, int], transfer: Transfer) -> dict[str, int]:
    """The balances after ``transfer``; refuses to take any account but world below 0."""
    after = dict(balances)
    for posting in transfer.postings:
        after[posting.account] = after.get(posting.account, 0) + posting.amount
    for posting in transfer.postings:
        if posting.account != WORLD and after[posting.account] < 0:
            before = balances.get(posting.account, 0)
            raise ValidationError(
                posting.account,
                before,
                f"{transfer.kind} would take it {format_usd(-after[posting.account])} USD "
                "below zero; move less or fund it first",
            )
    return after


def total_inside(balances: Mapping[str, int]) -> int:
    """The money inside the system: every account except ``world``."""
    return sum(amount for account, amount in balances.items() if account != WORLD)
