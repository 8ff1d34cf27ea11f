"""Buyers' demand for GPU-hours and what the network can serve of it.

Demand is counted in H100-equivalent GPU-hours per day:

    H_t = H_0 * G_t * M * min(1, E_t / E_0)^c

- ``H_0 = initial_usd_per_day / base_price``: the demand at the base network price.
- ``G_t``: the demand level, a geometric Brownian motion with drift ``ln(1 + g)`` per
  year (``g`` the scenario's growth per year) and volatility ``sigma_d``; ``G_0 = 1``.
- ``M = ((1 - P / R) / (1 - P_0 / R))^e``: the discount against hyperscalers (``P``
  the network's price, ``P_0`` the base price, ``R`` the H100 reference price from the
  catalogue, 6.88 USD per GPU-hour); demand vanishes as the price nears the
  hyperscalers' and grows with the discount, with elasticity ``e``.
- ``min(1, E_t / E_0)^c``: buyers drift away as capacity ``E_t`` (active
  H100-equivalents) falls below what they found at launch ``E_0``; sensitivity ``c``.

Served hours are capped by capacity, ``min(H_t * days, 24 * days * E_t)``, and paid at
``P`` per equivalent hour: ``revenue = P * served``.
"""

from __future__ import annotations

import math

import numpy as np

from gpunet.sim.params import DemandParams
from gpunet.sim.result import FloatArray


def discount_multiplier(params: DemandParams) -> float:
    """``M``: demand at the network price relative to demand at the base price."""
    reference = params.hyperscaler_price_per_hour
    now = 1 - params.network_price_per_hour / reference
    base = 1 - params.base_price_per_hour / reference
    return float((now / base) ** params.price_elasticity)


def base_hours_per_day(params: DemandParams) -> float:
    """``H_0 * M``: equivalent hours a day wanted at launch, before level and capacity."""
    base = params.initial_usd_per_day / params.base_price_per_hour
    return base * discount_multiplier(params)


def level_step(
    level: FloatArray, params: DemandParams, dt_years: float, z: FloatArray
) -> FloatArray:
    """``G`` after one step of geometric Brownian motion."""
    sigma = params.volatility
    drift = math.log1p(params.growth_per_year)
    log_step = (drift - 0.5 * sigma**2) * dt_years + sigma * math.sqrt(dt_years) * z
    return np.asarray(level * np.exp(log_step), dtype=np.float64)


def served_hours(
    wanted_per_day: float,
    level: FloatArray,
    equivalents: FloatArray,
    initial_equivalents: float,
    params: DemandParams,
    days: float,
) -> tuple[FloatArray, FloatArray]:
    """Equivalent hours served in the step and the capacity it had, in that order."""
    ratio = np.minimum(equivalents / max(initial_equivalents, 1e-12), 1.0)
    wanted = wanted_per_day * level * ratio**params.capacity_sensitivity * days
    capacity = 24.0 * days * equivalents
    return np.minimum(wanted, capacity), capacity
