"""The fixed token supply and how genesis splits it into pools.

All 42 billion tokens are minted once at the TGE into the pools below (DESIGN.md
section 4). Vesting pools unlock by their ``VestingSchedule``; emission pools (compute
providers, checker nodes) are released by the emission rules in
``gpunet.protocol.emissions`` as the network runs, so their circulating amount is passed
in as ``emitted``.

Shares are basis points summing to exactly 10,000. ``TOTAL_SUPPLY`` is a multiple of
10,000 base units, so every share is an exact number of base units and there is no
rounding dust to place; ``pool_amount`` of the default pools sums to ``TOTAL_SUPPLY``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gpunet.errors import ValidationError
from gpunet.protocol.units import ONE_TOKEN
from gpunet.protocol.vesting import (
    BPS,
    VestingSchedule,
    end_month,
    unlocked_at_day,
    unlocked_at_month,
)

TOTAL_SUPPLY: int = 42_000_000_000 * ONE_TOKEN
VESTING = "vesting"
EMISSION = "emission"
POOL_KINDS = (VESTING, EMISSION)
# Column names of unlock_table rows, so no pool can take them.
RESERVED_NAMES = frozenset({"month", "vested"})
# Why there is no dust: a share of n bps is TOTAL_SUPPLY // 10_000 * n exactly.
assert TOTAL_SUPPLY % BPS == 0


@dataclass(frozen=True)
class Pool:
    """A named share of the supply; vesting pools carry their schedule, emission pools none."""

    name: str
    share_bps: int
    schedule: VestingSchedule | None
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in POOL_KINDS:
            raise ValidationError("kind", self.kind, "must be 'vesting' or 'emission'")
        if isinstance(self.share_bps, bool) or not isinstance(self.share_bps, int):
            raise ValidationError("share_bps", self.share_bps, "must be an integer")
        if not 0 < self.share_bps <= BPS:
            raise ValidationError("share_bps", self.share_bps, "must be between 1 and 10000")
        if (self.kind == VESTING) != (self.schedule is not None):
            raise ValidationError(
                "schedule",
                self.schedule,
                f"pool {self.name!r}: vesting pools need a schedule, emission pools take none",
            )


# Monthly unlocks (daily=False) throughout: the published terms are stated in months.
TEAM_VESTING = VestingSchedule(tge_bps=0, cliff_months=18, linear_months=36)
INVESTOR_VESTING = VestingSchedule(tge_bps=0, cliff_months=12, linear_months=24)
ECOSYSTEM_VESTING = VestingSchedule(tge_bps=5_000, cliff_months=0, linear_months=24)
TREASURY_VESTING = VestingSchedule(tge_bps=0, cliff_months=0, linear_months=48)
AIRDROP_VESTING = VestingSchedule(
    tge_bps=2_500, cliff_months=0, linear_months=0, steps=((8, 2_500), (16, 5_000))
)
ADVISOR_VESTING = VestingSchedule(tge_bps=0, cliff_months=18, linear_months=36)

DEFAULT_ALLOCATION: tuple[Pool, ...] = (
    Pool("compute_providers", 3_500, None, EMISSION),
    # Checker nodes' 15%: 10% base paid daily for correct checks, 5% quarterly bonus.
    Pool("checkers_base", 1_000, None, EMISSION),
    Pool("checkers_bonus", 500, None, EMISSION),
    Pool("team", 1_250, TEAM_VESTING, VESTING),
    Pool("investors", 1_150, INVESTOR_VESTING, VESTING),
    Pool("ecosystem", 800, ECOSYSTEM_VESTING, VESTING),
    Pool("dao_treasury", 700, TREASURY_VESTING, VESTING),
    Pool("airdrop", 600, AIRDROP_VESTING, VESTING),
    Pool("advisors", 500, ADVISOR_VESTING, VESTING),
)


def pool_amount(pool: Pool) -> int:
    """The pool's share of ``TOTAL_SUPPLY`` in base units (exact, see module docstring)."""
    return TOTAL_SUPPLY // BPS * pool.share_bps


