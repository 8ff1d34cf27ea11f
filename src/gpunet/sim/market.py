"""The token market: a constant-product pool moved by sentiment between trades.

The pool holds ``x`` tokens and ``y`` USD with ``x * y = k`` (Uniswap v2 whitepaper,
Adams et al. 2020), so its price is ``p = y / x`` and ``x = sqrt(k / p)``,
``y = sqrt(k * p)``. The liquidity is external: its tokens are not counted in the
model's circulating supply. Liquidity providers keep a fixed share of the circulating
supply ``C`` in the pool, so the token side grows with it: ``k_t = k_0 * (C_t / C_0)^2``
(at a given price both sides scale by ``C_t / C_0``).

Between trades, outside sentiment moves the price by geometric Brownian motion (Black
and Scholes 1973; Glasserman 2004, section 3.2, exact log-normal step), arbitrage
bringing the pool to it along its curve. The drift ``mu`` is the *median* log-price
change per year, so ``drift = 0`` is a sideways market whose median stays flat (a GBM
with drift ``mu + sigma^2 / 2`` in the usual notation):

    p' = p * exp(mu * dt + sigma * sqrt(dt) * z),   z ~ N(0, 1)

Within a step, sells of ``S`` tokens and buys of ``B`` USD are matched at ``p`` and only
the imbalance trades against the pool:

    B >= S p:  y' = sqrt(k p) + (B - S p),  p' = y'^2 / k
    B <  S p:  x' = sqrt(k / p) + (S - B / p),  p' = k / x'^2
"""

from __future__ import annotations

import numpy as np

from gpunet.sim.params import MarketParams
from gpunet.sim.result import FloatArray

YEAR_DAYS = 365.25


def pool_invariant(params: MarketParams) -> float:
    """``k = x * y`` of the pool at TGE, from its USD side and the initial price."""
    usd = params.pool_liquidity_usd
    return float(usd * (usd / params.initial_price))


def scaled_invariant(k0: float, circulating: FloatArray, genesis: float) -> FloatArray:
    """``k_t``: the pool deepens (or thins) with the circulating supply."""
    ratio = np.maximum(circulating, 1.0) / max(genesis, 1.0)
    return np.asarray(k0 * ratio**2, dtype=np.float64)


def sentiment_shock(
    price: FloatArray, params: MarketParams, dt_years: float, z: FloatArray
) -> FloatArray:
    """The price after one step of geometric Brownian motion."""
    sigma = params.volatility
    log_step = params.drift * dt_years + sigma * np.sqrt(dt_years) * z
    return np.asarray(price * np.exp(log_step), dtype=np.float64)


def trade(
    price: FloatArray, k: FloatArray | float, sold: FloatArray, bought_usd: FloatArray
) -> FloatArray:
    """The pool price after the step's net order (tokens ``sold``, USD ``bought_usd``)."""
    imbalance_usd = bought_usd - sold * price
    usd_side = np.sqrt(k * price) + np.maximum(imbalance_usd, 0.0)
    token_side = np.sqrt(k / price) + np.maximum(-imbalance_usd, 0.0) / price
    after_buy = usd_side**2 / k
    after_sell = k / token_side**2
    return np.asarray(np.where(imbalance_usd >= 0, after_buy, after_sell), dtype=np.float64)
