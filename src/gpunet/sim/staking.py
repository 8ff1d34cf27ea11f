"""Stakers: stake when the yield beats the opportunity cost; locks and unbonding delay exits.

Yield of the active stake ``S`` (a year, in USD over USD):

    y = (f_s * fee_usd_per_day * 365.25 + partner_usd_per_year) / max(S * p, floor)

where ``f_s`` is the stakers' share of the protocol fee and partner rewards are valued
in USD (their own token's price taken as constant). The floor (1 million USD) keeps the
first stakers' yield finite. Stakers enter until the yield falls to their opportunity
cost ``o`` (no-arbitrage: the stake is worth its rewards capitalized at ``o``), and no
more than a share ``s_max`` of what holders own:

    target = min(s_max * (C + S), R / (o * p)),   R = the rewards' USD a year

so a falling price raises the stake wanted when rewards are fixed in USD (partner
tokens): the counter-cyclical role of partner rewards. Stake moves toward the target
with time constant ``tau`` (``adjust_days``):
``in = (1 - exp(-days / tau)) * max(target - S, 0)``, taken from the circulating supply;
exits are the same fraction of ``max(S - target, 0)``, at most ``S * days / lock_days``
(locks mature evenly), and wait ``unbonding_days`` in a queue before returning to
circulation. Staked supply = active stake + the queue.

Staking meets selling: new stake is taken first from what recipients of unlocks and
checker rewards would have sold, and any more is bought on the market (buy pressure);
stakers who leave sell ``unlock_sell_share`` of what the queue releases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gpunet.sim.params import StakerParams
from gpunet.sim.result import FloatArray

YIELD_FLOOR_USD = 1_000_000.0


@dataclass
class StakeBook:
    """Per-path staking state: the active stake and the unbonding queue (a ring buffer)."""

    active: FloatArray  # (paths,)
    queue: FloatArray  # (unbonding steps, paths)
    queued: FloatArray  # (paths,) sum of the queue

    @classmethod
    def start(cls, paths: int, unbonding_steps: int) -> StakeBook:
        return cls(np.zeros(paths), np.zeros((max(unbonding_steps, 1), paths)), np.zeros(paths))

    @property
    def staked(self) -> FloatArray:
        return np.asarray(self.active + self.queued, dtype=np.float64)


def yearly_rewards(fee_usd_per_day: FloatArray, partner_usd: float) -> FloatArray:
    """``R``: stakers' rewards in USD a year at the step's rate."""
    return np.asarray(fee_usd_per_day * 365.25 + partner_usd, dtype=np.float64)


def staking_yield(book: StakeBook, price: FloatArray, rewards_usd: FloatArray) -> FloatArray:
    """Annual yield of the active stake."""
    return np.asarray(rewards_usd / np.maximum(book.active * price, YIELD_FLOOR_USD), np.float64)


def rebalance(
    book: StakeBook,
    rewards_usd: FloatArray,
    price: FloatArray,
    circulating: FloatArray,
    params: StakerParams,
    days: float,
    step: int,
) -> tuple[FloatArray, FloatArray]:
    """Move stake toward the target; return the tokens staked and those released."""
    capitalized = rewards_usd / (max(params.opportunity_cost, 0.01) * price)
    target = np.minimum(params.max_stake_share * (circulating + book.active), capitalized)
    speed = 1.0 - math.exp(-days / params.adjust_days)
    free = np.maximum(circulating, 0.0)
    entering = np.minimum(speed * np.maximum(target - book.active, 0.0), free)
    matured = book.active * min(days / params.lock_days, 1.0)
    leaving = np.minimum(speed * np.maximum(book.active - target, 0.0), matured)
    slot = step % book.queue.shape[0]
    released = book.queue[slot].copy()
    book.queue[slot] = leaving
    book.active = book.active + entering - leaving
    book.queued = book.queued + leaving - released
    return np.asarray(entering, dtype=np.float64), released
