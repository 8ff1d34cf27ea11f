"""Support and resistance levels on a price chart.

Method (swing points clustered by price, as in the classic chartist definition: a level
is a price where the market turned more than once):

1. Swing points: bar ``i`` is a swing high when its high is the highest of the
   ``2 * window + 1`` bars centred on it and above every bar before it in that span (a
   flat top counts once); a swing low mirrors this on the lows. The first and last
   ``window`` bars cannot be confirmed and are never swing points, so a monotone series
   has none.
2. Clustering: swing prices, highs and lows together, sorted, join the current cluster
   while within ``tolerance`` (relative) of the cluster's mean; a cluster's mean is a level
   and its size the number of touches.
3. Ranking: levels with at least ``min_touches`` touches, most touches first, ties by the
   most recent touch; a level under the last close is support, above it resistance.

Prices come from an OHLCV CSV (``date`` or ``timestamp``, ``open``, ``high``, ``low``,
``close``, ``volume``; lines starting with ``#`` are comments), from a report's
``series.csv`` (one path of its ``price`` column), or from a ``SimulationResult``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
from matplotlib.axes import Axes

from gpunet.sim.errors import SimError
from gpunet.sim.figures import new_axes, save
from gpunet.sim.result import FloatArray, IntArray, SimulationResult

OHLCV = ("open", "high", "low", "close", "volume")
TIME_COLUMNS = ("date", "timestamp")
SERIES_COLUMNS = ("path", "day", "price")
LEVEL_COLORS = {"support": "#2e8b57", "resistance": "#c0392b"}
TICKS = 8
PRICE_COLUMNS = ("open", "high", "low", "close", "price")


@dataclass(frozen=True)
class Prices:
    """One price series: a label per bar, closes, and highs/lows when the source has them."""

    source: str
    labels: list[str]
    close: FloatArray
    open: FloatArray | None = None
    high: FloatArray | None = None
    low: FloatArray | None = None

    @property
    def has_candles(self) -> bool:
        return self.open is not None and self.high is not None and self.low is not None

    @property
    def highs(self) -> FloatArray:
        return self.close if self.high is None else self.high

    @property
    def lows(self) -> FloatArray:
        return self.close if self.low is None else self.low


@dataclass(frozen=True)
class Level:
    """A price where the market turned ``touches`` times, between bars ``first`` and ``last``."""

    price: float
    kind: Literal["support", "resistance"]
    touches: int
    first: int
    last: int


def load_prices(path: Path, *, sim_path: int = 0) -> Prices:
    """Read an OHLCV CSV, or path number ``sim_path`` of a report's ``series.csv``."""
    header, rows = _read_csv(path)
    if all(column in header for column in SERIES_COLUMNS) and "close" not in header:
        return _simulated_prices(path, header, rows, sim_path)
    time_column = next((c for c in TIME_COLUMNS if c in header), None)
    missing = [c for c in OHLCV if c not in header]
    if time_column is None or missing:
        names = missing if time_column else ["date (or timestamp)", *missing]
        raise SimError(
            f"{path}: missing column(s) {', '.join(names)}; an OHLCV CSV needs "
            f"date or timestamp, {', '.join(OHLCV)} (found: {', '.join(header) or 'nothing'})"
        )
    values = {c: _column(path, header, rows, c) for c in ("open", "high", "low", "close")}
    _column(path, header, rows, "volume")  # checked, not drawn
    labels = [row[header.index(time_column)] for _, row in rows]
    return Prices(str(path), labels, values["close"], values["open"], values["high"], values["low"])


def prices_from_result(result: SimulationResult, path: int = 0) -> Prices:
    """The simulated price of one path, labelled by day."""
    if not 0 <= path < result.paths:
        raise SimError(f"path {path} is out of range: the result has paths 0 to {result.paths - 1}")
    labels = [f"day {day:g}" for day in result.days]
    return Prices(f"{result.scenario}, path {path}", labels, result.series["price"][path].copy())


