"""Routes of accounts: deposit, withdraw, auto top-up, balances.

In this version deposits are credited on the signer's word: the ledger lives in the
indexer's store, and the chain's escrow contract will back deposits later. Every
movement is a double-entry transfer (``protocol.ledger``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy import Connection

from gpunet.api.jobs import AccountView, AmountIn, AutoTopUpIn
from gpunet.indexer import accounts
from gpunet.indexer.database import session_on
from gpunet.indexer.deps import Context, ReadSession, Signed
from gpunet.indexer.error_handlers import ERROR_RESPONSES, SIGNED_ERROR_RESPONSES
from gpunet.indexer.signing import SIGNED_OPENAPI
from gpunet.protocol import ledger

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], responses=ERROR_RESPONSES)


@router.post(
    "/deposit",
    summary="Deposit funds",
    description="Signed: credits the signer's available balance (micro-USD).",
    response_model=AccountView,
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def deposit(body: AmountIn, signed: Signed, context: Context) -> AccountView:
    now = context.clock()

    def change(connection: Connection) -> AccountView:
        with session_on(connection) as session:
            accounts.post(session, ledger.deposit(signed.address, body.amount_micros), at=now)
            return accounts.account_view(session, signed.address)

    view = await signed.apply(change)
    context.dispatch.wake_matcher()
    return view


@router.post(
    "/withdraw",
    summary="Withdraw funds",
    description="Signed: pays out of the signer's available balance; held funds stay.",
    response_model=AccountView,
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def withdraw(body: AmountIn, signed: Signed, context: Context) -> AccountView:
    now = context.clock()

    def change(connection: Connection) -> AccountView:
        with session_on(connection) as session:
            available = accounts.balance(session, ledger.buyer_account(signed.address))
            transfer = ledger.withdraw(signed.address, body.amount_micros, available)
            accounts.post(session, transfer, at=now)
            return accounts.account_view(session, signed.address)

    return await signed.apply(change)


@router.put(
    "/auto-topup",
    summary="Set the auto top-up rule",
    description="Signed: when available funds run short for a hold, credit "
    "`amount_micros` at a time, at most `limit_micros` in all. Amount 0 turns it off.",
    response_model=AccountView,
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def set_auto_topup(body: AutoTopUpIn, signed: Signed, context: Context) -> AccountView:
    def change(connection: Connection) -> AccountView:
        with session_on(connection) as session:
            rule = accounts.settings_for(session, signed.address)
            rule.topup_amount_micros = body.amount_micros
            rule.topup_threshold_micros = body.threshold_micros
            rule.topup_limit_micros = body.limit_micros
            rule.topup_used_micros = 0
            session.flush()
            return accounts.account_view(session, signed.address)

    return await signed.apply(change)


@router.get(
    "/{address}",
    summary="Show an address's balances",
    description="Available and held funds as a buyer, earnings as an operator.",
    response_model=AccountView,
)
def get_account(
    address: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")], session: ReadSession
) -> AccountView:
    return accounts.account_view(session, address)
