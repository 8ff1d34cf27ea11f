"""The deployment config: one TOML file, parsed into pydantic models.

Every section and key has a default, so an empty file deploys the DESIGN.md section 4
economy with the deployer in every role. ``examples/chain/local.toml`` explains each
key. Unknown keys are errors (a typo must not silently deploy a default), and every
error names the key and the value: ``config local.toml: staking.max_lock_s: ...``.

Pool shares and vesting schedules come from ``gpunet.protocol.allocation`` and the
emission schedules from ``gpunet.protocol.emissions``: the config chooses who
receives each vesting pool, not how the supply is split, so the chain always matches
what the protocol code and the simulator assume.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from eth_hash.auto import keccak
from eth_utils.address import is_address, to_checksum_address
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticError

from gpunet.errors import ConfigError
from gpunet.protocol.allocation import DEFAULT_ALLOCATION, VESTING, emission_capacity
from gpunet.protocol.catalogue import CATALOGUE, CPU_MODEL
from gpunet.protocol.emissions import (
    DEFAULT_CHECKER_EMISSION,
    PROVIDER_ANNUAL_DECAY_BPS,
    PROVIDER_EMISSION_DAYS,
    EmissionSchedule,
)
from gpunet.protocol.penalties import k_value
from gpunet.protocol.settlement_budget import (
    DEFAULT_DELIVERY_SHARE_BPS,
    EmissionParams,
    emission_caps_by_month,
)

BPS = 10_000
DAY_S = 86_400
WEEK_S = 604_800
MONTH_S = 2_629_800
YEAR_S = 31_557_600  # 365.25 days
VESTING_POOLS = tuple(pool.name for pool in DEFAULT_ALLOCATION if pool.kind == VESTING)


def _checksum(value: str) -> str:
    if not is_address(value):
        raise ValueError("not a 20-byte hex address (0x followed by 40 hex digits)")
    return to_checksum_address(value)


Address = Annotated[str, AfterValidator(_checksum)]
Bps = Annotated[int, Field(ge=0, le=BPS, strict=True)]
Seconds = Annotated[int, Field(ge=0, le=100 * YEAR_S, strict=True)]


def _checker_total() -> int:
    return DEFAULT_CHECKER_EMISSION.base_total + DEFAULT_CHECKER_EMISSION.bonus_total


class Section(BaseModel):
    """A config table: unknown keys are errors; values are not coerced from strings."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenConfig(Section):
    name: Annotated[str, Field(min_length=1, max_length=25)] = "gpunet"
    symbol: Annotated[str, Field(min_length=1, max_length=5)] = "GPU"


class RolesConfig(Section):
    """Who runs the system; each role left out falls back to ``admin``, and it to the deployer."""

    admin: Address | None = None
    settler: Address | None = None
    slasher: Address | None = None
    treasury: Address | None = None
    slash_sink: Literal["treasury", "burn"] = "treasury"


class PoolConfig(Section):
    beneficiary: Address | None = None


class RewardsConfig(Section):
    reward_vest_s: Seconds = 180 * DAY_S
    fee_vest_s: Seconds = 45 * DAY_S
    early_penalty_bps: Bps = 5_000
    claim_window_s: Seconds = 365 * DAY_S


class CollateralConfig(Section):
    coefficient_bps: Bps = BPS

    def requirements(self) -> dict[str, int]:
        """Collateral per GPU class: K of one GPU (a CPU node for CPU) times the coefficient."""
        return {
            name: k_value(name, 0 if name == CPU_MODEL else 1) * self.coefficient_bps // BPS
            for name in CATALOGUE
        }


class StakingConfig(Section):
    unstake_delay_s: Seconds = 180 * DAY_S
    min_lock_s: Seconds = WEEK_S
    max_lock_s: Seconds = 4 * YEAR_S
    max_multiplier_bps: Annotated[int, Field(ge=BPS, le=100 * BPS, strict=True)] = 40_000
    collateral: CollateralConfig = Field(default_factory=CollateralConfig)

    @model_validator(mode="after")
    def _lock_range(self) -> StakingConfig:
        if self.max_lock_s <= self.min_lock_s:
            raise ValueError("max_lock_s must be above min_lock_s")
        return self


