"""Client (sync) against httpx.MockTransport: requests sent, answers read, errors raised."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from gpunet.api.models import HeartbeatIn, NodeRegistration
from gpunet.errors import ApiError
from gpunet.protocol.auth import verify_request
from gpunet.protocol.nodes import NodeState
from gpunet.sdk import AccountRequired, Client, IndexerUnreachable

BASE_URL = "http://indexer.test:8700"
NODE_ID = "n-0123456789ab"
Handler = Callable[[httpx.Request], httpx.Response]
JsonAnswer = Callable[[int, object], httpx.Response]
ErrorAnswer = Callable[[int, str, str], httpx.Response]


def client(
    answer: Handler, seen: list[httpx.Request], account: LocalAccount | None = None
) -> Client:
    def handle(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return answer(request)

    return Client(BASE_URL, account, transport=httpx.MockTransport(handle))


def test_register_sends_a_verifiable_signature(
    account: LocalAccount,
    registration: NodeRegistration,
    node_json: dict[str, object],
    answer_json: JsonAnswer,
) -> None:
    seen: list[httpx.Request] = []
    api = client(lambda r: answer_json(201, node_json), seen, account)

    node = api.register_node(NODE_ID, registration)

    sent = seen[0]
    now = float(sent.headers["x-gpunet-timestamp"])
    signer = verify_request(
        sent.headers, sent.method, sent.url.raw_path.decode(), sent.content, now
    )
    assert signer.address == account.address
    assert (sent.method, sent.url.path) == ("PUT", f"/v1/nodes/{NODE_ID}")
    assert node.node_id == NODE_ID
    assert node.state is NodeState.IDLE


def test_each_signed_request_gets_a_fresh_nonce(
    account: LocalAccount, answer_json: JsonAnswer
) -> None:
    seen: list[httpx.Request] = []
    ack = {"node_id": NODE_ID, "state": "idle", "next_heartbeat_s": 60.0}
    api = client(lambda r: answer_json(200, ack), seen, account)

    first = api.heartbeat(NODE_ID)
    api.heartbeat(NODE_ID, HeartbeatIn(gpu_utilization=50.0, jobs_running=1))

    assert first.next_heartbeat_s == 60.0
    assert seen[0].headers["x-gpunet-nonce"] != seen[1].headers["x-gpunet-nonce"]
    assert seen[1].content == b'{"gpu_utilization":50.0,"jobs_running":1,"rtt_ms":null}'


def test_error_body_raises_api_error_with_code_and_message(
    account: LocalAccount, answer_error: ErrorAnswer
) -> None:
    answer = answer_error(403, "permission_denied", "node n-0123456789ab belongs to 0xabc")
    api = client(lambda r: answer, [], account)

    with pytest.raises(ApiError) as caught:
        api.leave(NODE_ID)

    assert caught.value.status_code == 403
    assert caught.value.code == "permission_denied"
    assert caught.value.message == "node n-0123456789ab belongs to 0xabc"


def test_connection_failure_names_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with pytest.raises(IndexerUnreachable, match=r"http://indexer.test:8700 .*Connection refused"):
        client(refuse, []).health()


def test_signed_call_without_account_sends_nothing(registration: NodeRegistration) -> None:
    seen: list[httpx.Request] = []

    with pytest.raises(AccountRequired, match="no account"):
        client(lambda r: httpx.Response(500), seen).register_node(NODE_ID, registration)

    assert seen == []


def test_list_nodes_sends_filters_and_reads_the_list(
    node_json: dict[str, object], answer_json: JsonAnswer
) -> None:
    seen: list[httpx.Request] = []
    api = client(lambda r: answer_json(200, {"nodes": [node_json], "total": 7}), seen)

    listing = api.list_nodes(state="idle", operator="0xabc", limit=1, offset=3)

    assert dict(seen[0].url.params) == {
        "state": "idle",
        "operator": "0xabc",
        "limit": "1",
        "offset": "3",
    }
    assert listing.total == 7
    assert [n.node_id for n in listing.nodes] == [NODE_ID]


def test_list_offers_passes_the_filter_verbatim(answer_json: JsonAnswer) -> None:
    seen: list[httpx.Request] = []
    api = client(lambda r: answer_json(200, {"offers": [], "total": 0}), seen)

    offers = api.list_offers(where="gpu=CPU price<1", order="-price", limit=5)

    assert seen[0].url.params["where"] == "gpu=CPU price<1"
    assert seen[0].url.params["order"] == "-price"
    assert offers.total == 0


def test_metrics_text_returns_the_body() -> None:
    api = client(lambda r: httpx.Response(200, text="gpunet_nodes 3\n"), [])

    assert api.metrics_text() == "gpunet_nodes 3\n"


def test_default_timeout_is_ten_seconds(answer_json: JsonAnswer) -> None:
    seen: list[httpx.Request] = []
    health = {"status": "ok", "version": "0.1.0", "database": "sqlite", "nodes_online": 0}

    with client(lambda r: answer_json(200, health), seen) as api:
        assert api.health().nodes_online == 0

    assert seen[0].extensions["timeout"] == {
        "connect": 10.0,
        "read": 10.0,
        "write": 10.0,
        "pool": 10.0,
    }
