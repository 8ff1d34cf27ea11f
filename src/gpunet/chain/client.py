"""``Chain``: the deployed system as typed Python methods.

Every method that moves tokens into a contract first approves exactly the amount it
needs, so a caller never handles allowances. Senders default to the backend's own
account (the key an ``RpcChain`` signs with). Reverts raise ``ChainRevert`` with the
contract's message ("distributor: invalid proof").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gpunet.chain.artifacts import Artifacts
from gpunet.chain.backend import Backend, Receipt
from gpunet.chain.contract import BoundContract
from gpunet.chain.deploy import BURN_ADDRESS, Deployment, load_deployment

_ARTIFACT_OF = {
    "token": "Token",
    "vesting": "Vesting",
    "distributor": "RewardDistributor",
    "staking": "Staking",
    "escrow": "Escrow",
}


@dataclass(frozen=True)
class VestingPosition:
    """One vesting schedule as the contract reports it now."""

    id: int
    beneficiary: str
    total: int
    released: int
    vested: int
    releasable: int
    tge_bps: int
    cliff_s: int
    linear_s: int


@dataclass(frozen=True)
class PoolSupply:
    """One genesis pool: its amount and how much of it is still locked or unemitted."""

    name: str
    kind: str
    amount: int
    locked: int


@dataclass(frozen=True)
class Supply:
    """Where the fixed supply is; ``total == circulating + vesting_locked +
    emission_unemitted + burned``. Staked tokens are part of circulating."""

    total: int
    circulating: int
    vesting_locked: int
    emission_unemitted: int
    staked: int
    burned: int
    by_pool: list[PoolSupply] = field(default_factory=list)


class Chain:
    """The contracts of one deployment, over any ``Backend``."""

    def __init__(
        self, backend: Backend, deployment: Deployment, artifacts: Artifacts | None = None
    ) -> None:
        self.backend = backend
        self.deployment = deployment
        self.artifacts = arts = artifacts or Artifacts()
        address = deployment.contracts
        bind = {
            key: BoundContract(backend, arts.get(name), address[key])
            for key, name in _ARTIFACT_OF.items()
        }
        self.token, self.vesting = bind["token"], bind["vesting"]
        self.distributor, self.staking = bind["distributor"], bind["staking"]
        self.escrow = bind["escrow"]
        self._erc20 = arts.get("PartnerToken")
        self.payment_token = self.erc20(address["payment_token"])

    @classmethod
    def open(cls, backend: Backend, data_dir: Path, artifacts: Artifacts | None = None) -> Chain:
        """The deployment recorded for this backend's chain in ``data_dir``."""
        return cls(backend, load_deployment(data_dir, backend.chain_id), artifacts)

    @property
    def sender(self) -> str:
        """The account transactions come from by default."""
        return self.backend.default_sender

    def erc20(self, address: str) -> BoundContract:
        """Any ERC-20 token (a partner token, the stablecoin) at ``address``."""
        return BoundContract(self.backend, self._erc20, address)

    def balance(self, account: str, token: str | None = None) -> int:
        """``account``'s balance of ``token`` (default: the gpunet token)."""
        contract = self.erc20(token) if token else self.token
        return int(contract.call("balanceOf", account))

    def transfer(self, to: str, amount: int, token: str | None = None) -> Receipt:
        """Send tokens from the sender (the gpunet token by default)."""
        contract = self.erc20(token) if token else self.token
        return contract.transact(self.sender, "transfer", to, amount)

    def deploy_partner_token(self, name: str, symbol: str, decimals: int, supply: int) -> str:
        """A new ERC-20 with ``supply`` base units held by the sender; its address.

        For partners without a token of their own on this chain (a local chain, a test
        network): any ERC-20 can be a staking reward token.
        """
        args = [name, symbol, decimals, self.sender, supply]
        return self.backend.deploy(self._erc20, args, self.sender)

    def _approve(self, token: BoundContract, spender: BoundContract, amount: int) -> None:
        token.transact(self.sender, "approve", spender.address, amount)

    # Rewards

    def claim(
        self, epoch: int, account: str, reward: int, fee: int, proof: Sequence[bytes]
    ) -> Receipt:
        """Claim ``account``'s leaf of ``epoch`` (anyone may send it; only it is paid)."""
        return self.distributor.transact(
            self.sender, "claim", epoch, account, reward, fee, list(proof)
        )

    def release(self, position_id: int, early: bool = False) -> Receipt:
        """Pay what a reward position has vested; ``early`` takes the rest at a penalty."""
        fn = "release_early" if early else "release"
        return self.distributor.transact(self.sender, fn, position_id)

    def positions(self, account: str) -> list[int]:
        """Open reward position ids of ``account``."""
        return list(self.distributor.call("position_ids", account))

    def pending_rewards(self, account: str) -> int:
        """Unreleased reward of all of ``account``'s positions."""
        return int(self.distributor.call("pending_rewards", account))

    def post_epoch(self, epoch: int, root: bytes, reward_total: int, fee_total: int) -> Receipt:
        """Publish an epoch's Merkle root (settler role)."""
        return self.distributor.transact(
            self.sender, "post_epoch", epoch, root, reward_total, fee_total
        )

    # Payments

    def deposit(self, amount: int) -> Receipt:
        """Move payment tokens from the sender into the escrow."""
        self._approve(self.payment_token, self.escrow, amount)
        return self.escrow.transact(self.sender, "deposit", amount)

    def settle_escrow(self, epoch: int, clients: Sequence[str], amounts: Sequence[int]) -> Receipt:
        """Charge clients for an epoch and fund its fees (settler role)."""
        return self.escrow.transact(self.sender, "settle", epoch, list(clients), list(amounts))

    # Staking

    def stake_collateral(self, amount: int) -> Receipt:
        """Stake node collateral."""
        self._approve(self.token, self.staking, amount)
        return self.staking.transact(self.sender, "stake_collateral", amount)

    def request_unstake(self, amount: int) -> Receipt:
        """Start the unstaking delay for ``amount`` of collateral."""
        return self.staking.transact(self.sender, "request_unstake", amount)

    def withdraw_unstaked(self) -> Receipt:
        """Take back collateral whose unstaking delay has passed."""
        return self.staking.transact(self.sender, "withdraw_unstaked")

    def lock(self, amount: int, duration_s: int) -> Receipt:
        """Lock tokens for ``duration_s``; the ``Locked`` event carries the lock id."""
        self._approve(self.token, self.staking, amount)
        return self.staking.transact(self.sender, "lock", amount, duration_s)

    def unlock(self, lock_id: int) -> Receipt:
        """Take back an ended lock."""
        return self.staking.transact(self.sender, "unlock", lock_id)

    def add_reward_token(self, token: str) -> Receipt:
        """Allow a partner token as a staking reward stream (admin)."""
        return self.staking.transact(self.sender, "add_reward_token", token)

    def partner_fund(self, token: str, amount: int, duration_s: int) -> Receipt:
        """Stream ``amount`` of a partner token to lockers over ``duration_s``."""
        self._approve(self.erc20(token), self.staking, amount)
        return self.staking.transact(self.sender, "fund", token, amount, duration_s)

    def claim_partner_rewards(self, token: str | None = None) -> Receipt:
        """Claim earned rewards of one reward token, or of all when ``token`` is None."""
        if token is None:
            return self.staking.transact(self.sender, "claim_all")
        return self.staking.transact(self.sender, "claim_rewards", token)

    def earned(self, account: str, token: str) -> int:
        """Rewards of ``token`` that ``account`` could claim now."""
        return int(self.staking.call("earned", account, token))

    def slash(self, account: str, amount: int, reason: str) -> Receipt:
        """Slash rewards, then stake, of ``account`` (slasher role)."""
        return self.staking.transact(self.sender, "slash", account, amount, reason)

    # Vesting and supply

    def vesting_show(self, beneficiary: str) -> list[VestingPosition]:
        """Every vesting schedule of ``beneficiary``, valued now."""
        now = self.backend.timestamp()
        return [self._schedule(int(i), now) for i in self.vesting.call("ids_of", beneficiary)]

    def vesting_release(self, schedule_id: int) -> Receipt:
        """Pay a schedule's releasable amount to its beneficiary (anyone may send it)."""
        return self.vesting.transact(self.sender, "release", schedule_id)

    def _schedule(self, schedule_id: int, now: int) -> VestingPosition:
        beneficiary, total, released, tge_bps, cliff_s, linear_s = self.vesting.call(
            "schedules", schedule_id
        )
        return VestingPosition(
            id=schedule_id,
            beneficiary=beneficiary,
            total=total,
            released=released,
            vested=int(self.vesting.call("vested", schedule_id, now)),
            releasable=int(self.vesting.call("releasable", schedule_id)),
            tge_bps=tge_bps,
            cliff_s=cliff_s,
            linear_s=linear_s,
        )

    def supply(self) -> Supply:
        """Where the supply is now (see ``Supply``)."""
        now = self.backend.timestamp()
        by_pool = [
            self._pool_supply(name, pool, now) for name, pool in self.deployment.pools.items()
        ]
        total = int(self.token.call("totalSupply"))
        vesting_locked = sum(p.locked for p in by_pool if p.kind == "vesting")
        unemitted = int(self.distributor.call("pool_balance"))
        burned = self.balance(BURN_ADDRESS)
        return Supply(
            total=total,
            circulating=total - vesting_locked - unemitted - burned,
            vesting_locked=vesting_locked,
            emission_unemitted=unemitted,
            staked=int(self.staking.call("staked_total")),
            burned=burned,
            by_pool=by_pool,
        )

    def _pool_supply(self, name: str, pool: dict[str, object], now: int) -> PoolSupply:
        amount = int(str(pool["amount"]))
        if pool["kind"] != "vesting":
            return PoolSupply(name, str(pool["kind"]), amount, locked=0)
        vested = int(self.vesting.call("vested", int(str(pool["schedule_id"])), now))
        return PoolSupply(name, "vesting", amount, locked=amount - vested)
