"""AsyncClient: the same requests and errors as Client, awaited."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from gpunet.api.models import NodeRegistration
from gpunet.errors import ApiError
from gpunet.protocol.auth import verify_request
from gpunet.sdk import AccountRequired, AsyncClient, IndexerUnreachable

pytestmark = pytest.mark.anyio

BASE_URL = "http://indexer.test:8700"
NODE_ID = "n-0123456789ab"
Handler = Callable[[httpx.Request], httpx.Response]
JsonAnswer = Callable[[int, object], httpx.Response]
ErrorAnswer = Callable[[int, str, str], httpx.Response]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def client(
    answer: Handler, seen: list[httpx.Request], account: LocalAccount | None = None
) -> AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return answer(request)

    return AsyncClient(BASE_URL, account, transport=httpx.MockTransport(handle))


async def test_register_sends_a_verifiable_signature(
    account: LocalAccount,
    registration: NodeRegistration,
    node_json: dict[str, object],
    answer_json: JsonAnswer,
) -> None:
    seen: list[httpx.Request] = []

    async with client(lambda r: answer_json(200, node_json), seen, account) as api:
        node = await api.register_node(NODE_ID, registration)

    sent = seen[0]
    now = float(sent.headers["x-gpunet-timestamp"])
    signer = verify_request(sent.headers, "PUT", sent.url.raw_path.decode(), sent.content, now)
    assert signer.address == account.address
    assert node.operator == account.address


async def test_leave_and_heartbeat_are_signed(
    account: LocalAccount, node_json: dict[str, object], answer_json: JsonAnswer
) -> None:
    seen: list[httpx.Request] = []
    ack = {"node_id": NODE_ID, "state": "idle", "next_heartbeat_s": 2.0}

    def answer(request: httpx.Request) -> httpx.Response:
        return answer_json(200, ack if request.url.path.endswith("heartbeat") else node_json)

    async with client(answer, seen, account) as api:
        beat = await api.heartbeat(NODE_ID)
        await api.leave(NODE_ID)

    assert beat.next_heartbeat_s == 2.0
    assert [r.url.path.rsplit("/", 1)[1] for r in seen] == ["heartbeat", "leave"]
    assert all("x-gpunet-signature" in r.headers for r in seen)


async def test_error_body_raises_api_error(answer_error: ErrorAnswer) -> None:
    answer = answer_error(400, "query_syntax", "where: unknown field (got 'colour')")

    async with client(lambda r: answer, []) as api:
        with pytest.raises(ApiError) as caught:
            await api.list_offers(where="colour=red")

    assert (caught.value.status_code, caught.value.code) == (400, "query_syntax")
    assert "unknown field" in caught.value.message


async def test_connection_failure_names_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    async with client(refuse, []) as api:
        with pytest.raises(IndexerUnreachable, match=re.escape(BASE_URL)):
            await api.list_nodes()


async def test_signed_call_without_account_raises(registration: NodeRegistration) -> None:
    async with client(lambda r: httpx.Response(500), []) as api:
        with pytest.raises(AccountRequired):
            await api.register_node(NODE_ID, registration)


async def test_reads_share_the_core(node_json: dict[str, object], answer_json: JsonAnswer) -> None:
    seen: list[httpx.Request] = []
    health = {"status": "ok", "version": "0.1.0", "database": "sqlite", "nodes_online": 1}
    answers = {
        "/v1/health": answer_json(200, health),
        f"/v1/nodes/{NODE_ID}": answer_json(200, node_json),
        "/metrics": httpx.Response(200, text="up 1\n"),
    }

    async with client(lambda r: answers[r.url.path], seen) as api:
        assert (await api.health()).nodes_online == 1
        assert (await api.get_node(NODE_ID)).node_id == NODE_ID
        assert await api.metrics_text() == "up 1\n"

    assert [r.method for r in seen] == ["GET", "GET", "GET"]
