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

This module holds the rules and ``match``, which runs them. ``match`` must place
10,000 demands over 100,000 offers within a second, so it does not compare every
pair; the fast path lives beside it:

- ``matching_types``: the data types and constants (re-exported here);
- ``matching_pool``: the idle offers as a feature matrix, demands as requirement rows;
- ``matching_arrays``: the NumPy routines the search is built from;
- ``matching_index``: the offer index, which ranks a batch of demands at once;
- ``matching_greedy``: placement in priority order over the index;
- ``matching_trades``: the trade pass.

Its placement is the one the plain definition gives (a property test holds it to a
literal reference); docs/matching.md has the formulas, the trade pass and the
measured figures.
"""

from __future__ import annotations

from collections.abc import Sequence

from gpunet.errors import ValidationError
from gpunet.protocol.matching_greedy import place
from gpunet.protocol.matching_pool import Pool
from gpunet.protocol.matching_trades import trade_offers
from gpunet.protocol.matching_types import (
    DEFAULT_MAX_WAIT_S,
    MIN_VALUE_PRICE_MICROS,
    NEUTRAL_LATENCY,
    Assignment,
    Candidate,
    Demand,
    Weights,
    tie_break_key,
)
from gpunet.protocol.offers import region_matches
from gpunet.protocol.units import MICROS_PER_USD, format_usd

# ``match``'s default weights; ``Weights`` is frozen, so one instance serves every call.
DEFAULT_WEIGHTS = Weights()

__all__ = [
    "DEFAULT_MAX_WAIT_S",
    "MIN_VALUE_PRICE_MICROS",
    "NEUTRAL_LATENCY",
    "Assignment",
    "Candidate",
    "Demand",
    "Weights",
    "demand_priority",
    "disqualification",
    "latency_term",
    "match",
    "rank_key",
    "reliability_adjusted_value",
    "score",
    "tie_break_key",
    "unit_price_micros",
]


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


def match(
    demands: Sequence[Demand],
    candidates: Sequence[Candidate],
    *,
    weights: Weights = DEFAULT_WEIGHTS,
    now: float,
    seed: int = 0,
    max_wait_s: float = DEFAULT_MAX_WAIT_S,
    improve: bool = True,
) -> list[Assignment]:
    """Place ``demands`` on ``candidates``: one node per demand, one demand per node.

    Demands pick in ``demand_priority`` order; each takes the qualifying node still
    free with the smallest ``rank_key``. With ``improve``, placed demands then trade
    nodes where both qualify for the other's and the sum of their scores drops (see
    ``matching_trades``); the demands placed and the nodes used do not change. Assignments
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
    pool = Pool(candidates)
    placed, needs = place(order, pool, weights, seed)
    if improve:
        trade_offers(placed, needs, pool, weights)
    offers = pool.offers
    return [
        Assignment(
            p.demand.job_id, offers[p.row].node_id, unit_price_micros(p.demand, offers[p.row])
        )
        for p in placed
    ]
