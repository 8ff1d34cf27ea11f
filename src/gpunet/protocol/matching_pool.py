"""The idle offers of one ``match`` call as a feature matrix, and demands as rows.

Qualifying is a chain of ``>=`` comparisons once each offer is a row of numbers and
each demand a row of requirements (prices and latencies negated, runtimes one column
each): the index and the trade pass then test thousands of pairs in one NumPy
operation. ``Batch`` carries the other per-demand parameters the scoring needs.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gpunet.errors import ValidationError
from gpunet.protocol.matching_arrays import BoolArray, FloatArray, IntArray, lex_order
from gpunet.protocol.matching_types import Candidate, Demand

if TYPE_CHECKING:
    from gpunet.protocol.matching_index import OfferIndex

# Feature columns: an offer qualifies when each column is >= the demand's requirement.
(COUNT, VRAM, TFLOPS, CPU, MEM, DISK, NET, NPRICE, NNODE, NLAT, FREE, R1) = range(12)
RUNTIME0 = 12


def _floats(values: Iterable[float]) -> FloatArray:
    return np.fromiter(values, dtype=np.float64)


def _codes_of(values: list[frozenset[str]]) -> tuple[list[frozenset[str]], IntArray]:
    """The distinct values in first-seen order, and each value's index among them."""
    seen: dict[frozenset[str], int] = {}
    codes = [seen.setdefault(value, len(seen)) for value in values]
    return list(seen), np.array(codes, dtype=np.int64).reshape(len(values))


def _codes(names: Sequence[str]) -> tuple[dict[str, int], IntArray]:
    table = {name: code for code, name in enumerate(sorted(set(names)))}
    return table, np.fromiter((table[name] for name in names), dtype=np.int64, count=len(names))


@dataclass(frozen=True)
class Batch:
    """Demands ranked together, with their parameters as aligned arrays."""

    demands: list[Demand]
    needs: FloatArray
    budget: FloatArray
    has_bound: BoolArray
    bound: FloatArray
    cpu_work: BoolArray
    rivals: IntArray


def batch_of(demands: list[Demand], needs: FloatArray) -> Batch:
    """``rivals`` counts, per demand, the offers others may take before it picks: the
    earlier demands of the batch that want the same model and region, and its own
    excluded nodes."""
    seen: dict[tuple[str | None, str | None], int] = {}
    rivals = []
    for d in demands:
        key = (d.gpu_model, d.region)
        rivals.append(seen.get(key, 0) + len(d.exclude_nodes))
        seen[key] = seen.get(key, 0) + 1
    return Batch(
        demands=demands,
        needs=needs,
        budget=_floats(d.max_price_micros for d in demands),
        has_bound=np.array([d.max_latency_ms is not None for d in demands], dtype=bool),
        bound=_floats(d.max_latency_ms or 1.0 for d in demands),
        cpu_work=np.array([d.gpu_count == 0 for d in demands], dtype=bool),
        rivals=np.array(rivals, dtype=np.int64),
    )


