"""Parameter defaults and range checks."""

from __future__ import annotations

import dataclasses

import pytest

from gpunet.protocol.catalogue import CATALOGUE
from gpunet.sim.params import (
    CohortParams,
    MarketParams,
    ParamError,
    Params,
    ProviderParams,
    check_params,
    params_dict,
)


def test_defaults_pass_their_own_checks() -> None:
    assert check_params(Params()) == Params()


def test_defaults_follow_the_design() -> None:
    params = Params()
    assert params.design.protocol_fee == 0.2  # DESIGN.md section 4
    assert params.stakers.unbonding_days == 180
    assert params.demand.hyperscaler_price_per_hour == 6.88  # catalogue H100 reference
    assert params.simulation.step_days == 1
    assert params.providers.cohorts == 50
    assert all(t.gpu_model in CATALOGUE for t in params.providers.templates)


def test_parameters_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Params().market.drift = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("params", "key", "rule"),
    [
        (Params(market=MarketParams(volatility=-0.2)), "market.volatility", "must be >= 0"),
        (Params(market=MarketParams(initial_price=float("nan"))), "market.initial_price", "finite"),
        (
            Params(providers=ProviderParams(templates=(CohortParams(capex_usd=-1.0),))),
            "providers.templates.0.capex_usd",
            "must be >= 0",
        ),
        (Params(providers=ProviderParams(cohorts=0)), "providers.cohorts", "must be >= 1"),
    ],
)
def test_out_of_range_values_name_their_key(params: Params, key: str, rule: str) -> None:
    with pytest.raises(ParamError) as caught:
        check_params(params)
    assert caught.value.key == key
    assert rule in str(caught.value)
    assert str(caught.value).startswith(f"{key} has value ")


def test_params_dict_flattens_to_dotted_keys() -> None:
    flat = params_dict(Params())
    assert flat["market.initial_price"] == 0.05
    assert flat["providers.templates.0.gpu_model"] == "H100"
    assert flat["design.staking"] is True
