"""Deployments shared by the Staking contract tests.

Plain functions rather than pytest fixtures, so the unit tests and the hypothesis state
machine (which cannot take fixtures) build the same system. Contracts are deployed with
the shared ``load`` helper, which compiles each source once per process.

The distributor is either a small stand-in whose pending rewards a test credits directly
(fast, and the state machine drives it freely), or the real RewardDistributor, where
pending rewards come from a posted epoch and a claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import boa

from gpunet.protocol.reward_tree import RewardLeaf, RewardTree
from gpunet.protocol.units import ONE_TOKEN

from .conftest import BURN_ADDRESS, DAY_S, MISSING_ROLE, MONTH_S, WEEK_S, load, now

__all__ = ["BURN_ADDRESS", "DAY_S", "MISSING_ROLE", "MONTH_S", "WEEK_S"]

UNSTAKE_DELAY_S = 180 * DAY_S
MIN_LOCK_S = WEEK_S
MAX_LOCK_S = 48 * MONTH_S
MAX_MULTIPLIER_BPS = 40_000
SUPPLY = 42_000_000_000 * ONE_TOKEN
DISTRIBUTOR_POOL = 10**9 * ONE_TOKEN
REWARD_VEST_S = 30 * DAY_S

# A stand-in for RewardDistributor.slash_pending: the test credits an account's
# unreleased rewards, and a slash takes from them and pays the staking contract.
DISTRIBUTOR_STANDIN = """
# pragma version ~=0.4.3
from ethereum.ercs import IERC20

token: public(immutable(IERC20))
staking: public(address)
pending_rewards: public(HashMap[address, uint256])

@deploy
def __init__(token_: address):
    token = IERC20(token_)

@external
def set_staking(staking_: address):
    self.staking = staking_

@external
def credit(account: address, amount: uint256):
    self.pending_rewards[account] += amount

@external
def slash_pending(account: address, amount: uint256) -> uint256:
    assert msg.sender == self.staking, "distributor: only staking"
    taken: uint256 = min(amount, self.pending_rewards[account])
    self.pending_rewards[account] -= taken
    if taken > 0:
        assert extcall token.transfer(msg.sender, taken)
    return taken
"""


@cache
def _standin_deployer() -> Any:
    return boa.loads_partial(DISTRIBUTOR_STANDIN, name="DistributorStandIn")


def deploy_token(holder: str, supply: int = SUPPLY, symbol: str = "GPU") -> Any:
    """The project's fixed-supply token with the whole supply at `holder`."""
    return load("Token", f"{symbol} token", symbol, [holder], [supply])


def deploy_partner_token(
    holder: str, symbol: str, decimals: int = 18, supply: int | None = None
) -> Any:
    """A partner reward token (snekmate ERC-20), by default a trillion whole tokens, all
    at `holder`."""
    supply = 10**12 * 10**decimals if supply is None else supply
    return load("PartnerToken", f"{symbol} token", symbol, decimals, holder, supply)


def deploy_standin_distributor(token: Any) -> Any:
    """The inline slash_pending stand-in, holding no tokens yet."""
    return _standin_deployer().deploy(token.address)


def deploy_staking(
    token: str,
    admin: str,
    distributor: str,
    sink: str = BURN_ADDRESS,
    **overrides: int,
) -> Any:
    """Staking with the default parameters (180-day unstake, 1 week..4 years, 4x)."""
    params = {
        "unstake_delay_s": UNSTAKE_DELAY_S,
        "min_lock_s": MIN_LOCK_S,
        "max_lock_s": MAX_LOCK_S,
        "max_multiplier_bps": MAX_MULTIPLIER_BPS,
    } | overrides
    return load(
        "Staking",
        token,
        admin,
        distributor,
        sink,
        params["unstake_delay_s"],
        params["min_lock_s"],
        params["max_lock_s"],
        params["max_multiplier_bps"],
    )


@dataclass
class StakingSystem:
    """A token, a stand-in distributor, the staking contract and its actors."""

    token: Any
    distributor: Any
    staking: Any
    admin: str
    slasher: str
    sink: str
    users: list[str]

    def give(self, account: str, amount: int, spender: Any = None) -> None:
        """Sends `amount` tokens from the admin and approves `spender` (staking by default)."""
        self.token.transfer(account, amount, sender=self.admin)
        target = self.staking if spender is None else spender
        self.token.approve(target.address, 2**256 - 1, sender=account)


def deploy_real_distributor(token: Any, admin: str) -> Any:
    """A RewardDistributor paying rewards in `token` (also its fee token) that vest over
    30 days, with `DISTRIBUTOR_POOL` tokens and open caps; `admin` may post epochs."""
    distributor = load(
        "RewardDistributor",
        token.address,
        token.address,
        admin,
        now(),
        REWARD_VEST_S,
        0,
        0,
        90 * DAY_S,
    )
    with boa.env.prank(admin):
        token.transfer(distributor.address, DISTRIBUTOR_POOL)
        distributor.grantRole(distributor.SETTLER_ROLE(), admin)
        distributor.set_emission_caps(0, [DISTRIBUTOR_POOL] * 4)
    return distributor


def build_system(
    n_users: int = 3, real_distributor: bool = False, **overrides: int
) -> StakingSystem:
    """Deploys a full system; the deployer is a fresh account that keeps no role."""
    admin, slasher = boa.env.generate_address("admin"), boa.env.generate_address("slasher")
    sink = boa.env.generate_address("sink")
    token = deploy_token(admin)
    if real_distributor:
        distributor = deploy_real_distributor(token, admin)
    else:
        distributor = deploy_standin_distributor(token)
    staking = deploy_staking(token.address, admin, distributor.address, sink, **overrides)
    distributor.set_staking(staking.address, sender=admin)
    staking.grantRole(staking.SLASHER_ROLE(), slasher, sender=admin)
    users = [boa.env.generate_address(f"user{i}") for i in range(n_users)]
    system = StakingSystem(token, distributor, staking, admin, slasher, sink, users)
    for user in users:
        system.give(user, 10**9 * ONE_TOKEN)
    return system


def post_and_claim(system: StakingSystem, epoch: int, account: str, reward: int) -> int:
    """Posts a one-leaf epoch on the real distributor and claims it for `account`,
    which leaves `reward` unreleased (vesting) there; returns the position id."""
    tree = RewardTree(epoch, [RewardLeaf(account, reward, 0)])
    system.distributor.post_epoch(epoch, tree.root, reward, 0, sender=system.admin)
    position: int = system.distributor.claim(epoch, account, reward, 0, tree.proof(account))
    return position
