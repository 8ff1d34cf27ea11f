"""The economy lab: simulate the token economy, compare designs, find the death spiral."""

from __future__ import annotations

from gpunet.sim.frames import median_frame, to_frame
from gpunet.sim.model import simulate
from gpunet.sim.params import Params
from gpunet.sim.result import SERIES, SimulationResult
from gpunet.sim.scenario import Scenario, ScenarioError, load_scenario

__all__ = [
    "SERIES",
    "Params",
    "Scenario",
    "ScenarioError",
    "SimulationResult",
    "load_scenario",
    "median_frame",
    "simulate",
    "to_frame",
]
