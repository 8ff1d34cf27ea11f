"""The ledger in the store: transfers decided by ``protocol.ledger``, written as entries.

Every money movement goes through ``post``: it reads the balances the transfer
touches (locked for update on PostgreSQL), lets ``protocol.ledger.apply`` refuse an
overdraft, then writes one entry per posting and the new balances, in the caller's
transaction. A refused transfer writes nothing; a crash before commit loses nothing,
because the entries and the change that caused them commit together.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gpunet.api.jobs import AccountView
from gpunet.indexer.orm import AccountRecord, BuyerSettingsRecord, JobRecord, LedgerEntryRecord
from gpunet.protocol import ledger
from gpunet.protocol.ledger import Transfer


def balances(
    session: Session, accounts: Iterable[str], *, for_update: bool = False
) -> dict[str, int]:
    """Balances of ``accounts``; an account never written has balance 0."""
    names = sorted(set(accounts))
    query = select(AccountRecord).where(AccountRecord.account.in_(names))
    if for_update:
        query = query.with_for_update()
    found = {record.account: record.balance for record in session.scalars(query)}
    return {name: found.get(name, 0) for name in names}


def balance(session: Session, account: str) -> int:
    return balances(session, [account])[account]


def post(session: Session, transfer: Transfer, *, at: float, job_id: str | None = None) -> None:
    """Write ``transfer`` (entries and balances) in the open transaction.

    Raises ``ValidationError`` (from ``protocol.ledger.apply``) when an account other
    than ``world`` would go negative; nothing is written then.
    """
    touched = [posting.account for posting in transfer.postings]
    before = balances(session, touched, for_update=True)
    after = ledger.apply(before, transfer)
    transfer_id = uuid.uuid4().hex
    for posting in transfer.postings:
        session.add(
            LedgerEntryRecord(
                transfer_id=transfer_id,
                kind=transfer.kind,
                account=posting.account,
                amount=posting.amount,
                job_id=job_id,
                at=at,
                memo=transfer.memo,
            )
        )
    for account in touched:
        record = session.get(AccountRecord, account)
        if record is None:
            session.add(AccountRecord(account=account, balance=after[account]))
        else:
            record.balance = after[account]
    session.flush()


def settings_for(session: Session, address: str) -> BuyerSettingsRecord:
    """The buyer's settings row, created (all zero) when missing."""
    address = address.lower()
    record = session.get(BuyerSettingsRecord, address)
    if record is None:
        record = BuyerSettingsRecord(
            address=address,
            topup_amount_micros=0,
            topup_threshold_micros=0,
            topup_limit_micros=0,
            topup_used_micros=0,
        )
        session.add(record)
        session.flush()
    return record


def auto_top_up(session: Session, address: str, need: int, *, at: float) -> int:
    """Credit the buyer's auto top-up until ``need`` is available or the limit is used.

    Returns the amount credited (0 when no rule is set or its limit is spent).
    """
    rule = session.get(BuyerSettingsRecord, address.lower())
    if rule is None or rule.topup_amount_micros <= 0:
        return 0
    account = ledger.buyer_account(address)
    credited = 0
    while balance(session, account) < max(need, rule.topup_threshold_micros):
        room = rule.topup_limit_micros - rule.topup_used_micros
        amount = min(rule.topup_amount_micros, room)
        if amount <= 0:
            break
        post(session, ledger.deposit(address, amount), at=at)
        rule.topup_used_micros += amount
        credited += amount
    return credited


def _sum_entries(session: Session, account: str, *, sign: int, kind: str) -> int:
    query = select(func.coalesce(func.sum(LedgerEntryRecord.amount), 0)).where(
        LedgerEntryRecord.account == account, LedgerEntryRecord.kind == kind
    )
    return abs(int(session.scalar(query) or 0)) if sign else 0


def account_view(session: Session, address: str) -> AccountView:
    """Balances of one address as a buyer (available, held) and as an operator (earned)."""
    address = address.lower()
    buyer = ledger.buyer_account(address)
    operator = ledger.operator_account(address)
    found = balances(session, [buyer, operator])
    held = session.scalar(
        select(func.coalesce(func.sum(JobRecord.hold_micros), 0)).where(JobRecord.buyer == address)
    )
    paid = session.scalar(
        select(func.count())
        .select_from(LedgerEntryRecord)
        .where(LedgerEntryRecord.account == operator, LedgerEntryRecord.amount > 0)
    )
    rule = session.get(BuyerSettingsRecord, address)
    return AccountView(
        address=address,
        available_micros=found[buyer],
        held_micros=int(held or 0),
        earned_micros=found[operator],
        deposited_micros=_sum_entries(session, buyer, sign=1, kind="deposit"),
        withdrawn_micros=_sum_entries(session, buyer, sign=1, kind="withdraw"),
        auto_topup_amount_micros=rule.topup_amount_micros if rule else 0,
        auto_topup_threshold_micros=rule.topup_threshold_micros if rule else 0,
        auto_topup_limit_micros=rule.topup_limit_micros if rule else 0,
        auto_topup_used_micros=rule.topup_used_micros if rule else 0,
        jobs_paid=int(paid or 0),
    )
