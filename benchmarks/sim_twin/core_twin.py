"""An independent radCAD model of the economy lab's core: supply, provider sales, market.

Runs in the twin's own virtualenv (see requirements.txt); it must not import gpunet. It
restates, from docs/economy-lab.md, the core of one step of ``gpunet.sim`` in plain
Python floats, one path per radCAD parameter subset and one timestep per day:

1. supply: the day's vesting unlocks, provider emission and checker emissions (the
   policies of ``supply_twin.py``, a day at a time); circulating supply grows by them;
   recipients sell ``s_u`` of each unlock and ``s_c`` of each checker release, spread
   evenly over the next ``n`` steps;
2. sentiment: ``p' = p exp(mu dt + sigma sqrt(dt) z1)``; demand level
   ``G = G exp((ln(1 + g) - sigma_d^2 / 2) dt + sigma_d sqrt(dt) z2)``;
3. buyers spend ``B = usd_per_day G days`` USD; providers receive the emission plus
   ``(1 - fee) B / p'`` tokens, shared per H100-equivalent; each cohort sells
   ``min(r e, max(q e hours / p', s_p r e))`` (a plain loop over cohorts, where gpunet
   does a sorted search over cumulative sums);
4. the net order trades with the constant-product pool of invariant
   ``k = k0 (C / C0)^2``, only the imbalance at ``p'`` moving it.

The shocks ``z`` come from an ``.npy`` file of shape (steps, 2, paths) written by
``compare_core.py`` from ``numpy.random.default_rng(seed)`` in the model's draw order
(one ``standard_normal((2, paths))`` per step, sentiment first). The twin draws them
again itself with this virtualenv's NumPy and reports whether they are bit-identical.

Usage: python core_twin.py INPUTS.json SHOCKS.npy OUTPUT.npz  (prints JSON on stdout)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from radcad import Backend, Engine, Model, Simulation

# The supply twin, beside this file (a script's folder is on sys.path).
from supply_twin import initial_state as supply_initial_state
from supply_twin import p_emissions, p_vesting

YEAR_DAYS = 365.25
SERIES = ("price", "quote", "level", "circulating", "sold", "bought", "released")

State = dict[str, Any]
Update = tuple[str, Any]


def p_release(params: State, substep: int, history: Any, state: State) -> State:
    """The day's releases, from the supply twin's own policies."""
    unlocks = sum(p_vesting(params, substep, history, state)["unlocks"].values())
    emitted = p_emissions(params, substep, history, state)
    checkers = emitted["checker_base"] + emitted["checker_bonus"]
    to_sell = params["unlock_sell_share"] * unlocks + params["checker_sell_share"] * checkers
    return {
        "unlocked": unlocks,
        "emitted": emitted["provider"],
        "checkers": checkers,
        "to_sell": to_sell,
    }


def s_day(params: State, substep: int, history: Any, state: State, signal: State) -> Update:
    return "day", state["day"] + 1


def s_circulating(params: State, substep: int, history: Any, state: State, signal: State) -> Update:
    released = signal["unlocked"] + signal["emitted"] + signal["checkers"]
    return "circulating", state["circulating"] + released


def s_released(params: State, substep: int, history: Any, state: State, signal: State) -> Update:
    return "released", signal["unlocked"] + signal["emitted"] + signal["checkers"]


def s_emitted(params: State, substep: int, history: Any, state: State, signal: State) -> Update:
    return "emitted", signal["emitted"]


def s_window(params: State, substep: int, history: Any, state: State, signal: State) -> Update:
    """The last ``n`` steps' amounts to sell, newest last."""
    window = (*state["window"], signal["to_sell"])
    return "window", window[-params["sell_steps"] :]


def p_sentiment(params: State, substep: int, history: Any, state: State) -> State:
    """Sentiment moves the outside price; demand moves its level (exact log-normal steps)."""
    dt = params["step_days"] / YEAR_DAYS
    z_sentiment, z_demand = params["shocks"][state["day"] - 1]
    mu, sigma = params["drift"], params["volatility"]
    quote = state["price"] * math.exp(mu * dt + sigma * math.sqrt(dt) * z_sentiment)
    growth, sigma_d = math.log(1.0 + params["demand_growth"]), params["demand_volatility"]
    log_level = (growth - sigma_d * sigma_d / 2) * dt + sigma_d * math.sqrt(dt) * z_demand
    return {"quote": quote, "level": state["level"] * math.exp(log_level)}


def s_quote(params: State, substep: int, history: Any, state: State, signal: State) -> Update:
    return "quote", signal["quote"]


def s_level(params: State, substep: int, history: Any, state: State, signal: State) -> Update:
    return "level", signal["level"]


def provider_sales(params: State, tokens: float, quote: float) -> float:
    """Each cohort sells its costs, all it earns if that is less, at least ``s_p``."""
    total = sum(e for e, _ in params["cohorts"])
    rate = tokens / max(total, 1.0)
    hours = 24.0 * params["step_days"]
    sold = 0.0
    for equivalents, q in params["cohorts"]:
        earned = rate * equivalents
        costs = q * equivalents * hours / quote
        sold += min(earned, max(costs, params["provider_sell_share"] * earned))
    return sold