class Pool:
    """The idle offers of one call as a feature matrix, and the indexes that share them."""

    def __init__(self, candidates: Sequence[Candidate]) -> None:
        self.offers = [c for c in candidates if c.state == "idle"]
        self.models, self.model_codes = _codes([c.gpu_model for c in self.offers])
        self.regions, self.region_codes = _codes([c.region for c in self.offers])
        runtimes = sorted({r for c in self.offers for r in c.runtimes})
        self.runtimes = {name: RUNTIME0 + i for i, name in enumerate(runtimes)}
        self.features = self._features()
        self.reference = _reference_prices(self.model_codes, -self.features[:, NPRICE])
        self.indexes: list[OfferIndex] = []
        self._rows: dict[str, int] | None = None

    def _features(self) -> FloatArray:
        offers = self.offers
        getter = operator.attrgetter(
            "gpu_count", "vram_gib", "fp16_tflops", "cpu_cores", "memory_mib", "disk_gib",
            "allows_network", "price_micros", "reputation",
        )  # fmt: skip
        fields = np.dtype([(f"f{i}", np.float64) for i in range(9)])
        records = np.fromiter(map(getter, offers), dtype=fields, count=len(offers))
        raw = records.view(np.float64).reshape(len(offers), 9)
        features = np.zeros((len(offers), RUNTIME0 + len(self.runtimes)))
        features[:, :NPRICE] = raw[:, :NPRICE]
        features[:, NPRICE] = -raw[:, 7]
        features[:, NNODE] = features[:, NPRICE] * np.maximum(raw[:, COUNT], 1)
        latency = (-math.inf if c.latency_ms is None else -c.latency_ms for c in offers)
        features[:, NLAT] = _floats(latency)
        features[:, FREE] = 1.0
        features[:, R1] = 1.0 - raw[:, 8]
        kinds, runtimes = _codes_of(list(map(operator.attrgetter("runtimes"), offers)))
        table = np.zeros((len(kinds), len(self.runtimes)))
        for kind, names in enumerate(kinds):
            table[kind, [self.runtimes[name] - RUNTIME0 for name in names]] = 1.0
        features[:, RUNTIME0:] = table[runtimes]
        self._refuse_bad_numbers(features)
        return features

    def _refuse_bad_numbers(self, features: FloatArray) -> None:
        """The bounds assume numbers, and prices and latencies of 0 or more."""
        checks = ((NPRICE, "price_micros"), (NLAT, "latency_ms"), (R1, "reputation"))
        for column, field in checks:
            values = features[:, column]
            bad = np.flatnonzero(np.isnan(values) | ((values > 0) & (column != R1)))
            if bad.size:
                offer = self.offers[int(bad[0])]
                value = getattr(offer, field)
                hint = "must be a number" + (" of 0 or more" if column != R1 else "")
                raise ValidationError(field, value, f"of node {offer.node_id} {hint}")

    def requirements(self, demands: list[Demand]) -> tuple[list[Demand], FloatArray]:
        """The demands some offer has the runtime for, and their requirement per column."""
        columns = [self.runtimes.get(d.runtime) for d in demands]
        kept = [d for d, column in zip(demands, columns, strict=True) if column is not None]
        need = np.full((len(kept), self.features.shape[1]), -math.inf)
        fields = (
            (COUNT, "gpu_count"), (VRAM, "min_vram_gib"), (TFLOPS, "min_fp16_tflops"),
            (CPU, "cpu_cores"), (MEM, "memory_mib"), (DISK, "disk_gib"),
            (NET, "needs_network"),
        )  # fmt: skip
        for column, name in fields:
            need[:, column] = _floats(getattr(d, name) for d in kept)
        budget = _floats(-d.max_price_micros for d in kept)
        cpu_work = need[:, COUNT] == 0
        need[:, NPRICE] = np.where(cpu_work, -math.inf, budget)
        need[:, NNODE] = np.where(cpu_work, budget, -math.inf)
        bound = (-math.inf if d.max_latency_ms is None else -d.max_latency_ms for d in kept)
        need[:, NLAT] = _floats(bound)
        need[:, FREE] = 1.0
        need[np.arange(len(kept)), [c for c in columns if c is not None]] = 1.0
        return kept, need

    def row_of(self, node_id: str) -> int | None:
        if self._rows is None:
            self._rows = {c.node_id: row for row, c in enumerate(self.offers)}
        return self._rows.get(node_id)

    def take(self, row: int) -> Candidate:
        for index in self.indexes:
            index.mark_taken(row)
        return self.offers[row]


def _reference_prices(models: IntArray, prices: FloatArray) -> FloatArray:
    """Per offer, the median price of its model (at least 1): the budget its proxy assumes."""
    if not prices.size:
        return prices
    order = lex_order(prices, models)
    prices = prices[order]
    starts = np.flatnonzero(np.diff(models[order], prepend=-1))
    counts = np.diff(np.append(starts, prices.size))
    median = (prices[starts + (counts - 1) // 2] + prices[starts + counts // 2]) / 2
    per_model = np.ones(int(models.max()) + 1)
    per_model[models[order][starts]] = np.maximum(median, 1.0)
    return per_model[models]
