"""ApiCore: requests are built and signed once, for both clients."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from gpunet.api.models import HeartbeatIn, NodeRegistration
from gpunet.errors import ApiError, AuthError, ConfigError, ValidationError
from gpunet.protocol.auth import HEADER_ADDRESS, HEADER_SIGNATURE, verify_request
from gpunet.sdk._core import ApiCore, api_error
from gpunet.sdk.errors import AccountRequired, InvalidResponse

NOW = 1_764_072_000.0
BASE_URL = "http://indexer.test:8700"
NODE_ID = "n-0123456789ab"
JsonAnswer = Callable[[int, object], httpx.Response]
ErrorAnswer = Callable[[int, str, str], httpx.Response]


def core(account: LocalAccount | None) -> ApiCore:
    return ApiCore(BASE_URL, account, clock=lambda: NOW, nonce=lambda: "f" * 32)


def answered(response: httpx.Response, request: httpx.Request) -> httpx.Response:
    response.request = request
    return response


def test_signed_request_verifies_over_exact_path_and_body(
    account: LocalAccount, registration: NodeRegistration
) -> None:
    request = core(account).register_node(NODE_ID, registration).request

    signed = verify_request(
        request.headers, "PUT", request.url.raw_path.decode(), request.content, now=NOW
    )

    assert signed.address == account.address
    assert signed.nonce == "f" * 32
    assert request.url.path == f"/v1/nodes/{NODE_ID}"
    assert json.loads(request.content) == registration.model_dump(mode="json")
    assert request.headers["content-type"] == "application/json"


def test_tampered_body_fails_verification(account: LocalAccount) -> None:
    request = core(account).heartbeat(NODE_ID, HeartbeatIn(jobs_running=1)).request

    with pytest.raises(AuthError, match="wrong key"):
        verify_request(request.headers, "POST", request.url.path, b'{"jobs_running":2}', now=NOW)


def test_leave_sends_a_signed_empty_object(account: LocalAccount) -> None:
    request = core(account).leave(NODE_ID).request

    assert request.content == b"{}"
    assert request.url.path == f"/v1/nodes/{NODE_ID}/leave"
    assert verify_request(request.headers, "POST", request.url.path, b"{}", now=NOW)


def test_reads_are_unsigned(account: LocalAccount) -> None:
    request = core(account).list_nodes("idle", None, 10, 20).request

    assert HEADER_SIGNATURE not in request.headers
    assert dict(request.url.params) == {"state": "idle", "limit": "10", "offset": "20"}


def test_signed_call_without_account_names_the_operation(
    registration: NodeRegistration,
) -> None:
    with pytest.raises(AccountRequired, match=r"PUT /v1/nodes/n-0123456789ab"):
        core(None).register_node(NODE_ID, registration)


def test_bad_node_id_is_refused_before_sending(account: LocalAccount) -> None:
    with pytest.raises(ValidationError, match="node_id"):
        core(account).heartbeat("../admin", HeartbeatIn())


def test_offers_omit_an_empty_filter() -> None:
    request = core(None).list_offers("  ", "-tflops", 5).request

    assert dict(request.url.params) == {"order": "-tflops", "limit": "5"}


def test_offers_refuse_an_unknown_order() -> None:
    with pytest.raises(ConfigError, match="'cheapest'"):
        core(None).list_offers("", "cheapest", 5)


@pytest.mark.parametrize("url", ["indexer:8700", "ftp://host", "http://"])
def test_base_url_must_be_http(url: str) -> None:
    with pytest.raises(ConfigError, match="http://"):
        ApiCore(url)


def test_base_url_trailing_slash_is_dropped(account: LocalAccount) -> None:
    api = ApiCore(BASE_URL + "/", account)

    assert str(api.health().request.url) == BASE_URL + "/v1/health"
    assert HEADER_ADDRESS not in api.health().request.headers


def test_error_body_becomes_api_error(answer_error: ErrorAnswer) -> None:
    request = httpx.Request("PUT", BASE_URL + "/v1/nodes/n-1")
    response = answered(answer_error(403, "permission_denied", "owned by 0xabc"), request)

    error = api_error(response)

    assert (error.status_code, error.code, error.message) == (
        403,
        "permission_denied",
        "owned by 0xabc",
    )


def test_foreign_error_page_becomes_api_error_with_snippet() -> None:
    request = httpx.Request("GET", BASE_URL + "/v1/nodes")
    response = answered(httpx.Response(502, text="<html>Bad   gateway</html>"), request)

    error = api_error(response)

    assert error.code == "http_502"
    assert "GET /v1/nodes failed: <html>Bad gateway</html>" in error.message


def test_success_with_wrong_body_is_invalid_response(answer_json: JsonAnswer) -> None:
    call = core(None).health()

    with pytest.raises(InvalidResponse, match="not a Health"):
        call.parse(answered(answer_json(200, {"status": "ok"}), call.request))


def test_error_answer_raises_through_parse(answer_error: ErrorAnswer) -> None:
    call = core(None).get_node(NODE_ID)
    response = answered(answer_error(404, "not_found", "no node n-0123456789ab"), call.request)

    with pytest.raises(ApiError) as caught:
        call.parse(response)
    assert caught.value.status_code == 404
    assert caught.value.code == "not_found"
