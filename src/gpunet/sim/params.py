"""Typed parameters of the economy lab, one frozen dataclass per group.

Defaults follow DESIGN.md section 4 (supply, vesting, 20% protocol fee, 180-day
unstaking) and the assumptions written down in docs/economy-lab.md (prices, costs,
demand). Each numeric field carries its allowed range in ``metadata`` ("min", "max");
``check_params`` walks the tree and names the first field out of range by its dotted key,
so a scenario file and a sweep report the same message.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from gpunet.protocol.catalogue import CATALOGUE
from gpunet.sim.errors import SimError


def _num(default: float, low: float | None = None, high: float | None = None) -> Any:
    return field(default=default, metadata={"min": low, "max": high})


@dataclass(frozen=True)
class MarketParams:
    """The token's market: a constant-product pool moved by sentiment between trades."""

    initial_price: float = _num(0.05, 1e-9)  # USD per token at TGE
    pool_liquidity_usd: float = _num(50_000_000.0, 1.0)  # USD side of the pool at TGE
    drift: float = _num(0.0, -5.0, 5.0)  # median log-price change per year from sentiment
    volatility: float = _num(0.8, 0.0, 5.0)  # sentiment volatility per sqrt(year)


def _h100_reference_usd() -> float:
    micros = CATALOGUE["H100"].reference_price_micros
    assert micros is not None  # the catalogue prices the H100 (AWS p5, June 2025)
    return micros / 1e6


@dataclass(frozen=True)
class DemandParams:
    """Buyers' demand for GPU-hours, in USD per day at the base network price."""

    initial_usd_per_day: float = _num(500_000.0, 0.0)
    growth_per_year: float = _num(0.2, -0.99, 10.0)  # e.g. 0.2 = +20% a year
    volatility: float = _num(0.2, 0.0, 5.0)  # demand shocks per sqrt(year)
    network_price_per_hour: float = _num(2.0, 1e-6)  # USD per H100-equivalent GPU-hour
    base_price_per_hour: float = _num(2.0, 1e-6)  # price at which initial demand is quoted
    hyperscaler_price_per_hour: float = _num(_h100_reference_usd(), 1e-6)
    price_elasticity: float = _num(1.5, 0.0, 20.0)  # elasticity to the discount
    capacity_sensitivity: float = _num(0.5, 0.0, 10.0)  # demand ~ (capacity ratio)^this


@dataclass(frozen=True)
class CohortParams:
    """A template of providers with one GPU model and one cost structure."""

    gpu_model: str = "H100"
    gpus: float = _num(12_000.0, 0.0)  # GPUs the template can bring at most
    capex_usd: float = _num(25_000.0, 0.0)  # purchase price per GPU
    amortization_months: float = _num(36.0, 1.0)
    power_usd_per_hour: float = _num(0.12, 0.0)  # per GPU-hour
    hosting_usd_per_hour: float = _num(0.25, 0.0)  # per GPU-hour


def _default_cohorts() -> tuple[CohortParams, ...]:
    return (
        CohortParams("H100", 12_000.0, 25_000.0, 36.0, 0.12, 0.25),
        CohortParams("A100-80GB", 8_000.0, 12_000.0, 36.0, 0.08, 0.15),
        CohortParams("RTX4090", 30_000.0, 2_000.0, 36.0, 0.06, 0.05),
    )


@dataclass(frozen=True)
class ProviderParams:
    """Provider cohorts and the rules by which they join and leave."""

    templates: tuple[CohortParams, ...] = field(default_factory=_default_cohorts)
    cohorts: int = _num(50, 1, 1_000_000)  # cohorts built from the templates
    cost_spread: float = _num(0.4, 0.0, 0.95)  # costs spread over +-this across cohorts
    sell_share: float = _num(0.0, 0.0, 1.0)  # least share of rewards sold, costs aside
    initial_active_share: float = _num(0.5, 0.0, 1.0)  # cheapest share active at TGE
    decision_days: float = _num(30.0, 1.0)  # how often providers review their profit
    join_margin: float = _num(0.1, -1.0, 10.0)  # join when income > costs * (1 + this)
    join_after_periods: int = _num(1, 1, 1000)  # consecutive good reviews before joining
    leave_after_periods: int = _num(3, 1, 1000)  # consecutive losing reviews before leaving


@dataclass(frozen=True)
class StakerParams:
    """Holders who stake when the yield beats what else their money could earn."""

    opportunity_cost: float = _num(0.08, 0.0, 10.0)  # yearly return they forgo
    max_stake_share: float = _num(0.5, 0.0, 1.0)  # most of the free float they stake
    adjust_days: float = _num(30.0, 1.0)  # time constant of moving toward the target
    lock_days: float = _num(90.0, 1.0)  # a stake cannot leave before its lock ends
    unbonding_days: float = _num(180.0, 0.0)  # exits wait this long (DESIGN.md section 4)
    fee_share: float = _num(0.5, 0.0, 1.0)  # share of the protocol fee paid to stakers


