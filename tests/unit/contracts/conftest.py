"""Shared titanoboa fixtures for the contract tests.

Each contract compiles once per run (``load`` caches the compiled deployer); deploying
is then cheap, so contract fixtures are function-scoped. titanoboa's pytest plugin runs
every test and fixture inside ``boa.env.anchor()``, so chain state and block time never
leak from one test into the next.

Sections: constants and helpers, accounts, tokens, vesting, escrow. Fixtures for
further contracts go in their own section below.
"""

from __future__ import annotations

import functools
from typing import Any

import boa
import pytest

from gpunet.contracts import source_path
from gpunet.protocol.allocation import TOTAL_SUPPLY
from gpunet.protocol.units import ONE_TOKEN

# ---------------------------------------------------------------- constants, helpers
BPS = 10_000
DAY_S = 86_400
WEEK_S = 604_800
MONTH_S = 2_629_800
BURN_ADDRESS = "0x000000000000000000000000000000000000dEaD"
MISSING_ROLE = "access_control: account is missing role"
MAX_UINT256 = 2**256 - 1
# Far enough ahead of boa's genesis clock that "before the TGE" can be tested.
TGE_DELAY_S = 30 * DAY_S
USD_DECIMALS = 6
USD_SUPPLY = 10**9 * 10**USD_DECIMALS
VESTING_POOL = 1_000_000_000 * ONE_TOKEN
ESCROW_FEE_BPS = 1_000


@functools.cache
def _deployer(name: str) -> Any:
    return boa.load_partial(str(source_path(name)))


def load(name: str, *args: Any) -> Any:
    """Deploy ``src/gpunet/contracts/<name>.vy`` with constructor ``args`` (compiled once)."""
    return _deployer(name).deploy(*args)


@pytest.fixture(autouse=True)
def _fresh_storage_trace() -> None:
    """Forget which storage slots earlier tests wrote (titanoboa 0.2.8 workaround).

    Anchors roll back chain state but not boa's SSTORE trace, and a rolled-back test
    deploys its next contracts at the same addresses. When a call then reverts, boa
    describes the contract by decoding every traced slot at that address with the
    new contract's storage layout, and a nested map left by an earlier contract makes
    that fail with "'StructT' object has no attribute 'key_type'" instead of the
    revert reason. The trace only feeds those descriptions, so clearing it is safe.
    """
    boa.env.sstore_trace.clear()


def now() -> int:
    """The current block timestamp."""
    return int(boa.env.evm.patch.timestamp)


def warp(timestamp: int) -> None:
    """Move the block time forward to exactly ``timestamp``."""
    boa.env.time_travel(seconds=timestamp - now())


# ---------------------------------------------------------------- accounts
@pytest.fixture
def deployer() -> str:
    """boa's default sender, which deploys every contract."""
    return str(boa.env.eoa)


@pytest.fixture
def admin() -> str:
    return str(boa.env.generate_address("admin"))


@pytest.fixture
def alice() -> str:
    return str(boa.env.generate_address("alice"))


@pytest.fixture
def bob() -> str:
    return str(boa.env.generate_address("bob"))


@pytest.fixture
def carol() -> str:
    return str(boa.env.generate_address("carol"))


@pytest.fixture
def treasury() -> str:
    return str(boa.env.generate_address("treasury"))


# ---------------------------------------------------------------- tokens
@pytest.fixture
def token(admin: str) -> Any:
    """The gpunet token with the whole supply minted to ``admin``."""
    return load("Token", "gpunet", "GPU", [admin], [TOTAL_SUPPLY])


@pytest.fixture
def usd(admin: str) -> Any:
    """A 6-decimal stablecoin (PartnerToken), all of it held by ``admin``."""
    return load("PartnerToken", "USD Coin", "USDC", USD_DECIMALS, admin, USD_SUPPLY)


# ---------------------------------------------------------------- vesting
# Vesting.add_schedule's arguments after the total: tge_bps, cliff_s, linear_s,
# step_times, step_bps.
Args = tuple[int, int, int, list[int], list[int]]


def reference_vested(total: int, args: Args, since: int) -> int:
    """Base units unlocked ``since`` seconds after the TGE (negative: before it)."""
    tge_bps, cliff_s, linear_s, step_times, step_bps = args
    if since < 0:
        return 0
    reached = tge_bps + sum(b for t, b in zip(step_times, step_bps, strict=True) if since >= t)
    remainder = total - total * (tge_bps + sum(step_bps)) // BPS
    if since < cliff_s:
        linear = 0
    elif linear_s == 0:
        linear = remainder
    else:
        linear = remainder * min(since - cliff_s, linear_s) // linear_s
    return total * reached // BPS + linear


@pytest.fixture
def tge() -> int:
    return now() + TGE_DELAY_S


@pytest.fixture
def vesting(token: Any, admin: str, tge: int) -> Any:
    """A Vesting contract holding ``VESTING_POOL`` tokens, no schedules yet."""
    contract = load("Vesting", token.address, admin, tge)
    with boa.env.prank(admin):
        token.transfer(contract.address, VESTING_POOL)
    return contract


# ---------------------------------------------------------------- escrow
@pytest.fixture
def settler() -> str:
    return str(boa.env.generate_address("settler"))


@pytest.fixture
def fee_distributor(token: Any, usd: Any, admin: str, tge: int) -> Any:
    """The RewardDistributor that Escrow pays fees into (fees unlock at once)."""
    return load("RewardDistributor", token.address, usd.address, admin, tge, 0, 0, 0, 90 * DAY_S)


@pytest.fixture
def escrow(usd: Any, admin: str, treasury: str, settler: str, fee_distributor: Any) -> Any:
    """An Escrow in ``usd`` taking ``ESCROW_FEE_BPS``; ``settler`` holds SETTLER_ROLE."""
    contract = load("Escrow", usd.address, admin, treasury, fee_distributor.address, ESCROW_FEE_BPS)
    with boa.env.prank(admin):
        contract.grantRole(contract.SETTLER_ROLE(), settler)
        fee_distributor.set_escrow(contract.address)
    return contract


# ---------------------------------------------------------------- reward distributor
# The deployment itself lives in distributor_fixtures.py as plain functions, because the
# distributor's hypothesis state machine cannot take fixtures.
@pytest.fixture
def distributor_system() -> Any:
    """Tokens and a RewardDistributor holding its pool, with settler, escrow and staking
    accounts configured and open emission caps (not sealed)."""
    from .distributor_fixtures import deploy_system

    return deploy_system()
