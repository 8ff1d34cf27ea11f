from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpunet.errors import UnknownGpuModel, ValidationError
from gpunet.protocol.catalogue import CATALOGUE
from gpunet.protocol.ledger import hold_amount, usage_charge
from gpunet.protocol.pricing import Quote, quote


def test_quote_against_the_reference_cloud_price() -> None:
    # Two H100s for 90 minutes at 2.00 USD per GPU-hour; AWS asks 6.88.
    result = quote(2_000_000, "h100", 2, 5400)
    assert replace(result, savings_pct=None) == Quote(
        price_micros=2_000_000,
        units=2,
        duration_s=5400,
        estimated_micros=6_000_000,
        reference_micros=20_640_000,
        reference_source="AWS p5.48xlarge / 8, June 2025",
        savings_pct=None,
    )
    assert result.savings_pct == pytest.approx(14_640_000 / 20_640_000 * 100)


def test_quote_without_a_reference_price() -> None:
    result = quote(1_500_000, "H200", 1, 3600)
    assert result.estimated_micros == 1_500_000
    assert (result.reference_micros, result.reference_source, result.savings_pct) == (
        None,
        None,
        None,
    )


def test_cpu_work_is_one_unit_with_no_reference() -> None:
    result = quote(100_000, "CPU", 1, 60)
    assert result.estimated_micros == 1667
    assert result.reference_micros is None
    with pytest.raises(ValidationError) as info:
        quote(100_000, "CPU", 2, 60)
    assert info.value.field == "units"


def test_pricier_than_the_reference_shows_negative_savings() -> None:
    result = quote(1_200_000, "RTX4090", 1, 3600)
    assert result.reference_micros == 600_000
    assert result.savings_pct == pytest.approx(-100.0)


def test_equal_prices_save_exactly_nothing() -> None:
    assert quote(6_880_000, "H100", 3, 7).savings_pct == 0.0


def test_unknown_model_is_refused() -> None:
    with pytest.raises(UnknownGpuModel):
        quote(1_000_000, "B300", 1, 60)


@pytest.mark.parametrize(("price", "units", "duration"), [(0, 1, 60), (1, 0, 60), (1, 1, 0)])
def test_bad_inputs_name_the_field(price: int, units: int, duration: int) -> None:
    with pytest.raises(ValidationError):
        quote(price, "H100", units, duration)


@given(
    st.integers(1, 500_000_000),
    st.sampled_from([m for m in CATALOGUE if m != "CPU"]),
    st.integers(1, 16),
    st.integers(1, 10**6),
)
def test_estimate_is_the_hold_and_covers_any_run_within_the_duration(
    price: int, model: str, units: int, duration: int
) -> None:
    result = quote(price, model, units, duration)
    assert result.estimated_micros == hold_amount(price, units, duration)
    assert usage_charge(price, units, duration) <= result.estimated_micros
    if result.savings_pct is not None and result.reference_micros is not None:
        assert (result.savings_pct > 0) == (result.estimated_micros < result.reference_micros)
