"""Offer search over HTTP, and liveness as offers and node states show it."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from gpunet.indexer import offer_search
from gpunet.indexer.context import app_context
from gpunet.indexer.sweeper import sweep_once
from gpunet.indexer.testing import IndexerTestClient, ManualClock, sample_registration


def offers(client: IndexerTestClient, **params: Any) -> Any:
    response = client.get("/v1/offers", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def node_ids(listing: Any) -> list[str]:
    return [offer["node_id"] for offer in listing["offers"]]


@pytest.fixture
def market(client: IndexerTestClient, operator: LocalAccount) -> IndexerTestClient:
    nodes = {
        "n-h100-eu": sample_registration("H100", 8, 2_000_000, "eu-west-1"),
        "n-h100-us": sample_registration("H100", 2, 2_400_000, "us-east"),
        "n-4090-eu": sample_registration("RTX4090", 1, 400_000, "eu-central"),
        "n-cpu-ap": sample_registration("CPU", 0, 50_000, "ap-south"),
    }
    for node_id, body in nodes.items():
        assert client.signed("PUT", f"/v1/nodes/{node_id}", operator, json=body).is_success
    return client


def test_offers_are_sorted_by_price_by_default(market: IndexerTestClient) -> None:
    listing = offers(market)

    assert node_ids(listing) == ["n-cpu-ap", "n-4090-eu", "n-h100-eu", "n-h100-us"]
    assert listing["total"] == 4


def test_offers_sort_by_tflops_descending(market: IndexerTestClient) -> None:
    listing = offers(market, order="-tflops", limit=2)

    assert node_ids(listing) == ["n-h100-eu", "n-h100-us"]
    assert listing["offers"][0]["fp16_tflops"] == 8 * 989.0
    assert listing["total"] == 4


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("gpu=H100 count>=2 price<2.5 region=eu", ["n-h100-eu"]),
        ("gpu=H100,RTX4090 price<=2", ["n-4090-eu", "n-h100-eu"]),
        ("region=eu", ["n-4090-eu", "n-h100-eu"]),
        ("region!=eu", ["n-cpu-ap", "n-h100-us"]),
        ("vram>=80", ["n-h100-eu", "n-h100-us"]),
        ("tflops>2000", ["n-h100-eu"]),
        ("gpu!=CPU state=idle", ["n-4090-eu", "n-h100-eu", "n-h100-us"]),
        ("state=offline", []),
    ],
)
def test_where_filters_offers(market: IndexerTestClient, where: str, expected: list[str]) -> None:
    assert node_ids(offers(market, where=where)) == expected


def test_bad_where_names_the_term(market: IndexerTestClient) -> None:
    response = market.get("/v1/offers", params={"where": "price<2 colour=red"})

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["field"], body["value"]) == (
        "query_syntax_error",
        "where",
        "colour",
    )


def test_hostile_number_in_where_is_a_syntax_error(market: IndexerTestClient) -> None:
    response = market.get("/v1/offers", params={"where": "count>=1e999999999"})

    assert response.status_code == 400
    assert response.json()["field"] == "count"


def test_huge_price_bound_still_compares(market: IndexerTestClient) -> None:
    assert offers(market, where="price<99999999999999")["total"] == 4


def test_silent_node_leaves_offers_before_any_sweep_and_returns_on_heartbeat(
    market: IndexerTestClient, operator: LocalAccount, clock: ManualClock
) -> None:
    clock.advance(20)
    market.signed("POST", "/v1/nodes/n-h100-eu/heartbeat", operator, json={})
    clock.advance(15)  # the others are now 35 s silent; the timeout is 30 s

    assert node_ids(offers(market)) == ["n-h100-eu"]
    assert market.get("/v1/nodes/n-cpu-ap").json()["state"] == "offline"
    assert market.get("/v1/nodes", params={"state": "offline"}).json()["total"] == 3

    beat = market.signed("POST", "/v1/nodes/n-cpu-ap/heartbeat", operator, json={})
    assert beat.json()["state"] == "idle"
    assert node_ids(offers(market)) == ["n-cpu-ap", "n-h100-eu"]


def test_sweep_writes_offline_state_down(
    market: IndexerTestClient, operator: LocalAccount, clock: ManualClock
) -> None:
    context = app_context(market.app)  # type: ignore[arg-type]
    clock.advance(31)

    report = sweep_once(context)

    assert (report.marked_offline, report.nodes_online) == (4, 0)
    assert sweep_once(context).marked_offline == 0
    assert market.signed("POST", "/v1/nodes/n-cpu-ap/heartbeat", operator, json={}).is_success
    assert sweep_once(context).nodes_online == 1


def test_total_is_exact_up_to_the_count_limit(
    market: IndexerTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(offer_search, "COUNT_LIMIT", 2)

    everything = offers(market, limit=3)
    some = offers(market, where="gpu=H100")

    assert (everything["total"], everything["total_is_exact"]) == (2, False)
    assert node_ids(everything) == ["n-cpu-ap", "n-4090-eu", "n-h100-eu"]
    assert (some["total"], some["total_is_exact"]) == (2, True)


def test_total_is_exact_for_small_results(market: IndexerTestClient) -> None:
    listing = offers(market, where="gpu=H100", order="-price")

    assert node_ids(listing) == ["n-h100-us", "n-h100-eu"]
    assert (listing["total"], listing["total_is_exact"]) == (2, True)


def test_offers_rank_by_reliability_adjusted_value_per_dollar(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    bodies = {
        "n-fast-dear": sample_registration("H100", 1, 4_000_000, benchmark_gflops=400_000.0),
        "n-slow-cheap": sample_registration("RTX4090", 1, 200_000, benchmark_gflops=40_000.0),
        "n-mid": sample_registration("L40S", 1, 1_000_000, benchmark_gflops=150_000.0),
    }
    for node_id, body in bodies.items():
        assert client.signed("PUT", f"/v1/nodes/{node_id}", operator, json=body).is_success

    listing = offers(client, order="-value")

    # GFLOPS per USD-hour: 200,000 (slow-cheap), 150,000 (mid), 100,000 (fast-dear).
    assert node_ids(listing) == ["n-slow-cheap", "n-mid", "n-fast-dear"]
    values = [offer["value_per_dollar"] for offer in listing["offers"]]
    assert values == [200_000.0, 150_000.0, 100_000.0]
    assert all(offer["failure_rate"] == 0.0 for offer in listing["offers"])
