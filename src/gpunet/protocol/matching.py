"""Matching jobs and sessions to node offers: qualify, then rank.

The indexer hands over its pending demands (jobs and sessions) and the offers of its
nodes; this module decides who runs where, the way Aethir's indexer does. A node must
first *qualify* for a demand (idle, enough hardware, the runtime, the network, the
region, the latency bound, a price within budget); qualifying nodes are then *ranked*
by ``score``: price against budget, reputation, latency against the bound.

A batch gives each demand at most one node and each node at most one demand. Demands
pick in priority order (overdue first, then more GPUs, then older), so that a stream
of small jobs cannot starve a large one; each takes its best-scoring free node, ties
broken by a hash keyed by the seed and the job, so no node id is always first. Then
placed demands may trade nodes where that lowers the sum of their scores (an early,
rich job gives a cheap node to a later job on a tight budget); who is placed, and
which nodes are used, stay as the priority order decided.

``match`` must place 10,000 demands over 100,000 offers within a second, so it does
not compare every pair: see ``_OfferIndex``. Its placement is the one the plain
definition gives (a property test holds it to a literal reference); docs/matching.md
has the formulas, the trade pass and the measured figures.
"""

from __future__ import annotations

import hashlib
import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gpunet.errors import ValidationError
from gpunet.protocol.offers import MAX_PRICE_MICROS, region_matches
from gpunet.protocol.units import MICROS_PER_USD, format_usd

# The latency term of a demand that sets no bound: halfway, so latency neither helps
# nor hurts any node.
NEUTRAL_LATENCY = 0.5
# ``reliability_adjusted_value`` treats a free offer as costing this much, so that it
# ranks first without dividing by zero.
MIN_VALUE_PRICE_MICROS = 1
DEFAULT_MAX_WAIT_S = 600.0


@dataclass(frozen=True)
class Candidate:
    """One node's offer as the matcher sees it; ``vram_gib`` and TFLOPS are per GPU.

    ``price_micros`` is per GPU-hour, per node-hour for CPU nodes (``gpu_count`` 0).
    """

    node_id: str
    gpu_model: str
    gpu_count: int
    vram_gib: int
    fp16_tflops: float
    cpu_cores: int
    memory_mib: int
    disk_gib: int
    price_micros: int
    region: str
    runtimes: frozenset[str]
    allows_network: bool = False
    latency_ms: float | None = None
    reputation: float = 0.5
    failure_rate: float = 0.0
    benchmark_gflops: float = 0.0
    state: str = "idle"


@dataclass(frozen=True)
class Demand:
    """One pending job or session.

    ``max_price_micros`` is per GPU-hour (per node-hour for CPU work, ``gpu_count`` 0);
    the default accepts any valid offer. ``exclude_nodes`` lists nodes that already
    failed this job, or the peer of a redundant run.
    """

    job_id: str
    gpu_count: int
    gpu_model: str | None = None
    min_fp16_tflops: float = 0.0
    min_vram_gib: int = 0
    cpu_cores: int = 1
    memory_mib: int = 512
    disk_gib: int = 0
    max_price_micros: int = MAX_PRICE_MICROS
    region: str | None = None
    max_latency_ms: float | None = None
    runtime: str = "bwrap"
    needs_network: bool = False
    submitted_at: float = 0.0
    exclude_nodes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for field in ("gpu_count", "min_vram_gib", "cpu_cores", "memory_mib", "disk_gib"):
            if getattr(self, field) < 0:
                raise ValidationError(field, getattr(self, field), "must not be negative")
        if not self.max_price_micros > 0:
            raise ValidationError(
                "max_price_micros", self.max_price_micros, "set a budget above zero"
            )
        if not (math.isfinite(self.min_fp16_tflops) and self.min_fp16_tflops >= 0):
            raise ValidationError(
                "min_fp16_tflops", self.min_fp16_tflops, "must be a finite number, 0 or more"
            )
        bound = self.max_latency_ms
        if bound is not None and not (math.isfinite(bound) and bound > 0):
            raise ValidationError(
                "max_latency_ms", bound, "set a positive bound in ms, or none for batch work"
            )
        if self.gpu_count == 0 and (self.gpu_model or self.min_fp16_tflops or self.min_vram_gib):
            raise ValidationError(
                "gpu_count", 0, "CPU-only work names no GPU model, TFLOPS or VRAM; ask for GPUs"
            )


@dataclass(frozen=True)
class Weights:
    """How much price, reputation and latency count in ``score``."""

    price: float = 0.5
    reputation: float = 0.3
    latency: float = 0.2

    def __post_init__(self) -> None:
        for field in ("price", "reputation", "latency"):
            value = getattr(self, field)
            if not (math.isfinite(value) and value >= 0):
                raise ValidationError(field, value, "a weight must be finite and 0 or more")


@dataclass(frozen=True)
class Assignment:
    """A demand placed on a node, at the node's price in the demand's unit."""

    job_id: str
    node_id: str
    price_micros: int


def unit_price_micros(demand: Demand, candidate: Candidate) -> int:
    """The node's price in the demand's unit: per GPU-hour, or per node-hour for CPU work.

    CPU work takes the whole node, so on a GPU node it pays for every GPU there.
    """
    if demand.gpu_count == 0:
        return candidate.price_micros * max(candidate.gpu_count, 1)
    return candidate.price_micros


def _usd_per_hour(micros: int) -> str:
    return f"{format_usd(micros)} USD/h"


def _gpu_shortfall(demand: Demand, candidate: Candidate) -> str | None:
    wanted = demand.gpu_count
    if wanted == 0:
        return None
    if candidate.gpu_count < wanted:
        plural = "GPU" if wanted == 1 else "GPUs"
        return f"needs {wanted} {plural}, node has {candidate.gpu_count}"
    if demand.gpu_model is not None and candidate.gpu_model != demand.gpu_model:
        return f"needs {demand.gpu_model}, node has {candidate.gpu_model}"
    if candidate.fp16_tflops < demand.min_fp16_tflops:
        return f"FP16 {candidate.fp16_tflops:g} TFLOPS per GPU below {demand.min_fp16_tflops:g}"
    if candidate.vram_gib < demand.min_vram_gib:
        return f"VRAM {candidate.vram_gib} GiB per GPU below {demand.min_vram_gib}"
    return None


