"""An independent radCAD model of the token supply, for checking gpunet.protocol.

Runs in its own virtualenv (see requirements.txt); it must not import gpunet. It writes
the published terms down again and steps them forward one day at a time as flows, in
float tokens, where gpunet computes closed-form cumulative amounts in integer base
units. Agreement of the two is the validation.

Calendar (as published with the design): a month is 30.4375 days; month m begins on day
ceil(30.4375 m); a timestep is a day and the state after t steps is the supply as of the
start of day t. Vesting unlocks happen when a month begins; TGE unlocks are the initial
state.

Usage: python supply_twin.py [--months 120] [--decay 0.2]  (prints JSON on stdout)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from itertools import pairwise
from typing import Any

from radcad import Backend, Engine, Model, Simulation

SUPPLY = 42_000_000_000.0
MONTH_DAYS = 30.4375

# name: (share of supply, share at TGE, cliff months, linear months, {month: share})
Terms = tuple[float, float, int, int, dict[int, float]]
VESTING_TERMS: dict[str, Terms] = {
    "team": (0.125, 0.0, 18, 36, {}),
    "investors": (0.115, 0.0, 12, 24, {}),
    "ecosystem": (0.08, 0.5, 0, 24, {}),
    "dao_treasury": (0.07, 0.0, 0, 48, {}),
    "airdrop": (0.06, 0.25, 0, 0, {8: 0.25, 16: 0.5}),
    "advisors": (0.05, 0.0, 18, 36, {}),
}
PROVIDER_SHARE = 0.35
PROVIDER_DAYS = math.ceil(120 * MONTH_DAYS)
CHECKER_BASE_SHARE = 0.10
CHECKER_BASE_DAYS = 48 * MONTH_DAYS  # 1461 days exactly
CHECKER_BONUS_SHARE = 0.05
CHECKER_BONUS_MONTHS = range(3, 49, 3)

# radCAD's vocabulary: states, parameters and policy signals are plain dicts.
State = dict[str, Any]
Update = tuple[str, Any]


def month_of(day: int) -> int:
    return math.floor(day / MONTH_DAYS)


def month_unlock(terms: Terms, month: int) -> float:
    """Tokens a vesting pool unlocks when ``month`` begins (month >= 1)."""
    share, tge, cliff, linear, steps = terms
    pool = SUPPLY * share
    linear_pool = pool * (1.0 - tge - sum(steps.values()))
    amount = pool * steps.get(month, 0.0)
    if linear == 0 and month == cliff:
        amount += linear_pool
    elif linear > 0 and cliff < month <= cliff + linear:
        amount += linear_pool / linear
    return amount


def p_vesting(params: State, substep: int, history: Any, state: State) -> State:
    day = state["day"] + 1
    started = month_of(day) if month_of(day) != month_of(day - 1) else None
    unlocks = {name: 0.0 for name in VESTING_TERMS}
    if started is not None:
        unlocks = {name: month_unlock(t, started) for name, t in VESTING_TERMS.items()}
    return {"unlocks": unlocks}


def p_emissions(params: State, substep: int, history: Any, state: State) -> State:
    day = state["day"]  # the day that ends with this timestep
    k = -math.log(1.0 - params["annual_decay"]) / 365.25
    provider = 0.0
    if day < PROVIDER_DAYS:
        norm = 1.0 - math.exp(-k * PROVIDER_DAYS)
        provider = SUPPLY * PROVIDER_SHARE * (math.exp(-k * day) - math.exp(-k * (day + 1))) / norm
    base = SUPPLY * CHECKER_BASE_SHARE / CHECKER_BASE_DAYS if day < CHECKER_BASE_DAYS else 0.0
    next_month = month_of(day + 1)
    quarter_ends = next_month != month_of(day) and next_month in CHECKER_BONUS_MONTHS
    bonus = SUPPLY * CHECKER_BONUS_SHARE / 16 if quarter_ends else 0.0
    return {"provider": provider, "checker_base": base, "checker_bonus": bonus}


def s_vested(params: State, substep: int, history: Any, state: State, signal: State) -> Update:
    vested = dict(state["vested"])
    for name, amount in signal["unlocks"].items():
        vested[name] += amount
    return "vested", vested


def _accumulate(key: str) -> Any:
    def update(params: State, substep: int, history: Any, state: State, signal: State) -> Update:
        return key, state[key] + signal[key]

    return update


def s_day(params: State, substep: int, history: Any, state: State, signal: State) -> Update:
    return "day", state["day"] + 1


def s_circulating(params: State, substep: int, history: Any, state: State, signal: State) -> Update:
    emitted = state["provider"] + state["checker_base"] + state["checker_bonus"]
    return "circulating", sum(state["vested"].values()) + emitted


def initial_state() -> State:
    vested = {name: SUPPLY * t[0] * t[1] for name, t in VESTING_TERMS.items()}
    state = {"day": 0, "vested": vested, "provider": 0.0, "checker_base": 0.0}
    state |= {"checker_bonus": 0.0, "circulating": sum(vested.values())}
    return state


STATE_UPDATE_BLOCKS = [
    {
        "policies": {"vesting": p_vesting, "emissions": p_emissions},
        "variables": {
            "vested": s_vested,
            "provider": _accumulate("provider"),
            "checker_base": _accumulate("checker_base"),
            "checker_bonus": _accumulate("checker_bonus"),
            "day": s_day,
        },
    },
    {"policies": {}, "variables": {"circulating": s_circulating}},
]


def run(months: int, annual_decay: float) -> list[State]:
    days = math.ceil(months * MONTH_DAYS)
    model = Model(initial_state(), STATE_UPDATE_BLOCKS, {"annual_decay": [annual_decay]})
    simulation = Simulation(model=model, timesteps=days, runs=1)
    simulation.engine = Engine(backend=Backend.SINGLE_PROCESS, drop_substeps=True)
    results = simulation.run()
    return sorted((r for r in results if r["substep"] in (0, 2)), key=lambda r: r["timestep"])


def series(rows: list[State], months: int) -> State:
    first_days = [math.ceil(m * MONTH_DAYS) for m in range(months + 1)]
    at = [rows[day] for day in first_days]
    monthly = {name: [r["vested"][name] for r in at] for name in VESTING_TERMS}
    for key in ("provider", "checker_base", "checker_bonus", "circulating"):
        monthly[key] = [r[key] for r in at]
    provider_daily = [b["provider"] - a["provider"] for a, b in pairwise(rows)]
    return {"months": list(range(months + 1)), "monthly": monthly, "provider_daily": provider_daily}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=120)
    parser.add_argument("--decay", type=float, default=0.2, help="annual emission decay")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = run(args.months, args.decay)
    elapsed = time.perf_counter() - started
    json.dump(series(rows, args.months) | {"run_seconds": elapsed}, sys.stdout)


if __name__ == "__main__":
    main()
