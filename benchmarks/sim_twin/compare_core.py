"""Compare the economy lab's core with the independent radCAD twin, and time both.

The core of one step of ``gpunet.sim`` (docs/economy-lab.md): supply releases from the
protocol's curves, recipients' spread sales, the sentiment and demand shocks, buyers'
USD, provider sales by cohort, and the constant-product trade. Here it is run with the
model's own functions (``gpunet.sim.supply``, ``market``, ``demand``, ``providers``)
vectorized over paths, in the order ``model.advance`` calls them, with staking off, no
burns, every cohort active and no capacity cap on demand (the parts left out of the core).
The twin (``core_twin.py``) runs in its own virtualenv; both read the same shocks, drawn
here from ``numpy.random.default_rng(seed)`` exactly as ``simulate`` draws them, and the
same parameters. Exit status 0 when every series agrees, 1 when not.

    .venv/bin/python benchmarks/sim_twin/compare_core.py [--paths 100] [--years 10]
        [--seed 7] [--scenario examples/sim/default-sideways.toml] [--twin-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gpunet.sim import demand, load_scenario, market, providers, simulate
from gpunet.sim.params import Params, ProviderParams
from gpunet.sim.scenario import Scenario
from gpunet.sim.supply import spread_sales, supply_curves

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_TWIN_PYTHON = HERE / ".venv" / "bin" / "python"
DEFAULT_SCENARIO = REPO_ROOT / "examples" / "sim" / "default-sideways.toml"
YEAR_DAYS = 365.25
SERIES = ("price", "quote", "level", "circulating", "sold", "bought", "released")
# The twin sums daily float flows where gpunet takes differences of exact cumulative
# curves, and sums cohorts in a loop where gpunet uses cumulative sums: rounding only.
RELATIVE_TOLERANCE = 1e-9
CORE_COHORTS = 6  # two per default template: the twin loops over them in Python
PROVIDER_SELL_SHARE = 0.3  # so that all three selling regimes occur


@dataclass(frozen=True)
class Core:
    """The core's parameters, as both implementations read them."""

    params: Params
    paths: int
    steps: int
    seed: int

    @property
    def provider_params(self) -> ProviderParams:
        base = self.params.providers
        return ProviderParams(base.templates, CORE_COHORTS, base.cost_spread, PROVIDER_SELL_SHARE)

    def inputs(self) -> dict[str, Any]:
        """The JSON the twin reads: plain numbers, and each cohort's (equivalents, q)."""
        p = self.params
        cohorts = providers.build_cohorts(self.provider_params)
        return {
            "seed": self.seed,
            "step_days": p.simulation.step_days,
            "initial_price": p.market.initial_price,
            "pool_liquidity_usd": p.market.pool_liquidity_usd,
            "drift": p.market.drift,
            "volatility": p.market.volatility,
            "demand_growth": p.demand.growth_per_year,
            "demand_volatility": p.demand.volatility,
            "buy_usd_per_day": demand.base_hours_per_day(p.demand)
            * p.demand.network_price_per_hour,
            "protocol_fee": p.design.protocol_fee,
            "provider_sell_share": PROVIDER_SELL_SHARE,
            "annual_decay": p.supply.emission_decay_per_year,
            "unlock_sell_share": p.supply.unlock_sell_share,
            "unlock_sell_days": p.supply.unlock_sell_days,
            "checker_sell_share": p.supply.checker_sell_share,
            "cohorts": [
                [float(e), float(q)] for e, q in zip(cohorts.equivalents, cohorts.q, strict=True)
            ],
        }


def make_core(scenario: Scenario, paths: int, years: float, seed: int) -> Core:
    sim = scenario.params.simulation
    steps = max(1, round(years * YEAR_DAYS / sim.step_days))
    return Core(scenario.params, paths, steps, seed)


def model_shocks(seed: int, steps: int, paths: int) -> np.ndarray:
    """``z`` of every step, shape (steps, 2, paths), drawn as ``model.simulate`` draws it."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.standard_normal((2, paths)) for _ in range(steps)])


def gpunet_core(core: Core, shocks: np.ndarray) -> dict[str, np.ndarray]:
    """The core with gpunet's own functions, every path at once; shapes (paths, steps+1)."""
    p, paths, steps = core.params, core.paths, core.steps
    step_days = p.simulation.step_days
    dt, hours = step_days / YEAR_DAYS, 24.0 * step_days
    supply_curves.cache_clear()  # time the protocol's integer curves too
    curves = supply_curves(
        steps, step_days, p.supply.emission_years, p.supply.emission_decay_per_year
    )
    unlocks = curves.per_step(curves.vested)
    checkers = curves.per_step(curves.checker_emitted)
    emission = curves.per_step(curves.provider_emitted)
    sell_steps = max(1, round(p.supply.unlock_sell_days / step_days))
    sales = spread_sales(unlocks, p.supply.unlock_sell_share, sell_steps)
    sales = sales + spread_sales(checkers, p.supply.checker_sell_share, sell_steps)
    released = unlocks + checkers + emission
    cohorts = providers.build_cohorts(core.provider_params)
    book = providers.ProviderBook.start(cohorts, np.ones((paths, cohorts.q.shape[0]), bool))
    k0 = market.pool_invariant(p.market)
    usd_per_day = demand.base_hours_per_day(p.demand) * p.demand.network_price_per_hour
    genesis = curves.vested[0] + curves.provider_emitted[0] + curves.checker_emitted[0]
    price = np.full(paths, p.market.initial_price)
    level = np.ones(paths)
    circulating = np.full(paths, genesis)
    out = {name: np.zeros((paths, steps + 1)) for name in SERIES}
    out["price"][:, 0] = out["quote"][:, 0] = price
    out["level"][:, 0], out["circulating"][:, 0] = level, circulating
    for step in range(1, steps + 1):
        z = shocks[step - 1]
        quote = market.sentiment_shock(price, p.market, dt, z[0])
        level = demand.level_step(level, p.demand, dt, z[1])
        bought = usd_per_day * level * step_days
        provider_tokens = emission[step] + (1 - p.design.protocol_fee) * bought / quote
        rate = providers.reward_per_equivalent(book, provider_tokens)
        circulating = circulating + released[step]
        sold = sales[step] + providers.provider_sales(book, rate, quote, hours, PROVIDER_SELL_SHARE)
        invariant = market.scaled_invariant(k0, circulating, genesis)
        price = market.trade(quote, invariant, sold, bought)
        values = (price, quote, level, circulating, sold, bought, released[step])
        for name, value in zip(SERIES, values, strict=True):
            out[name][:, step] = value
    return out


