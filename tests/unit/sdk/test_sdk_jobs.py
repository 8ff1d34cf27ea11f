"""Jobs, sessions, blobs and accounts in the SDK: requests, long polls and buyer workflows."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from gpunet.api.jobs import FileRef, FinishIn, JobDetail, JobEvent, LogEntry, LogLine
from gpunet.errors import ApiError, ValidationError
from gpunet.protocol.auth import HEADER_SIGNATURE, verify_request
from gpunet.protocol.receipts import outputs_digest
from gpunet.sdk import AccountRequired, AsyncClient, Client
from gpunet.sdk._core import ApiCore
from gpunet.sdk.jobs import (
    OutputMismatch,
    download_outputs,
    follow,
    submit_spec_file,
)

NOW = 1_764_072_000.0
BASE_URL = "http://indexer.test:8700"
JOB_ID = "j-0123456789abcdef"
NODE_ID = "n-0123456789ab"
WHEN = "2025-01-01T00:00:00Z"
Handler = Callable[[httpx.Request], httpx.Response]


def core(account: LocalAccount | None) -> ApiCore:
    return ApiCore(BASE_URL, account, clock=lambda: NOW, nonce=lambda: "f" * 32)


def verified(request: httpx.Request) -> str:
    """The signer of ``request``, checked over its exact path, query and body."""
    target = request.url.raw_path.decode()
    now = float(request.headers["x-gpunet-timestamp"])
    signed = verify_request(request.headers, request.method, target, request.content, now=now)
    return signed.address


def reply(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body)


def client(
    answer: Handler, seen: list[httpx.Request], account: LocalAccount | None = None
) -> Client:
    def handle(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return answer(request)

    return Client(BASE_URL, account, transport=httpx.MockTransport(handle))


def job_json(state: str = "queued", outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "job_id": JOB_ID,
        "name": "train",
        "kind": "job",
        "buyer": "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23",
        "state": state,
        "attempts": 1,
        "created_at": WHEN,
        "updated_at": WHEN,
        "hold_micros": 0,
        "charged_micros": 0,
        "outputs": outputs or [],
        "spec": {"name": "train"},
    }


def event_json(seq: int, from_state: str | None, to_state: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": WHEN,
        "from_state": from_state,
        "to_state": to_state,
        "event": None,
        "cause": f"to {to_state}",
        "node_id": NODE_ID,
    }


def line_json(seq: int, line: str) -> dict[str, Any]:
    return {"seq": seq, "at": WHEN, "attempt": 1, "stream": "stdout", "line": line}


def ref_json(path: str, content: bytes) -> dict[str, Any]:
    return {"path": path, "sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}


# -- requests --


def test_blob_upload_is_raw_bytes_signed_and_named_by_hash(account: LocalAccount) -> None:
    data = b"\x00\x01rows\n"

    call = core(account).upload_blob(data)

    request = call.request
    digest = hashlib.sha256(data).hexdigest()
    assert (request.method, request.url.path) == ("PUT", f"/v1/blobs/{digest}")
    assert request.content == data
    assert request.headers["content-type"] == "application/octet-stream"
    assert verified(request) == account.address
    assert call.parse(httpx.Response(201, request=request)) == digest


def test_an_empty_output_is_still_sent_as_octet_stream(account: LocalAccount) -> None:
    request = core(account).put_output(JOB_ID, b"").request

    assert request.url.path == f"/v1/jobs/{JOB_ID}/outputs/{hashlib.sha256(b'').hexdigest()}"
    assert request.headers["content-type"] == "application/octet-stream"
    assert verified(request) == account.address


def test_tampered_bytes_fail_verification(account: LocalAccount) -> None:
    request = core(account).put_checkpoint(JOB_ID, b"checkpoint").request

    with pytest.raises(Exception, match="wrong key"):
        verify_request(request.headers, "PUT", request.url.path, b"checkpoinT", now=NOW)


def test_long_poll_timeout_is_the_wait_plus_the_normal_timeout() -> None:
    api = ApiCore(BASE_URL, timeout_s=10.0)

    request = api.job_logs(JOB_ID, 7, 20.0).request

    assert dict(request.url.params) == {"after": "7", "wait_s": "20"}
    assert request.extensions["timeout"]["read"] == 30.0
    assert HEADER_SIGNATURE not in request.headers


def test_node_poll_is_signed_over_its_query(account: LocalAccount) -> None:
    request = core(account).poll_work(NODE_ID, 2.5).request

    assert request.url.raw_path.decode() == f"/v1/nodes/{NODE_ID}/work?wait_s=2.5"
    assert verified(request) == account.address
    assert request.extensions["timeout"]["read"] == 12.5


@pytest.mark.parametrize("wait_s", [-1.0, float("nan"), 31.0])
def test_a_bad_wait_is_refused(wait_s: float) -> None:
    with pytest.raises(ValidationError, match="wait_s"):
        core(None).job_events(JOB_ID, 0, wait_s)


def test_output_path_segments_are_quoted_and_slashes_kept(account: LocalAccount) -> None:
    request = core(account).download_output(JOB_ID, "out dir/a#1?.csv").request

    assert request.url.raw_path.decode() == f"/v1/jobs/{JOB_ID}/outputs/out%20dir/a%231%3F.csv"
    assert request.method == "GET"
    assert "content-type" not in request.headers
    assert verified(request) == account.address


@pytest.mark.parametrize("path", ["../secret", "a/../../b", "/etc/passwd", "a//b", "./a"])
def test_paths_that_could_leave_the_work_dir_are_refused(account: LocalAccount, path: str) -> None:
    with pytest.raises(ValidationError, match="relative path inside"):
        core(account).get_input(JOB_ID, path)


@pytest.mark.parametrize("job_id", ["j-123", "../nodes", "J-0123456789ABCDEF"])
def test_a_bad_job_id_is_refused_before_sending(job_id: str) -> None:
    with pytest.raises(ValidationError, match="job_id"):
        core(None).get_job(job_id)


def test_a_bad_amount_is_a_validation_error_naming_the_field(account: LocalAccount) -> None:
    with pytest.raises(ValidationError, match="amount_micros"):
        core(account).deposit(0)


def test_a_bad_address_is_refused() -> None:
    with pytest.raises(ValidationError, match="address"):
        core(None).get_account("0x12/../../nodes")


def test_quote_is_unsigned_and_needs_no_account() -> None:
    request = core(None).quote({"name": "x"}).request

    assert (request.method, request.url.path) == ("POST", "/v1/jobs/quote")
    assert json.loads(request.content) == {"spec": {"name": "x"}}
    assert HEADER_SIGNATURE not in request.headers


def test_session_access_needs_an_account() -> None:
    with pytest.raises(AccountRequired, match=f"GET /v1/jobs/{JOB_ID}/session"):
        core(None).session_access(JOB_ID)


# -- the sync client --


def test_submit_sends_spec_and_inputs_signed(account: LocalAccount) -> None:
    seen: list[httpx.Request] = []
    ref = FileRef(path="data/a.csv", sha256="a" * 64, size=3)
    api = client(lambda r: reply(201, job_json()), seen, account)

    job = api.submit_job({"name": "train"}, [ref])

    assert job.job_id == JOB_ID
    assert json.loads(seen[0].content) == {
        "spec": {"name": "train"},
        "inputs": [{"path": "data/a.csv", "sha256": "a" * 64, "size": 3}],
    }
    assert verified(seen[0]) == account.address


def test_list_jobs_sends_filters() -> None:
    seen: list[httpx.Request] = []
    api = client(lambda r: reply(200, {"jobs": [], "total": 0}), seen)

    assert api.list_jobs(buyer="0xabc", state="running", limit=5).total == 0
    assert dict(seen[0].url.params) == {
        "buyer": "0xabc",
        "state": "running",
        "limit": "5",
        "offset": "0",
    }


def test_no_content_and_raw_bytes_answers(account: LocalAccount) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/logs"):
            return httpx.Response(204)
        return httpx.Response(200, content=b"\x89PNG", headers={"content-type": "image/png"})

    api = client(answer, seen, account)
    lines = [LogEntry(stream="stdout", line="epoch 1")]

    assert api.append_logs(JOB_ID, 1, lines) is None
    assert api.get_input(JOB_ID, "data/a.png") == b"\x89PNG"
    assert json.loads(seen[0].content) == {
        "attempt": 1,
        "lines": [{"stream": "stdout", "line": "epoch 1"}],
    }


def test_a_missing_checkpoint_is_an_api_error(account: LocalAccount) -> None:
    body = {"error": "not_found", "message": "no checkpoint", "field": None, "value": None}
    api = client(lambda r: reply(404, body), [], account)

    with pytest.raises(ApiError) as caught:
        api.get_checkpoint(JOB_ID)

    assert (caught.value.status_code, caught.value.code) == (404, "not_found")


def test_finish_sends_the_receipt(account: LocalAccount) -> None:
    seen: list[httpx.Request] = []
    ack = {"state": "succeeded", "hold_micros": 0, "charged_micros": 5, "low_funds": False}
    api = client(lambda r: reply(200, ack), seen, account)
    receipt = FinishIn(attempt=1, outcome="succeeded", exit_code=0, usage_s=12.5)

    assert api.finish_job(JOB_ID, receipt).charged_micros == 5
    assert seen[0].url.path == f"/v1/jobs/{JOB_ID}/finish"
    assert json.loads(seen[0].content)["usage_s"] == 12.5


def test_auto_topup_and_account_calls(account: LocalAccount) -> None:
    seen: list[httpx.Request] = []
    view = {
        "address": account.address,
        "available_micros": 5,
        "held_micros": 0,
        "earned_micros": 0,
        "deposited_micros": 5,
        "withdrawn_micros": 0,
    }
    api = client(lambda r: reply(200, view), seen, account)

    api.set_auto_topup(10, 2, 100)
    api.withdraw(1)
    api.get_account(account.address)

    assert [(r.method, r.url.path) for r in seen] == [
        ("PUT", "/v1/accounts/auto-topup"),
        ("POST", "/v1/accounts/withdraw"),
        ("GET", f"/v1/accounts/{account.address}"),
    ]
    assert json.loads(seen[0].content) == {
        "amount_micros": 10,
        "threshold_micros": 2,
        "limit_micros": 100,
    }
    assert HEADER_SIGNATURE not in seen[2].headers


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_client_speaks_the_same_node_calls(
    account: LocalAccount, anyio_backend: str
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/work"):
            return reply(200, {"assignments": [], "cancel": [JOB_ID]})
        return httpx.Response(201)

    transport = httpx.MockTransport(answer)
    async with AsyncClient(BASE_URL, account, transport=transport) as api:
        work = await api.poll_work(NODE_ID, wait_s=1)
        digest = await api.put_output(JOB_ID, b"result")

    assert work.cancel == [JOB_ID]
    assert digest == hashlib.sha256(b"result").hexdigest()
    assert seen[1].headers["content-type"] == "application/octet-stream"


# -- submit a spec file --

SPEC = """\
name: train
command: python train.py
max_price: 2.50
inputs:
  - train.py
  - source: data/rows.csv
    target: data.csv
