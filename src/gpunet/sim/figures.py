"""PNG figures of the economy lab, drawn with matplotlib's Agg canvas.

Figures are built from ``matplotlib.figure.Figure`` and rendered by ``FigureCanvasAgg``
directly, never through ``pyplot``: nothing here changes matplotlib's global backend or
state, so importing this module is harmless to any other code in the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from gpunet.sim.result import SERIES, FloatArray, SimulationResult
from gpunet.sim.summary import Band, band, compact, unit_of

SIZE = (9.0, 4.8)
DPI = 110
COLORS = ("#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad", "#d35400", "#16a085", "#7f8c8d")
LOG_SCALE_SPAN = 50.0  # a positive band spanning more than this factor is drawn in log scale


def new_figure(size: tuple[float, float] = SIZE) -> Figure:
    """A figure on its own Agg canvas, laid out so labels never overlap."""
    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def new_axes(size: tuple[float, float] = SIZE) -> tuple[Figure, Axes]:
    figure = new_figure(size)
    return figure, figure.add_subplot()


def save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def axis_label(name: str) -> str:
    unit = unit_of(name)
    label = name.replace("_", " ")
    return f"{label} ({unit})" if unit else label


def describe(name: str) -> str:
    return SERIES.get(name, ("", name.replace("_", " ")))[1]


def band_figure(
    result: SimulationResult,
    name: str,
    path: Path,
    spiral_day: float | None = None,
    values: Band | None = None,
) -> Path:
    """Median and 5-95% band of one series over time, with the median spiral day marked.

    ``values`` is the series' band when the caller has computed it already.
    """
    figure, axes = new_axes()
    values = band(result.series[name]) if values is None else values
    _draw_band(axes, result.days, values, COLORS[0], "median")
    if spiral_day is not None:
        label = f"median spiral day {spiral_day:,.0f} ({result.spiral_probability():.0%} of paths)"
        axes.axvline(spiral_day, color="#444444", linestyle="--", linewidth=1.2, label=label)
    _label(axes, name, _log_scale(values))
    axes.set_title(
        f"{result.scenario}: {describe(name)}\n{result.paths:,} paths, seed {result.seed}"
    )
    axes.legend(loc="best", fontsize=9)
    return save(figure, path)


def overlay_figure(results: Sequence[tuple[str, SimulationResult]], name: str, path: Path) -> Path:
    """Medians of one series for several scenarios on one chart, each with a light band."""
    figure, axes = new_axes()
    bands = []
    for index, (label, result) in enumerate(results):
        values = band(result.series[name])
        bands.append(values)
        _draw_band(axes, result.days, values, COLORS[index % len(COLORS)], label, alpha=0.12)
    _label(axes, name, all(_log_scale(b) for b in bands))
    axes.set_title(f"{describe(name)}: median and 5-95% band per scenario")
    axes.legend(loc="best", fontsize=9)
    return save(figure, path)


def _draw_band(
    axes: Axes, days: FloatArray, values: Band, color: str, label: str, alpha: float = 0.2
) -> None:
    axes.fill_between(
        days, values.low, values.high, color=color, alpha=alpha, linewidth=0, label=None
    )
    axes.plot(days, values.median, color=color, linewidth=1.8, label=f"{label} (5-95% shaded)")


def _label(axes: Axes, name: str, log_scale: bool) -> None:
    axes.set_xlabel("time since launch (days)")
    axes.set_ylabel(axis_label(name) + (", log scale" if log_scale else ""))
    if log_scale:
        axes.set_yscale("log")
    else:
        axes.yaxis.set_major_formatter(FuncFormatter(_tick))
    axes.grid(True, alpha=0.3)
    axes.margins(x=0)


def _tick(value: float, _position: float | None) -> str:
    """Tick labels as 1.2M or 350k rather than an offset exponent over the axis."""
    return compact(value) if abs(value) >= 1e4 else f"{value:g}"


def _log_scale(values: Band) -> bool:
    low, high = values.low[np.isfinite(values.low)], values.high[np.isfinite(values.high)]
    if low.size == 0 or high.size == 0 or low.min() <= 0:
        return False
    return bool(high.max() / low.min() > LOG_SCALE_SPAN)
