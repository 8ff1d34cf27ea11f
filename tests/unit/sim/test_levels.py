"""Support and resistance: swing points clustered by price, from CSV or a simulated path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gpunet.sim.errors import SimError
from gpunet.sim.levels import (
    Prices,
    find_levels,
    load_prices,
    plot_levels,
    prices_from_result,
    sample_ohlcv,
    swing_points,
)
from gpunet.sim.result import SimulationResult

SAMPLE = Path(__file__).parents[3] / "examples" / "sim" / "prices-sample.csv"
HEADER = "date,open,high,low,close,volume\n"


def ranging(bars: int = 240, floor: float = 100.0, ceiling: float = 120.0) -> Prices:
    """A triangle wave between ``floor`` and ``ceiling`` with small seeded noise."""
    rng = np.random.default_rng(3)
    phase = np.abs((np.arange(bars) % 40) - 20) / 20  # 1 at the floor, 0 at the ceiling
    close = ceiling - phase * (ceiling - floor) + rng.normal(0, 0.3, bars)
    return Prices("ranging", [str(i) for i in range(bars)], close)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_finds_the_floor_and_ceiling_of_a_range() -> None:
    prices = ranging()

    levels = find_levels(prices, window=5, tolerance=0.02)

    assert len(levels) == 2
    support, resistance = levels
    assert support.price == pytest.approx(100.0, rel=0.01)
    assert resistance.price == pytest.approx(120.0, rel=0.01)
    assert support.touches >= 5 and resistance.touches >= 5


def test_kind_depends_on_the_last_close() -> None:
    prices = ranging(bars=230)  # ends near the floor, above it

    kinds = {round(lv.price): lv.kind for lv in find_levels(prices)}

    assert kinds == {100: "support", 120: "resistance"}


def test_monotone_series_has_no_levels() -> None:
    rising = Prices("up", [str(i) for i in range(100)], np.linspace(1.0, 5.0, 100))

    assert find_levels(rising) == []
    assert swing_points(rising.close, 5, highs=True).size == 0


def test_flat_top_counts_once() -> None:
    values = np.array([1.0, 2.0, 3.0, 3.0, 3.0, 2.0, 1.0])

    assert swing_points(values, 2, highs=True).tolist() == [2]


def test_sample_csv_is_the_documented_generator_output() -> None:
    assert SAMPLE.read_text(encoding="utf-8") == sample_ohlcv()


def test_sample_csv_loads_with_candles_and_has_levels() -> None:
    prices = load_prices(SAMPLE)

    levels = find_levels(prices)

    assert prices.has_candles and len(prices.close) == 320
    assert {lv.kind for lv in levels} == {"support", "resistance"}
    assert min(lv.price for lv in levels) == pytest.approx(90.0, rel=0.02)


def test_plot_is_a_png(tmp_path: Path) -> None:
    prices = load_prices(SAMPLE)

    path = plot_levels(prices, find_levels(prices), tmp_path / "levels.png")

    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 20_000


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "date,open,high,close\n2025-01-01,1,2,1\n" * 1)

    with pytest.raises(SimError, match=r"missing column\(s\) low, volume"):
        load_prices(path)


def test_missing_time_column_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "open,high,low,close,volume\n1,2,1,1,5\n")

    with pytest.raises(SimError, match="date \\(or timestamp\\)"):
        load_prices(path)


def test_bad_row_is_named_by_line(tmp_path: Path) -> None:
    rows = ["2025-01-01,1,2,1,1.5,10", "2025-01-02,1,2,1,abc,10", "2025-01-03,1,2,1,1.5,10"]
    path = write(tmp_path, HEADER + "\n".join(rows) + "\n")

    with pytest.raises(SimError, match="line 3: close 'abc' is not a number"):
        load_prices(path)


def test_short_row_is_named_by_line(tmp_path: Path) -> None:
    rows = ["2025-01-01,1,2,1,1.5,10", "2025-01-02,1,2", "2025-01-03,1,2,1,1.5,10"]
    path = write(tmp_path, HEADER + "\n".join(rows) + "\n")

    with pytest.raises(SimError, match="line 3: 3 field"):
        load_prices(path)


def test_timestamp_column_is_accepted(tmp_path: Path) -> None:
    rows = [f"{1700000000 + i * 60},1,2,0.5,{1 + (i % 2)},10" for i in range(5)]
    path = write(tmp_path, "timestamp,open,high,low,close,volume\n" + "\n".join(rows))

    assert len(load_prices(path).close) == 5


def test_simulated_path_from_series_csv(tmp_path: Path) -> None:
    rows = [f"{p},{d},{1.0 + p + d / 10}" for p in range(2) for d in range(6)]
    path = write(tmp_path, "path,day,price\n" + "\n".join(rows))

    prices = load_prices(path, sim_path=1)

    assert prices.close.tolist() == pytest.approx([2.0, 2.1, 2.2, 2.3, 2.4, 2.5])
    assert not prices.has_candles


def test_simulated_path_from_result() -> None:
    price = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    result = SimulationResult("s", 0, 1.0, {"price": price}, np.array([-1, -1], dtype=np.int64))

    assert prices_from_result(result, 1).close.tolist() == [4.0, 5.0, 6.0]
    with pytest.raises(SimError, match="path 2 is out of range"):
        prices_from_result(result, 2)