def _host_shortfall(demand: Demand, candidate: Candidate) -> str | None:
    if candidate.cpu_cores < demand.cpu_cores:
        return f"needs {demand.cpu_cores} CPU cores, node has {candidate.cpu_cores}"
    if candidate.memory_mib < demand.memory_mib:
        return f"needs {demand.memory_mib} MiB memory, node has {candidate.memory_mib}"
    if candidate.disk_gib < demand.disk_gib:
        return f"needs {demand.disk_gib} GiB disk, node has {candidate.disk_gib}"
    if demand.runtime not in candidate.runtimes:
        offered = ", ".join(sorted(candidate.runtimes)) or "none"
        return f"runtime {demand.runtime} not offered (node offers {offered})"
    if demand.needs_network and not candidate.allows_network:
        return "needs network, node allows none"
    return None


def _placement_shortfall(demand: Demand, candidate: Candidate) -> str | None:
    if demand.region is not None and not region_matches(candidate.region, demand.region):
        return f"region {candidate.region} outside {demand.region}"
    bound = demand.max_latency_ms
    if bound is not None:
        if candidate.latency_ms is None:
            return f"latency unknown, bound {bound:g} ms"
        if candidate.latency_ms > bound:
            return f"latency {candidate.latency_ms:g} ms above bound {bound:g} ms"
    price = unit_price_micros(demand, candidate)
    if price > demand.max_price_micros:
        budget = demand.max_price_micros
        return f"price {_usd_per_hour(price)} above budget {_usd_per_hour(budget)}"
    return None


def disqualification(demand: Demand, candidate: Candidate) -> str | None:
    """None when ``candidate`` qualifies for ``demand``, else the first reason it does not."""
    if candidate.state != "idle":
        return f"state {candidate.state}"
    if candidate.node_id in demand.exclude_nodes:
        return "excluded for this job (failed it before, or runs its redundant peer)"
    return (
        _gpu_shortfall(demand, candidate)
        or _host_shortfall(demand, candidate)
        or _placement_shortfall(demand, candidate)
    )


def latency_term(demand: Demand, candidate: Candidate) -> float:
    """Latency against the demand's bound (0 best, 1 at the bound); neutral without one."""
    bound = demand.max_latency_ms
    if bound is None:
        return NEUTRAL_LATENCY
    if candidate.latency_ms is None:
        return 1.0
    return candidate.latency_ms / bound


def score(demand: Demand, candidate: Candidate, weights: Weights) -> float:
    """How well ``candidate`` suits ``demand``; lower is better.

    ``price * (unit price / budget) + reputation * (1 - reputation)
    + latency * latency_term``, evaluated in that order. Meaningful for qualifying
    pairs, where each term lies between 0 and its weight.
    """
    price_share = unit_price_micros(demand, candidate) / demand.max_price_micros
    total = weights.price * price_share + weights.reputation * (1.0 - candidate.reputation)
    return total + weights.latency * latency_term(demand, candidate)


def reliability_adjusted_value(candidate: Candidate) -> float:
    """Useful GFLOPS per USD-hour: ``benchmark / (price in USD) * (1 - failure_rate)``.

    A free offer counts as costing ``MIN_VALUE_PRICE_MICROS``, so it ranks first and
    the value stays finite; the failure rate is clamped to 0..1.
    """
    price_usd = max(candidate.price_micros, MIN_VALUE_PRICE_MICROS) / MICROS_PER_USD
    reliability = 1.0 - min(max(candidate.failure_rate, 0.0), 1.0)
    return candidate.benchmark_gflops / price_usd * reliability


def demand_priority(
    demand: Demand, now: float, max_wait_s: float = DEFAULT_MAX_WAIT_S
) -> tuple[int, int, float, str]:
    """The order in which demands pick: a sort key, smallest first.

    Overdue demands (waiting longer than ``max_wait_s``) first; then more GPUs before
    fewer; then older before newer; the job id makes the order total.
    """
    overdue = now - demand.submitted_at > max_wait_s
    return (0 if overdue else 1, -demand.gpu_count, demand.submitted_at, demand.job_id)


def tie_break_key(seed: int, job_id: str, node_id: str) -> int:
    """A 64-bit hash of (seed, job, node): among equal scores the smallest key wins."""
    text = f"{seed}\x00{job_id}\x00{node_id}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def rank_key(
    demand: Demand, candidate: Candidate, weights: Weights, seed: int
) -> tuple[float, int, str]:
    """The full ranking order of one demand's candidates: score, tie key, node id."""
    return (
        score(demand, candidate, weights),
        tie_break_key(seed, demand.job_id, candidate.node_id),
        candidate.node_id,
    )


def _require_unique(field: str, values: list[str], what: str) -> None:
    if len(set(values)) == len(values):
        return
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValidationError(field, value, f"appears twice; pass each {what} once")
        seen.add(value)


# The fast path. The idle offers become a feature matrix (``_Pool``); an index sorts
# them by (model, region, reputation band, GPU count) into segments and, inside each
# segment, by a proxy: the offer's score at its model's median price taken as budget
# (sessions: and at a reference latency bound). An offer's true score is at least
# ``floor + scale * proxy``, with ``floor`` and ``scale`` fixed per (demand, segment),
# so for any score X the offers of a segment that can score X or less form a prefix.
#
# Demands are served in batches, each step one array operation for the whole batch:
# score the front offers of each demand's most promising segments (its best so far),
# then every offer whose bound is within ``_MARGIN`` of that. The result is, per
# demand, its qualifying offers ranked and complete up to a score X: any offer left
# out scores more. Then, in priority order, each demand takes the first offer on its
# list that is still free, which is therefore its best; a demand whose list has run
# dry is searched again alone, with the taken offers gone.
_BANDS = 4
_BATCH = 48
_FRONT_MARGIN = 0.02
_FRONT_DEPTH = 4
_MARGIN = 0.01
_WIDEN = 0.2
_ALONE_WIDEN = (0.5, math.inf)
_IMPROVE_PASSES = 3
_PREFERRED = 16
_PREFERRED_MARGIN = 0.3
_PREFERRED_DEPTH = 2
_PREFERRED_SEGMENTS = 16
# Bounds are compared with this margin, so that rounding never prunes the winner.
_SLACK = 1e-9
# Feature columns: an offer qualifies when each column is >= the demand's requirement.
(_COUNT, _VRAM, _TFLOPS, _CPU, _MEM, _DISK, _NET, _NPRICE, _NNODE, _NLAT, _FREE, _R1) = range(12)
_RUNTIME0 = 12

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


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