def run_twin(
    twin_python: Path, core: Core, shocks: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, Any], float]:
    """The twin's series, its report (``run_seconds``...) and its process's wall time."""
    with tempfile.TemporaryDirectory(prefix="gpunet-twin-") as folder:
        inputs, shock_file, output = (Path(folder) / n for n in ("in.json", "z.npy", "out.npz"))
        inputs.write_text(json.dumps(core.inputs()))
        np.save(shock_file, shocks)
        command = [str(twin_python), str(HERE / "core_twin.py"), *map(str, (inputs, shock_file))]
        started = time.perf_counter()
        done = subprocess.run([*command, str(output)], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - started
        with np.load(output) as data:
            series = {name: data[name] for name in SERIES}
    return series, json.loads(done.stdout), wall


@dataclass(frozen=True)
class Gap:
    name: str
    max_abs: float
    max_rel: float

    @property
    def agrees(self) -> bool:
        return self.max_rel <= RELATIVE_TOLERANCE


def gaps(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> list[Gap]:
    """Per series: largest absolute and relative difference over every path and step."""
    out = []
    for name in SERIES:
        a, b = ours[name], theirs[name]
        if a.shape != b.shape:
            out.append(Gap(name, float("inf"), float("inf")))
            continue
        diff = np.abs(a - b)
        scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-300)
        rel = np.where(diff == 0, 0.0, diff / scale)
        out.append(Gap(name, float(diff.max()), float(rel.max())))
    return out


@dataclass(frozen=True)
class Comparison:
    """One run of both implementations over the same paths, steps and shocks."""

    paths: int
    steps: int
    seed: int
    gaps: list[Gap]
    gpunet_seconds: float  # best of the repeats
    twin_seconds: float
    twin_wall_seconds: float
    shocks_identical: bool
    twin_numpy: str
    model_seconds: float  # the full gpunet model, same scenario, paths and steps

    @property
    def agrees(self) -> bool:
        return all(gap.agrees for gap in self.gaps)

    @property
    def speedup(self) -> float:
        return self.twin_seconds / max(self.gpunet_seconds, 1e-12)


def compare(
    scenario: Scenario, paths: int, years: float, seed: int, twin_python: Path, repeats: int = 3
) -> Comparison:
    """Run both sides on the same shocks and parameters; time each and diff the series.

    radCAD runs once; gpunet's core, which takes well under a second, best of ``repeats``.
    """
    core = make_core(scenario, paths, years, seed)
    shocks = model_shocks(seed, core.steps, paths)
    twin, report, twin_wall = run_twin(twin_python, core, shocks)
    timings = []
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        ours = gpunet_core(core, shocks)
        timings.append(time.perf_counter() - started)
    ours_seconds = min(timings)
    full = scenario.with_overrides({"simulation.years": years})
    started = time.perf_counter()
    simulate(full, paths=paths, seed=seed)
    model_seconds = time.perf_counter() - started
    return Comparison(
        paths,
        core.steps,
        seed,
        gaps(ours, twin),
        ours_seconds,
        report["run_seconds"],
        twin_wall,
        report["shocks_identical"],
        report["numpy"],
        model_seconds,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=100)
    parser.add_argument("--years", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    default_python = os.environ.get("TWIN_PYTHON", str(DEFAULT_TWIN_PYTHON))
    parser.add_argument("--twin-python", type=Path, default=Path(default_python))
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    result = compare(scenario, args.paths, args.years, args.seed, args.twin_python)
    print(f"{scenario.name}: {result.paths} paths x {result.steps} steps, seed {result.seed}")
    print(f"{'series':<12} {'max |diff|':>12} {'max rel diff':>13}  agree")
    for gap in result.gaps:
        verdict = "yes" if gap.agrees else "NO"
        print(f"{gap.name:<12} {gap.max_abs:>12.3e} {gap.max_rel:>13.3e}  {verdict}")
    same = "bit-identical" if result.shocks_identical else "DIFFERENT"
    print(f"shocks redrawn by the twin (numpy {result.twin_numpy}): {same}")
    print(f"gpunet core: {result.gpunet_seconds:.3f} s (best of 3)")
    print(
        f"radCAD twin: {result.twin_seconds:.3f} s simulating, "
        f"{result.twin_wall_seconds:.3f} s with start-up and I/O"
    )
    print(f"speed-up: {result.speedup:,.0f}x")
    print(f"full gpunet model, same paths and steps: {result.model_seconds:.3f} s")
    return 0 if result.agrees and result.shocks_identical else 1


if __name__ == "__main__":
    sys.exit(main())
