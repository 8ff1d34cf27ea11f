from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpunet.errors import ValidationError
from gpunet.protocol.units import (
    ONE_TOKEN,
    format_tokens,
    format_usd,
    parse_tokens,
    parse_usd,
    usd_cost_micros,
)


def test_parse_usd_reads_decimal_text_exactly() -> None:
    assert parse_usd("2.5") == 2_500_000
    assert parse_usd("0.000001") == 1
    assert parse_usd(3) == 3_000_000


@pytest.mark.parametrize("text", ["abc", "", "1e", "nan", "inf"])
def test_parse_usd_refuses_non_numbers_naming_the_value(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_usd(text, field="price")
    assert info.value.field == "price"
    assert repr(text) in str(info.value)


def test_parse_usd_refuses_sub_micro_precision() -> None:
    with pytest.raises(ValidationError, match="more than 6 decimal places"):
        parse_usd("1.0000001")


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_usd_format_and_parse_round_trip(micros: int) -> None:
    assert parse_usd(format_usd(micros)) == micros


@given(st.integers(min_value=0, max_value=10**30))
def test_token_format_and_parse_round_trip(base_units: int) -> None:
    assert parse_tokens(format_tokens(base_units)) == base_units


def test_format_tokens_drops_trailing_zeros() -> None:
    assert format_tokens(ONE_TOKEN * 3 // 2) == "1.5"
    assert format_tokens(42 * ONE_TOKEN) == "42"


@given(
    st.integers(min_value=1, max_value=500_000_000),
    st.integers(min_value=1, max_value=16),
    st.integers(min_value=0, max_value=10**7),
)
def test_cost_never_exceeds_exact_value(price: int, gpus: int, seconds: int) -> None:
    cost = usd_cost_micros(price, gpus, seconds)
    exact = Decimal(price) * gpus * seconds / 3600
    assert cost <= exact < cost + 1


@pytest.mark.parametrize("text", ["1e999999", "-1e40"])
def test_absurdly_large_amounts_are_refused(text: str) -> None:
    with pytest.raises(ValidationError, match="too large"):
        parse_tokens(text)
