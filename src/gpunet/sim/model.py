"""The economy model: one loop over steps, every path at once as NumPy arrays.

Each step, in this order (docs/economy-lab.md writes out every equation):

1. draw ``z`` of shape (2, paths) from the run's generator: sentiment, then demand;
2. sentiment moves the pool price (``market.sentiment_shock``), demand its level;
3. buyers pay for the hours served (``demand.served_hours``) with tokens bought at the
   price; the protocol fee goes to burns, stakers and the treasury; the rest goes to
   providers, or is burned under burn-and-mint;
4. providers receive emissions and payments, sell to cover costs (``providers``);
   unlock and checker recipients sell their share of releases (``supply``);
5. holders stake or unstake (``staking``); the step's net order trades with the pool;
6. every ``decision_days`` providers review their profit and join or leave.

Supply identity kept at every step and path (tested):
``circulating + locked + staked + burned == 42e9`` tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gpunet.sim import demand, market, providers, staking
from gpunet.sim.params import Params, SpiralParams, params_dict
from gpunet.sim.result import SERIES, FloatArray, IntArray, SimulationResult
from gpunet.sim.scenario import Scenario
from gpunet.sim.supply import SupplyCurves, spread_sales, supply_curves

ProgressCallback = Callable[[int, int], None]
YEAR_DAYS = 365.25


@dataclass(frozen=True)
class RunSetup:
    """Everything fixed over a run: parameters, step sizes and deterministic curves."""

    params: Params
    steps: int
    step_days: float
    curves: SupplyCurves
    released: FloatArray  # tokens leaving the locked pools in each step
    provider_emission: FloatArray  # (steps + 1,) tokens to providers per step
    recipient_sales: FloatArray  # (steps + 1,) tokens sold by unlock and checker recipients
    cohorts: providers.Cohorts
    invariant: float  # the pool's k
    wanted_per_day: float  # H_0 * M of the demand equation
    review_steps: int

    @property
    def dt_years(self) -> float:
        return self.step_days / YEAR_DAYS

    @property
    def hours(self) -> float:
        return 24.0 * self.step_days


@dataclass
class RunState:
    """Per-path state carried from step to step; arrays of shape (paths,)."""

    price: FloatArray
    level: FloatArray
    circulating: FloatArray
    burned: FloatArray
    treasury_tokens: FloatArray
    income: FloatArray  # USD per equivalent since the last review
    book: providers.ProviderBook
    stakes: staking.StakeBook
    initial_equivalents: float
    genesis: float  # circulating supply at TGE


def prepare(params: Params) -> RunSetup:
    """Precompute the deterministic parts of a run."""
    sim = params.simulation
    steps = max(1, round(sim.years * YEAR_DAYS / sim.step_days))
    curves = supply_curves(
        steps, sim.step_days, params.supply.emission_years, params.supply.emission_decay_per_year
    )
    sell_steps = max(1, round(params.supply.unlock_sell_days / sim.step_days))
    unlocks = curves.per_step(curves.vested)
    checkers = curves.per_step(curves.checker_emitted)
    emission = curves.per_step(curves.provider_emitted)
    sales = spread_sales(unlocks, params.supply.unlock_sell_share, sell_steps)
    sales = sales + spread_sales(checkers, params.supply.checker_sell_share, sell_steps)
    return RunSetup(
        params=params,
        steps=steps,
        step_days=sim.step_days,
        curves=curves,
        released=unlocks + checkers + emission,
        provider_emission=emission,
        recipient_sales=sales,
        cohorts=providers.build_cohorts(params.providers),
        invariant=market.pool_invariant(params.market),
        wanted_per_day=demand.base_hours_per_day(params.demand),
        review_steps=max(1, round(params.providers.decision_days / sim.step_days)),
    )


def initial_state(setup: RunSetup, paths: int) -> RunState:
    """The TGE: initial price, TGE unlocks circulating, the cheapest cohorts active."""
    params = setup.params
    active = providers.initial_active(setup.cohorts, params.providers.initial_active_share, paths)
    book = providers.ProviderBook.start(setup.cohorts, active)
    unbonding = round(params.stakers.unbonding_days / setup.step_days)
    curves = setup.curves
    genesis = curves.vested[0] + curves.provider_emitted[0] + curves.checker_emitted[0]
    return RunState(
        price=np.full(paths, params.market.initial_price),
        level=np.ones(paths),
        circulating=np.full(paths, genesis),
        burned=np.zeros(paths),
        treasury_tokens=np.zeros(paths),
        income=np.zeros(paths),
        book=book,
        stakes=staking.StakeBook.start(paths, unbonding),
        initial_equivalents=float(book.equivalents[0]),
        genesis=float(genesis),
    )


def simulate(
    scenario: Scenario,
    paths: int | None = None,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
) -> SimulationResult:
    """Run ``scenario`` over ``paths`` Monte Carlo paths (defaults from its parameters).

    Random numbers come only from ``numpy.random.default_rng(seed)``, drawn in a fixed
    order, so the same scenario, paths and seed give identical series.
    """
    params = scenario.params
    paths = params.simulation.paths if paths is None else paths
    seed = params.simulation.seed if seed is None else seed
    setup = prepare(params)
    state = initial_state(setup, paths)
    rng = np.random.default_rng(seed)
    series = {name: np.zeros((paths, setup.steps + 1)) for name in SERIES}
    _record(series, 0, _initial_flows(setup, state))
    every = max(1, setup.steps // 100)
    for step in range(1, setup.steps + 1):
        z = rng.standard_normal((2, paths))
        _record(series, step, advance(setup, state, step, z))
        if step % setup.review_steps == 0:
            _review(setup, state)
        if progress is not None and (step % every == 0 or step == setup.steps):
            progress(step, setup.steps)
    spiral = detect_spiral(series["price"], series["capacity"], params.spiral, setup.step_days)
    return SimulationResult(
        scenario.name, seed, setup.step_days, series, spiral, params_dict(params)
    )


def advance(setup: RunSetup, state: RunState, step: int, z: FloatArray) -> dict[str, FloatArray]:
    """Move every path one step; return the step's values of every series."""
    params = setup.params
    price = market.sentiment_shock(state.price, params.market, setup.dt_years, z[0])
    state.level = demand.level_step(state.level, params.demand, setup.dt_years, z[1])
    served, capacity_eq = _served(setup, state)
    revenue = served * params.demand.network_price_per_hour
    payment = _split_payment(setup, revenue / price)
    provider_tokens = setup.provider_emission[step] + payment.providers
    rate = providers.reward_per_equivalent(state.book, provider_tokens)
    state.income += rate * price
    available = np.maximum(state.circulating + setup.released[step], 0.0)
    burned = np.minimum(payment.burned, available)
    state.circulating += setup.released[step] - burned
    state.burned += burned
    state.treasury_tokens += payment.treasury
    yearly, staked_in, unstaked = _stake(setup, state, price, payment.stakers, step)
    recipients = np.maximum(setup.recipient_sales[step] - staked_in, 0.0)
    bought = revenue + (staked_in - setup.recipient_sales[step] + recipients) * price
    sold = recipients + unstaked * params.supply.unlock_sell_share
    sold += providers.provider_sales(
        state.book, rate, price, setup.hours, params.providers.sell_share
    )
    invariant = market.scaled_invariant(setup.invariant, state.circulating, state.genesis)
    state.price = market.trade(price, invariant, sold, bought)
    trades = (sold * price, bought)
    return _flows(setup, state, step, served, capacity_eq, revenue, trades, yearly)


