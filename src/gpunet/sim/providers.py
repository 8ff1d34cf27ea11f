"""Provider cohorts: who serves, what they sell, when they join and leave.

Cohorts are built from templates (GPU model and costs) with costs spread evenly over
``1 +- cost_spread``, and kept sorted by cost per H100-equivalent hour, ``q``. Rewards
are shared in proportion to capacity (H100 = 1 equivalent, catalogue capacity units /
100), so every active cohort earns the same ``r`` tokens per equivalent per step, and
whether a cohort sells all its rewards, just its costs, or its minimum ``sell_share``
depends only on where its ``q`` lies against ``r * price``: one sorted search per path
instead of a pass over every cohort, which keeps 10,000 single-GPU cohorts fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gpunet.protocol.catalogue import CATALOGUE
from gpunet.sim.params import CohortParams, ProviderParams
from gpunet.sim.result import FloatArray

HOURS_PER_MONTH = 730.5  # 365.25 * 24 / 12
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Cohorts:
    """Static cohort data, sorted by ``q`` ascending; arrays of shape (cohorts,)."""

    gpus: FloatArray
    equivalents: FloatArray  # H100-equivalents of the whole cohort
    cost_per_hour: FloatArray  # USD per cohort-hour, all GPUs
    q: FloatArray  # USD per H100-equivalent hour


def build_cohorts(params: ProviderParams) -> Cohorts:
    """Split ``params.cohorts`` evenly over the templates and sort them by cost."""
    counts = _split(params.cohorts, len(params.templates))
    parts = [
        _template_cohorts(t, n, params.cost_spread)
        for t, n in zip(params.templates, counts, strict=True)
    ]
    gpus = np.concatenate([p[0] for p in parts])
    equivalents = np.concatenate([p[1] for p in parts])
    cost = np.concatenate([p[2] for p in parts])
    q = cost / np.maximum(equivalents, 1e-12)
    order = np.argsort(q, kind="stable")
    return Cohorts(gpus[order], equivalents[order], cost[order], q[order])


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def _template_cohorts(
    template: CohortParams, count: int, spread: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    if count == 0:
        empty = np.zeros(0)
        return empty, empty, empty
    factors = np.linspace(1 - spread, 1 + spread, count) if count > 1 else np.ones(1)
    gpus = np.full(count, template.gpus / count)
    per_gpu = CATALOGUE[template.gpu_model].capacity_units / 100
    hourly = (
        template.capex_usd / (template.amortization_months * HOURS_PER_MONTH)
        + template.power_usd_per_hour
        + template.hosting_usd_per_hour
    )
    return gpus, gpus * per_gpu, gpus * hourly * factors


def initial_active(cohorts: Cohorts, share: float, paths: int) -> BoolArray:
    """The cheapest cohorts holding ``share`` of all equivalents, on every path."""
    cumulative = np.cumsum(cohorts.equivalents)
    active = cumulative <= share * cumulative[-1] * (1 + 1e-12)
    return np.broadcast_to(active, (paths, active.shape[0])).copy()


@dataclass
class ProviderBook:
    """Per-path provider state: who is active, and running sums for the sales search."""

    cohorts: Cohorts
    active: BoolArray  # (paths, cohorts)
    streak: npt.NDArray[np.int64]  # >0 good reviews in a row, <0 losing ones
    equivalents: FloatArray  # (paths,) active H100-equivalents
    gpus: FloatArray  # (paths,) active GPUs
    cum_eq: FloatArray  # (paths, cohorts + 1) cumulative active equivalents by q
    cum_cost: FloatArray  # (paths, cohorts + 1) cumulative active USD per hour by q

    @classmethod
    def start(cls, cohorts: Cohorts, active: BoolArray) -> ProviderBook:
        book = cls(cohorts, active, np.zeros(active.shape, np.int64), *_empty(active))
        book.refresh()
        return book

    def refresh(self) -> None:
        """Recompute the active totals after cohorts joined or left."""
        eq = self.active * self.cohorts.equivalents
        cost = self.active * self.cohorts.cost_per_hour
        self.cum_eq = _cumulative(eq)
        self.cum_cost = _cumulative(cost)
        self.equivalents = self.cum_eq[:, -1].copy()
        self.gpus = self.active @ self.cohorts.gpus


def _empty(active: BoolArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    paths = active.shape[0]
    return np.zeros(paths), np.zeros(paths), np.zeros((paths, 1)), np.zeros((paths, 1))


def _cumulative(values: FloatArray) -> FloatArray:
    out = np.zeros((values.shape[0], values.shape[1] + 1))
    np.cumsum(values, axis=1, out=out[:, 1:])
    return out


def reward_per_equivalent(book: ProviderBook, tokens: FloatArray) -> FloatArray:
    """Tokens per active H100-equivalent in the step (one equivalent at least)."""
    return tokens / np.maximum(book.equivalents, 1.0)


def provider_sales(
    book: ProviderBook, rate: FloatArray, price: FloatArray, hours: float, sell_share: float
) -> FloatArray:
    """Tokens providers sell: all rewards below cost, else costs, else ``sell_share``.

    ``rate`` is tokens per equivalent in the step; a cohort's rewards are
    ``rate * equivalents`` and its costs ``q * equivalents * hours`` in USD.
    """
    income_usd = rate * price / hours  # USD per equivalent-hour
    high = np.searchsorted(book.cohorts.q, income_usd)[:, None]
    low = np.searchsorted(book.cohorts.q, sell_share * income_usd)[:, None]
    eq_high = np.take_along_axis(book.cum_eq, high, axis=1)[:, 0]
    eq_low = np.take_along_axis(book.cum_eq, low, axis=1)[:, 0]
    cost_high = np.take_along_axis(book.cum_cost, high, axis=1)[:, 0]
    cost_low = np.take_along_axis(book.cum_cost, low, axis=1)[:, 0]
    all_rewards = rate * (book.equivalents - eq_high)
    costs = (cost_high - cost_low) * hours / price
    minimum = sell_share * rate * eq_low
    return np.asarray(all_rewards + costs + minimum, dtype=np.float64)


def review(book: ProviderBook, income: FloatArray, hours: float, params: ProviderParams) -> None:
    """Monthly review: join after good reviews, leave after losing ones.

    ``income`` is USD earned per equivalent since the last review. An active cohort is
    profitable when ``income >= q * hours``. Inactive cohorts queue cheapest first, and
    each judges the income diluted by its own arrival and by every cheaper newcomer's,
    ``income * E / (E + newcomers up to it)``, against ``q * hours * (1 + join_margin)``.
    """
    q_hours = book.cohorts.q * hours
    stays = income[:, None] >= q_hours
    would_join = ~book.active & (income[:, None] > q_hours * (1 + params.join_margin))
    newcomers = np.cumsum(would_join * book.cohorts.equivalents, axis=1)
    # With nobody active, income was paid to one equivalent (see reward_per_equivalent).
    total = np.maximum(book.equivalents, 1.0)[:, None]
    diluted = income[:, None] * total / (total + newcomers)
    worth_it = would_join & (diluted > q_hours * (1 + params.join_margin))
    good = np.where(book.active, stays, worth_it)
    book.streak = np.where(good, np.maximum(book.streak, 0) + 1, np.minimum(book.streak, 0) - 1)
    joins = ~book.active & (book.streak >= params.join_after_periods)
    leaves = book.active & (book.streak <= -params.leave_after_periods)
    if joins.any() or leaves.any():
        book.active = (book.active & ~leaves) | joins
        book.refresh()
