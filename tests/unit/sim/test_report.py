"""The report folder: summary, CSV, figures and a page that ties them together."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from gpunet.sim.report import series_names, write_report
from gpunet.sim.result import SERIES, SimulationResult
from gpunet.sim.summary import SUMMARY_SERIES, band, finding, format_value, summary_rows

MakeResult = Callable[..., SimulationResult]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC), path
    assert len(data) > 10_000, f"{path} is suspiciously small ({len(data)} bytes)"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def written(
    tmp_path_factory: pytest.TempPathFactory, make_result: MakeResult
) -> tuple[SimulationResult, Path]:
    """One report written once for the tests that only read it (figures are slow-ish)."""
    result = make_result(paths=30, steps=25)
    return result, write_report(result, tmp_path_factory.mktemp("report") / "report")


def test_report_writes_every_file(written: tuple[SimulationResult, Path]) -> None:
    _, index = written

    assert index.name == "index.html" and index.parent.name == "report"
    for name in ("summary.md", "summary.csv", "bands.csv"):
        assert (index.parent / name).is_file()
    assert not (index.parent / "series.csv").exists()
    for name in SERIES:
        assert_png(index.parent / f"fig-{name}.png")


def test_page_references_every_figure_and_the_finding(
    written: tuple[SimulationResult, Path],
) -> None:
    _, index = written

    page = index.read_text(encoding="utf-8")

    figures = {p.name for p in index.parent.glob("*.png")}
    assert set(re.findall(r'src="([^"]+)"', page)) == figures
    assert "spiral probability" in page
    assert "synthetic bear" in page
    assert "median day" in page  # the finding names when the spiral typically fired


def test_bands_csv_has_a_row_per_step_and_three_columns_per_series(
    written: tuple[SimulationResult, Path],
) -> None:
    result, index = written

    rows = read_csv(index.parent / "bands.csv")

    assert len(rows) == 26
    assert list(rows[0])[:4] == ["day", "price_p5", "price_median", "price_p95"]
    assert len(rows[0]) == 1 + 3 * len(SERIES)
    expected = np.median(result.series["price"][:, -1])
    assert float(rows[-1]["price_median"]) == pytest.approx(expected, rel=1e-9)
    assert float(rows[-1]["day"]) == pytest.approx(25 * result.step_days)


def test_full_series_csv_is_long_format_on_request(tmp_path: Path, make_result: MakeResult) -> None:
    full = make_result(paths=4, steps=9)
    result = SimulationResult(
        "two series", 0, 2.0, {n: full.series[n] for n in ("price", "capacity")}, full.spiral_step
    )

    write_report(result, tmp_path, full_series=True)

    rows = read_csv(tmp_path / "series.csv")
    assert len(rows) == 4 * 10
    assert list(rows[0]) == ["path", "day", "price", "capacity"]
    last = rows[-1]
    assert float(last["path"]) == 3 and float(last["day"]) == 18
    assert float(last["price"]) == pytest.approx(result.series["price"][3, -1], rel=1e-9)
    assert "series.csv" in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_summary_csv_quotes_final_bands_and_spiral(written: tuple[SimulationResult, Path]) -> None:
    result, index = written

    rows = {row["metric"]: row for row in read_csv(index.parent / "summary.csv")}

    assert set(SUMMARY_SERIES) <= set(rows)
    price = result.series["price"][:, -1]
    assert float(rows["price"]["final_p5"]) == pytest.approx(np.percentile(price, 5))
    assert float(rows["spiral_probability"]["final_median"]) == pytest.approx(10 / 30)
    assert float(rows["median_spiral_day"]["final_median"]) > 0


def test_report_tolerates_missing_series_and_no_spiral(tmp_path: Path) -> None:
    price = np.linspace(1.0, 2.0, 11)[None, :].repeat(3, axis=0)
    result = SimulationResult("calm", 0, 1.0, {"price": price}, np.full(3, -1, dtype=np.int64))

    index = write_report(result, tmp_path)

    assert series_names(result) == ["price"]
    assert "In none of 3 paths" in index.read_text(encoding="utf-8")
    assert [row.series for row in summary_rows(result)] == ["price"]


def test_finding_quotes_the_numbers(make_result: MakeResult) -> None:
    result = make_result(paths=30, steps=200, step_days=2.0)

    text = finding(result)

    assert text.startswith("In 33% of 30 paths")
    assert "Sell pressure exceeded buy pressure by" in text
    assert "after 1.1 years" in text


def test_band_ignores_non_finite_values() -> None:
    values = np.array([[1.0, np.inf], [2.0, 4.0], [3.0, np.nan]])

    result = band(values)

    assert result.median.tolist() == [2.0, 4.0]


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.01234, "USD per token", "$0.0123"),
        (2_500_000.0, "USD per step", "$2.5M"),
        (0.42, "fraction", "42%"),
        (2.345, "ratio", "2.35x"),
        (1234.4, "count", "1,234"),
        (4.2e9, "tokens", "4.2B"),
        (float("nan"), "tokens", "n/a"),
        (6.37e-05, "USD per token", "$0.0000637"),
        (0.05, "USD per token", "$0.05"),
    ],
)
def test_format_value(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text
