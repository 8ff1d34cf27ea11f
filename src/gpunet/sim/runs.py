"""Run a scenario file: load it, apply dotted-key overrides, simulate.

The one place where reports, comparisons and sweeps meet the model, so that all three
run a scenario the same way. The model is imported when a run starts, not at import.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from gpunet.sim.errors import SimError
from gpunet.sim.result import SimulationResult

Progress = Callable[[int, int], None]


def run_scenario(
    path: Path,
    *,
    paths: int | None = None,
    seed: int | None = None,
    overrides: Mapping[str, object] | None = None,
    progress: Progress | None = None,
) -> SimulationResult:
    """Simulate the scenario in ``path`` with ``overrides`` (e.g. ``{"simulation.years": 1}``).

    ``paths`` and ``seed`` default to the scenario's own; the same seed gives the same
    random paths, so scenarios run with one seed are compared on common random numbers.
    """
    from gpunet.sim.model import simulate
    from gpunet.sim.scenario import load_scenario

    scenario = load_scenario(path)
    if overrides:
        scenario = scenario.with_overrides(overrides)
    result: SimulationResult = simulate(scenario, paths=paths, seed=seed, progress=progress)
    return result


def literal(token: str) -> object:
    """A TOML literal (number, boolean, quoted string), else the bare text as a string."""
    try:
        return tomllib.loads(f"v = {token}")["v"]
    except tomllib.TOMLDecodeError:
        return token


def parse_overrides(specs: Iterable[str]) -> dict[str, object]:
    """``["market.drift=-0.3", "design.staking=false"]`` as a mapping of dotted keys."""
    overrides: dict[str, object] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SimError(f"--set {spec!r}: expected KEY=VALUE, e.g. simulation.years=2")
        overrides[key.strip()] = literal(value.strip())
    return overrides