def p_trade(params: State, substep: int, history: Any, state: State) -> State:
    """Buyers and sellers meet at ``p'``; the imbalance trades with the pool."""
    quote = state["quote"]
    bought = params["buy_usd_per_day"] * state["level"] * params["step_days"]
    provider_tokens = state["emitted"] + (1.0 - params["protocol_fee"]) * bought / quote
    recipients = sum(state["window"]) / params["sell_steps"]
    sold = recipients + provider_sales(params, provider_tokens, quote)
    ratio = max(state["circulating"], 1.0) / max(params["genesis"], 1.0)
    k = params["k0"] * ratio * ratio
    excess_usd = bought - sold * quote
    if excess_usd >= 0:  # buyers take tokens out: the USD side grows
        usd = math.sqrt(k * quote) + excess_usd
        price = usd * usd / k
    else:  # sellers put tokens in: the token side grows
        tokens = math.sqrt(k / quote) + (sold - bought / quote)
        price = k / (tokens * tokens)
    return {"new_price": price, "sold_tokens": sold, "bought_usd": bought}


def s_price(params: State, substep: int, history: Any, state: State, signal: State) -> Update:
    return "price", signal["new_price"]


def s_sold(params: State, substep: int, history: Any, state: State, signal: State) -> Update:
    return "sold", signal["sold_tokens"]


def s_bought(params: State, substep: int, history: Any, state: State, signal: State) -> Update:
    return "bought", signal["bought_usd"]


STATE_UPDATE_BLOCKS = [
    {
        "policies": {"release": p_release},
        "variables": {
            "circulating": s_circulating,
            "released": s_released,
            "emitted": s_emitted,
            "window": s_window,
            "day": s_day,
        },
    },
    {"policies": {"sentiment": p_sentiment}, "variables": {"quote": s_quote, "level": s_level}},
    {
        "policies": {"trade": p_trade},
        "variables": {"price": s_price, "sold": s_sold, "bought": s_bought},
    },
]


def initial_state(inputs: State) -> State:
    supply = supply_initial_state()
    return {
        "day": 0,
        "circulating": supply["circulating"],
        "released": 0.0,
        "emitted": 0.0,
        "window": (),
        "quote": inputs["initial_price"],
        "level": 1.0,
        "price": inputs["initial_price"],
        "sold": 0.0,
        "bought": 0.0,
    }


def model_params(inputs: State, shocks: np.ndarray) -> State:
    """radCAD parameters: one subset per path (a sweep over its shocks), the rest fixed."""
    genesis = supply_initial_state()["circulating"]
    liquidity, price = inputs["pool_liquidity_usd"], inputs["initial_price"]
    fixed = {
        "k0": liquidity * (liquidity / price),
        "genesis": genesis,
        "cohorts": [tuple(c) for c in inputs["cohorts"]],
        "sell_steps": max(1, round(inputs["unlock_sell_days"] / inputs["step_days"])),
    }
    keys = ("annual_decay", "unlock_sell_share", "checker_sell_share", "step_days", "drift")
    keys += ("volatility", "demand_growth", "demand_volatility", "buy_usd_per_day")
    keys += ("protocol_fee", "provider_sell_share")
    fixed |= {key: inputs[key] for key in keys}
    # The sweep: per path, per step, (z sentiment, z demand) as Python floats.
    per_path = [list(zip(z[0], z[1], strict=True)) for z in shocks.transpose(2, 1, 0).tolist()]
    return {"shocks": per_path} | {key: [value] for key, value in fixed.items()}


def run(inputs: State, shocks: np.ndarray) -> tuple[list[State], float]:
    """Every path's rows and the seconds radCAD took to simulate them."""
    steps = shocks.shape[0]
    model = Model(initial_state(inputs), STATE_UPDATE_BLOCKS, model_params(inputs, shocks))
    simulation = Simulation(model=model, timesteps=steps, runs=1)
    simulation.engine = Engine(backend=Backend.SINGLE_PROCESS, drop_substeps=True)
    started = time.perf_counter()
    rows = simulation.run()
    return rows, time.perf_counter() - started


def to_arrays(rows: list[State], paths: int, steps: int) -> dict[str, np.ndarray]:
    out = {name: np.zeros((paths, steps + 1)) for name in SERIES}
    for row in rows:
        if row["substep"] in (0, len(STATE_UPDATE_BLOCKS)):
            for name in SERIES:
                out[name][row["subset"], row["timestep"]] = row[name]
    return out


def own_shocks(seed: int, steps: int, paths: int) -> np.ndarray:
    """The shocks drawn again here, in the model's order, with this venv's NumPy."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.standard_normal((2, paths)) for _ in range(steps)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", type=Path, help="JSON parameters from compare_core.py")
    parser.add_argument("shocks", type=Path, help=".npy shocks, shape (steps, 2, paths)")
    parser.add_argument("output", type=Path, help=".npz to write the series to")
    args = parser.parse_args()
    inputs = json.loads(args.inputs.read_text())
    shocks = np.load(args.shocks)
    steps, _, paths = shocks.shape
    identical = bool(np.array_equal(own_shocks(inputs["seed"], steps, paths), shocks))
    rows, seconds = run(inputs, shocks)
    np.savez(args.output, **to_arrays(rows, paths, steps))
    report = {"run_seconds": seconds, "shocks_identical": identical, "numpy": np.__version__}
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
