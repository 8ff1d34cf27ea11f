"""Bands, headline numbers and the one-paragraph finding of a simulation result.

Bands are the 5th percentile, median and 95th percentile across paths at each step;
non-finite values (a sell/buy ratio with no buyers) are left out of the percentiles.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from gpunet.sim.result import SERIES, FloatArray, SimulationResult

SUMMARY_SERIES = (
    "price",
    "circulating",
    "staked",
    "providers",
    "capacity",
    "utilization",
    "sell_buy_ratio",
)
LOW_PERCENTILE = 5.0
HIGH_PERCENTILE = 95.0
DAYS_PER_YEAR = 365.0


@dataclass(frozen=True)
class Band:
    """5th percentile, median and 95th percentile across paths, per step."""

    low: FloatArray
    median: FloatArray
    high: FloatArray


@dataclass(frozen=True)
class SummaryRow:
    """One series at the start and at the end of the horizon."""

    series: str
    unit: str
    start_median: float
    final_low: float
    final_median: float
    final_high: float


def band(values: FloatArray) -> Band:
    """Percentile band across paths (axis 0) of a ``(paths, steps)`` array."""
    quantiles = [LOW_PERCENTILE, 50.0, HIGH_PERCENTILE]
    finite = np.isfinite(values)
    if finite.all():  # the common case, twice as fast as nanpercentile
        low, median, high = np.percentile(values, quantiles, axis=0)
        return Band(np.asarray(low), np.asarray(median), np.asarray(high))
    clean = np.where(finite, values, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a step where no path is finite
        low, median, high = np.nanpercentile(clean, quantiles, axis=0)
    return Band(np.asarray(low), np.asarray(median), np.asarray(high))


def unit_of(name: str) -> str:
    return SERIES.get(name, ("", ""))[0]


def summary_rows(result: SimulationResult) -> list[SummaryRow]:
    """The summary table: each of ``SUMMARY_SERIES`` the result holds, start and end."""
    rows = []
    for name in SUMMARY_SERIES:
        if name not in result.series:
            continue
        values = result.series[name]
        start, final = band(values[:, :1]), band(values[:, -1:])
        rows.append(
            SummaryRow(
                name,
                unit_of(name),
                float(start.median[0]),
                float(final.low[0]),
                float(final.median[0]),
                float(final.high[0]),
            )
        )
    return rows


def spiral_days(result: SimulationResult) -> FloatArray:
    """The day the spiral detector fired, for each path where it did."""
    fired = result.spiral_step[result.spiral_step >= 0]
    return fired.astype(np.float64) * result.step_days


def median_spiral_day(result: SimulationResult) -> float | None:
    days = spiral_days(result)
    return float(np.median(days)) if days.size else None


def horizon_days(result: SimulationResult) -> float:
    return float(result.days[-1])


def first_year_sell_buy(result: SimulationResult) -> float | None:
    """Median over paths of first-year sell pressure over first-year buy pressure."""
    if "sell_pressure" not in result.series or "buy_pressure" not in result.series:
        return None
    steps = max(1, round(DAYS_PER_YEAR / result.step_days))
    sold = result.series["sell_pressure"][:, 1 : steps + 1].sum(axis=1)
    bought = result.series["buy_pressure"][:, 1 : steps + 1].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = sold / bought
    finite = ratios[np.isfinite(ratios)]
    return float(np.median(finite)) if finite.size else None


def format_value(value: float, unit: str) -> str:
    """A number as a reader expects it for its unit: $0.0123, 1.2B tokens, 41%, 2.30x."""
    if not np.isfinite(value):
        return "n/a"
    if unit.startswith("USD"):
        return "$" + (compact(value) if abs(value) >= 1000 else _significant(value))
    if unit.startswith("fraction"):
        return f"{value:.0%}" if abs(value) >= 0.1 or value == 0 else f"{value:.1%}"
    if unit == "ratio":
        return f"{value:.2f}x"
    if unit == "count":
        return f"{value:,.0f}"
    return compact(value)


def compact(value: float) -> str:
    """1.2B, 350M, 12k: three significant digits and a suffix."""
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return _significant(value)


def _significant(value: float) -> str:
    """Three significant digits, never in scientific notation: 0.0000637, not 6.37e-05."""
    return np.format_float_positional(value, precision=3, unique=False, fractional=False, trim="-")


def finding(result: SimulationResult) -> str:
    """One paragraph in plain words, generated from the numbers of the result."""
    parts = [_spiral_sentence(result)]
    parts += [s for s in (_price_sentence(result), _pressure_sentence(result)) if s]
    providers = _change_sentence(result, "providers", "Active providers")
    if providers:
        parts.append(providers)
    return " ".join(parts)


def _spiral_sentence(result: SimulationResult) -> str:
    probability, paths = result.spiral_probability(), f"{result.paths:,}"
    day = median_spiral_day(result)
    if day is None:
        return (
            f"In none of {paths} paths did price and capacity fall together beyond "
            "the death-spiral thresholds."
        )
    return (
        f"In {probability:.0%} of {paths} paths the price and capacity fell together "
        f"beyond the death-spiral thresholds (median day {day:,.0f})."
    )


def _price_sentence(result: SimulationResult) -> str | None:
    if "price" not in result.series:
        return None
    row = next(r for r in summary_rows(result) if r.series == "price")
    years = horizon_days(result) / DAYS_PER_YEAR
    return (
        f"The median price went from {format_value(row.start_median, row.unit)} to "
        f"{format_value(row.final_median, row.unit)} after {years:.1f} years "
        f"(5-95%: {format_value(row.final_low, row.unit)} to "
        f"{format_value(row.final_high, row.unit)})."
    )


def _pressure_sentence(result: SimulationResult) -> str | None:
    ratio = first_year_sell_buy(result)
    if ratio is None or ratio <= 0:
        return None
    if ratio >= 1:
        return f"Sell pressure exceeded buy pressure by {ratio:.1f}x in the first year."
    return f"Buy pressure exceeded sell pressure by {1 / ratio:.1f}x in the first year."


def _change_sentence(result: SimulationResult, name: str, label: str) -> str | None:
    if name not in result.series:
        return None
    values = band(result.series[name])
    unit = unit_of(name)
    start, end = float(values.median[0]), float(values.median[-1])
    return f"{label} went from {format_value(start, unit)} to {format_value(end, unit)} (median)."
