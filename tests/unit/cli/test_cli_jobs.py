"""``gpunet quote|run|jobs|job|session`` against a fake indexer (``httpx.MockTransport``)."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from typer.testing import CliRunner

from gpunet.cli import accounts, jobs
from gpunet.cli.job_views import duration
from gpunet.cli.main import app
from gpunet.keys import new_key
from gpunet.protocol.auth import verify_request
from gpunet.sdk import Client

JOB_ID = "j-0123456789abcdef"
NODE_ID = "n-0123456789ab"
OPERATOR = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
WHEN = "2025-01-01T00:00:00Z"
SPEC = """\
name: train
command: python train.py
max_price: 2.50
max_duration: 1h
resources:
  gpu_count: 2
  gpu_model: H100
inputs: [train.py]
outputs: [model.bin]
"""
LEASE = {
    "node_id": NODE_ID,
    "operator": OPERATOR,
    "gpu_model": "H100",
    "gpu_count": 2,
    "vram_mib": 81559,
    "price_micros": 1_990_000,
}
MODEL = b"\x00weights\x01"


def event(
    seq: int, to_state: str, event_name: str | None = None, cause: str = ""
) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": WHEN,
        "from_state": None,
        "to_state": to_state,
        "event": event_name,
        "cause": cause or f"now {to_state}",
        "node_id": NODE_ID,
    }


def log(seq: int, line: str, stream: str = "stdout") -> dict[str, Any]:
    return {"seq": seq, "at": WHEN, "attempt": 1, "stream": stream, "line": line}


def ref(path: str, content: bytes) -> dict[str, Any]:
    return {"path": path, "sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}


class FakeIndexer:
    """Just enough of the indexer's job routes; every request is kept in ``seen``."""

    def __init__(self, state: str = "succeeded", kind: str = "job") -> None:
        self.seen: list[httpx.Request] = []
        self.state = state
        self.kind = kind
        self.events = [event(1, "matched"), event(2, "running"), event(3, state)]
        self.lines = [log(1, "epoch 1 loss 0.5"), log(2, "warming up", "stderr")]
        self.outputs = {"model.bin": MODEL}
        self.refs = [ref("model.bin", MODEL)]
        self.session = {
            "job_id": JOB_ID,
            "state": "running",
            "endpoint": "node.test:7000",
            "token": "s3cret-token",
            "port": 8888,
        }
        self.quote: dict[str, Any] = {}
        self.lock = threading.Lock()

    def job(self, state: str | None = None) -> dict[str, Any]:
        return {
            "job_id": JOB_ID,
            "name": "train",
            "kind": self.kind,
            "buyer": OPERATOR,
            "state": state or self.state,
            "attempts": 1,
            "created_at": WHEN,
            "updated_at": WHEN,
            "lease": LEASE,
            "hold_micros": 0,
            "charged_micros": 110_555,
            "usage_s": 100.0,
            "outputs": self.refs,
            "spec": {
                "name": "train",
                "kind": self.kind,
                "command": ["python", "train.py"],
                "max_price_micros": 2_500_000,
                "max_duration_s": 3600,
                "resources": {"gpu_count": 2, "gpu_model": "H100"},
            },
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with self.lock:
            self.seen.append(request)
        path = request.url.path.removeprefix("/v1")
        base = f"/jobs/{JOB_ID}"
        after = int(request.url.params.get("after", "0"))
        if path == "/jobs/quote":
            return httpx.Response(200, json=self.quote)
        if path.startswith("/blobs/") or (path == "/jobs" and request.method == "POST"):
            return httpx.Response(201, json=self.job("queued"))
        if path == "/jobs":
            summary = {k: self.job()[k] for k in ("job_id", "name", "kind", "buyer", "state")}
            summary |= {"node_id": NODE_ID, "price_micros": 1_990_000, "charged_micros": 5}
            summary |= {"created_at": WHEN, "updated_at": WHEN}
            return httpx.Response(200, json={"jobs": [summary], "total": 1})
        if path == base + "/events":
            page = [e for e in self.events if e["seq"] > after]
            last = page[-1]["seq"] if page else after
            return httpx.Response(
                200, json={"events": page, "state": self.state, "next_after": last}
            )
        if path == base + "/logs":
            lines = [line for line in self.lines if line["seq"] > after]
            last = lines[-1]["seq"] if lines else after
            return httpx.Response(
                200, json={"lines": lines, "state": self.state, "next_after": last}
            )
        if path == base + "/cancel":
            return httpx.Response(200, json=self.job("cancelled"))
        if path == base + "/session":
            return httpx.Response(200, json=self.session)
        if path.startswith(base + "/outputs/"):
            return httpx.Response(200, content=self.outputs[path.removeprefix(base + "/outputs/")])
        if path == base:
            return httpx.Response(200, json=self.job())
        return httpx.Response(404, json={"error": "not_found", "message": f"no route {path}"})

    def requests(self, method: str, suffix: str) -> list[httpx.Request]:
        return [r for r in self.seen if r.method == method and r.url.path.endswith(suffix)]


@pytest.fixture
def indexer(monkeypatch: pytest.MonkeyPatch) -> FakeIndexer:
    fake = FakeIndexer()

    def client(url: str, account: LocalAccount | None = None) -> Client:
        return Client(url, account, transport=httpx.MockTransport(fake))

    monkeypatch.setattr(accounts, "Client", client)
    return fake


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "job.yaml").write_text(SPEC)
    (folder / "train.py").write_text("print('train')\n")
    return folder


