"""The offer index: offers sorted so that a batch of demands finds its best in bulk.

``match`` must place 10,000 demands over 100,000 offers within a second, so it cannot
score every pair. The index sorts the offers by (model, region, reputation band, GPU
count) into segments and, inside each segment, by a proxy: the offer's score at its
model's median price taken as budget (sessions: and at a reference latency bound). An
offer's true score is at least ``floor + scale * proxy``, with ``floor`` and ``scale``
fixed per (demand, segment), so for any score X the offers of a segment that can score
X or less form a prefix.

A batch of demands is ranked with one array operation per step: score the front
offers of each demand's most promising segments (its best so far), then every offer
whose bound is within ``_MARGIN`` of that. The result is, per demand, its qualifying
offers ranked and complete up to a score X: any offer left out scores more.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gpunet.protocol.matching_arrays import (
    SLACK,
    BoolArray,
    FloatArray,
    IntArray,
    all_columns,
    by_owner,
    kth_lowest,
    lex_order,
    lowest_of,
    ranges,
    within,
)
from gpunet.protocol.matching_pool import (
    COUNT,
    FREE,
    NLAT,
    NNODE,
    NPRICE,
    R1,
    TFLOPS,
    VRAM,
    Batch,
    Pool,
    batch_of,
)
from gpunet.protocol.matching_types import NEUTRAL_LATENCY, Demand, Weights, tie_break_key
from gpunet.protocol.offers import region_matches

# Tuned on benchmarks/bench_matching.py. They change how much is scored, not the
# greedy placement (each list is complete up to its threshold); the ``_PREFERRED``
# ones bound which trades the trade pass considers.
_BANDS = 4
_FRONT_MARGIN = 0.02
_FRONT_DEPTH = 4
_MARGIN = 0.01
_ALONE_WIDEN = (0.5, math.inf)
_PREFERRED = 16
_PREFERRED_MARGIN = 0.3
_PREFERRED_DEPTH = 2
_PREFERRED_SEGMENTS = 16


@dataclass(frozen=True)
class Ranking:
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


def _no_ranking(size: int) -> Ranking:
    none, zeros = np.zeros(0, dtype=np.int64), [0] * (size + 1)
    return Ranking(none, np.zeros(0), zeros, [math.inf] * size, none, np.zeros(0), zeros)


def _ranking(
    positions: IntArray,
    owners: IntArray,
    scores: FloatArray,
    complete_to: FloatArray,
    preferred: tuple[IntArray, FloatArray, list[int]],
) -> Ranking:
    """Per demand, the scored positions at or below its ``complete_to``, by score."""
    keep = (scores <= complete_to[owners]) & (scores < math.inf)
    positions, owners, scores = positions[keep], owners[keep], scores[keep]
    # Exact order (equal scores must sit together for the tie-break).
    order = lex_order(scores, owners)
    cuts = np.searchsorted(owners[order], np.arange(complete_to.size + 1)).tolist()
    return Ranking(positions[order], scores[order], cuts, complete_to.tolist(), *preferred)


class OfferIndex:
    """Some of the pool's offers in proxy-sorted segments, for batched queries."""

    def __init__(
        self,
        pool: Pool,
        rows: IntArray,
        weights: Weights,
        seed: int,
        latency_reference: float | None,
    ) -> None:
        self.pool, self.weights, self.seed = pool, weights, seed
        self.latency_reference = latency_reference
        features, reference = np.take(pool.features, rows, axis=0), pool.reference[rows]
        models, regions = pool.model_codes[rows], pool.region_codes[rows]
        band = np.clip((features[:, R1] * _BANDS).astype(np.int64), 0, _BANDS - 1)
        counts = features[:, COUNT].astype(np.int64)
        proxy = self._proxy(features, reference)
        sizes = (len(pool.regions), _BANDS, int(counts.max(initial=0)) + 1)
        group = ((models * sizes[0] + regions) * sizes[1] + band) * sizes[2] + counts
        order = lex_order(proxy, group)
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
        proxy = w.price * (-features[:, NPRICE] / reference) + w.reputation * features[:, R1]
        if self.latency_reference is None:
            return proxy
        return proxy + w.latency * (-features[:, NLAT] / self.latency_reference)

    def _segment(self, keys: IntArray, reference: FloatArray, proxy: FloatArray) -> None:
        size = len(keys)
        edges = np.flatnonzero(~all_columns(np.diff(keys, axis=0) == 0)) + 1
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
        self.seg_price = -self.seg_best[:, NPRICE]
        self.seg_latency = -self.seg_best[:, NLAT]
        self.seg_start = starts
        r1 = self.features[:, R1]
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
            fits = best[:, [COUNT, TFLOPS, VRAM]] >= wanted
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
            return self.by_region[within(self.region_of_by_region, codes, 0)]
        model = self.pool.models.get(model_name)
        if model is None:
            return np.zeros(0, dtype=np.int64)
        return within(self.model_region, codes, model * len(regions))

    def _scores(
        self, batch: Batch, owners: IntArray, price: FloatArray, r1: FloatArray,
        latency: FloatArray,
    ) -> FloatArray:  # fmt: skip
        """``score`` over arrays, operation for operation, so that equal means equal."""
        w = self.weights
        total = w.price * (price / batch.budget[owners]) + w.reputation * r1
        term = np.where(batch.has_bound[owners], latency / batch.bound[owners], NEUTRAL_LATENCY)
        return total + w.latency * term

    def _evaluate(
        self, batch: Batch, positions: IntArray, owners: IntArray, taken_too: bool = False
    ) -> tuple[FloatArray, BoolArray]:
        """The score of each (offer, demand) pair, infinite where the offer does not
        qualify or is taken (unless ``taken_too``); and whether each offer is free."""
        rows = np.take(self.features, positions, axis=0)
        needs = np.take(batch.needs, owners, axis=0)
        if taken_too:
            needs[:, FREE] = -math.inf
        ok = all_columns(rows >= needs)
        price = np.where(batch.cpu_work[owners], -rows[:, NNODE], -rows[:, NPRICE])
        scores = self._scores(batch, owners, price, rows[:, R1], -rows[:, NLAT])
        return np.where(ok, scores, math.inf), rows[:, FREE] > 0

    def _pairs(self, batch: Batch) -> tuple[IntArray, IntArray, FloatArray]:
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
        self, batch: Batch, segs: IntArray, owners: IntArray, units: FloatArray
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

    def rank(self, batch: Batch, widen: float) -> Ranking:
        """Each demand's qualifying free offers by score, complete up to a score, and
        its preferred offers (see ``Ranking``).

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
        lowest = lowest_of(front, owners, size)
        near_front = front <= lowest[owners] + _FRONT_MARGIN
        reach = lowest_of(head, owners, size) + _PREFERRED_MARGIN
        if _PREFERRED_SEGMENTS:
            reach = np.minimum(
                reach, kth_lowest(head, owners, np.full(size, _PREFERRED_SEGMENTS - 1))
            )
        near_head = head <= reach[owners]
        start, pointer, end = self.seg_start[segs], self.pointer[segs], self.seg_end[segs]
        head_end = np.where(near_head, np.minimum(start + _PREFERRED_DEPTH, end), start)
        front_end = np.where(near_front, np.minimum(pointer + _FRONT_DEPTH, end), pointer)
        first, pairs = ranges(
            np.concatenate((start, np.maximum(pointer, head_end))),
            np.concatenate((head_end, front_end)),
        )
        first_owners = np.concatenate((owners, owners))[pairs]
        first_scores, first_free = self._evaluate(batch, first, first_owners, taken_too=True)
        free_scores = np.where(first_free, first_scores, math.inf)
        found = kth_lowest(free_scores, first_owners, batch.rivals)
        complete_to = np.where(found < math.inf, found + _MARGIN, lowest + widen)
        # Pass 2: every other free offer whose bound reaches that score.
        score = complete_to[owners]
        score += SLACK * (1.0 + np.abs(score))
        active = front <= score
        limit = np.minimum((score - floor) / scale, cap * (1 + SLACK) + SLACK)
        limit = np.minimum(limit[active], self.scale - 1.0)
        ends = np.searchsorted(self.proxy_key, segs[active] * self.scale + limit, side="right")
        covered = np.maximum(front_end, np.where(pointer < head_end, head_end, pointer))
        second, pairs = ranges(covered[active], ends)
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
            far = np.minimum(cap[rest] * (1 + SLACK) + SLACK, self.scale - 1.0)
            last = np.searchsorted(self.proxy_key, segs[rest] * self.scale + far, side="right")
            third, pairs = ranges(since, last)
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
        or not, best first: the holders ``trade_offers`` may trade with. Drawn from the
        first offers of the most promising segments, they are cheap, not complete."""
        keep = scores < math.inf
        positions, owners, scores = positions[keep], owners[keep], scores[keep]
        order = by_owner(owners, scores)
        owners = owners[order]
        top = np.arange(owners.size) - np.searchsorted(owners, owners) < _PREFERRED
        picks = np.searchsorted(owners[top], np.arange(size + 1)).tolist()
        chosen = order[top]
        return self.row_array[positions[chosen]], scores[chosen], picks

    def pick(self, demand: Demand, ranking: Ranking, slot: int) -> int | None:
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

    def alone(self, demand: Demand, need: FloatArray) -> Ranking:
        """Rank one demand (``need``: its requirement, one row) afresh, its excluded
        nodes set aside: its list then holds a free offer, or is complete."""
        rows = (self.pool.row_of(node) for node in demand.exclude_nodes)
        found = (int(self.position[row]) for row in rows if row is not None)
        excluded = [p for p in found if p >= 0 and self.free[p]]
        self.features[excluded, FREE] = 0.0
        batch = batch_of([demand], need)
        for widen in _ALONE_WIDEN:
            with np.errstate(invalid="ignore"):
                ranking = self.rank(batch, widen)
            if ranking.cuts[1] or ranking.complete_to[0] == math.inf:
                break
        self.features[excluded, FREE] = 1.0
        return ranking

    def mark_taken(self, row: int) -> None:
        position = self.position_of[row]
        if position < 0:
            return
        free = self.free
        free[position] = 0
        self.features[position, FREE] = 0.0
        seg = self.segment_of[position]
        pointer, end = self.pointers[seg], self.segment_end[seg]
        if pointer != position:
            return
        while pointer < end and not free[pointer]:
            pointer += 1
        self.pointers[seg] = pointer
        self.pointer[seg] = pointer
        self.seg_front[seg] = self.proxy[pointer] if pointer < end else math.inf