def swing_points(values: FloatArray, window: int, *, highs: bool) -> IntArray:
    """Indices of swing highs (``highs=True``) or swing lows of ``values`` (see module doc)."""
    signed = values if highs else -values
    found = [
        i
        for i in range(window, len(signed) - window)
        if signed[i] >= signed[i - window : i + window + 1].max()
        and signed[i] > signed[i - window : i].max()
    ]
    return np.asarray(found, dtype=np.int64)


def find_levels(
    prices: Prices,
    *,
    window: int = 5,
    tolerance: float = 0.02,
    min_touches: int = 2,
    max_levels: int = 8,
) -> list[Level]:
    """Support and resistance levels of ``prices``, sorted by price (see module doc)."""
    if window < 1 or tolerance <= 0:
        raise SimError(f"window must be >= 1 and tolerance > 0 (got {window}, {tolerance})")
    pivots = [
        (float(prices.highs[i]), int(i)) for i in swing_points(prices.highs, window, highs=True)
    ]
    pivots += [
        (float(prices.lows[i]), int(i)) for i in swing_points(prices.lows, window, highs=False)
    ]
    clusters = _cluster(sorted(pivots), tolerance)
    last_close = float(prices.close[-1])
    levels = [_level(cluster, last_close) for cluster in clusters if len(cluster) >= min_touches]
    ranked = sorted(levels, key=lambda lv: (-lv.touches, -lv.last))[:max_levels]
    return sorted(ranked, key=lambda lv: lv.price)


def _cluster(pivots: list[tuple[float, int]], tolerance: float) -> list[list[tuple[float, int]]]:
    clusters: list[list[tuple[float, int]]] = []
    for price, index in pivots:
        if clusters:
            mean = float(np.mean([p for p, _ in clusters[-1]]))
            if abs(price - mean) <= tolerance * abs(mean):
                clusters[-1].append((price, index))
                continue
        clusters.append([(price, index)])
    return clusters


def _level(cluster: list[tuple[float, int]], last_close: float) -> Level:
    price = float(np.mean([p for p, _ in cluster]))
    bars = [i for _, i in cluster]
    kind: Literal["support", "resistance"] = "support" if price <= last_close else "resistance"
    return Level(price, kind, len(cluster), min(bars), max(bars))


def plot_levels(prices: Prices, levels: list[Level], path: Path, *, window: int = 5) -> Path:
    """Candles (or the close line), swing points and levels with their touch counts."""
    figure, axes = new_axes((10.0, 5.2))
    x = np.arange(len(prices.close))
    if prices.has_candles:
        _draw_candles(axes, prices, x)
    else:
        axes.plot(x, prices.close, color="#1f5fa8", linewidth=1.2, label="close")
    for highs, marker in ((True, "v"), (False, "^")):
        values = prices.highs if highs else prices.lows
        found = swing_points(values, window, highs=highs)
        axes.scatter(found, values[found], marker=marker, s=14, color="#555555", zorder=3)
    for level in levels:
        color = LEVEL_COLORS[level.kind]
        axes.axhline(level.price, color=color, linestyle="--", linewidth=1.1)
        text = f"{level.kind} {level.price:.4g} ({level.touches} touches)"
        axes.annotate(
            text,
            (x[-1], level.price),
            xytext=(-4, 3),
            textcoords="offset points",
            ha="right",
            fontsize=8,
            color=color,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )
    ticks = np.linspace(0, len(x) - 1, min(TICKS, len(x))).astype(int)
    axes.set_xticks(ticks, [prices.labels[i] for i in ticks], rotation=20, fontsize=8)
    axes.set_xlim(-1, len(x))
    axes.set_ylabel("price")
    axes.set_title(
        f"Support and resistance: {prices.source}\n"
        f"swing window {window} bars; triangles mark swing highs and lows"
    )
    axes.grid(True, alpha=0.3)
    return save(figure, path)


