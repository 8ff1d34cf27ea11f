"""Deploy the whole system from a ``DeploymentConfig`` and record where it lives.

Order: Token (the whole supply minted to the deployer), the payment token (the
token itself, or a local stablecoin), Vesting, RewardDistributor, Staking, Escrow;
then the genesis pools move from the deployer to Vesting (every vesting pool, one
schedule each) and to the RewardDistributor (the provider and checker pools); the
distributor gets its emission caps (in batches of 128 months), its staking and
escrow addresses, and is sealed; staking gets a collateral requirement per GPU
class and the token as its first reward token; roles go to the configured
accounts, and a deployer that is not the admin renounces its own. The deployer
ends holding nothing.

The record (``deployment-<chain id>.json`` in the data directory) names every
address, the config hash, the chain id, the TGE and the block of the last step,
and which schedule id each vesting pool got; ``Chain`` is opened from it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gpunet.chain.artifacts import Artifacts
from gpunet.chain.backend import Backend
from gpunet.chain.config import MONTH_S, DeploymentConfig, gpu_class_id
from gpunet.chain.contract import BoundContract
from gpunet.chain.errors import DeploymentMissing
from gpunet.protocol.allocation import DEFAULT_ALLOCATION, EMISSION, TOTAL_SUPPLY, pool_amount

BURN_ADDRESS = "0x000000000000000000000000000000000000dEaD"
CAP_BATCH = 128
DEFAULT_ADMIN_ROLE = b"\0" * 32
CONTRACT_NAMES = ("token", "payment_token", "vesting", "distributor", "staking", "escrow")


@dataclass
class Deployment:
    """Where a deployed system lives and what it was deployed with."""

    chain_id: int
    block: int
    config_hash: str
    deployer: str
    tge: int
    contracts: dict[str, str]
    roles: dict[str, str]
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_token_kind: str = "stablecoin"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def record_path(data_dir: Path, chain_id: int) -> Path:
    """The deployment record of chain ``chain_id`` in ``data_dir``."""
    return data_dir / f"deployment-{chain_id}.json"


def save_deployment(data_dir: Path, deployment: Deployment) -> Path:
    """Write the record atomically; returns its path."""
    path = record_path(data_dir, deployment.chain_id)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=data_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(deployment.to_json())
    os.replace(tmp, path)
    return path


def load_deployment(data_dir: Path, chain_id: int) -> Deployment:
    """Read the record; DeploymentMissing says how to make one."""
    path = record_path(data_dir, chain_id)
    if not path.is_file():
        raise DeploymentMissing(
            f"no deployment of chain {chain_id} in {data_dir} (looked for {path.name}); "
            "run `gpunet chain deploy --config FILE` first"
        )
    return Deployment(**json.loads(path.read_text(encoding="utf-8")))


class _Deployer:
    """The steps of one deployment, sharing the backend and the config."""

    def __init__(self, backend: Backend, config: DeploymentConfig, artifacts: Artifacts) -> None:
        self.backend = backend
        self.config = config
        self.artifacts = artifacts
        self.me = backend.default_sender
        roles = config.roles
        self.admin = roles.admin or self.me
        self.treasury = roles.treasury or self.admin
        self.roles = {
            "admin": self.admin,
            "settler": roles.settler or self.admin,
            "slasher": roles.slasher or self.admin,
            "treasury": self.treasury,
            "slash_sink": BURN_ADDRESS if roles.slash_sink == "burn" else self.treasury,
        }
        self.contracts: dict[str, BoundContract] = {}

    def deploy(self, key: str, name: str, *args: Any) -> BoundContract:
        artifact = self.artifacts.get(name)
        address = self.backend.deploy(artifact, args, self.me)
        self.contracts[key] = BoundContract(self.backend, artifact, address)
        return self.contracts[key]

    def send(self, key: str, fn: str, *args: Any) -> None:
        self.contracts[key].transact(self.me, fn, *args)

    def address(self, key: str) -> str:
        return self.contracts[key].address


def deploy_system(
    backend: Backend, config: DeploymentConfig, artifacts: Artifacts | None = None
) -> Deployment:
    """Deploy everything (see the module docstring) and return the record (not saved)."""
    run = _Deployer(backend, config, artifacts or Artifacts())
    tge = config.tge if config.tge is not None else backend.timestamp()
    _deploy_contracts(run, tge)
    pools = _fund_pools(run)
    _configure(run)
    _grant_roles(run)
    return Deployment(
        chain_id=backend.chain_id,
        block=backend.block_number(),
        config_hash=config.config_hash(),
        deployer=run.me,
        tge=tge,
        contracts={key: run.address(key) for key in CONTRACT_NAMES},
        roles=run.roles,
        pools=pools,
        payment_token_kind=config.payments.token,
    )


def _deploy_contracts(run: _Deployer, tge: int) -> None:
    cfg = run.config
    token = run.deploy("token", "Token", cfg.token.name, cfg.token.symbol, [run.me], [TOTAL_SUPPLY])
    if cfg.payments.token == "token":
        run.contracts["payment_token"] = token
    else:
        pay = cfg.payments
        supply = pay.stablecoin_supply * 10**pay.stablecoin_decimals
        holder = pay.stablecoin_holder or run.admin
        run.deploy(
            "payment_token",
            "PartnerToken",
            pay.stablecoin_name,
            pay.stablecoin_symbol,
            pay.stablecoin_decimals,
            holder,
            supply,
        )
    run.deploy("vesting", "Vesting", token.address, run.me, tge)
    rewards = cfg.rewards
    run.deploy(
        "distributor",
        "RewardDistributor",
        token.address,
        run.address("payment_token"),
        run.me,
        tge,
        rewards.reward_vest_s,
        rewards.fee_vest_s,
        rewards.early_penalty_bps,
        rewards.claim_window_s,
    )
    staking = cfg.staking
    run.deploy(
        "staking",
        "Staking",
        token.address,
        run.me,
        run.address("distributor"),
        run.roles["slash_sink"],
        staking.unstake_delay_s,
        staking.min_lock_s,
        staking.max_lock_s,
        staking.max_multiplier_bps,
    )
    run.deploy(
        "escrow",
        "Escrow",
        run.address("payment_token"),
        run.me,
        run.treasury,
        run.address("distributor"),
        cfg.payments.protocol_fee_bps,
    )


def _fund_pools(run: _Deployer) -> dict[str, dict[str, Any]]:
    vesting_total = sum(pool_amount(p) for p in DEFAULT_ALLOCATION if p.kind != EMISSION)
    emission_total = sum(pool_amount(p) for p in DEFAULT_ALLOCATION if p.kind == EMISSION)
    run.send("token", "transfer", run.address("vesting"), vesting_total)
    run.send("token", "transfer", run.address("distributor"), emission_total)
    pools: dict[str, dict[str, Any]] = {}
    schedule_id = 0
    for pool in DEFAULT_ALLOCATION:
        amount = pool_amount(pool)
        if pool.schedule is None:
            pools[pool.name] = {"kind": EMISSION, "amount": str(amount)}
            continue
        beneficiary = run.config.beneficiary(pool.name, run.treasury)
        s = pool.schedule
        run.send(
            "vesting",
            "add_schedule",
            beneficiary,
            amount,
            s.tge_bps,
            s.cliff_months * MONTH_S,
            s.linear_months * MONTH_S,
            [month * MONTH_S for month, _ in s.steps],
            [bps for _, bps in s.steps],
        )
        pools[pool.name] = {
            "kind": "vesting",
            "amount": str(amount),
            "beneficiary": beneficiary,
            "schedule_id": schedule_id,
        }
        schedule_id += 1
    return pools


def _configure(run: _Deployer) -> None:
    caps = run.config.emission.caps()
    for start in range(0, len(caps), CAP_BATCH):
        run.send("distributor", "set_emission_caps", start, caps[start : start + CAP_BATCH])
    run.send("distributor", "set_staking", run.address("staking"))
    run.send("distributor", "set_escrow", run.address("escrow"))
    run.send("distributor", "seal")
    for model, amount in run.config.staking.collateral.requirements().items():
        run.send("staking", "set_requirement", gpu_class_id(model), amount)
    run.send("staking", "add_reward_token", run.address("token"))


def _grant_roles(run: _Deployer) -> None:
    settler_role = run.contracts["distributor"].call("SETTLER_ROLE")
    slasher_role = run.contracts["staking"].call("SLASHER_ROLE")
    run.send("distributor", "grantRole", settler_role, run.roles["settler"])
    run.send("escrow", "grantRole", settler_role, run.roles["settler"])
    run.send("staking", "grantRole", slasher_role, run.roles["slasher"])
    if run.admin == run.me:
        return
    for key in ("vesting", "distributor", "staking", "escrow"):
        run.send(key, "grantRole", DEFAULT_ADMIN_ROLE, run.admin)
        run.send(key, "renounceRole", DEFAULT_ADMIN_ROLE, run.me)