def signer(request: httpx.Request) -> str:
    now = float(request.headers["x-gpunet-timestamp"])
    target = request.url.raw_path.decode()
    return verify_request(request.headers, request.method, target, request.content, now).address


# -- quote --

QUOTE = {
    "qualifying": 3,
    "checked": 12,
    "best": {
        "node_id": NODE_ID,
        "gpu": "H100",
        "gpu_count": 2,
        "price_micros": 1_990_000,
        "region": "eu-west",
        "state": "idle",
        "qualifies": True,
    },
    "price_micros": 1_990_000,
    "units": 2,
    "duration_s": 3600,
    "estimated_micros": 3_980_000,
    "hold_micros": 5_000_000,
    "reference_micros": 7_960_000,
    "reference_source": "on-demand H100, 2025",
    "savings_pct": 50.0,
    "offers": [],
}


def test_quote_shows_price_counts_cost_hold_and_savings(
    runner: CliRunner, home: Path, indexer: FakeIndexer, spec_dir: Path
) -> None:
    indexer.quote = QUOTE

    result = runner.invoke(app, ["quote", str(spec_dir / "job.yaml")], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    for text in ("1.99 USD per GPU-hour", "3 of 12", "3.98 USD for 1h", "5.00 USD", "save 50%"):
        assert text in result.stdout
    sent = json.loads(indexer.seen[0].content)["spec"]
    assert sent["max_price_micros"] == 2_500_000
    assert "x-gpunet-signature" not in indexer.seen[0].headers


def test_quote_without_a_qualifying_offer_says_why_and_exits_1(
    runner: CliRunner, home: Path, indexer: FakeIndexer, spec_dir: Path
) -> None:
    near = {**QUOTE["best"], "qualifies": False, "reason": "price 3.10 above your max 2.50"}
    indexer.quote = {
        **QUOTE,
        "qualifying": 0,
        "best": None,
        "price_micros": None,
        "estimated_micros": None,
        "offers": [near],
        "advice": "raise max_price to 3.10",
    }

    result = runner.invoke(app, ["quote", str(spec_dir / "job.yaml")], env={"COLUMNS": "200"})

    assert result.exit_code == 1
    assert "no offer qualifies" in result.stdout
    assert "price 3.10 above your max 2.50" in result.stdout
    assert "advice: raise max_price to 3.10" in result.stdout


def test_quote_json_is_the_indexers_answer(
    runner: CliRunner, home: Path, indexer: FakeIndexer, spec_dir: Path
) -> None:
    indexer.quote = QUOTE

    result = runner.invoke(app, ["quote", str(spec_dir / "job.yaml"), "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hold_micros"] == 5_000_000


def test_a_bad_spec_is_one_line_and_exit_2(
    runner: CliRunner, home: Path, indexer: FakeIndexer, tmp_path: Path
) -> None:
    (tmp_path / "job.yaml").write_text("name: x\ncommand: run\nmax_price: -1\n")

    result = runner.invoke(app, ["quote", str(tmp_path / "job.yaml")])

    assert result.exit_code == 2
    assert result.stderr.startswith("error: max_price")
    assert len(result.stderr.strip().splitlines()) == 1
    assert indexer.seen == []


# -- run --


def test_run_uploads_follows_downloads_and_bills(
    runner: CliRunner, home: Path, indexer: FakeIndexer, spec_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"

    result = runner.invoke(app, ["run", str(spec_dir / "job.yaml"), "--out", str(out)])

    assert result.exit_code == 0, result.output
    upload = indexer.requests("PUT", hashlib.sha256(b"print('train')\n").hexdigest())[0]
    submit = indexer.requests("POST", "/v1/jobs")[0]
    assert signer(upload) == signer(submit)
    assert json.loads(submit.content)["inputs"][0]["path"] == "train.py"
    assert "epoch 1 loss 0.5" in result.stdout
    assert "warming up" in result.stderr and "warming up" not in result.stdout
    assert f"matched to node {NODE_ID}: 2 x H100, 79.6 GiB each at 1.99 USD" in result.stderr
    assert (out / "model.bin").read_bytes() == MODEL
    # 2 GPUs x 1.99 USD x 1 h held; 0.110555 charged, 20% of it the fee.
    for text in ("charged:  0.110555 USD", "fee 0.022111 USD", "3.98 USD, refunded 3.869445"):
        assert text in result.stdout


def test_run_of_a_failed_job_exits_1(
    runner: CliRunner, home: Path, indexer: FakeIndexer, spec_dir: Path, tmp_path: Path
) -> None:
    indexer.state = "failed"
    indexer.events[-1] = event(3, "failed", "fail", "exit code 3")
    indexer.refs, indexer.outputs = [], {}

    result = runner.invoke(app, ["run", str(spec_dir / "job.yaml"), "--out", str(tmp_path)])

    assert result.exit_code == 1
    assert "failed: exit code 3" in result.stderr
    assert "bill for" in result.stdout


def test_run_refuses_an_output_with_the_wrong_hash(
    runner: CliRunner, home: Path, indexer: FakeIndexer, spec_dir: Path, tmp_path: Path
) -> None:
    indexer.outputs = {"model.bin": b"tampered"}

    result = runner.invoke(app, ["run", str(spec_dir / "job.yaml"), "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "error: output 'model.bin'" in result.stderr
    assert not (tmp_path / "model.bin").exists()


def test_run_checks_every_input_before_contacting_the_indexer(
    runner: CliRunner, home: Path, indexer: FakeIndexer, spec_dir: Path
) -> None:
    (spec_dir / "train.py").unlink()

    result = runner.invoke(app, ["run", str(spec_dir / "job.yaml")])

    assert result.exit_code == 2
    assert result.stderr.startswith("error: inputs[0].source:")
    assert indexer.seen == []


def test_run_refuses_a_session_spec(
    runner: CliRunner, home: Path, indexer: FakeIndexer, spec_dir: Path
) -> None:
    (spec_dir / "s.yaml").write_text("name: s\nkind: session\ncommand: sleep 1\nmax_price: 1\n")

    result = runner.invoke(app, ["run", str(spec_dir / "s.yaml")])

    assert result.exit_code == 2
    assert "gpunet session open" in result.stderr


def interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    def follow(*args: object, **kwargs: object) -> Iterator[Any]:
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(jobs, "follow", follow)


def test_ctrl_c_asks_and_cancels(
    runner: CliRunner,
    home: Path,
    indexer: FakeIndexer,
    spec_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    interrupt(monkeypatch)
    indexer.state = "cancelled"

    result = runner.invoke(
        app, ["run", str(spec_dir / "job.yaml"), "--out", str(tmp_path)], input="y\n"
    )

    assert result.exit_code == 1
    assert f"cancel job {JOB_ID}?" in result.stderr
    cancel = indexer.requests("POST", "/cancel")[0]
    assert json.loads(cancel.content) == {"reason": "cancelled by the buyer (Ctrl-C)"}


def test_ctrl_c_with_detach_leaves_the_job_running(
    runner: CliRunner,
    home: Path,
    indexer: FakeIndexer,
    spec_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    interrupt(monkeypatch)

    result = runner.invoke(app, ["run", str(spec_dir / "job.yaml"), "--detach"])

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == JOB_ID
    assert indexer.requests("POST", "/cancel") == []


def test_an_unreachable_indexer_is_one_line_and_exit_2(
    runner: CliRunner, home: Path, spec_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    def client(url: str, account: LocalAccount | None = None) -> Client:
        return Client(url, account, transport=httpx.MockTransport(refuse))

    monkeypatch.setattr(accounts, "Client", client)
    result = runner.invoke(
        app, ["run", str(spec_dir / "job.yaml"), "--indexer", "http://down.test"]
    )

    assert result.exit_code == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot reach the indexer at http://down.test")
    assert "Traceback" not in result.output


# -- jobs, job show, logs, cancel --


def test_jobs_lists_the_keys_jobs_by_default(
    runner: CliRunner, home: Path, indexer: FakeIndexer
) -> None:
    info = new_key("buyer", "correct horse", home / "keys", kdf="pbkdf2", iterations=2)

    mine = runner.invoke(app, ["jobs", "--state", "running"], env={"COLUMNS": "200"})
    everyone = runner.invoke(app, ["jobs", "--all", "--json"])

    assert mine.exit_code == 0, mine.output
    assert JOB_ID in mine.stdout
    assert dict(indexer.seen[0].url.params) == {
        "buyer": info.address,
        "state": "running",
        "limit": "100",
        "offset": "0",
    }
    assert "buyer" not in indexer.seen[1].url.params
    assert json.loads(everyone.stdout)["total"] == 1


def test_jobs_without_a_key_says_how_to_fix_it(
    runner: CliRunner, home: Path, indexer: FakeIndexer
) -> None:
    result = runner.invoke(app, ["jobs"])

    assert result.exit_code == 2
    assert "no key named 'buyer'" in result.stderr


def test_job_show_has_hardware_timeline_outputs_and_bill(
    runner: CliRunner, home: Path, indexer: FakeIndexer
) -> None:
    indexer.events.append(event(4, "running", "low_funds", "deposit below 1.00 USD"))

    result = runner.invoke(app, ["job", "show", JOB_ID], env={"COLUMNS": "200"})
    as_json = runner.invoke(app, ["job", "show", JOB_ID, "--json"])

    assert result.exit_code == 0, result.output
    for text in ("2 x H100", "1.99 USD per GPU-hour", "-> matched", "low funds", "model.bin"):
        assert text in result.stdout
    assert "charged:" in result.stdout
    assert [e["seq"] for e in json.loads(as_json.stdout)["events"]] == [1, 2, 3, 4]


def test_job_logs_prints_every_line_and_follow_stops_at_the_end(
    runner: CliRunner, home: Path, indexer: FakeIndexer
) -> None:
    plain = runner.invoke(app, ["job", "logs", JOB_ID])
    followed = runner.invoke(app, ["job", "logs", JOB_ID, "--follow"])

    assert plain.exit_code == 0, plain.output
    assert plain.stdout == "epoch 1 loss 0.5\n"
    assert "warming up" in plain.stderr
    assert followed.exit_code == 0, followed.output
    assert followed.stdout == "epoch 1 loss 0.5\n"
    assert "succeeded" in followed.stderr


def test_job_cancel_is_signed_by_the_buyer(
    runner: CliRunner, home: Path, indexer: FakeIndexer
) -> None:
    info = new_key("buyer", "correct horse", home / "keys", kdf="pbkdf2", iterations=2)

    result = runner.invoke(app, ["job", "cancel", JOB_ID, "--reason", "wrong data"])

    assert result.exit_code == 0, result.output
    assert "cancelled" in result.stdout
    request = indexer.requests("POST", "/cancel")[0]
    assert signer(request) == info.address
    assert json.loads(request.content) == {"reason": "wrong data"}


def test_a_bad_job_id_is_refused(runner: CliRunner, home: Path, indexer: FakeIndexer) -> None:
    result = runner.invoke(app, ["job", "show", "j-nope"])

    assert result.exit_code == 2
    assert result.stderr.startswith("error: job_id:")
    assert indexer.seen == []


# -- sessions --

SESSION_SPEC = "name: lab\nkind: session\ncommand: jupyter lab\nmax_price: 1\nexpose_port: 8888\n"


def test_session_open_waits_until_running_and_prints_how_to_connect(
    runner: CliRunner, home: Path, indexer: FakeIndexer, tmp_path: Path
) -> None:
    (tmp_path / "s.yaml").write_text(SESSION_SPEC)
    indexer.kind, indexer.state = "session", "running"
    indexer.events = indexer.events[:2]

    result = runner.invoke(app, ["session", "open", str(tmp_path / "s.yaml")])

    assert result.exit_code == 0, result.output
    assert "node.test:7000" in result.stdout
    assert f"gpunet session connect {JOB_ID} --local-port 8888" in result.stdout
    assert "s3cret-token" not in result.output
    assert signer(indexer.requests("GET", "/session")[0])


def test_session_open_refuses_a_job_spec(
    runner: CliRunner, home: Path, indexer: FakeIndexer, spec_dir: Path
) -> None:
    result = runner.invoke(app, ["session", "open", str(spec_dir / "job.yaml")])

    assert result.exit_code == 2
    assert "kind: session" in result.stderr


def test_session_close_cancels_and_bills(
    runner: CliRunner, home: Path, indexer: FakeIndexer
) -> None:
    new_key("buyer", "correct horse", home / "keys", kdf="pbkdf2", iterations=2)
    indexer.kind = "session"

    result = runner.invoke(app, ["session", "close", JOB_ID])

    assert result.exit_code == 0, result.output
    assert f"closed session {JOB_ID}" in result.stdout
    assert json.loads(indexer.requests("POST", "/cancel")[0].content)["reason"] == (
        "closed by the buyer"
    )


def test_session_connect_forwards_and_reports_news_until_the_end(
    runner: CliRunner, home: Path, indexer: FakeIndexer, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_key("buyer", "correct horse", home / "keys", kdf="pbkdf2", iterations=2)
    indexer.kind, indexer.state = "session", "running"
    indexer.events = [event(1, "matched"), event(2, "running")]
    calls: list[tuple[str, str, int]] = []

    def connect_local(
        endpoint: str,
        token: str,
        local_port: int,
        stop: threading.Event,
        *,
        ready: Callable[[tuple[str, int]], None],
    ) -> None:
        calls.append((endpoint, token, local_port))
        ready(("127.0.0.1", local_port))
        indexer.events.append(event(3, "running", "low_funds", "deposit covers 5 more minutes"))
        indexer.events.append(event(4, "cancelled", "cancel", "deposit ran out"))
        indexer.state = "cancelled"
        assert stop.wait(timeout=10), "the session's end did not stop the forwarder"

    forward = types.ModuleType("gpunet.node.forward")
    forward.connect_local = connect_local  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gpunet.node.forward", forward)

    result = runner.invoke(app, ["session", "connect", JOB_ID, "--local-port", "9999"])

    assert result.exit_code == 0, result.output
    assert calls == [("node.test:7000", "s3cret-token", 9999)]
    assert "forwarding 127.0.0.1:9999" in result.stderr
    assert "low funds: deposit covers 5 more minutes" in result.stderr
    assert "cancelled: deposit ran out" in result.stderr
    assert "matched to node" not in result.stderr  # old news is not repeated
    assert "has ended" in result.stderr


def test_session_connect_to_a_session_not_running_is_refused(
    runner: CliRunner, home: Path, indexer: FakeIndexer
) -> None:
    new_key("buyer", "correct horse", home / "keys", kdf="pbkdf2", iterations=2)
    indexer.session = {**indexer.session, "state": "queued", "endpoint": None, "token": None}

    result = runner.invoke(app, ["session", "connect", JOB_ID])

    assert result.exit_code == 2
    assert "is queued and has no endpoint yet" in result.stderr


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["run"], ["--out", "gpunet-out", "--detach", "Exits 0", "Ctrl-C"]),
        (["quote"], ["GPU-hour", "exits 1", "--json"]),
        (["jobs"], ["--all", "--state", "--json"]),
        (["job", "logs"], ["--follow"]),
        (["session", "connect"], ["--local-port", "Ctrl-C"]),
    ],
)
def test_help_explains(runner: CliRunner, command: list[str], expected: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    for text in expected:
        assert text in result.stdout


def test_duration_reads_like_the_spec() -> None:
    assert (duration(5400), duration(90), duration(0), duration(86400)) == (
        "1h30m",
        "1m30s",
        "0s",
        "1d",
    )