def write_levels_csv(prices: Prices, levels: list[Level], path: Path) -> Path:
    """One row per level: kind, price, touches, and the labels of its first and last touch."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["kind", "price", "touches", "first", "last"])
        for lv in levels:
            first, last = prices.labels[lv.first], prices.labels[lv.last]
            writer.writerow([lv.kind, f"{lv.price:.6g}", lv.touches, first, last])
    return path


def _draw_candles(axes: Axes, prices: Prices, x: IntArray) -> None:
    assert prices.open is not None and prices.high is not None and prices.low is not None
    rising = prices.close >= prices.open
    colors = ["#2e8b57" if up else "#c0392b" for up in rising]
    body = max(1.0, 500.0 / len(x))
    axes.vlines(x, prices.low, prices.high, colors=colors, linewidth=0.8)
    axes.vlines(x, prices.open, prices.close, colors=colors, linewidth=body)


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SimError(f"cannot read price file {path}: {exc.strerror or exc}") from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    lines = [(n, line) for n, line in lines if not line.lstrip().startswith("#")]
    if not lines:
        raise SimError(f"{path}: no header and no rows; expected an OHLCV CSV")
    parsed = list(csv.reader([line for _, line in lines]))
    header = [cell.strip().lower() for cell in parsed[0]]
    rows = [(n, row) for (n, _), row in zip(lines[1:], parsed[1:], strict=True)]
    if not rows:
        raise SimError(f"{path}: a header and no rows; expected one row per bar")
    for number, row in rows:
        if len(row) != len(header):
            raise SimError(
                f"{path} line {number}: {len(row)} field(s), the header has {len(header)}"
            )
    return header, rows


def _column(
    path: Path, header: list[str], rows: list[tuple[int, list[str]]], name: str
) -> FloatArray:
    position = header.index(name)
    values = np.empty(len(rows))
    for k, (number, row) in enumerate(rows):
        try:
            values[k] = float(row[position])
        except ValueError:
            raise SimError(
                f"{path} line {number}: {name} {row[position]!r} is not a number"
            ) from None
        if not np.isfinite(values[k]) or (name in PRICE_COLUMNS and values[k] <= 0):
            raise SimError(f"{path} line {number}: {name} {row[position]!r} must be positive")
    return values


def _simulated_prices(
    path: Path, header: list[str], rows: list[tuple[int, list[str]]], sim_path: int
) -> Prices:
    ids = _column(path, header, rows, "path") if rows else np.empty(0)
    chosen = [row for (row, same) in zip(rows, ids == sim_path, strict=True) if same]
    if not chosen:
        raise SimError(f"{path}: no simulated path {sim_path} (paths 0 to {int(ids.max())})")
    close = _column(path, header, chosen, "price")
    labels = [f"day {row[header.index('day')]}" for _, row in chosen]
    return Prices(f"{path}, path {sim_path}", labels, close)


def sample_ohlcv(seed: int = 7, bars: int = 320) -> str:
    """CSV text of a synthetic OHLCV series (not market data): a seeded random walk that
    ranges between about 90 and 110, breaks out, then ranges between about 120 and 140."""
    rng = np.random.default_rng(seed)
    floors, ceilings = (90.0, 120.0), (110.0, 140.0)
    close = 100.0
    lines = [
        f"# synthetic: gpunet.sim.levels.sample_ohlcv(seed={seed}, bars={bars}), not market data"
    ]
    lines.append("date,open,high,low,close,volume")
    start = date(2025, 1, 1)
    for bar in range(bars):
        regime = 0 if bar < bars // 2 else 1
        opened = close
        close = _step(close + rng.normal(0.0, 2.2), floors[regime], ceilings[regime])
        high = max(opened, close) + abs(rng.normal(0.0, 0.6))
        low = min(opened, close) - abs(rng.normal(0.0, 0.6))
        volume = rng.lognormal(10.0, 0.4)
        day = (start + timedelta(days=bar)).isoformat()
        lines.append(f"{day},{opened:.2f},{high:.2f},{low:.2f},{close:.2f},{volume:.0f}")
    return "\n".join(lines) + "\n"


def _step(price: float, floor: float, ceiling: float) -> float:
    """Reflect off the range's edges; below a new, higher range, rally towards it."""
    if price > ceiling:
        return 2 * ceiling - price
    if price < floor - 5:
        return price + 3.0
    return 2 * floor - price if price < floor else price
