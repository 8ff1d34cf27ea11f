from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpunet.errors import QuerySyntaxError
from gpunet.protocol.query import Condition, OfferView, matches, parse_filter

NODE = OfferView(
    node_id="n-000001",
    operator="0x00000000000000000000000000000000000000aa",
    gpu="H100",
    gpu_count=2,
    vram_mib=81559,
    price_micros=2_200_000,
    region="eu-west",
    fp16_tflops=1978.0,
    cpu_cores=32,
    memory_mib=262_144,
    disk_gib=500,
    state="idle",
)


def test_issue_example_parses_to_normalized_units() -> None:
    assert parse_filter("gpu=H100 count>=2 price<2.5 region=eu") == [
        Condition("gpu", "=", ("H100",)),
        Condition("gpu_count", ">=", 2),
        Condition("price_micros", "<", 2_500_000),
        Condition("region", "=", "eu"),
    ]


def test_spaces_around_operators_and_lists_of_models() -> None:
    conditions = parse_filter("gpu = h100,a100-80gb  vram >= 40")
    assert conditions == [
        Condition("gpu", "=", ("H100", "A100-80GB")),
        Condition("vram_gib", ">=", 40),
    ]


def test_empty_filter_matches_everything() -> None:
    assert parse_filter("  ") == []
    assert matches([], NODE)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpu=H100 count>=2 price<2.5 region=eu", True),
        ("gpu=A100-80GB", False),
        ("gpu!=A100-80GB", True),
        ("price<2.2", False),
        ("price<=2.2", True),
        ("region=us", False),
        ("region!=us", True),
        ("region=eu-west", True),
        ("vram>=80 ram>=256 cpu>16 disk>=500", True),
        ("tflops>2000", False),
        ("state=idle", True),
        ("operator=0x00000000000000000000000000000000000000AA", True),
    ],
)
def test_matches_follows_the_documented_meaning(text: str, expected: bool) -> None:
    assert matches(parse_filter(text), NODE) is expected


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("gpu=H900", "H900"),
        ("price<abc", "abc"),
        ("colour=red", "colour"),
        ("region<eu", "<"),
        ("count>=", "count>="),
        ("count>=1.5", "1.5"),
        ("price<-1", "-1"),
        ("state=sleeping", "sleeping"),
        ("operator=0x12", "0x12"),
        ("gpu=H100 ???", "???"),
    ],
)
def test_syntax_errors_name_the_bad_term(text: str, named: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_filter(text)
    assert repr(named) in str(info.value)


def test_overlong_filter_is_refused() -> None:
    with pytest.raises(QuerySyntaxError, match="longer than"):
        parse_filter("count>=1 " * 200)


@given(st.text(max_size=80))
def test_any_text_parses_or_raises_a_query_error(text: str) -> None:
    try:
        conditions = parse_filter(text)
    except QuerySyntaxError as exc:
        assert exc.field and exc.message
    else:
        assert isinstance(matches(conditions, NODE), bool)


@given(st.integers(0, 600), st.integers(0, 600))
def test_price_threshold_splits_nodes(price_cents: int, limit_cents: int) -> None:
    view = OfferView(**{**NODE.__dict__, "price_micros": price_cents * 10_000})
    below = matches(parse_filter(f"price<{limit_cents / 100:.2f}"), view)
    at_or_above = matches(parse_filter(f"price>={limit_cents / 100:.2f}"), view)
    assert below != at_or_above
    assert below is (price_cents < limit_cents)
