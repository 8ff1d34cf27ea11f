"""Epoch settlements and each account's reward claims with their Merkle proofs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from gpunet.api.checks import ADDRESS_PATTERN
from gpunet.api.rewards import RewardClaims, SettlementList, SettlementPublic
from gpunet.indexer import reward_views
from gpunet.indexer.deps import ReadSession
from gpunet.indexer.error_handlers import ERROR_RESPONSES

router = APIRouter(prefix="/v1", tags=["rewards"], responses=ERROR_RESPONSES)

Address = Annotated[str, Path(pattern=ADDRESS_PATTERN)]


@router.get(
    "/settlements",
    summary="Settled epochs, newest first",
    description="Each epoch's reward tree root, totals, the parts of its budget and "
    "whether the root is on chain.",
    response_model=SettlementList,
)
def list_settlements(
    session: ReadSession, limit: Annotated[int, Query(ge=1, le=500)] = 20
) -> SettlementList:
    return SettlementList(settlements=reward_views.list_settlements(session, limit))


@router.get(
    "/settlements/{epoch}",
    summary="One settled epoch",
    description="The epoch's root, totals, budget parts, stake slashes and chain status.",
    response_model=SettlementPublic,
)
def get_settlement(
    epoch: Annotated[int, Path(ge=0, le=2**53)], session: ReadSession
) -> SettlementPublic:
    return reward_views.get_settlement(session, epoch)


@router.get(
    "/rewards/{account}",
    summary="An account's reward claims with Merkle proofs",
    description="Every settled epoch's leaf for the account, newest first, with the "
    "proof the reward distributor's `claim` takes. A claim whose status is `posted` "
    "can be claimed on chain (`gpunet claim`).",
    response_model=RewardClaims,
)
def rewards(
    account: Address, session: ReadSession, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> RewardClaims:
    return reward_views.claims_of(session, account, limit)
