"""Compare scenarios on the same random paths: overlaid medians, a table, a finding.

Every scenario runs with one seed and one number of paths (given, else the first
scenario's), so the market and demand shocks are common random numbers and differences
between the scenarios come from their designs, not from luck.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from gpunet.sim import html
from gpunet.sim.errors import SimError
from gpunet.sim.figures import describe, overlay_figure
from gpunet.sim.result import SERIES, SimulationResult
from gpunet.sim.runs import Progress, run_scenario
from gpunet.sim.summary import (
    SUMMARY_SERIES,
    SummaryRow,
    first_year_sell_buy,
    format_value,
    median_spiral_day,
    summary_rows,
)


def run_comparison(
    scenarios: Sequence[Path],
    *,
    paths: int | None = None,
    seed: int | None = None,
    overrides: Mapping[str, object] | None = None,
    on_start: Callable[[Path], Progress | None] | None = None,
) -> list[SimulationResult]:
    """Simulate each scenario with the same paths and seed, in the order given.

    ``on_start(path)``, if given, is called as each scenario starts and may return a
    progress callback ``(step, total)`` for that scenario's run.
    """
    if len(scenarios) < 2:
        raise SimError(f"compare needs at least two scenarios (got {len(scenarios)})")
    if paths is None or seed is None:
        from gpunet.sim.scenario import load_scenario

        first = load_scenario(scenarios[0]).params.simulation
        paths = first.paths if paths is None else paths
        seed = first.seed if seed is None else seed
    return [
        run_scenario(
            path,
            paths=paths,
            seed=seed,
            overrides=overrides,
            progress=on_start(path) if on_start else None,
        )
        for path in scenarios
    ]


def labels(results: Sequence[SimulationResult]) -> list[str]:
    """Scenario names, numbered where two share a name."""
    names = [r.scenario for r in results]
    return [f"{n} ({i + 1})" if names.count(n) > 1 else n for i, n in enumerate(names)]


def write_comparison(results: Sequence[SimulationResult], out_dir: Path) -> Path:
    """Write overlaid figures, a side-by-side table and a finding; return ``index.html``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    named = list(zip(labels(results), results, strict=True))
    shared = [n for n in SERIES if all(n in r.series for r in results)]
    figures = [overlay_figure(named, name, out_dir / f"fig-{name}.png") for name in shared]
    header, rows = comparison_table(named)
    (out_dir / "comparison.md").write_text(_markdown(named, header, rows), encoding="utf-8")
    parts = [
        html.heading("Finding"),
        html.paragraph(comparison_finding(named), "finding"),
        html.heading("Side by side"),
        html.table(header, rows),
        html.heading("Figures"),
    ]
    parts += [html.figure(p.name, f"{p.stem[4:]}: {describe(p.stem[4:])}") for p in figures]
    parts.append(html.links([("comparison.md", "the table and finding (Markdown)")]))
    title = "Economy lab: " + " vs ".join(label for label, _ in named)
    return html.write_page(out_dir / "index.html", title, _meta(results), parts)


def comparison_table(
    named: Sequence[tuple[str, SimulationResult]],
) -> tuple[list[str], list[list[str]]]:
    """Rows: spiral numbers, then each summary series' final median and 5-95% band."""
    header = ["metric", *(label for label, _ in named)]
    rows = [
        ["spiral probability", *(f"{r.spiral_probability():.0%}" for _, r in named)],
        ["median spiral day", *(_day(median_spiral_day(r)) for _, r in named)],
        ["first-year sell/buy", *(_ratio(first_year_sell_buy(r)) for _, r in named)],
    ]
    finals = [{row.series: row for row in summary_rows(r)} for _, r in named]
    for name in SUMMARY_SERIES:
        if all(name in final for final in finals):
            rows.append([f"final {name}", *(_final(final[name]) for final in finals)])
    return header, rows


def comparison_finding(named: Sequence[tuple[str, SimulationResult]]) -> str:
    """Who spirals, how often, when, and where each design leaves the price."""
    first = named[0][1]
    spirals = "; ".join(
        f"{label} in {r.spiral_probability():.0%}" + _when(median_spiral_day(r))
        for label, r in named
    )
    safest = min(named, key=lambda item: item[1].spiral_probability())[0]
    text = (
        f"On the same {first.paths:,} random paths (seed {first.seed}), the economy "
        f"spiralled: {spirals}. Lowest spiral probability: {safest}."
    )
    if all("price" in r.series for _, r in named):
        prices = ", ".join(f"{label} {_final_median(r, 'price')}" for label, r in named)
        text += f" Final median price: {prices}."
    return text


def _final(row: SummaryRow) -> str:
    low, high = format_value(row.final_low, row.unit), format_value(row.final_high, row.unit)
    return f"{format_value(row.final_median, row.unit)} ({low} to {high})"


def _final_median(result: SimulationResult, name: str) -> str:
    row = next(r for r in summary_rows(result) if r.series == name)
    return format_value(row.final_median, row.unit)


def _when(day: float | None) -> str:
    return "" if day is None else f" (median day {day:,.0f})"


def _day(day: float | None) -> str:
    return "never" if day is None else f"{day:,.0f}"


def _ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def _markdown(
    named: Sequence[tuple[str, SimulationResult]], header: list[str], rows: list[list[str]]
) -> str:
    lines = ["# " + " vs ".join(label for label, _ in named), "", comparison_finding(named), ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _meta(results: Sequence[SimulationResult]) -> str:
    first = results[0]
    return (
        f"{len(results)} scenarios, each on the same {first.paths:,} paths (seed {first.seed}). "
        "Lines: medians; shaded: 5th to 95th percentile across paths."
    )
