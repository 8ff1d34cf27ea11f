"""Simulation results as pandas DataFrames, for notebooks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gpunet.sim.result import SimulationResult


def to_frame(result: SimulationResult) -> pd.DataFrame:
    """Every series in long format: one row per path and step, columns ``path``,
    ``step``, ``day``, ``spiral_step`` and one column per series."""
    paths, columns = next(iter(result.series.values())).shape
    frame = pd.DataFrame(
        {
            "path": np.repeat(np.arange(paths), columns),
            "step": np.tile(np.arange(columns), paths),
            "day": np.tile(result.days, paths),
            "spiral_step": np.repeat(result.spiral_step, columns),
        }
    )
    for name, values in result.series.items():
        frame[name] = values.reshape(-1)
    return frame


def median_frame(result: SimulationResult, quantiles: tuple[float, ...] = ()) -> pd.DataFrame:
    """Median of every series per step (index ``day``), plus ``<name>_q<q>`` columns for
    each extra quantile asked for, e.g. ``quantiles=(0.05, 0.95)``."""
    data: dict[str, np.ndarray] = {}
    for name, values in result.series.items():
        data[name] = np.median(values, axis=0)
        for q in quantiles:
            data[f"{name}_q{q:g}"] = np.quantile(values, q, axis=0)
    return pd.DataFrame(data, index=pd.Index(result.days, name="day"))
