"""Refused registrations: each bad input answers 422 naming the field, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from gpunet.indexer.testing import IndexerTestClient, sample_registration

NODE = "/v1/nodes/n-alpha"


def snapshot(client: IndexerTestClient) -> Any:
    return client.get("/v1/nodes").json()


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        ({"price_micros": -1}, "price_micros", "-1"),
        ({"price_micros": 0}, "price_micros", "0"),
        ({"price_micros": 10**30}, "price_micros", str(10**30)),
        ({"region": "Mars Base"}, "region", "Mars Base"),
        ({"gpu_count": 17}, "gpu_count", "17"),
        ({"vram_mib": 200_000}, "vram_mib", "200000"),
        ({"gpu_model": "CPU", "gpu_count": 2, "vram_mib": 0}, "gpu_count", "2"),
    ],
)
def test_bad_claim_or_offer_is_refused_and_changes_nothing(
    client: IndexerTestClient,
    operator: LocalAccount,
    changes: dict[str, Any],
    field: str,
    value: str,
) -> None:
    client.signed("PUT", NODE, operator, json=sample_registration())
    before = snapshot(client)

    response = client.signed("PUT", NODE, operator, json=sample_registration(**changes))

    assert response.status_code == 422
    body = response.json()
    assert (body["error"], body["field"], body["value"]) == ("validation_error", field, value)
    assert field in body["message"]
    assert snapshot(client) == before


def test_unknown_gpu_model_names_the_known_ones(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    response = client.signed("PUT", NODE, operator, json=sample_registration(gpu_model="B300"))

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "unknown_gpu_model"
    assert (body["field"], body["value"]) == ("gpu_model", "B300")
    assert "H100" in body["message"]
    assert snapshot(client)["total"] == 0


def test_bad_node_id_is_refused(client: IndexerTestClient, operator: LocalAccount) -> None:
    response = client.signed("PUT", "/v1/nodes/NODE_1", operator, json=sample_registration())

    assert response.status_code == 422
    assert (response.json()["field"], response.json()["value"]) == ("node_id", "NODE_1")
    assert snapshot(client)["total"] == 0


@pytest.mark.parametrize("version", ["", " 1.0", "1.0\x00", "caf\u00e9"])
def test_agent_version_must_be_printable_ascii(
    client: IndexerTestClient, operator: LocalAccount, version: str
) -> None:
    body = sample_registration()
    body["agent_version"] = version

    response = client.signed("PUT", NODE, operator, json=body)

    assert response.status_code == 422
    assert response.json()["field"] == "agent_version"


def test_schema_violation_names_the_field_path(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    body = sample_registration()
    body["hardware"]["gpu_count"] = "eight"

    response = client.signed("PUT", NODE, operator, json=body)

    assert response.status_code == 422
    assert response.json()["field"] == "hardware.gpu_count"
    assert response.json()["value"] == "eight"
    assert snapshot(client)["total"] == 0


def test_unknown_fields_are_refused(client: IndexerTestClient, operator: LocalAccount) -> None:
    body = sample_registration()
    body["offer"]["discount"] = 5

    response = client.signed("PUT", NODE, operator, json=body)

    assert response.status_code == 422
    assert response.json()["field"] == "offer.discount"


def test_refused_update_keeps_the_previous_registration(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    client.signed("PUT", NODE, operator, json=sample_registration(price_micros=1_000_000))
    before = client.get(NODE).json()

    bad = sample_registration(price_micros=2_000_000, gpu_model="RTX4090", vram_mib=10**6)
    assert client.signed("PUT", NODE, operator, json=bad).status_code == 422

    assert client.get(NODE).json() == before
