"""Node registry over HTTP: register, update, ownership, heartbeat, leave, listing."""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount

from gpunet.indexer.testing import IndexerTestClient, ManualClock, sample_registration

NODE = "/v1/nodes/n-alpha"


def register(
    client: IndexerTestClient, account: LocalAccount, path: str = NODE, **changes: Any
) -> Any:
    return client.signed("PUT", path, account, json=sample_registration(**changes))


def test_register_creates_node_owned_by_signer(
    client: IndexerTestClient, operator: LocalAccount, clock: ManualClock
) -> None:
    response = register(client, operator)

    assert response.status_code == 201
    node = response.json()
    assert node["node_id"] == "n-alpha"
    assert node["operator"] == operator.address.lower()
    assert node["state"] == "idle"
    assert node["heartbeats"] == 0
    assert node["hardware"]["gpu_model"] == "H100"
    assert node["registered_at"] == node["last_heartbeat_at"]
    assert node["registered_at"].endswith("Z")


def test_register_again_updates_claim_and_offer(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    register(client, operator)

    response = register(client, operator, gpu_count=4, price_micros=2_500_000, region="us-east")

    assert response.status_code == 200
    node = response.json()
    assert node["hardware"]["gpu_count"] == 4
    assert node["offer"] == {"price_micros": 2_500_000, "region": "us-east"}
    assert client.get(NODE).json()["offer"]["region"] == "us-east"


def test_gpu_model_is_stored_by_its_catalogue_name(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    response = register(client, operator, gpu_model="h100")

    assert response.json()["hardware"]["gpu_model"] == "H100"


def test_register_node_of_another_operator_is_forbidden(
    client: IndexerTestClient, operator: LocalAccount, other_operator: LocalAccount
) -> None:
    register(client, operator)

    response = register(client, other_operator, price_micros=1)

    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert operator.address.lower() in response.json()["message"]
    assert client.get(NODE).json()["offer"]["price_micros"] == 1_990_000


def test_heartbeat_counts_and_tells_when_to_beat_next(
    client: IndexerTestClient, operator: LocalAccount, clock: ManualClock
) -> None:
    register(client, operator)
    clock.advance(7)

    response = client.signed("POST", f"{NODE}/heartbeat", operator, json={"jobs_running": 0})

    assert response.status_code == 200
    assert response.json() == {"node_id": "n-alpha", "state": "idle", "next_heartbeat_s": 10.0}
    node = client.get(NODE).json()
    assert node["heartbeats"] == 1
    assert node["last_heartbeat_at"] > node["registered_at"]


def test_heartbeat_of_unknown_node_is_not_found(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    response = client.signed("POST", "/v1/nodes/n-ghost/heartbeat", operator, json={})

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "register" in response.json()["message"]


def test_heartbeat_by_another_operator_is_forbidden(
    client: IndexerTestClient, operator: LocalAccount, other_operator: LocalAccount
) -> None:
    register(client, operator)

    response = client.signed("POST", f"{NODE}/heartbeat", other_operator, json={})

    assert response.status_code == 403
    assert client.get(NODE).json()["heartbeats"] == 0


def test_leave_takes_node_offline_and_heartbeat_brings_it_back(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    register(client, operator)

    left = client.signed("POST", f"{NODE}/leave", operator)
    assert left.status_code == 200
    assert left.json()["state"] == "offline"
    assert client.get("/v1/offers").json()["total"] == 0

    beat = client.signed("POST", f"{NODE}/heartbeat", operator, json={})
    assert beat.json()["state"] == "idle"
    assert client.get("/v1/offers").json()["total"] == 1


def test_leave_accepts_an_empty_object_and_refuses_other_bodies(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    register(client, operator)

    assert client.signed("POST", f"{NODE}/leave", operator, json={}).status_code == 200
    refused = client.signed("POST", f"{NODE}/leave", operator, json={"now": True})
    assert refused.status_code == 422


def test_leave_checks_owner_and_existence(
    client: IndexerTestClient, operator: LocalAccount, other_operator: LocalAccount
) -> None:
    register(client, operator)

    assert client.signed("POST", f"{NODE}/leave", other_operator).status_code == 403
    assert client.signed("POST", "/v1/nodes/n-ghost/leave", operator).status_code == 404
    assert client.get(NODE).json()["state"] == "idle"


def test_get_unknown_node_is_not_found(client: IndexerTestClient) -> None:
    response = client.get("/v1/nodes/n-ghost")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_list_filters_by_operator_and_state_and_pages(
    client: IndexerTestClient, operator: LocalAccount, other_operator: LocalAccount
) -> None:
    for name in ("n-a1", "n-a2", "n-a3"):
        register(client, operator, path=f"/v1/nodes/{name}")
    register(client, other_operator, path="/v1/nodes/n-b1")
    client.signed("POST", "/v1/nodes/n-a3/leave", operator)

    mine = client.get("/v1/nodes", params={"operator": operator.address}).json()
    assert [n["node_id"] for n in mine["nodes"]] == ["n-a1", "n-a2", "n-a3"]
    offline = client.get("/v1/nodes", params={"state": "offline"}).json()
    assert [n["node_id"] for n in offline["nodes"]] == ["n-a3"]
    page = client.get("/v1/nodes", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 4
    assert [n["node_id"] for n in page["nodes"]] == ["n-a2", "n-a3"]


def test_list_refuses_a_malformed_operator(client: IndexerTestClient) -> None:
    response = client.get("/v1/nodes", params={"operator": "bob"})

    assert response.status_code == 422
    assert response.json()["field"] == "operator"
    assert response.json()["value"] == "bob"