def _ranges(starts: IntArray, ends: IntArray) -> tuple[IntArray, IntArray]:
    """The positions of the ranges ``[starts[i], ends[i])``, concatenated, and each one's i."""
    lengths = np.maximum(ends - starts, 0)
    owners = np.repeat(np.arange(lengths.size), lengths)
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return np.arange(owners.size, dtype=np.int64) + offsets, owners


@dataclass(frozen=True)
class _Batch:
    """Demands ranked together, with their parameters as aligned arrays."""

    demands: list[Demand]
    needs: FloatArray
    budget: FloatArray
    has_bound: BoolArray
    bound: FloatArray
    cpu_work: BoolArray
    rivals: IntArray


def _batch(demands: list[Demand], needs: FloatArray) -> _Batch:
    """``rivals`` counts, per demand, the offers others may take before it picks: the
    earlier demands of the batch that want the same model and region, and its own
    excluded nodes."""
    seen: dict[tuple[str | None, str | None], int] = {}
    rivals = []
    for d in demands:
        key = (d.gpu_model, d.region)
        rivals.append(seen.get(key, 0) + len(d.exclude_nodes))
        seen[key] = seen.get(key, 0) + 1
    return _Batch(
        demands=demands,
        needs=needs,
        budget=_floats(d.max_price_micros for d in demands),
        has_bound=np.array([d.max_latency_ms is not None for d in demands], dtype=bool),
        bound=_floats(d.max_latency_ms or 1.0 for d in demands),
        cpu_work=np.array([d.gpu_count == 0 for d in demands], dtype=bool),
        rivals=np.array(rivals, dtype=np.int64),
    )


@dataclass(frozen=True)
class _Ranking:
    """What ranking a batch found, as arrays. Demand ``i`` owns entries
    ``cuts[i]:cuts[i + 1]`` of ``positions`` and ``scores``: its qualifying free offers
    (index positions) by score, complete up to ``complete_to[i]``; and entries
    ``picks[i]:picks[i + 1]`` of ``preferred`` and ``preferred_scores``: up to
    ``_PREFERRED`` offers (pool rows) it scores best, taken or not.
    """

    positions: IntArray
    scores: FloatArray
    cuts: list[int]
    complete_to: list[float]
    preferred: IntArray
    preferred_scores: FloatArray
    picks: list[int]


def _no_ranking(size: int) -> _Ranking:
    none, zeros = np.zeros(0, dtype=np.int64), [0] * (size + 1)
    return _Ranking(none, np.zeros(0), zeros, [math.inf] * size, none, np.zeros(0), zeros)


class _Pool:
    """The idle offers of one call as a feature matrix, and the indexes that share them."""

    def __init__(self, candidates: Sequence[Candidate]) -> None:
        self.offers = [c for c in candidates if c.state == "idle"]
        self.models, self.model_codes = _codes([c.gpu_model for c in self.offers])
        self.regions, self.region_codes = _codes([c.region for c in self.offers])
        runtimes = sorted({r for c in self.offers for r in c.runtimes})
        self.runtimes = {name: _RUNTIME0 + i for i, name in enumerate(runtimes)}
        self.features = self._features()
        self.reference = _reference_prices(self.model_codes, -self.features[:, _NPRICE])
        self.indexes: list[_OfferIndex] = []
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
        features = np.zeros((len(offers), _RUNTIME0 + len(self.runtimes)))
        features[:, :_NPRICE] = raw[:, :_NPRICE]
        features[:, _NPRICE] = -raw[:, 7]
        features[:, _NNODE] = features[:, _NPRICE] * np.maximum(raw[:, _COUNT], 1)
        latency = (-math.inf if c.latency_ms is None else -c.latency_ms for c in offers)
        features[:, _NLAT] = _floats(latency)
        features[:, _FREE] = 1.0
        features[:, _R1] = 1.0 - raw[:, 8]
        kinds, runtimes = _codes_of(list(map(operator.attrgetter("runtimes"), offers)))
        table = np.zeros((len(kinds), len(self.runtimes)))
        for kind, names in enumerate(kinds):
            table[kind, [self.runtimes[name] - _RUNTIME0 for name in names]] = 1.0
        features[:, _RUNTIME0:] = table[runtimes]
        self._refuse_bad_numbers(features)
        return features

    def _refuse_bad_numbers(self, features: FloatArray) -> None:
        """The bounds assume numbers, and prices and latencies of 0 or more."""
        checks = ((_NPRICE, "price_micros"), (_NLAT, "latency_ms"), (_R1, "reputation"))
        for column, field in checks:
            values = features[:, column]
            bad = np.flatnonzero(np.isnan(values) | ((values > 0) & (column != _R1)))
            if bad.size:
                offer = self.offers[int(bad[0])]
                value = getattr(offer, field)
                hint = "must be a number" + (" of 0 or more" if column != _R1 else "")
                raise ValidationError(field, value, f"of node {offer.node_id} {hint}")

    def requirements(self, demands: list[Demand]) -> tuple[list[Demand], FloatArray]:
        """The demands some offer has the runtime for, and their requirement per column."""
        columns = [self.runtimes.get(d.runtime) for d in demands]
        kept = [d for d, column in zip(demands, columns, strict=True) if column is not None]
        need = np.full((len(kept), self.features.shape[1]), -math.inf)
        fields = (
            (_COUNT, "gpu_count"), (_VRAM, "min_vram_gib"), (_TFLOPS, "min_fp16_tflops"),
            (_CPU, "cpu_cores"), (_MEM, "memory_mib"), (_DISK, "disk_gib"),
            (_NET, "needs_network"),
        )  # fmt: skip
        for column, name in fields:
            need[:, column] = _floats(getattr(d, name) for d in kept)
        budget = _floats(-d.max_price_micros for d in kept)
        cpu_work = need[:, _COUNT] == 0
        need[:, _NPRICE] = np.where(cpu_work, -math.inf, budget)
        need[:, _NNODE] = np.where(cpu_work, budget, -math.inf)
        bound = (-math.inf if d.max_latency_ms is None else -d.max_latency_ms for d in kept)
        need[:, _NLAT] = _floats(bound)
        need[:, _FREE] = 1.0
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