def pool_named(allocation: Iterable[Pool], name: str) -> Pool:
    """The pool called ``name``."""
    for pool in allocation:
        if pool.name == name:
            return pool
    raise ValidationError("name", name, "no pool of that name in the allocation")


def validate_allocation(allocation: Iterable[Pool]) -> tuple[Pool, ...]:
    """Return the pools if names are unique and shares sum to exactly 10,000 bps."""
    pools = tuple(allocation)
    names = [pool.name for pool in pools]
    if len(set(names)) != len(names):
        raise ValidationError("allocation", names, "pool names must be unique")
    if RESERVED_NAMES & set(names):
        raise ValidationError("allocation", names, "'month' and 'vested' name table columns")
    total_bps = sum(pool.share_bps for pool in pools)
    if total_bps != BPS:
        raise ValidationError(
            "allocation", total_bps, "pool shares must add up to exactly 10000 bps"
        )
    return pools


def emission_capacity(allocation: Iterable[Pool]) -> int:
    """Base units held by the emission pools: the most that emissions can release."""
    return sum(pool_amount(pool) for pool in allocation if pool.kind == EMISSION)


def _vested(pool: Pool, month: int) -> int:
    assert pool.schedule is not None  # guaranteed for vesting pools by Pool itself
    return unlocked_at_month(pool.schedule, pool_amount(pool), month)


def _check_emitted(pools: tuple[Pool, ...], emitted: int) -> None:
    capacity = emission_capacity(pools)
    if isinstance(emitted, bool) or not isinstance(emitted, int):
        raise ValidationError("emitted", emitted, "must be an integer number of base units")
    if not 0 <= emitted <= capacity:
        raise ValidationError(
            "emitted", emitted, f"must be between 0 and the emission pools' {capacity}"
        )


def vested_at_month(allocation: Iterable[Pool], month: int) -> int:
    """Base units the vesting pools have unlocked as of the start of ``month``."""
    pools = validate_allocation(allocation)
    return sum(_vested(pool, month) for pool in pools if pool.kind == VESTING)


def circulating_at_month(allocation: Iterable[Pool], month: int, emitted: int = 0) -> int:
    """Circulating supply at the start of ``month``: vested unlocks plus ``emitted``.

    ``emitted`` is what the emission pools have released so far (base units).
    """
    pools = validate_allocation(allocation)
    _check_emitted(pools, emitted)
    return vested_at_month(pools, month) + emitted


def circulating_at_day(allocation: Iterable[Pool], day: int, emitted: int = 0) -> int:
    """Circulating supply at the start of ``day``: vested unlocks plus ``emitted``."""
    pools = validate_allocation(allocation)
    _check_emitted(pools, emitted)
    vested = 0
    for pool in pools:
        if pool.schedule is not None:
            vested += unlocked_at_day(pool.schedule, pool_amount(pool), day)
    return vested + emitted


def vesting_end_month(allocation: Iterable[Pool]) -> int:
    """The first month at which every vesting pool is fully unlocked."""
    ends = [end_month(pool.schedule) for pool in allocation if pool.schedule is not None]
    return max(ends, default=0)


def unlock_table(allocation: Iterable[Pool], months: int) -> list[dict[str, int]]:
    """Month-by-month unlocked base units per vesting pool, for months 0 to ``months``.

    Each row holds ``month``, one key per vesting pool and ``vested``, their sum.
    """
    pools = validate_allocation(allocation)
    if isinstance(months, bool) or not isinstance(months, int) or months < 0:
        raise ValidationError("months", months, "must be a whole number of months, 0 or more")
    vesting = [pool for pool in pools if pool.kind == VESTING]
    rows = []
    for month in range(months + 1):
        row = {"month": month} | {pool.name: _vested(pool, month) for pool in vesting}
        row["vested"] = sum(row[pool.name] for pool in vesting)
        rows.append(row)
    return rows
