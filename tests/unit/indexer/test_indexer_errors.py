"""Error answers outside the domain rules: body size, JSON syntax, routing."""

from __future__ import annotations

from collections.abc import Iterator

from eth_account.signers.local import LocalAccount

from gpunet.indexer.testing import IndexerTestClient

NODE = "/v1/nodes/n-alpha"


def test_body_over_the_limit_by_content_length_is_refused(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    body = b'{"pad": "' + b"x" * 70_000 + b'"}'

    response = client.signed("PUT", NODE, operator, content=body)

    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert "65536" in response.json()["message"]


def test_streamed_body_over_the_limit_is_refused(client: IndexerTestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * 8192

    response = client.put(NODE, content=chunks(), headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


def test_malformed_json_is_a_bad_request(client: IndexerTestClient, operator: LocalAccount) -> None:
    response = client.signed("PUT", NODE, operator, content=b'{"hardware": ')

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
    assert response.json()["message"].startswith("body is not valid JSON: ")


def test_unknown_route_answers_an_error_body(client: IndexerTestClient) -> None:
    response = client.get("/v1/nowhere")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_wrong_method_answers_an_error_body(client: IndexerTestClient) -> None:
    response = client.delete("/v1/offers")

    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_bad_query_parameter_names_the_parameter(client: IndexerTestClient) -> None:
    response = client.get("/v1/offers", params={"limit": "0"})

    assert response.status_code == 422
    assert (response.json()["field"], response.json()["value"]) == ("limit", "0")


def test_unencodable_values_are_escaped_in_error_bodies(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    body = b'{"hardware": "\\ud800", "offer": {}}'

    response = client.signed("PUT", NODE, operator, content=body)

    assert response.status_code == 422
    assert response.json()["value"] == "\\ud800"
