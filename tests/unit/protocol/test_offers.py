from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpunet.errors import UnknownGpuModel, ValidationError
from gpunet.protocol.offers import (
    MAX_PRICE_MICROS,
    HardwareClaim,
    Offer,
    region_matches,
    validate_claim,
    validate_node_id,
    validate_offer,
)

H100_CLAIM = HardwareClaim("H100", 8, 81559, 96, 1_048_576, 2000, 700_000.0)
CPU_CLAIM = HardwareClaim("CPU", 0, 0, 2, 24_000, 50, 80.0)


def test_valid_claims_return_their_model() -> None:
    assert validate_claim(H100_CLAIM).name == "H100"
    assert validate_claim(CPU_CLAIM).name == "CPU"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"gpu_count": 0}, "gpu_count"),
        ({"gpu_count": 17}, "gpu_count"),
        ({"vram_mib": 200_000}, "vram_mib"),
        ({"cpu_cores": 0}, "cpu_cores"),
        ({"memory_mib": 0}, "memory_mib"),
        ({"benchmark_gflops": float("nan")}, "benchmark_gflops"),
        ({"benchmark_gflops": -1.0}, "benchmark_gflops"),
    ],
)
def test_bad_claims_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_claim(dataclasses.replace(H100_CLAIM, **change))  # type: ignore[arg-type]
    assert info.value.field == field


def test_cpu_node_cannot_claim_gpus() -> None:
    with pytest.raises(ValidationError, match="CPU node"):
        validate_claim(dataclasses.replace(CPU_CLAIM, gpu_count=1))


def test_unknown_model_is_refused() -> None:
    with pytest.raises(UnknownGpuModel):
        validate_claim(dataclasses.replace(H100_CLAIM, gpu_model="B300X"))


@given(st.integers(min_value=1, max_value=MAX_PRICE_MICROS))
def test_prices_in_range_are_accepted(price: int) -> None:
    assert validate_offer(Offer(price, "eu-west")).price_micros == price


@given(st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_PRICE_MICROS + 1)))
def test_prices_out_of_range_are_refused(price: int) -> None:
    with pytest.raises(ValidationError) as info:
        validate_offer(Offer(price, "eu-west"))
    assert info.value.field == "price_micros"


@pytest.mark.parametrize("region", ["EU", "e", "eu_west", "eu-", "", "-eu"])
def test_bad_regions_are_refused(region: str) -> None:
    with pytest.raises(ValidationError, match="region"):
        validate_offer(Offer(1_000_000, region))


def test_region_prefix_matches_subregions_only_at_dash() -> None:
    assert region_matches("eu-west-1", "eu")
    assert region_matches("eu", "eu")
    assert not region_matches("europe", "eu")
    assert not region_matches("us-east", "eu")


@pytest.mark.parametrize("node_id", ["n-3fa2c1", "abc", "node-01"])
def test_good_node_ids(node_id: str) -> None:
    assert validate_node_id(node_id) == node_id


@pytest.mark.parametrize("node_id", ["ab", "N-1234", "-abc", "a b c", "x" * 65])
def test_bad_node_ids(node_id: str) -> None:
    with pytest.raises(ValidationError, match="node_id"):
        validate_node_id(node_id)


@pytest.mark.parametrize(("mib", "gib"), [(81559, 80), (40960, 40), (23034, 22), (143771, 140)])
def test_nominal_vram_rounds_driver_figures(mib: int, gib: int) -> None:
    from gpunet.protocol.offers import nominal_vram_gib

    assert nominal_vram_gib(mib) == gib
