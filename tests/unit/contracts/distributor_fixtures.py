"""Deployments and Merkle helpers shared by the RewardDistributor tests.

Plain functions rather than pytest fixtures, so the unit tests and the hypothesis state
machine (which cannot take fixtures) build the same system: the gpunet token, a 6-decimal
fee token, and a distributor holding ``POOL`` tokens with a settler, an escrow and a
staking account configured. Trees come from ``gpunet.protocol.reward_tree``, the module
the indexer posts roots with, so every passing claim also checks that the Python tree and
the contract agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import boa
from eth_hash.auto import keccak

from gpunet.contracts import source_path
from gpunet.protocol.reward_tree import RewardLeaf, RewardTree
from gpunet.protocol.units import ONE_TOKEN

DAY_S = 86_400
MONTH_S = 2_629_800
BPS = 10_000
SUPPLY = 42_000_000_000 * ONE_TOKEN
POOL = 1_000_000_000 * ONE_TOKEN
FEE_SUPPLY = 10**15
REWARD_VEST_S = 30 * DAY_S
FEE_VEST_S = 7 * DAY_S
PENALTY_BPS = 5_000
CLAIM_WINDOW_S = 90 * DAY_S
# Far enough ahead of boa's genesis clock that "before the TGE" can be tested.
TGE_DELAY_S = 30 * DAY_S
# Generous caps (cumulative, per month) so tests that are not about caps never hit them.
OPEN_CAPS = [POOL] * 4
MISSING_ROLE = "access_control: account is missing role"
MAX_AMOUNT = 2**96 - 1


@cache
def _deployer(name: str) -> Any:
    return boa.load_partial(str(source_path(name)))


def load(name: str, *args: Any) -> Any:
    """Deploy ``src/gpunet/contracts/<name>.vy`` with ``args`` (compiled once per process)."""
    return _deployer(name).deploy(*args)


def now() -> int:
    """The current block timestamp."""
    return int(boa.env.evm.patch.timestamp)


def warp(timestamp: int) -> None:
    """Move the block time forward to exactly ``timestamp``."""
    boa.env.time_travel(seconds=timestamp - now())


@dataclass(frozen=True)
class Params:
    """Constructor settings of one distributor deployment."""

    reward_vest_s: int = REWARD_VEST_S
    fee_vest_s: int = FEE_VEST_S
    penalty_bps: int = PENALTY_BPS
    claim_window_s: int = CLAIM_WINDOW_S


@dataclass(frozen=True)
class System:
    """A deployed distributor and the accounts around it."""

    distributor: Any
    token: Any
    usd: Any
    admin: str
    settler: str
    escrow: str
    staking: str
    tge: int


def accounts() -> dict[str, str]:
    """Named, deterministic accounts for the roles around the distributor."""
    names = ("admin", "settler", "escrow", "staking")
    return {name: str(boa.env.generate_address(name)) for name in names}


def deploy_system(
    params: Params = Params(),
    caps: Sequence[int] = OPEN_CAPS,
    same_fee_token: bool = False,
    supply: int = SUPPLY,
) -> System:
    """Deploy tokens (``supply`` reward tokens) and a distributor holding ``POOL``; caps
    set, not sealed."""
    who = accounts()
    admin = who["admin"]
    token = load("Token", "gpunet", "GPU", [admin], [supply])
    usd = token if same_fee_token else load("PartnerToken", "USD", "USD", 6, admin, FEE_SUPPLY)
    tge = now()
    args = (params.reward_vest_s, params.fee_vest_s, params.penalty_bps, params.claim_window_s)
    distributor = load("RewardDistributor", token.address, usd.address, admin, tge, *args)
    with boa.env.prank(admin):
        token.transfer(distributor.address, POOL)
        distributor.grantRole(distributor.SETTLER_ROLE(), who["settler"])
        distributor.set_escrow(who["escrow"])
        distributor.set_staking(who["staking"])
        distributor.set_emission_caps(0, list(caps))
        usd.transfer(who["escrow"], FEE_SUPPLY // 2)
    return System(
        distributor, token, usd, admin, who["settler"], who["escrow"], who["staking"], tge
    )


def fund(system: System, epoch: int, amount: int) -> None:
    """Pay ``amount`` fee tokens in from the escrow and record them for ``epoch``."""
    with boa.env.prank(system.escrow):
        system.usd.transfer(system.distributor.address, amount)
        system.distributor.fund_fees(epoch, amount)


def tree_of(epoch: int, leaves: Sequence[tuple[str, int, int]]) -> RewardTree:
    """The reward tree of ``(account, reward, fee)`` leaves."""
    return RewardTree(epoch, [RewardLeaf(account, reward, fee) for account, reward, fee in leaves])


def post(system: System, epoch: int, leaves: Sequence[tuple[str, int, int]]) -> RewardTree:
    """Fund the epoch's fees, post its tree as the settler, and return the tree."""
    tree = tree_of(epoch, leaves)
    fee_total = sum(fee for _, _, fee in leaves)
    if fee_total:
        fund(system, epoch, fee_total)
    reward_total = sum(reward for _, reward, _ in leaves)
    with boa.env.prank(system.settler):
        system.distributor.post_epoch(epoch, tree.root, reward_total, fee_total)
    return tree


def claim(system: System, tree: RewardTree, account: str, sender: str | None = None) -> int:
    """Claim ``account``'s leaf of ``tree`` (sent by ``sender``, default the account)."""
    leaf = tree.leaf(account)
    with boa.env.prank(sender or account):
        position: int = system.distributor.claim(
            tree.epoch, account, leaf.reward, leaf.fee, tree.proof(account)
        )
    return position


def reference_root(epoch: int, leaves: Sequence[tuple[str, int, int]]) -> bytes:
    """An independent OpenZeppelin-style root: double-hashed leaves, sorted pairs, odd
    node promoted, leaves ordered by hash. Written from the spec, not from reward_tree."""
    level = sorted(keccak(keccak(_abi_words(epoch, *leaf))) for leaf in leaves)
    while len(level) > 1:
        pairs = [
            keccak(min(a, b) + max(a, b)) for a, b in zip(level[::2], level[1::2], strict=False)
        ]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def _abi_words(epoch: int, account: str, reward: int, fee: int) -> bytes:
    address = bytes.fromhex(account.removeprefix("0x")).rjust(32, b"\0")
    return (
        epoch.to_bytes(32, "big") + address + reward.to_bytes(32, "big") + fee.to_bytes(32, "big")
    )