@dataclass(frozen=True)
class DesignParams:
    """The switches a token designer compares."""

    staking: bool = True
    partner_rewards_usd_per_year: float = _num(10_000_000.0, 0.0)
    protocol_fee: float = _num(0.2, 0.0, 1.0)  # share of service fees (DESIGN.md section 4)
    fee_burn_share: float = _num(0.0, 0.0, 1.0)  # share of the protocol fee burned
    burn_and_mint: bool = False  # buyers burn tokens; providers earn emissions only


@dataclass(frozen=True)
class SupplyParams:
    """How recipients of unlocks and checker emissions treat their tokens."""

    unlock_sell_share: float = _num(0.5, 0.0, 1.0)
    unlock_sell_days: float = _num(30.0, 1.0)  # sales of an unlock spread over these days
    checker_sell_share: float = _num(0.5, 0.0, 1.0)
    emission_years: float = _num(10.0, 0.1, 80.0)  # providers' schedule length
    emission_decay_per_year: float = _num(0.2, 0.0, 0.99)  # providers' yearly rate decline


@dataclass(frozen=True)
class SpiralParams:
    """The death-spiral detector: price and capacity both down from their window peaks."""

    price_drawdown: float = _num(0.6, 0.0, 1.0)  # fires at a fall of this share or more
    capacity_drawdown: float = _num(0.25, 0.0, 1.0)
    window_days: float = _num(180.0, 1.0)


@dataclass(frozen=True)
class SimulationParams:
    """Horizon, step and Monte Carlo settings."""

    years: float = _num(10.0, 0.01, 100.0)
    step_days: float = _num(1.0, 0.01, 365.0)
    paths: int = _num(1000, 1, 10_000_000)
    seed: int = _num(0, 0, None)


@dataclass(frozen=True)
class Params:
    """Every parameter of one scenario."""

    market: MarketParams = field(default_factory=MarketParams)
    demand: DemandParams = field(default_factory=DemandParams)
    providers: ProviderParams = field(default_factory=ProviderParams)
    stakers: StakerParams = field(default_factory=StakerParams)
    design: DesignParams = field(default_factory=DesignParams)
    supply: SupplyParams = field(default_factory=SupplyParams)
    spiral: SpiralParams = field(default_factory=SpiralParams)
    simulation: SimulationParams = field(default_factory=SimulationParams)


class ParamError(SimError):
    """A parameter whose value is outside what the model accepts."""

    def __init__(self, key: str, value: object, rule: str) -> None:
        self.key = key
        self.value = value
        self.rule = rule
        super().__init__(f"{key} has value {value!r}; {rule}")


def check_params(params: Params) -> Params:
    """Return ``params`` if every field is in range, else raise ``ParamError`` naming it."""
    _check_node(params, "")
    for index, template in enumerate(params.providers.templates):
        if template.gpu_model not in CATALOGUE:
            key = f"providers.templates.{index}.gpu_model"
            raise ParamError(key, template.gpu_model, f"must be one of {sorted(CATALOGUE)}")
    demand = params.demand
    for name in ("network_price_per_hour", "base_price_per_hour"):
        if getattr(demand, name) >= demand.hyperscaler_price_per_hour:
            value = getattr(demand, name)
            raise ParamError(f"demand.{name}", value, "must be below hyperscaler_price_per_hour")
    return params


def _check_node(node: object, prefix: str) -> None:
    for spec in dataclasses.fields(node):  # type: ignore[arg-type]
        value = getattr(node, spec.name)
        key = f"{prefix}{spec.name}"
        if dataclasses.is_dataclass(value):
            _check_node(value, key + ".")
        elif isinstance(value, tuple):
            for index, item in enumerate(value):
                _check_node(item, f"{key}.{index}.")
        elif "min" in spec.metadata:
            _check_number(key, value, spec.metadata["min"], spec.metadata["max"])


def _check_number(key: str, value: object, low: float | None, high: float | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamError(key, value, "must be a number")
    if not math.isfinite(value):
        raise ParamError(key, value, "must be finite")
    if low is not None and value < low:
        raise ParamError(key, value, f"must be >= {low:g}")
    if high is not None and value > high:
        raise ParamError(key, value, f"must be <= {high:g}")


def params_dict(params: Params) -> dict[str, object]:
    """The parameters as a flat mapping of dotted keys, for reports and result metadata."""
    flat: dict[str, object] = {}
    _flatten(dataclasses.asdict(params), "", flat)
    return flat


def _flatten(node: object, prefix: str, out: dict[str, object]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(value, f"{prefix}{key}.", out)
    elif isinstance(node, list | tuple) and node and isinstance(node[0], dict):
        for index, value in enumerate(node):
            _flatten(value, f"{prefix}{index}.", out)
    else:
        out[prefix.rstrip(".")] = node
