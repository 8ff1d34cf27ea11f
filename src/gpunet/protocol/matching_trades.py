"""The trade pass: placed demands swap offers where that lowers their summed score.

Greedy placement in priority order is fair but not cheapest overall: an early, rich
job may hold a cheap offer that a later job on a tight budget scores far better on.
This pass trades such offers between placed demands, without changing who is placed
or which offers are used; it keeps the total score within a few percent of the
optimum (benchmarks/bench_matching.py measures it).
"""

from __future__ import annotations

import math

import numpy as np

from gpunet.protocol.matching_arrays import SLACK, FloatArray, IntArray, all_columns
from gpunet.protocol.matching_greedy import Placement
from gpunet.protocol.matching_pool import NLAT, NNODE, NPRICE, R1, Pool, batch_of
from gpunet.protocol.matching_types import NEUTRAL_LATENCY, Weights
from gpunet.protocol.offers import region_matches

_IMPROVE_PASSES = 3


def trade_offers(placed: list[Placement], needs: FloatArray, pool: Pool, weights: Weights) -> None:
    """Trade offers between placed demands where that lowers the sum of their scores.

    Each demand's preferred offers (see ``OfferIndex._preferred``) that it scores
    better than its own and that another placed demand holds are candidate trades;
    a trade needs each demand to qualify for the other's offer. The trades that
    lower the sum most go first, each demand trading at most once per pass, for
    ``_IMPROVE_PASSES`` passes. Which demands are placed, and which offers they hold
    between them, never changes.
    """
    if len(placed) < 2:
        return
    trades = Trades(placed, needs, pool, weights)
    for _ in range(_IMPROVE_PASSES):
        if not trades.trade():
            break
    for p, row in zip(placed, trades.rows.tolist(), strict=True):
        p.row = row


def _preferred_of(placed: list[Placement]) -> tuple[IntArray, IntArray, FloatArray]:
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


class Trades:
    """Placed demands and their offers as arrays, for scoring trades in bulk."""

    def __init__(
        self, placed: list[Placement], needs: FloatArray, pool: Pool, weights: Weights
    ) -> None:
        self.placed, self.pool, self.weights = placed, pool, weights
        demands = [p.demand for p in placed]
        self.needs = needs[[p.need for p in placed]]
        self.batch = batch_of(demands, self.needs)
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
        offers = np.take(self.pool.features, rows, axis=0)
        ok = all_columns(offers >= np.take(self.needs, who, axis=0))
        model = self.model[who]
        ok &= (model == -1) | (model == self.pool.model_codes[rows])
        ok &= self.region_ok[self.region[who], self.pool.region_codes[rows]]
        b, w = self.batch, self.weights
        price = np.where(b.cpu_work[who], -offers[:, NNODE], -offers[:, NPRICE])
        total = w.price * (price / b.budget[who]) + w.reputation * offers[:, R1]
        term = np.where(b.has_bound[who], -offers[:, NLAT] / b.bound[who], NEUTRAL_LATENCY)
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
        good = gain > SLACK * (1.0 + np.abs(self.current[owner]))
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
