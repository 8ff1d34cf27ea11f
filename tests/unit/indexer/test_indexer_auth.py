"""Signed requests: every way a signature can fail answers 401 with its reason."""

from __future__ import annotations

import json

from eth_account.signers.local import LocalAccount

from gpunet.indexer.context import app_context
from gpunet.indexer.sweeper import sweep_once
from gpunet.indexer.testing import IndexerTestClient, ManualClock, sample_registration
from gpunet.protocol.auth import HEADER_ADDRESS, HEADER_NONCE, sign_request

NODE = "/v1/nodes/n-alpha"


def assert_refused(response: object, reason: str, words: str) -> None:
    assert getattr(response, "status_code", None) == 401
    body = response.json()  # type: ignore[attr-defined]
    assert body["error"] == f"auth_{reason}"
    assert words in body["message"]


def test_unsigned_request_is_refused(client: IndexerTestClient) -> None:
    response = client.put(NODE, json=sample_registration())

    assert_refused(response, "unsigned", "missing header")
    assert client.get("/v1/nodes").json()["total"] == 0


def test_signature_by_another_key_is_refused(
    client: IndexerTestClient, operator: LocalAccount, other_operator: LocalAccount
) -> None:
    response = client.signed(
        "PUT",
        NODE,
        operator,
        json=sample_registration(),
        headers={HEADER_ADDRESS: other_operator.address},
    )

    assert_refused(response, "bad_signature", "wrong key")


def test_tampered_body_is_refused(
    client: IndexerTestClient, operator: LocalAccount, clock: ManualClock
) -> None:
    signed_body = json.dumps(sample_registration(price_micros=1_000_000)).encode()
    sent_body = json.dumps(sample_registration(price_micros=9_000_000)).encode()
    headers = sign_request(operator, "PUT", NODE, signed_body, int(clock()), "n" * 32)
    headers["Content-Type"] = "application/json"

    response = client.put(NODE, content=sent_body, headers=headers)

    assert_refused(response, "bad_signature", "not by")
    assert client.get("/v1/nodes").json()["total"] == 0


def test_signature_over_another_path_is_refused(
    client: IndexerTestClient, operator: LocalAccount, clock: ManualClock
) -> None:
    body = json.dumps(sample_registration()).encode()
    headers = sign_request(operator, "PUT", "/v1/nodes/n-other", body, int(clock()), "p" * 32)

    response = client.put(
        NODE, content=body, headers={**headers, "Content-Type": "application/json"}
    )

    assert_refused(response, "bad_signature", "not by")


def test_stale_timestamp_is_refused(
    client: IndexerTestClient, operator: LocalAccount, clock: ManualClock
) -> None:
    response = client.signed(
        "PUT", NODE, operator, json=sample_registration(), timestamp=int(clock()) - 61
    )

    assert_refused(response, "stale", "check your clock")


def test_replayed_nonce_is_refused(client: IndexerTestClient, operator: LocalAccount) -> None:
    first = client.signed("PUT", NODE, operator, json=sample_registration(), nonce="r" * 32)
    again = client.signed("PUT", NODE, operator, json=sample_registration(), nonce="r" * 32)

    assert first.status_code == 201
    assert_refused(again, "replayed", "new nonce")


def test_nonce_of_a_refused_request_cannot_be_replayed(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    path = "/v1/nodes/n-later/heartbeat"
    first = client.signed("POST", path, operator, json={}, nonce="h" * 32)
    client.signed("PUT", "/v1/nodes/n-later", operator, json=sample_registration())
    again = client.signed("POST", path, operator, json={}, nonce="h" * 32)

    assert first.status_code == 404
    assert_refused(again, "replayed", "already used")


def test_malformed_headers_are_refused(client: IndexerTestClient, operator: LocalAccount) -> None:
    response = client.signed("PUT", NODE, operator, json=sample_registration(), nonce="short")

    assert_refused(response, "malformed", "16-64")


def test_sweeper_prunes_nonces_older_than_twice_the_skew(
    client: IndexerTestClient, operator: LocalAccount, clock: ManualClock
) -> None:
    client.signed("PUT", NODE, operator, json=sample_registration())
    context = app_context(client.app)  # type: ignore[arg-type]

    assert sweep_once(context).nonces_pruned == 0
    clock.advance(121)
    assert sweep_once(context).nonces_pruned == 1


def test_query_string_is_part_of_what_is_signed(
    client: IndexerTestClient, operator: LocalAccount, clock: ManualClock
) -> None:
    body = json.dumps(sample_registration()).encode()
    signed_path = f"{NODE}?source=agent"
    headers = sign_request(operator, "PUT", signed_path, body, int(clock()), "q" * 32)
    headers["Content-Type"] = "application/json"

    accepted = client.put(signed_path, content=body, headers=headers)
    headers[HEADER_NONCE] = "w" * 32
    moved = client.put(f"{NODE}?source=other", content=body, headers=headers)

    assert accepted.status_code == 201
    assert_refused(moved, "bad_signature", "not by")