class _OfferIndex:
    """Some of the pool's offers in proxy-sorted segments, for batched queries."""

    def __init__(
        self,
        pool: _Pool,
        rows: IntArray,
        weights: Weights,
        seed: int,
        latency_reference: float | None,
    ) -> None:
        self.pool, self.weights, self.seed = pool, weights, seed
        self.latency_reference = latency_reference
        features, reference = pool.features[rows], pool.reference[rows]
        models, regions = pool.model_codes[rows], pool.region_codes[rows]
        band = np.clip((features[:, _R1] * _BANDS).astype(np.int64), 0, _BANDS - 1)
        counts = features[:, _COUNT].astype(np.int64)
        proxy = self._proxy(features, reference)
        sizes = (len(pool.regions), _BANDS, int(counts.max(initial=0)) + 1)
        group = ((models * sizes[0] + regions) * sizes[1] + band) * sizes[2] + counts
        order = np.lexsort((proxy, group))
        self.row_array = rows[order]
        self.rows = self.row_array.tolist()
        self.position = np.full(len(pool.offers), -1, dtype=np.int64)
        self.position[rows[order]] = np.arange(len(rows))
        self.position_of: list[int] = self.position.tolist()
        self.features = features[order]
        self.free = bytearray(b"\x01") * len(rows)
        self._spans: dict[tuple[str | float | None, ...], IntArray] = {}
        if self.rows:
            keys = np.column_stack((models, regions, band, counts))[order]
            self._segment(keys, reference[order], proxy[order])

    def _proxy(self, features: FloatArray, reference: FloatArray) -> FloatArray:
        """Each offer's score at its reference budget (and reference latency bound)."""
        w = self.weights
        proxy = w.price * (-features[:, _NPRICE] / reference) + w.reputation * features[:, _R1]
        if self.latency_reference is None:
            return proxy
        return proxy + w.latency * (-features[:, _NLAT] / self.latency_reference)

    def _segment(self, keys: IntArray, reference: FloatArray, proxy: FloatArray) -> None:
        size = len(keys)
        edges = np.flatnonzero((np.diff(keys, axis=0) != 0).any(axis=1)) + 1
        starts = np.concatenate(([0], edges)).astype(np.int64)
        self.seg_end = np.append(starts[1:], size).astype(np.int64)
        self.pointer = starts.copy()
        self.seg_of = np.repeat(np.arange(len(starts)), self.seg_end - starts)
        # Python copies for the one-at-a-time reads and writes of ``mark_taken``.
        self.segment_of: list[int] = self.seg_of.tolist()
        self.segment_end: list[int] = self.seg_end.tolist()
        self.pointers: list[int] = starts.tolist()
        self.seg_count = np.maximum(keys[starts, 3], 1).astype(np.float64)
        self.seg_best = np.maximum.reduceat(self.features, starts, axis=0)
        self.seg_price = -self.seg_best[:, _NPRICE]
        self.seg_latency = -self.seg_best[:, _NLAT]
        self.seg_start = starts
        r1 = self.features[:, _R1]
        self.seg_r1 = np.minimum.reduceat(r1, starts)
        self.seg_spread = np.maximum.reduceat(r1, starts) - self.seg_r1
        self.seg_reference = reference[starts]
        # Less the segment's best reputation term, every part of the proxy is >= 0.
        self.proxy = np.maximum(proxy - self.weights.reputation * self.seg_r1[self.seg_of], 0.0)
        self.seg_first = self.proxy[starts]
        self.seg_front = self.seg_first.copy()
        region = keys[starts, 1]
        # Segments by region, for demands that name no model.
        self.by_region = np.argsort(region, kind="stable")
        self.region_of_by_region = region[self.by_region]
        self.model_region = keys[starts, 0] * len(self.pool.regions) + region
        # Proxies as one sorted key: segment number, then proxy within the segment.
        self.scale = float(self.proxy.max()) + 2.0
        self.proxy_key = self.seg_of * self.scale + self.proxy

    def _span(self, demand: Demand) -> IntArray:
        """The segments that hold the demand's model (if it names one) and region."""
        key = (demand.gpu_model, demand.region)
        wanted = (demand.gpu_count, demand.min_fp16_tflops, demand.min_vram_gib)
        span = self._spans.get((*key, *wanted))
        if span is None:
            span = self._spans.get(key)
            if span is None:
                span = self._spans[key] = self._new_span(*key)
            best = self.seg_best[span]
            fits = best[:, [_COUNT, _TFLOPS, _VRAM]] >= wanted
            span = self._spans[(*key, *wanted)] = span[fits.all(axis=1)]
        return span

    def _new_span(self, model_name: str | None, region: str | None) -> IntArray:
        regions = self.pool.regions
        if region is None:
            codes = np.arange(len(regions))
        else:
            found = [code for name, code in regions.items() if region_matches(name, region)]
            codes = np.array(sorted(found), dtype=np.int64)
        if model_name is None:
            return self.by_region[_within(self.region_of_by_region, codes, 0)]
        model = self.pool.models.get(model_name)
        if model is None:
            return np.zeros(0, dtype=np.int64)
        return _within(self.model_region, codes, model * len(regions))

    def _scores(
        self, batch: _Batch, owners: IntArray, price: FloatArray, r1: FloatArray,
        latency: FloatArray,
    ) -> FloatArray:  # fmt: skip
        """``score`` over arrays, operation for operation, so that equal means equal."""
        w = self.weights
        total = w.price * (price / batch.budget[owners]) + w.reputation * r1
        term = np.where(batch.has_bound[owners], latency / batch.bound[owners], NEUTRAL_LATENCY)
        return total + w.latency * term

    def _evaluate(
        self, batch: _Batch, positions: IntArray, owners: IntArray, taken_too: bool = False
    ) -> tuple[FloatArray, BoolArray]:
        """The score of each (offer, demand) pair, infinite where the offer does not
        qualify or is taken (unless ``taken_too``); and whether each offer is free."""
        rows = self.features[positions]
        needs = batch.needs[owners]
        if taken_too:
            needs[:, _FREE] = -math.inf
        ok = (rows >= needs).all(axis=1)
        price = np.where(batch.cpu_work[owners], -rows[:, _NNODE], -rows[:, _NPRICE])
        scores = self._scores(batch, owners, price, rows[:, _R1], -rows[:, _NLAT])
        return np.where(ok, scores, math.inf), rows[:, _FREE] > 0

    def _pairs(self, batch: _Batch) -> tuple[IntArray, IntArray, FloatArray]:
        """The (segment, demand) pairs where the segment may hold an offer for the
        demand, and the number of GPUs the demand pays for there (1 for GPU work)."""
        spans = [self._span(d) for d in batch.demands]
        segs = np.concatenate(spans)
        owners = np.repeat(np.arange(len(spans)), [len(s) for s in spans])
        units = np.where(batch.cpu_work[owners], self.seg_count[segs], 1.0)
        fits = self.seg_price[segs] * units <= batch.budget[owners]
        if self.latency_reference is not None:
            fits &= self.seg_latency[segs] <= batch.bound[owners]
        return segs[fits], owners[fits], units[fits]

    def _bounds(
        self, batch: _Batch, segs: IntArray, owners: IntArray, units: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per (demand, segment): ``floor`` and ``scale`` of the bound, and ``cap``, the
        largest proxy a qualifying offer can have (its price at the budget, its
        reputation the segment's worst, its latency at the bound)."""
        w = self.weights
        budget_share = self.seg_reference[segs] * units / batch.budget[owners]
        scale = np.minimum(budget_share, 1.0)
        floor = w.reputation * self.seg_r1[segs]
        cap = w.price / budget_share + w.reputation * self.seg_spread[segs]
        if self.latency_reference is None:
            return floor + w.latency * NEUTRAL_LATENCY, scale, cap
        latency_share = self.latency_reference / batch.bound[owners]
        return floor, np.minimum(scale, latency_share), cap + w.latency / latency_share

    def rank(self, batch: _Batch, widen: float) -> _Ranking:
        """Each demand's qualifying free offers by score, complete up to a score, and
        its preferred offers (see ``_Ranking``).

        That score is the best found among front offers plus ``_MARGIN``; when no
        front offer qualifies, the lowest bound plus ``widen``.
        """
        size = len(batch.demands)
        if not self.rows:
            return _no_ranking(size)
        segs, owners, units = self._pairs(batch)
        floor, scale, cap = self._bounds(batch, segs, owners, units)
        # Pass 1: the first offers of each demand's most promising segments, free
        # (from the pointer) and, for the preferred list, taken or not (from the start).
        front = floor + scale * self.seg_front[segs]
        head = floor + scale * self.seg_first[segs]
        lowest = _lowest(front, owners, size)
        near_front = front <= lowest[owners] + _FRONT_MARGIN
        reach = _lowest(head, owners, size) + _PREFERRED_MARGIN
        if _PREFERRED_SEGMENTS:
            reach = np.minimum(
                reach, _kth_lowest(head, owners, np.full(size, _PREFERRED_SEGMENTS - 1))
            )
        near_head = head <= reach[owners]
        start, pointer, end = self.seg_start[segs], self.pointer[segs], self.seg_end[segs]
        head_end = np.where(near_head, np.minimum(start + _PREFERRED_DEPTH, end), start)
        front_end = np.where(near_front, np.minimum(pointer + _FRONT_DEPTH, end), pointer)
        first, pairs = _ranges(
            np.concatenate((start, np.maximum(pointer, head_end))),
            np.concatenate((head_end, front_end)),
        )
        first_owners = np.concatenate((owners, owners))[pairs]
        first_scores, first_free = self._evaluate(batch, first, first_owners, taken_too=True)
        free_scores = np.where(first_free, first_scores, math.inf)
        found = _kth_lowest(free_scores, first_owners, batch.rivals)
        complete_to = np.where(found < math.inf, found + _MARGIN, lowest + widen)
        # Pass 2: every other free offer whose bound reaches that score.
        score = complete_to[owners]
        score += _SLACK * (1.0 + np.abs(score))
        active = front <= score
        limit = np.minimum((score - floor) / scale, cap * (1 + _SLACK) + _SLACK)
        limit = np.minimum(limit[active], self.scale - 1.0)
        ends = np.searchsorted(self.proxy_key, segs[active] * self.scale + limit, side="right")
        covered = np.maximum(front_end, np.where(pointer < head_end, head_end, pointer))
        second, pairs = _ranges(covered[active], ends)
        second_owners = owners[active][pairs]
        second_scores, _ = self._evaluate(batch, second, second_owners)
        # Pass 3: a demand with nothing free up to that score is searched to the end
        # (its budget) here, not alone later: in a scarce market many are.
        found_any = np.zeros(size, dtype=bool)
        found_any[first_owners[free_scores <= complete_to[first_owners]]] = True
        found_any[second_owners[second_scores <= complete_to[second_owners]]] = True
        empty = ~found_any & (complete_to < math.inf)
        rest = empty[owners]
        if rest.any():
            done = np.full(segs.size, -1, dtype=np.int64)
            done[active] = ends
            since = np.maximum(np.where(done < 0, covered, done), covered)[rest]
            far = np.minimum(cap[rest] * (1 + _SLACK) + _SLACK, self.scale - 1.0)
            last = np.searchsorted(self.proxy_key, segs[rest] * self.scale + far, side="right")
            third, pairs = _ranges(since, last)
            third_owners = owners[rest][pairs]
            third_scores, _ = self._evaluate(batch, third, third_owners)
            second = np.concatenate((second, third))
            second_owners = np.concatenate((second_owners, third_owners))
            second_scores = np.concatenate((second_scores, third_scores))
            complete_to[empty] = math.inf
        preferred = self._preferred(first, first_owners, first_scores, size)
        return _ranking(
            np.concatenate((first, second)),
            np.concatenate((first_owners, second_owners)),
            np.concatenate((free_scores, second_scores)),
            complete_to,
            preferred,
        )

    def _preferred(
        self, positions: IntArray, owners: IntArray, scores: FloatArray, size: int
    ) -> tuple[IntArray, FloatArray, list[int]]:
        """Per demand, up to ``_PREFERRED`` of the scored offers (as pool rows), taken
        or not, best first: the holders ``_improve`` may trade with. Drawn from the
        first offers of the most promising segments, they are cheap, not complete."""
        keep = scores < math.inf
        positions, owners, scores = positions[keep], owners[keep], scores[keep]
        order = _by_owner(owners, scores)
        owners = owners[order]
        top = np.arange(owners.size) - np.searchsorted(owners, owners) < _PREFERRED
        picks = np.searchsorted(owners[top], np.arange(size + 1)).tolist()
        chosen = order[top]
        return self.row_array[positions[chosen]], scores[chosen], picks

    def pick(self, demand: Demand, ranking: _Ranking, slot: int) -> int | None:
        """The first free offer on the demand's list (``slot`` in ``ranking``) that it
        does not exclude, ties by key."""
        lo, hi = ranking.cuts[slot], ranking.cuts[slot + 1]
        positions: list[int] = ranking.positions[lo:hi].tolist()
        scores: list[float] = ranking.scores[lo:hi].tolist()
        excluded, offers, rows, free = demand.exclude_nodes, self.pool.offers, self.rows, self.free
        size = len(positions)
        for first in range(size):
            p = positions[first]
            if free[p] and not (excluded and offers[rows[p]].node_id in excluded):
                break
        else:
            return None
        run, stop, low = [positions[first]], first + 1, scores[first]
        # Offers scoring the same as the first: earlier ones are all taken or excluded.
        while stop < size and scores[stop] == low:
            p = positions[stop]
            if free[p] and not (excluded and offers[rows[p]].node_id in excluded):
                run.append(p)
            stop += 1
        return run[0] if len(run) == 1 else min(run, key=self._tie_key(demand))

    def _tie_key(self, demand: Demand) -> Callable[[int], tuple[int, str]]:
        def key(position: int) -> tuple[int, str]:
            node_id = self.pool.offers[self.rows[position]].node_id
            return tie_break_key(self.seed, demand.job_id, node_id), node_id

        return key

    def alone(self, demand: Demand, need: FloatArray) -> _Ranking:
        """Rank one demand (``need``: its requirement, one row) afresh, its excluded
        nodes set aside: its list then holds a free offer, or is complete."""
        rows = (self.pool.row_of(node) for node in demand.exclude_nodes)
        found = (int(self.position[row]) for row in rows if row is not None)
        excluded = [p for p in found if p >= 0 and self.free[p]]
        self.features[excluded, _FREE] = 0.0
        batch = _batch([demand], need)
        for widen in _ALONE_WIDEN:
            with np.errstate(invalid="ignore"):
                ranking = self.rank(batch, widen)
            if ranking.cuts[1] or ranking.complete_to[0] == math.inf:
                break
        self.features[excluded, _FREE] = 1.0
        return ranking

    def mark_taken(self, row: int) -> None:
        position = self.position_of[row]
        if position < 0:
            return
        free = self.free
        free[position] = 0
        self.features[position, _FREE] = 0.0
        seg = self.segment_of[position]
        pointer, end = self.pointers[seg], self.segment_end[seg]
        if pointer != position:
            return
        while pointer < end and not free[pointer]:
            pointer += 1
        self.pointers[seg] = pointer
        self.pointer[seg] = pointer
        self.seg_front[seg] = self.proxy[pointer] if pointer < end else math.inf


def _reference_prices(models: IntArray, prices: FloatArray) -> FloatArray:
    """Per offer, the median price of its model (at least 1): the budget its proxy assumes."""
    if not prices.size:
        return prices
    order = np.lexsort((prices, models))
    prices = prices[order]
    starts = np.flatnonzero(np.diff(models[order], prepend=-1))
    counts = np.diff(np.append(starts, prices.size))
    median = (prices[starts + (counts - 1) // 2] + prices[starts + counts // 2]) / 2
    per_model = np.ones(int(models.max()) + 1)
    per_model[models[order][starts]] = np.maximum(median, 1.0)
    return per_model[models]


def _lowest(values: FloatArray, owners: IntArray, size: int) -> FloatArray:
    """Per owner (0 to ``size - 1``), its lowest value; infinite for an owner without any."""
    lowest = np.full(size, math.inf)
    np.minimum.at(lowest, owners, values)
    return lowest


def _kth_lowest(scores: FloatArray, owners: IntArray, rivals: IntArray) -> FloatArray:
    """Per owner, its ``rivals + 1``-th lowest finite score (its highest if it has fewer);
    infinite for an owner without any."""
    if not rivals.any():
        return _lowest(scores, owners, rivals.size)
    finite = scores < math.inf
    scores, owners = scores[finite], owners[finite]
    order = _by_owner(owners, scores)
    scores, owners = scores[order], owners[order]
    starts = np.searchsorted(owners, np.arange(rivals.size))
    ends = np.searchsorted(owners, np.arange(rivals.size), side="right")
    if scores.size == 0:
        return np.full(rivals.size, math.inf)
    at = np.clip(np.minimum(starts + rivals, ends - 1), 0, scores.size - 1)
    return np.where(ends > starts, scores[at], math.inf)


def _within(sorted_keys: IntArray, codes: IntArray, base: int) -> IntArray:
    """Indices of ``sorted_keys`` equal to ``base`` plus one of ``codes`` (sorted)."""
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64)
    if codes[-1] - codes[0] == codes.size - 1:
        lo = int(np.searchsorted(sorted_keys, base + codes[0], side="left"))
        hi = int(np.searchsorted(sorted_keys, base + codes[-1], side="right"))
        return np.arange(lo, hi)
    return np.flatnonzero(np.isin(sorted_keys, base + codes))


def _ranking(
    positions: IntArray,
    owners: IntArray,
    scores: FloatArray,
    complete_to: FloatArray,
    preferred: tuple[IntArray, FloatArray, list[int]],
) -> _Ranking:
    """Per demand, the scored positions at or below its ``complete_to``, by score."""
    keep = (scores <= complete_to[owners]) & (scores < math.inf)
    positions, owners, scores = positions[keep], owners[keep], scores[keep]
    # Exact order (equal scores must sit together for the tie-break), so lexsort.
    order = np.lexsort((scores, owners))
    cuts = np.searchsorted(owners[order], np.arange(complete_to.size + 1)).tolist()
    return _Ranking(positions[order], scores[order], cuts, complete_to.tolist(), *preferred)


def _by_owner(owners: IntArray, values: FloatArray) -> IntArray:
    """An order by owner, then by value, for finite values; near-equal values may come
    in either order, which is all a threshold or a short list needs."""
    if not values.size:
        return np.zeros(0, dtype=np.int64)
    low = values.min()
    width = float(values.max() - low) + 1.0
    return np.argsort(owners * width + (values - low))


@dataclass
class _Placement:
    """A demand, the offer (pool row) it holds, and its ranked list from the search."""

    demand: Demand
    row: int
    need: int  # the demand's row in the requirement matrix
    ranking: _Ranking
    slot: int  # the demand's place in ``ranking``


def _place(
    order: list[Demand], pool: _Pool, weights: Weights, seed: int
) -> tuple[list[_Placement], FloatArray]:
    """Greedy placement: each demand of ``order`` in turn takes its best free offer.

    Also returns the demands' requirement matrix (``_Placement.need`` indexes it)."""
    servable, needs = pool.requirements(order)
    if not pool.offers or not servable:
        return [], needs
    indexes = _indexes(pool, servable, weights, seed)
    placed: list[_Placement] = []
    for lo in range(0, len(servable), _BATCH):
        chunk = servable[lo : lo + _BATCH]
        ranked: dict[int, tuple[_Ranking, int]] = {}
        for session, index in indexes.items():
            members = [i for i, d in enumerate(chunk) if _is_session(d) == session]
            if members:
                batch = _batch([chunk[i] for i in members], needs[[lo + i for i in members]])
                with np.errstate(invalid="ignore"):
                    ranking = index.rank(batch, _WIDEN)
                ranked.update((i, (ranking, slot)) for slot, i in enumerate(members))
        for i, demand in enumerate(chunk):
            index, (ranking, slot) = indexes[_is_session(demand)], ranked[i]
            position = index.pick(demand, ranking, slot)
            if position is None and ranking.complete_to[slot] < math.inf:
                ranking, slot = index.alone(demand, needs[lo + i : lo + i + 1]), 0
                position = index.pick(demand, ranking, slot)
            if position is not None:
                row = index.rows[position]
                pool.take(row)
                placed.append(_Placement(demand, row, lo + i, ranking, slot))
    return placed, needs


def _improve(placed: list[_Placement], needs: FloatArray, pool: _Pool, weights: Weights) -> None:
    """Trade offers between placed demands where that lowers the sum of their scores.

    Each demand's preferred offers (see ``_OfferIndex._preferred``) that it scores
    better than its own and that another placed demand holds are candidate trades;
    a trade needs each demand to qualify for the other's offer. The trades that
    lower the sum most go first, each demand trading at most once per pass, for
    ``_IMPROVE_PASSES`` passes. Which demands are placed, and which offers they hold
    between them, never changes.
    """
    if len(placed) < 2:
        return
    trades = _Trades(placed, needs, pool, weights)
    for _ in range(_IMPROVE_PASSES):
        if not trades.trade():
            break
    for p, row in zip(placed, trades.rows.tolist(), strict=True):
        p.row = row


def _preferred_of(placed: list[_Placement]) -> tuple[IntArray, IntArray, FloatArray]:
    """Every placed demand's preferred offers, flattened: (its index in ``placed``,
    the offer's pool row, its score there)."""
    by_ranking: dict[int, list[int]] = {}
    for i, p in enumerate(placed):
        by_ranking.setdefault(id(p.ranking), []).append(i)
    owners, rows, scores = [], [], []
    for members in by_ranking.values():
        ranking = placed[members[0]].ranking
        slots = len(ranking.picks) - 1
        owner_of = np.full(slots, -1, dtype=np.int64)
        owner_of[[placed[i].slot for i in members]] = members
        entry_owner = owner_of[np.repeat(np.arange(slots), np.diff(ranking.picks))]
        mine = entry_owner >= 0
        owners.append(entry_owner[mine])
        rows.append(ranking.preferred[mine])
        scores.append(ranking.preferred_scores[mine])
    return np.concatenate(owners), np.concatenate(rows), np.concatenate(scores)


class _Trades:
    """Placed demands and their offers as arrays, for scoring trades in bulk."""

    def __init__(
        self, placed: list[_Placement], needs: FloatArray, pool: _Pool, weights: Weights
    ) -> None:
        self.placed, self.pool, self.weights = placed, pool, weights
        demands = [p.demand for p in placed]
        self.needs = needs[[p.need for p in placed]]
        self.batch = _batch(demands, self.needs)
        models = (pool.models.get(d.gpu_model, -2) if d.gpu_model else -1 for d in demands)
        self.model = np.fromiter(models, dtype=np.int64, count=len(demands))
        wanted = sorted({d.region for d in demands if d.region is not None})
        table = [[True] * len(pool.regions)]
        table += [[region_matches(name, r) for name in pool.regions] for r in wanted]
        self.region_ok = np.array(table, dtype=bool)
        code = {r: i + 1 for i, r in enumerate(wanted)}
        regions = (code[d.region] if d.region is not None else 0 for d in demands)
        self.region = np.fromiter(regions, dtype=np.int64, count=len(demands))
        self.rows = np.array([p.row for p in placed], dtype=np.int64)
        self.holder = np.full(len(pool.offers), -1, dtype=np.int64)
        self.holder[self.rows] = np.arange(len(placed))
        self.owner, self.listed, self.listed_score = _preferred_of(placed)
        with np.errstate(invalid="ignore"):
            self.current = self.scores(np.arange(len(placed)), self.rows)

    def scores(self, who: IntArray, rows: IntArray) -> FloatArray:
        """Demand ``who[k]``'s score on offer ``rows[k]``, as ``score`` computes it;
        infinite where it does not qualify (its excluded nodes aside)."""
        offers = self.pool.features[rows]
        ok = (offers >= self.needs[who]).all(axis=1)
        model = self.model[who]
        ok &= (model == -1) | (model == self.pool.model_codes[rows])
        ok &= self.region_ok[self.region[who], self.pool.region_codes[rows]]
        b, w = self.batch, self.weights
        price = np.where(b.cpu_work[who], -offers[:, _NNODE], -offers[:, _NPRICE])
        total = w.price * (price / b.budget[who]) + w.reputation * offers[:, _R1]
        term = np.where(b.has_bound[who], -offers[:, _NLAT] / b.bound[who], NEUTRAL_LATENCY)
        return np.where(ok, total + w.latency * term, math.inf)

    def trade(self) -> int:
        """One pass of trades, the largest gain first; returns how many were made."""
        owner, listed, mine = self.owner, self.listed, self.listed_score
        other = self.holder[listed]
        open_ = (other >= 0) & (other != owner) & (mine < self.current[owner])
        owner, other, listed, mine = owner[open_], other[open_], listed[open_], mine[open_]
        with np.errstate(invalid="ignore"):
            theirs = self.scores(other, self.rows[owner])
            gain = self.current[owner] + self.current[other] - mine - theirs
        good = gain > _SLACK * (1.0 + np.abs(self.current[owner]))
        order = np.argsort(-gain[good], kind="stable")
        touched = bytearray(len(self.placed))
        made = 0
        for a, b, row, after_a, after_b in zip(
            owner[good][order].tolist(),
            other[good][order].tolist(),
            listed[good][order].tolist(),
            mine[good][order].tolist(),
            theirs[good][order].tolist(),
            strict=True,
        ):
            if touched[a] or touched[b] or self._excluded(a, b, row):
                continue
            touched[a] = touched[b] = 1
            mine_row = int(self.rows[a])
            self.rows[a], self.rows[b] = row, mine_row
            self.holder[row], self.holder[mine_row] = a, b
            self.current[a], self.current[b] = after_a, after_b
            made += 1
        return made

    def _excluded(self, a: int, b: int, row: int) -> bool:
        """Whether either demand excludes the offer the trade would give it."""
        offers, placed = self.pool.offers, self.placed
        first, second = placed[a].demand.exclude_nodes, placed[b].demand.exclude_nodes
        if first and offers[row].node_id in first:
            return True
        return bool(second) and offers[int(self.rows[a])].node_id in second


def _is_session(demand: Demand) -> bool:
    return demand.max_latency_ms is not None


def _indexes(
    pool: _Pool, demands: list[Demand], weights: Weights, seed: int
) -> dict[bool, _OfferIndex]:
    """An index for batch work over every idle offer, one for sessions over those with a
    known latency, each built only when some demand needs it."""
    indexes: dict[bool, _OfferIndex] = {}
    bounds = [d.max_latency_ms for d in demands if d.max_latency_ms is not None]
    if len(bounds) < len(demands):
        every = np.arange(len(pool.offers))
        indexes[False] = _OfferIndex(pool, every, weights, seed, None)
    if bounds:
        known = np.flatnonzero(pool.features[:, _NLAT] > -math.inf)
        indexes[True] = _OfferIndex(pool, known, weights, seed, float(np.median(bounds)))
    pool.indexes = list(indexes.values())
    return indexes


def match(
    demands: Sequence[Demand],
    candidates: Sequence[Candidate],
    *,
    weights: Weights = Weights(),
    now: float,
    seed: int = 0,
    max_wait_s: float = DEFAULT_MAX_WAIT_S,
    improve: bool = True,
) -> list[Assignment]:
    """Place ``demands`` on ``candidates``: one node per demand, one demand per node.

    Demands pick in ``demand_priority`` order; each takes the qualifying node still
    free with the smallest ``rank_key``. With ``improve``, placed demands then trade
    nodes where both qualify for the other's and the sum of their scores drops (see
    ``_improve``); the demands placed and the nodes used do not change. Assignments
    come back in pick order, each at its node's price in the demand's unit.

    Raises ``ValidationError`` for a job or node id given twice, and for an offer
    with a negative or missing (NaN) price, latency or reputation.
    """
    _require_unique("job_id", [d.job_id for d in demands], "job")
    _require_unique("node_id", [c.node_id for c in candidates], "node")
    # demand_priority, inlined: the sort is a tenth of the whole call otherwise.
    keys = [
        (0 if now - d.submitted_at > max_wait_s else 1, -d.gpu_count, d.submitted_at, d.job_id)
        for d in demands
    ]
    order = [demands[i] for i in sorted(range(len(demands)), key=keys.__getitem__)]
    pool = _Pool(candidates)
    placed, needs = _place(order, pool, weights, seed)
    if improve:
        _improve(placed, needs, pool, weights)
    offers = pool.offers
    return [
        Assignment(
            p.demand.job_id, offers[p.row].node_id, unit_price_micros(p.demand, offers[p.row])
        )
        for p in placed
    ]