"""


def test_a_missing_input_is_refused_before_any_upload(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(SPEC)
    (tmp_path / "train.py").write_text("print(1)\n")
    seen: list[httpx.Request] = []

    with pytest.raises(ValidationError) as caught:
        submit_spec_file(client(lambda r: reply(500, {}), seen), tmp_path / "job.yaml")

    assert caught.value.field == "inputs[1].source"
    assert "data/rows.csv" in str(caught.value)
    assert seen == []


def test_a_spec_file_is_uploaded_and_submitted(tmp_path: Path, account: LocalAccount) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "job.yaml").write_text(SPEC)
    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / "data" / "rows.csv").write_bytes(b"a,b\n1,2\n")
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        return reply(201, job_json() if request.url.path == "/v1/jobs" else {})

    job = submit_spec_file(client(answer, seen, account), tmp_path / "job.yaml")

    assert job.job_id == JOB_ID
    uploads, submit = seen[:2], seen[2]
    assert [r.content for r in uploads] == [b"print(1)\n", b"a,b\n1,2\n"]
    body = json.loads(submit.content)
    assert body["inputs"] == [
        ref_json("train.py", b"print(1)\n"),
        ref_json("data.csv", b"a,b\n1,2\n"),
    ]
    assert body["spec"]["max_price_micros"] == 2_500_000


# -- follow a job --


class Script:
    """A fake indexer that answers each feed with its next page, repeating the last."""

    def __init__(self, events: list[dict[str, Any]], logs: list[dict[str, Any]]) -> None:
        self.pages = {"events": events, "logs": logs}
        self.asked: dict[str, list[tuple[str, str]]] = {"events": [], "logs": []}
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        feed = request.url.path.rsplit("/", 1)[1]
        params = request.url.params
        with self.lock:
            asked = self.asked[feed]
            asked.append((params["after"], params["wait_s"]))
            pages = self.pages[feed]
            return reply(200, pages[min(len(asked), len(pages)) - 1])


def events_page(events: list[dict[str, Any]], state: str, next_after: int) -> dict[str, Any]:
    return {"events": events, "state": state, "next_after": next_after}


def logs_page(lines: list[dict[str, Any]], state: str, next_after: int) -> dict[str, Any]:
    return {"lines": lines, "state": state, "next_after": next_after}


def test_follow_yields_events_and_lines_in_order_and_drains_after_the_end() -> None:
    script = Script(
        events=[
            events_page([event_json(1, "queued", "matched")], "matched", 1),
            events_page([event_json(2, "matched", "running")], "running", 2),
            events_page([event_json(3, "running", "succeeded")], "succeeded", 3),
            events_page([], "succeeded", 3),
        ],
        logs=[
            logs_page([line_json(1, "one"), line_json(2, "two")], "running", 2),
            logs_page([line_json(3, "three")], "succeeded", 3),
            logs_page([line_json(4, "late")], "succeeded", 4),
            logs_page([], "succeeded", 4),
        ],
    )

    items = list(follow(client(script, []), JOB_ID, poll_s=5))

    events = [i.to_state for i in items if isinstance(i, JobEvent)]
    lines = [i.line for i in items if isinstance(i, LogLine)]
    assert events == ["matched", "running", "succeeded"]
    assert lines == ["one", "two", "three", "late"]
    assert script.asked["logs"] == [("0", "5"), ("2", "5"), ("3", "0"), ("4", "0")]
    assert script.asked["events"][-1] == ("3", "0")


def test_follow_can_start_later_and_skip_the_logs() -> None:
    script = Script(
        events=[
            events_page([event_json(3, "running", "failed")], "failed", 3),
            events_page([], "failed", 3),
        ],
        logs=[],
    )

    items = list(follow(client(script, []), JOB_ID, after_event=2, after_line=None))

    assert [i.seq for i in items] == [3]
    assert script.asked["events"][0][0] == "2"
    assert script.asked["logs"] == []


def test_follow_raises_an_error_of_either_feed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/logs"):
            body = {"error": "not_found", "message": "no job", "field": None, "value": None}
            return reply(404, body)
        return reply(200, events_page([], "running", 0))

    with pytest.raises(ApiError, match="no job"):
        list(follow(client(answer, []), JOB_ID, poll_s=0))


# -- download outputs --


def outputs_client(
    files: dict[str, bytes], seen: list[httpx.Request], receipts: list[dict[str, Any]] | None = None
) -> Client:
    """Serves ``files`` as the job's outputs; client receipts are kept in ``receipts``."""
    prefix = f"/v1/jobs/{JOB_ID}/outputs/"

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/v1/jobs/{JOB_ID}/receipt":
            (receipts if receipts is not None else []).append(json.loads(request.content))
            return httpx.Response(200, json=job_json("succeeded", []))
        return httpx.Response(200, content=files[request.url.path.removeprefix(prefix)])

    return client(answer, seen, Account.from_key("0x" + "22" * 32))


