"""The report folder of one simulation: summary, CSV, PNG figures and an HTML page.

Layout of ``out_dir``::

    index.html      the page a reader opens: finding, summary table, every figure
    summary.md      the summary table and the finding, as Markdown
    summary.csv     the summary table, machine-readable
    bands.csv       per day: 5th percentile, median, 95th percentile of every series
    series.csv      only with ``full_series=True``: every path, every day, every series
    fig-<name>.png  one figure per series: median line, 5-95% band, median spiral day

The per-path CSV is off by default because it grows as paths x days x series (1,000
paths of 10 daily years is about 50 million numbers); the bands keep a folder small.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import numpy as np

from gpunet.sim import html
from gpunet.sim.figures import band_figure, describe
from gpunet.sim.result import SERIES, SimulationResult
from gpunet.sim.summary import (
    Band,
    SummaryRow,
    band,
    finding,
    format_value,
    median_spiral_day,
    summary_rows,
)

NUMBER_FORMAT = "%.10g"


def series_names(result: SimulationResult) -> list[str]:
    """The result's series, those of the contract first in its order, then any others."""
    known = [name for name in SERIES if name in result.series]
    return known + sorted(name for name in result.series if name not in SERIES)


def write_report(result: SimulationResult, out_dir: Path, *, full_series: bool = False) -> Path:
    """Write the report folder of ``result`` into ``out_dir``; return its ``index.html``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = summary_rows(result)
    write_summary_csv(result, rows, out_dir / "summary.csv")
    (out_dir / "summary.md").write_text(summary_markdown(result, rows), encoding="utf-8")
    bands = {name: band(result.series[name]) for name in series_names(result)}
    write_bands_csv(result, out_dir / "bands.csv", bands)
    if full_series:
        write_series_csv(result, out_dir / "series.csv")
    day = median_spiral_day(result)
    figures = [
        band_figure(result, name, out_dir / f"fig-{name}.png", day, values)
        for name, values in bands.items()
    ]
    return _write_index(result, rows, figures, out_dir, full_series)


def summary_table(result: SimulationResult, rows: list[SummaryRow]) -> list[list[str]]:
    """Rows of the summary table as text: series, unit, start, final 5%, median, 95%."""
    table = [
        [
            row.series,
            row.unit,
            format_value(row.start_median, row.unit),
            format_value(row.final_low, row.unit),
            format_value(row.final_median, row.unit),
            format_value(row.final_high, row.unit),
        ]
        for row in rows
    ]
    day = median_spiral_day(result)
    spiral = f"{result.spiral_probability():.0%}"
    table.append(["spiral probability", "fraction of paths", "", "", spiral, ""])
    table.append(
        ["median spiral day", "day", "", "", "never" if day is None else f"{day:,.0f}", ""]
    )
    return table


SUMMARY_HEADER = ("series", "unit", "start (median)", "final 5%", "final median", "final 95%")


def summary_markdown(result: SimulationResult, rows: list[SummaryRow]) -> str:
    lines = [f"# {result.scenario}", "", _meta(result), "", finding(result), ""]
    lines.append("| " + " | ".join(SUMMARY_HEADER) + " |")
    lines.append("|" + "---|" * len(SUMMARY_HEADER))
    lines += ["| " + " | ".join(cells) + " |" for cells in summary_table(result, rows)]
    return "\n".join(lines) + "\n"


def write_summary_csv(result: SimulationResult, rows: list[SummaryRow], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["metric", "unit", "start_median", "final_p5", "final_median", "final_p95"])
        for row in rows:
            writer.writerow(
                [
                    row.series,
                    row.unit,
                    row.start_median,
                    row.final_low,
                    row.final_median,
                    row.final_high,
                ]
            )
        day = median_spiral_day(result)
        writer.writerow(["spiral_probability", "fraction", "", "", result.spiral_probability(), ""])
        writer.writerow(["median_spiral_day", "day", "", "", "" if day is None else day, ""])
    return path


def write_bands_csv(
    result: SimulationResult, path: Path, bands: Mapping[str, Band] | None = None
) -> Path:
    """One row per step: ``day`` then ``<series>_p5, <series>_median, <series>_p95``."""
    if bands is None:
        bands = {name: band(result.series[name]) for name in series_names(result)}
    columns = [result.days]
    header = ["day"]
    for name, values in bands.items():
        columns += [values.low, values.median, values.high]
        header += [f"{name}_p5", f"{name}_median", f"{name}_p95"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        _write_rows(handle, header, np.column_stack(columns))
    return path


def write_series_csv(result: SimulationResult, path: Path) -> Path:
    """Long format, one row per path and step: ``path, day, <series>...``; one path at a time."""
    names = series_names(result)
    with path.open("w", newline="", encoding="utf-8") as handle:
        handle.write(",".join(["path", "day", *names]) + "\n")
        for index in range(result.paths):
            ids = np.full(result.days.shape, float(index))
            block = np.column_stack([ids, result.days, *(result.series[n][index] for n in names)])
            np.savetxt(handle, block, delimiter=",", fmt=NUMBER_FORMAT)
    return path


def _write_rows(handle: TextIO, header: list[str], block: np.ndarray) -> None:
    handle.write(",".join(header) + "\n")
    np.savetxt(handle, block, delimiter=",", fmt=NUMBER_FORMAT)


def _meta(result: SimulationResult) -> str:
    days = float(result.days[-1])
    return (
        f"{result.paths:,} Monte Carlo paths, seed {result.seed}, {days:,.0f} days "
        f"in steps of {result.step_days:g} day(s). Bands: 5th to 95th percentile across paths."
    )


def _write_index(
    result: SimulationResult,
    rows: list[SummaryRow],
    figures: list[Path],
    out_dir: Path,
    full_series: bool,
) -> Path:
    parts = [
        html.heading("Finding"),
        html.paragraph(finding(result), "finding"),
        html.heading("Summary"),
        html.table(SUMMARY_HEADER, summary_table(result, rows)),
        html.heading("Figures"),
    ]
    for path in figures:
        name = path.stem.removeprefix("fig-")
        parts.append(html.figure(path.name, f"{name}: {describe(name)}"))
    files = [("summary.md", "summary (Markdown)"), ("summary.csv", "summary (CSV)")]
    files.append(("bands.csv", "median and 5-95% band of every series per day (CSV)"))
    if full_series:
        files.append(("series.csv", "every path, every day, every series (CSV)"))
    parts += [html.heading("Data"), html.links(files)]
    title = f"Economy lab: {result.scenario}"
    return html.write_page(out_dir / "index.html", title, _meta(result), parts)
