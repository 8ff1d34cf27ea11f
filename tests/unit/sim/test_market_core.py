"""The constant-product pool of ``gpunet.sim.market`` against Uniswap v2's swap arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpunet.sim import market
from gpunet.sim.params import MarketParams

K = 50e6 * (50e6 / 0.05)  # the default pool: 50M USD at 0.05 USD per token
PRICE = np.array([0.05, 0.2, 0.01])


def _reserves(price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.sqrt(K / price), np.sqrt(K * price)  # tokens, USD


def test_pool_invariant_is_reserves_product() -> None:
    assert market.pool_invariant(MarketParams()) == pytest.approx(K, rel=1e-15)


def test_buy_moves_along_the_curve() -> None:
    """A net buy of B USD: y' = y + B, x' = k / y' (no fee), and x' y' = k."""
    tokens, usd = _reserves(PRICE)
    bought = np.array([1e6, 5e6, 2e5])
    after = market.trade(PRICE, K, np.zeros(3), bought)
    new_usd = usd + bought
    new_tokens = K / new_usd
    np.testing.assert_allclose(after, new_usd / new_tokens, rtol=1e-12)
    np.testing.assert_allclose(np.sqrt(K / after) * np.sqrt(K * after), K, rtol=1e-12)
    # Uniswap v2's getAmountOut without the 0.3% fee: dx = x B / (y + B).
    np.testing.assert_allclose(tokens - new_tokens, tokens * bought / (usd + bought), rtol=1e-9)


def test_sell_moves_along_the_curve() -> None:
    """A net sale of S tokens: x' = x + S, y' = k / x'."""
    tokens, _ = _reserves(PRICE)
    sold = np.array([1e7, 3e6, 4e8])
    after = market.trade(PRICE, K, sold, np.zeros(3))
    new_tokens = tokens + sold
    np.testing.assert_allclose(after, (K / new_tokens) / new_tokens, rtol=1e-12)


def test_matched_orders_leave_the_price() -> None:
    sold = np.array([1e7, 2e6, 3e8])
    after = market.trade(PRICE, K, sold, sold * PRICE)
    np.testing.assert_allclose(after, PRICE, rtol=1e-12)


def test_round_trip_without_fees_restores_the_price() -> None:
    """Sell S tokens for the USD the curve pays, then spend that USD: back where it began."""
    tokens, usd = _reserves(PRICE)
    sold = np.array([1e7, 3e6, 4e8])
    paid_usd = usd - K / (tokens + sold)
    low = market.trade(PRICE, K, sold, np.zeros(3))
    back = market.trade(low, K, np.zeros(3), paid_usd)
    np.testing.assert_allclose(back, PRICE, rtol=1e-9)


def test_pool_scales_with_circulating_supply() -> None:
    genesis = 2.31e9
    scaled = market.scaled_invariant(K, np.array([genesis, 2 * genesis]), genesis)
    np.testing.assert_allclose(scaled, [K, 4 * K], rtol=1e-15)


def test_sentiment_step_is_exact_lognormal() -> None:
    params = MarketParams(drift=-0.3, volatility=0.8)
    dt = 1 / 365.25
    z = np.array([-1.5, 0.0, 2.0])
    after = market.sentiment_shock(PRICE, params, dt, z)
    expected = PRICE * np.exp(-0.3 * dt + 0.8 * math.sqrt(dt) * z)
    np.testing.assert_allclose(after, expected, rtol=1e-15)