@dataclass(frozen=True)
class Payment:
    """Where the tokens buyers bought in a step go."""

    providers: FloatArray
    stakers: FloatArray
    treasury: FloatArray
    burned: FloatArray


def _split_payment(setup: RunSetup, tokens: FloatArray) -> Payment:
    design = setup.params.design
    fee = tokens * design.protocol_fee
    fee_burned = fee * design.fee_burn_share
    to_stakers = (fee - fee_burned) * setup.params.stakers.fee_share if design.staking else 0 * fee
    service = tokens - fee
    if design.burn_and_mint:
        return Payment(0 * service, to_stakers, fee - fee_burned - to_stakers, fee_burned + service)
    return Payment(service, to_stakers, fee - fee_burned - to_stakers, fee_burned)


def _served(setup: RunSetup, state: RunState) -> tuple[FloatArray, FloatArray]:
    return demand.served_hours(
        setup.wanted_per_day,
        state.level,
        state.book.equivalents,
        state.initial_equivalents,
        setup.params.demand,
        setup.step_days,
    )


def _stake(
    setup: RunSetup, state: RunState, price: FloatArray, fee_tokens: FloatArray, step: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Staking's step: yield, tokens staked, tokens released from unbonding."""
    design = setup.params.design
    if not design.staking:
        zero = np.zeros_like(price)
        return zero, zero, zero
    fee_usd_per_day = fee_tokens * price / setup.step_days
    rewards = staking.yearly_rewards(fee_usd_per_day, design.partner_rewards_usd_per_year)
    yearly = staking.staking_yield(state.stakes, price, rewards)
    entering, released = staking.rebalance(
        state.stakes,
        rewards,
        price,
        state.circulating,
        setup.params.stakers,
        setup.step_days,
        step,
    )
    state.circulating += released - entering
    return yearly, entering, released


def _review(setup: RunSetup, state: RunState) -> None:
    period_hours = setup.hours * setup.review_steps
    providers.review(state.book, state.income, period_hours, setup.params.providers)
    state.income = np.zeros_like(state.income)


def _flows(
    setup: RunSetup,
    state: RunState,
    step: int,
    served: FloatArray,
    capacity_eq: FloatArray,
    revenue: FloatArray,
    trades: tuple[FloatArray, FloatArray],
    yearly: FloatArray,
) -> dict[str, FloatArray]:
    sell_usd, buy_usd = trades
    step_locked = setup.curves.locked[step]
    return {
        "price": state.price,
        "circulating": state.circulating,
        "locked": np.full_like(state.price, step_locked),
        "staked": state.stakes.staked,
        "burned": state.burned,
        "sell_pressure": sell_usd,
        "buy_pressure": buy_usd,
        "sell_buy_ratio": sell_usd / np.maximum(buy_usd, 1.0),
        "providers": state.book.gpus,
        "capacity": state.book.gpus * setup.hours,
        "utilization": served / np.maximum(capacity_eq, 1e-12),
        "revenue": revenue,
        "staking_yield": yearly,
        "treasury": state.treasury_tokens * state.price,
    }


def _initial_flows(setup: RunSetup, state: RunState) -> dict[str, FloatArray]:
    served, capacity_eq = _served(setup, state)
    revenue = served * setup.params.demand.network_price_per_hour
    zero = np.zeros_like(state.price)
    return _flows(setup, state, 0, served, capacity_eq, revenue, (zero, zero), zero)


def _record(series: dict[str, FloatArray], step: int, values: dict[str, FloatArray]) -> None:
    for name, array in series.items():
        array[:, step] = values[name]


def rolling_max(values: FloatArray, window: int) -> FloatArray:
    """Max over each point and the ``window`` points before it (fewer at the start)."""
    span_max = values.copy()
    span = 1
    while span * 2 <= window + 1:
        previous = span_max.copy()
        span_max[:, span:] = np.maximum(previous[:, span:], previous[:, :-span])
        span *= 2
    rest = window + 1 - span
    if rest == 0:
        return span_max
    result = span_max.copy()
    result[:, rest:] = np.maximum(span_max[:, rest:], span_max[:, :-rest])
    return result


def detect_spiral(
    price: FloatArray, capacity: FloatArray, params: SpiralParams, step_days: float
) -> IntArray:
    """First step where price and capacity are both down by their thresholds from their
    peaks over the window; -1 on paths where that never happens."""
    window = max(1, math.ceil(params.window_days / step_days))
    price_down = price <= (1 - params.price_drawdown) * rolling_max(price, window)
    capacity_down = capacity <= (1 - params.capacity_drawdown) * rolling_max(capacity, window)
    fired = price_down & capacity_down
    first = np.argmax(fired, axis=1)
    return np.where(fired.any(axis=1), first, -1).astype(np.int64)