def finished(refs: list[dict[str, Any]]) -> JobDetail:
    return JobDetail.model_validate(job_json("succeeded", refs))


def test_outputs_are_checked_and_written(tmp_path: Path) -> None:
    files = {"model.bin": b"\x01\x02", "logs/run.txt": b"done\n"}
    job = finished([ref_json(path, data) for path, data in files.items()])

    receipts: list[dict[str, Any]] = []

    written = download_outputs(outputs_client(files, [], receipts), job, tmp_path / "out")

    assert written == [tmp_path / "out" / "model.bin", tmp_path / "out" / "logs" / "run.txt"]
    assert [p.read_bytes() for p in written] == list(files.values())
    assert not list((tmp_path / "out").rglob("*.part"))
    (receipt,) = receipts  # the buyer signs for what it checked
    pairs = [(ref.path, ref.sha256) for ref in job.outputs]
    assert receipt["verdict"] == "accepted"
    assert receipt["outputs_sha256"] == outputs_digest(pairs)


def test_a_mismatched_output_is_not_left_in_place(tmp_path: Path) -> None:
    job = finished([ref_json("a.txt", b"good"), ref_json("b.txt", b"right")])
    files = {"a.txt": b"good", "b.txt": b"wrong"}

    receipts: list[dict[str, Any]] = []

    with pytest.raises(OutputMismatch, match=r"'b.txt'.*not\s+saved"):
        download_outputs(outputs_client(files, [], receipts), job, tmp_path)

    assert [r["verdict"] for r in receipts] == ["disputed"]
    assert (tmp_path / "a.txt").read_bytes() == b"good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_an_output_that_would_escape_dest_is_refused_before_download(tmp_path: Path) -> None:
    refs = [ref_json("ok.txt", b"x"), ref_json("../escape.txt", b"x")]
    seen: list[httpx.Request] = []

    with pytest.raises(ValidationError, match=r"outputs\[1\]\.path"):
        download_outputs(outputs_client({}, seen), finished(refs), tmp_path / "out")

    assert seen == []
    assert not (tmp_path / "escape.txt").exists()


@pytest.fixture(autouse=True)
def _no_stray_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    stray = [t for t in threading.enumerate() if t not in before and t.name.startswith("follow")]
    for thread in stray:
        thread.join(timeout=2)
    assert not any(t.is_alive() for t in stray)
