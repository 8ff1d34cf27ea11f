"""Greedy placement: in priority order, each demand takes its best free offer.

Demands are ranked in batches by the offer index; then, in priority order, each
demand takes the first offer on its list that is still free, which is therefore its
best. A demand whose list has run dry is searched again alone, with the taken offers
gone. The result is the placement the plain definition gives (a property test holds
it to a literal reference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gpunet.protocol.matching_arrays import FloatArray
from gpunet.protocol.matching_index import OfferIndex, Ranking
from gpunet.protocol.matching_pool import NLAT, Pool, batch_of
from gpunet.protocol.matching_types import Demand, Weights

# Demands ranked together: large enough to amortise NumPy's per-call cost, small
# enough that few of a batch's lists run dry before their demand picks.
_BATCH = 48
# How far past the lowest bound a demand without a found offer is searched.
_WIDEN = 0.2


@dataclass(slots=True)
class Placement:
    """A demand, the offer (pool row) it holds, and its ranked list from the search."""

    demand: Demand
    row: int
    need: int  # the demand's row in the requirement matrix
    ranking: Ranking
    slot: int  # the demand's place in ``ranking``


def place(
    order: list[Demand], pool: Pool, weights: Weights, seed: int
) -> tuple[list[Placement], FloatArray]:
    """Greedy placement: each demand of ``order`` in turn takes its best free offer.

    Also returns the demands' requirement matrix (``Placement.need`` indexes it)."""
    servable, needs = pool.requirements(order)
    if not pool.offers or not servable:
        return [], needs
    indexes = offer_indexes(pool, servable, weights, seed)
    placed: list[Placement] = []
    # One errstate for the whole pass, not one per batch: entering it costs about as
    # much as ranking a small batch.
    with np.errstate(invalid="ignore"):
        for lo in range(0, len(servable), _BATCH):
            chunk = servable[lo : lo + _BATCH]
            ranked = _rank_chunk(chunk, needs[lo : lo + _BATCH], indexes)
            for i, demand in enumerate(chunk):
                found = _pick(demand, needs[lo + i : lo + i + 1], indexes, ranked[i])
                if found is not None:
                    row, ranking, slot = found
                    pool.take(row)
                    placed.append(Placement(demand, row, lo + i, ranking, slot))
    return placed, needs


def _rank_chunk(
    chunk: list[Demand], needs: FloatArray, indexes: dict[bool, OfferIndex]
) -> dict[int, tuple[Ranking, int]]:
    """Rank the demands of ``chunk`` (``needs``: their requirement rows) in one batch
    per index; per demand, its ranking and its slot there."""
    ranked: dict[int, tuple[Ranking, int]] = {}
    for session, index in indexes.items():
        members = [i for i, d in enumerate(chunk) if is_session(d) == session]
        if members:
            ranking = index.rank(batch_of([chunk[i] for i in members], needs[members]), _WIDEN)
            ranked.update((i, (ranking, slot)) for slot, i in enumerate(members))
    return ranked


def _pick(
    demand: Demand,
    need: FloatArray,
    indexes: dict[bool, OfferIndex],
    ranked: tuple[Ranking, int],
) -> tuple[int, Ranking, int] | None:
    """The pool row the demand takes, with the ranking (and slot) it was found in; the
    demand is searched again alone when its batch's list has run dry."""
    index, (ranking, slot) = indexes[is_session(demand)], ranked
    position = index.pick(demand, ranking, slot)
    if position is None and ranking.complete_to[slot] < math.inf:
        ranking, slot = index.alone(demand, need), 0
        position = index.pick(demand, ranking, slot)
    return None if position is None else (index.rows[position], ranking, slot)


def is_session(demand: Demand) -> bool:
    return demand.max_latency_ms is not None


def offer_indexes(
    pool: Pool, demands: list[Demand], weights: Weights, seed: int
) -> dict[bool, OfferIndex]:
    """An index for batch work over every idle offer, one for sessions over those with a
    known latency, each built only when some demand needs it."""
    indexes: dict[bool, OfferIndex] = {}
    bounds = [d.max_latency_ms for d in demands if d.max_latency_ms is not None]
    if len(bounds) < len(demands):
        every = np.arange(len(pool.offers))
        indexes[False] = OfferIndex(pool, every, weights, seed, None)
    if bounds:
        known = np.flatnonzero(pool.features[:, NLAT] > -math.inf)
        indexes[True] = OfferIndex(pool, known, weights, seed, float(np.median(bounds)))
    pool.indexes = list(indexes.values())
    return indexes
