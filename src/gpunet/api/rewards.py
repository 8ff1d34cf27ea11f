"""Epoch settlements and reward claims as the indexer's API shows them.

Amounts are token base units (18 decimals) as decimal strings, since they overflow
JSON numbers. A claim carries everything the reward distributor's ``claim`` needs:
the epoch, the leaf's reward and fee, and the Merkle proof as 0x-hex words.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SettlementStatus = Literal["computed", "posted", "empty", "local"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class SettlementPart(_Out):
    """One part of an epoch's budget and what it paid."""

    emission: str = Field(description="base units the emission schedule gave the epoch")
    budget: str = Field(description="base units available: the emission plus carry in")
    paid: str = Field(description="base units paid to accounts")
    carry: str = Field(description="dust and forfeits carried into the next epoch")


class SettlementPublic(_Out):
    """One settled epoch."""

    epoch: int
    settled_at: datetime
    status: SettlementStatus = Field(
        description="computed: not yet on chain; posted: the root is on the reward "
        "distributor; empty: nothing to pay; local: no chain configured"
    )
    root: str | None = Field(description="the reward tree's Merkle root, 0x-hex")
    reward_total: str
    fee_total: str
    carry_out: str = Field(description="dust carried into the next epoch")
    leaves: int
    parts: dict[str, SettlementPart] = Field(description="capacity, delivery and checkers")
    slashed: dict[str, str] = Field(
        description="penalties the epoch's rewards could not cover, slashed from stake"
    )
    posted_at: datetime | None
    post_tx: str | None
    post_error: str | None


class SettlementList(_Out):
    settlements: list[SettlementPublic]


class RewardClaim(_Out):
    """One epoch's leaf for an account, with its proof."""

    epoch: int
    reward: str
    fee: str
    proof: list[str] = Field(description="sibling hashes from the leaf up, 0x-hex")
    root: str
    status: SettlementStatus


class RewardClaims(_Out):
    """An account's leaves in every settled epoch, newest first."""

    account: str
    claims: list[RewardClaim]
