"""The report of a sweep: a heat map of spiral probability and final price, and a page.

With one swept key the figure is two line charts against it; with two or more, two heat
maps over the first two keys, each cell the mean over the other keys' values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes

from gpunet.sim import html
from gpunet.sim.figures import new_figure, save
from gpunet.sim.result import FloatArray
from gpunet.sim.summary import format_value
from gpunet.sim.sweep import Axis, PointResult, best_and_worst

HOLDS = 0.1  # spiral probability at or below which a point "holds"
SPIRALS = 0.5  # spiral probability above which a point "spirals"
MAX_TABLE_ROWS = 200
LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 1.5}


def write_sweep_report(
    scenario: str,
    axes: Sequence[Axis],
    points: Sequence[PointResult],
    out_dir: Path,
    *,
    paths: int | None,
    seed: int | None,
) -> Path:
    """Write ``sweep.png`` and ``index.html`` next to the streamed ``sweep.csv``."""
    figure = sweep_figure(scenario, axes, points, out_dir / "sweep.png")
    parts = [
        html.heading("Finding"),
        html.paragraph(sweep_finding(points), "finding"),
        html.figure(figure.name, "Where the economy holds and where it spirals"),
        html.heading("Points"),
        html.table(*_point_table(axes, points)),
        html.links([("sweep.csv", "every point (CSV)")]),
    ]
    meta = (
        f"{len(points)} grid points over {', '.join(a.key for a in axes)}; "
        f"each with {_or_default(paths, 'the scenario')} paths and seed "
        f"{_or_default(seed, 'of the scenario')}: the same random paths at every point."
    )
    return html.write_page(out_dir / "index.html", f"Sweep: {scenario}", meta, parts)


def sweep_finding(points: Sequence[PointResult]) -> str:
    """How many points hold and spiral, and which points are best and worst."""
    holds = sum(p.spiral_probability <= HOLDS for p in points)
    spirals = sum(p.spiral_probability > SPIRALS for p in points)
    best, worst = best_and_worst(points)
    return (
        f"Of {len(points)} points, the economy held (spiral probability {HOLDS:.0%} or less) "
        f"at {holds} and spiralled in more than half of the paths at {spirals}. "
        f"Best: {_where(best)} ({best.spiral_probability:.0%}, final median price "
        f"{format_value(best.final_median_price, 'USD')}). Worst: {_where(worst)} "
        f"({worst.spiral_probability:.0%}, final median price "
        f"{format_value(worst.final_median_price, 'USD')})."
    )


def sweep_figure(
    scenario: str, axes: Sequence[Axis], points: Sequence[PointResult], path: Path
) -> Path:
    figure = new_figure((12.0, 4.8) if len(axes) > 1 else (10.0, 4.4))
    first, second = figure.subplots(1, 2)
    if len(axes) == 1:
        _lines(first, second, axes[0], points)
    else:
        _heatmaps(first, second, axes, points)
    note = "" if len(axes) <= 2 else f" (mean over {', '.join(a.key for a in axes[2:])})"
    figure.suptitle(f"{scenario}: where the economy holds and where it spirals{note}")
    return save(figure, path)


def _lines(first: Axes, second: Axes, axis: Axis, points: Sequence[PointResult]) -> None:
    labels = [_label(v) for v in axis.values]
    first.plot(labels, [p.spiral_probability for p in points], marker="o", color="#c0392b")
    first.set_ylim(-0.02, 1.02)
    first.set_ylabel("spiral probability (fraction of paths)")
    second.plot(labels, [p.final_median_price for p in points], marker="o", color="#1f5fa8")
    second.set_ylabel("final median price (USD per token)")
    for chart in (first, second):
        chart.set_xlabel(axis.key)
        chart.grid(True, alpha=0.3)


def _heatmaps(
    first: Axes, second: Axes, axes: Sequence[Axis], points: Sequence[PointResult]
) -> None:
    spiral = _cells(axes, points, lambda p: p.spiral_probability)
    price = _cells(axes, points, lambda p: p.final_median_price)
    _heatmap(first, axes, spiral, "spiral probability (fraction of paths)", "RdYlGn_r", (0, 1))
    _heatmap(second, axes, price, "final median price (USD per token)", "viridis", None)


def _cells(
    axes: Sequence[Axis], points: Sequence[PointResult], value: Callable[[PointResult], float]
) -> FloatArray:
    rows, cols = len(axes[0].values), len(axes[1].values)
    sums, counts = np.zeros((rows, cols)), np.zeros((rows, cols))
    for point in points:
        i = axes[0].values.index(point.overrides[axes[0].key])
        j = axes[1].values.index(point.overrides[axes[1].key])
        sums[i, j] += value(point)
        counts[i, j] += 1
    with np.errstate(invalid="ignore"):
        return sums / counts


def _heatmap(
    chart: Axes,
    axes: Sequence[Axis],
    cells: FloatArray,
    title: str,
    colormap: str,
    limits: tuple[float, float] | None,
) -> None:
    low, high = limits if limits else (float(np.nanmin(cells)), float(np.nanmax(cells)))
    image = chart.imshow(cells, cmap=colormap, vmin=low, vmax=high, origin="lower", aspect="auto")
    chart.figure.colorbar(image, ax=chart, shrink=0.85)
    chart.set_yticks(range(len(axes[0].values)), [_label(v) for v in axes[0].values])
    chart.set_xticks(range(len(axes[1].values)), [_label(v) for v in axes[1].values])
    chart.set_ylabel(axes[0].key)
    chart.set_xlabel(axes[1].key)
    chart.set_title(title, fontsize=10)
    if cells.size <= 150:
        for (i, j), value in np.ndenumerate(cells):
            text = f"{value:.0%}" if limits else f"{value:.3g}"
            chart.text(j, i, text, ha="center", va="center", fontsize=8, bbox=LABEL_BOX)


def _point_table(
    axes: Sequence[Axis], points: Sequence[PointResult]
) -> tuple[list[str], list[list[str]]]:
    header = [a.key for a in axes] + ["spiral probability", "median spiral day", "final price"]
    rows = [
        [_label(p.overrides[a.key]) for a in axes]
        + [
            f"{p.spiral_probability:.0%}",
            "never" if p.median_spiral_day is None else f"{p.median_spiral_day:,.0f}",
            format_value(p.final_median_price, "USD"),
        ]
        for p in points[:MAX_TABLE_ROWS]
    ]
    return header, rows


def _where(point: PointResult) -> str:
    return ", ".join(f"{key}={_label(value)}" for key, value in point.overrides.items())


def _label(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _or_default(value: int | None, default: str) -> str:
    return default if value is None else f"{value:,}"