class PaymentsConfig(Section):
    token: Literal["token", "stablecoin"] = "stablecoin"
    protocol_fee_bps: Annotated[int, Field(ge=0, le=5_000, strict=True)] = 2_000
    stablecoin_name: Annotated[str, Field(min_length=1, max_length=25)] = "Local USD"
    stablecoin_symbol: Annotated[str, Field(min_length=1, max_length=5)] = "lUSD"
    stablecoin_decimals: Annotated[int, Field(ge=0, le=18, strict=True)] = 6
    stablecoin_supply: Annotated[int, Field(gt=0, le=10**15, strict=True)] = 1_000_000_000
    stablecoin_holder: Address | None = None


class EmissionConfig(Section):
    provider_annual_decay_bps: Annotated[int, Field(ge=0, lt=BPS, strict=True)] = (
        PROVIDER_ANNUAL_DECAY_BPS
    )
    provider_duration_days: Annotated[int, Field(ge=1, le=36_525, strict=True)] = (
        PROVIDER_EMISSION_DAYS
    )
    delivery_share_bps: Bps = DEFAULT_DELIVERY_SHARE_BPS
    cap_months: Annotated[int, Field(ge=1, le=1_200, strict=True)] = 121

    def params(self) -> EmissionParams:
        """The settlement parameters these values describe."""
        provider = EmissionSchedule(
            total=emission_capacity(DEFAULT_ALLOCATION) - _checker_total(),
            duration_days=self.provider_duration_days,
            annual_decay_bps=self.provider_annual_decay_bps,
        )
        return EmissionParams(provider, DEFAULT_CHECKER_EMISSION, self.delivery_share_bps)

    def caps(self) -> list[int]:
        """The distributor's cumulative emission cap at the end of each month."""
        return emission_caps_by_month(self.params(), self.cap_months)

    @model_validator(mode="after")
    def _caps_reach_the_pools(self) -> EmissionConfig:
        last = self.caps()[-1]
        if last != emission_capacity(DEFAULT_ALLOCATION):
            raise ValueError(
                f"cap_months {self.cap_months} ends before the schedules do (last cap "
                f"{last} below the emission pools' total); raise cap_months"
            )
        return self


class DeploymentConfig(Section):
    """The whole deployment: see ``examples/chain/local.toml``."""

    tge: Annotated[int, Field(ge=0, strict=True)] | None = None
    token: TokenConfig = Field(default_factory=TokenConfig)
    roles: RolesConfig = Field(default_factory=RolesConfig)
    pools: dict[str, PoolConfig] = Field(default_factory=dict)
    rewards: RewardsConfig = Field(default_factory=RewardsConfig)
    staking: StakingConfig = Field(default_factory=StakingConfig)
    payments: PaymentsConfig = Field(default_factory=PaymentsConfig)
    emission: EmissionConfig = Field(default_factory=EmissionConfig)

    @field_validator("pools")
    @classmethod
    def _known_pools(cls, pools: dict[str, PoolConfig]) -> dict[str, PoolConfig]:
        unknown = sorted(set(pools) - set(VESTING_POOLS))
        if unknown:
            raise ValueError(
                f"unknown vesting pool {unknown[0]!r}; the vesting pools are "
                + ", ".join(VESTING_POOLS)
            )
        return pools

    def config_hash(self) -> str:
        """A digest of every value, recorded with the deployment."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return "0x" + hashlib.sha256(canonical.encode()).hexdigest()

    def beneficiary(self, pool: str, fallback: str) -> str:
        """Who receives vesting pool ``pool``: its configured beneficiary, else ``fallback``."""
        configured = self.pools.get(pool)
        return configured.beneficiary if configured and configured.beneficiary else fallback


def gpu_class_id(model: str) -> bytes:
    """The staking contract's class id of a catalogue model: keccak256 of its name."""
    return keccak(model.encode())


def parse_config(data: dict[str, Any], source: str = "config") -> DeploymentConfig:
    """Validate parsed TOML; ConfigError names the first bad key and its value."""
    try:
        return DeploymentConfig.model_validate(data)
    except PydanticError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None


def load_config(path: Path) -> DeploymentConfig:
    """Read and validate a TOML deployment config."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    return parse_config(data, f"config {path}")


def _describe(exc: PydanticError) -> str:
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key; check its spelling (see examples/chain/local.toml)"
    return f"{key}: {message} (got {error.get('input')!r})"
