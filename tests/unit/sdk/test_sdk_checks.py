"""The checker calls of both clients against httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from gpunet.api.checks import CheckerRegistration, CheckResultIn
from gpunet.errors import ApiError, ValidationError
from gpunet.protocol.auth import verify_request
from gpunet.sdk import AccountRequired, AsyncClient, Client

BASE_URL = "http://indexer.test:8700"
CHECK_ID = "c-0123456789abcdef"
NODE_ID = "n-0123456789ab"
SHA = "ab" * 32
WHEN = "2025-01-01T00:00:00Z"
Handler = Callable[[httpx.Request], httpx.Response]
JsonAnswer = Callable[[int, object], httpx.Response]
ErrorAnswer = Callable[[int, str, str], httpx.Response]


def checker_json(address: str) -> dict[str, object]:
    return {
        "address": address,
        "operator": None,
        "registered_at": WHEN,
        "last_seen_at": WHEN,
        "results_total": 7,
        "against_majority": 1,
        "against_majority_week": 0,
        "banned_until": None,
        "reward_eligible": True,
    }


def task_json() -> dict[str, object]:
    return {
        "check_id": CHECK_ID,
        "kind": "liveness",
        "epoch": 3,
        "node_id": NODE_ID,
        "operator": "0x" + "ab" * 20,
        "check_url": "http://127.0.0.1:9000",
        "gpu_model": "CPU",
        "gpu_count": 0,
        "claimed_ops_per_s": 5e10,
        "rtt_ms": 1.5,
        "due_at": 1_764_072_060.0,
    }


def check_json() -> dict[str, object]:
    return {
        "check_id": CHECK_ID,
        "kind": "liveness",
        "epoch": 3,
        "node_id": NODE_ID,
        "panel": ["0x" + "01" * 20],
        "created_at": WHEN,
        "due_at": WHEN,
        "closed_at": None,
        "verdict": None,
        "finding": None,
        "votes": [],
    }


def result() -> CheckResultIn:
    return CheckResultIn(
        verdict="pass", detail="ok", evidence={"rtt_ms": 1.0}, signature="0x" + "1" * 130
    )


def client(
    answer: Handler, seen: list[httpx.Request], account: LocalAccount | None = None
) -> Client:
    def handle(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return answer(request)

    return Client(BASE_URL, account, transport=httpx.MockTransport(handle))


def signer_of(request: httpx.Request) -> str:
    now = float(request.headers["x-gpunet-timestamp"])
    target = request.url.raw_path.decode()
    return verify_request(request.headers, request.method, target, request.content, now).address


def test_register_checker_posts_a_signed_registration(
    account: LocalAccount, answer_json: JsonAnswer
) -> None:
    seen: list[httpx.Request] = []
    api = client(lambda r: answer_json(200, checker_json(account.address)), seen, account)

    checker = api.register_checker(CheckerRegistration(agent_version="1.2", operator=None))

    sent = seen[0]
    assert (sent.method, sent.url.path) == ("POST", "/v1/checkers")
    assert json.loads(sent.content) == {"agent_version": "1.2", "operator": None}
    assert signer_of(sent) == account.address
    assert checker.results_total == 7 and checker.reward_eligible


def test_checker_tasks_is_a_signed_long_poll(
    account: LocalAccount, answer_json: JsonAnswer
) -> None:
    seen: list[httpx.Request] = []
    batch = {"epoch": 3, "epoch_s": 10.0, "tasks": [task_json()]}
    api = client(lambda r: answer_json(200, batch), seen, account)

    tasks = api.checker_tasks(wait_s=15)

    sent = seen[0]
    assert (sent.method, sent.url.path) == ("GET", "/v1/checkers/me/tasks")
    assert sent.url.params["wait_s"] == "15"
    assert signer_of(sent) == account.address
    # The client waits long enough for the indexer to hold the poll.
    assert sent.extensions["timeout"]["read"] >= 15
    assert [t.check_id for t in tasks.tasks] == [CHECK_ID]


def test_report_check_posts_the_result_signed(
    account: LocalAccount, answer_json: JsonAnswer
) -> None:
    seen: list[httpx.Request] = []
    ack = {"check_id": CHECK_ID, "accepted": True, "state": "closed", "verdict": "pass"}
    api = client(lambda r: answer_json(200, ack), seen, account)

    answer = api.report_check(CHECK_ID, result())

    sent = seen[0]
    assert (sent.method, sent.url.path) == ("POST", f"/v1/checks/{CHECK_ID}/results")
    assert json.loads(sent.content) == result().model_dump(mode="json")
    assert signer_of(sent) == account.address
    assert (answer.state, answer.verdict) == ("closed", "pass")


def test_report_refusal_is_an_api_error(account: LocalAccount, answer_error: ErrorAnswer) -> None:
    api = client(lambda r: answer_error(409, "conflict", "already reported"), [], account)

    with pytest.raises(ApiError) as caught:
        api.report_check(CHECK_ID, result())

    assert caught.value.status_code == 409


def test_check_output_reads_bytes_signed(account: LocalAccount) -> None:
    seen: list[httpx.Request] = []
    api = client(lambda r: httpx.Response(200, content=b"\x00bytes"), seen, account)

    data = api.check_output(CHECK_ID, SHA)

    assert data == b"\x00bytes"
    assert seen[0].url.path == f"/v1/checks/{CHECK_ID}/outputs/{SHA}"
    assert signer_of(seen[0]) == account.address


def test_reads_need_no_account(answer_json: JsonAnswer) -> None:
    seen: list[httpx.Request] = []
    address = "0x" + "01" * 20
    node_checks = {
        "node_id": NODE_ID,
        "reputation": {"score": 0.6, "capacity": 0.5, "liveness": 0.9, "delivery": 0.5},
        "checks": [check_json()],
        "penalties": [],
    }
    answers = {
        "/v1/checkers": {"checkers": [checker_json(address)]},
        f"/v1/checkers/{address}": checker_json(address),
        f"/v1/nodes/{NODE_ID}/checks": node_checks,
        f"/v1/checks/{CHECK_ID}": check_json(),
    }
    api = client(lambda r: answer_json(200, answers[r.url.path]), seen)

    assert api.list_checkers().checkers[0].address == address
    assert api.get_checker(address).address == address
    assert api.node_checks(NODE_ID, limit=5).reputation.liveness == 0.9
    assert api.get_check(CHECK_ID).check_id == CHECK_ID
    assert seen[2].url.params["limit"] == "5"
    assert all("x-gpunet-signature" not in request.headers for request in seen)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda api: api.get_check("c-nothex"), "check_id"),
        (lambda api: api.report_check("../admin", result()), "check_id"),
        (lambda api: api.get_checker("0x123"), "address"),
        (lambda api: api.node_checks(NODE_ID, limit=0), "limit"),
        (lambda api: api.check_output(CHECK_ID, "ABC"), "sha256"),
        (lambda api: api.settlements(limit=0), "limit"),
        (lambda api: api.settlement(-1), "epoch"),
        (lambda api: api.rewards("alice"), "account"),
    ],
)
def test_bad_arguments_fail_before_sending(
    account: LocalAccount, call: Callable[[Client], object], field: str
) -> None:
    seen: list[httpx.Request] = []
    api = client(lambda r: httpx.Response(500), seen, account)

    with pytest.raises(ValidationError) as caught:
        call(api)

    assert caught.value.field == field
    assert seen == []


def test_settlements_and_rewards_are_plain_reads(answer_json: JsonAnswer) -> None:
    seen: list[httpx.Request] = []
    account = "0x" + "0a" * 20
    part = {"emission": "10", "budget": "12", "paid": "11", "carry": "1"}
    settled = {
        "epoch": 7,
        "settled_at": WHEN,
        "status": "posted",
        "root": "0x" + "11" * 32,
        "reward_total": "33",
        "fee_total": "0",
        "carry_out": "3",
        "leaves": 2,
        "parts": {"capacity": part, "delivery": part, "checkers": part},
        "slashed": {},
        "posted_at": WHEN,
        "post_tx": "0x" + "22" * 32,
        "post_error": None,
    }
    claim = {"epoch": 7, "reward": "11", "fee": "0", "proof": ["0x" + "33" * 32],
             "root": settled["root"], "status": "posted"}  # fmt: skip
    answers = {
        "/v1/settlements": {"settlements": [settled]},
        "/v1/settlements/7": settled,
        f"/v1/rewards/{account}": {"account": account, "claims": [claim]},
    }
    api = client(lambda r: answer_json(200, answers[r.url.path]), seen)

    assert api.settlements(limit=3).settlements[0].parts["capacity"].paid == "11"
    assert api.settlement(7).status == "posted"
    assert api.rewards(account).claims[0].proof == claim["proof"]
    assert seen[0].url.params["limit"] == "3"
    assert all("x-gpunet-signature" not in request.headers for request in seen)


def test_signed_checker_calls_need_an_account() -> None:
    api = client(lambda r: httpx.Response(500), [])

    with pytest.raises(AccountRequired):
        api.checker_tasks()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_async_client_shares_the_checker_calls(
    account: LocalAccount, answer_json: JsonAnswer
) -> None:
    seen: list[httpx.Request] = []
    ack = {"check_id": CHECK_ID, "accepted": True, "state": "open", "verdict": None}
    answers = {
        "/v1/checkers": checker_json(account.address),
        "/v1/checkers/me/tasks": {"epoch": 1, "epoch_s": 10.0, "tasks": []},
        f"/v1/checks/{CHECK_ID}/results": ack,
    }

    async def handle(request: httpx.Request) -> httpx.Response:
        await request.aread()
        seen.append(request)
        return answer_json(200, answers[request.url.path])

    async with AsyncClient(BASE_URL, account, transport=httpx.MockTransport(handle)) as api:
        registered = await api.register_checker()
        batch = await api.checker_tasks(wait_s=0)
        acked = await api.report_check(CHECK_ID, result())

    assert registered.address == account.address
    assert batch.tasks == []
    assert acked.state == "open"
    assert [signer_of(request) for request in seen] == [account.address] * 3
