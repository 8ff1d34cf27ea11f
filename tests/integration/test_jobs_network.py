"""Jobs and sessions end to end on a real local network: an indexer and three node agents.

The buyer is the SDK (and, once, the CLI) against the processes ``conftest.JobNetwork``
starts; jobs run in the nodes' bubblewrap sandboxes as uid 65534. Every test has a
fresh buyer; a test that needs one particular node sends its jobs to that node's region.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import uuid
from datetime import datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest

from gpunet.api.jobs import JobDetail, JobEvent, LogLine
from gpunet.node.forward import FORBIDDEN_REPLY, GREETING, connect_local, parse_endpoint
from gpunet.protocol.ledger import DEFAULT_FEE_BPS, usage_charge
from gpunet.protocol.receipts import (
    client_receipt_message,
    node_receipt_message,
    outputs_digest,
    signer_of,
)
from gpunet.sdk import Client
from gpunet.sdk.jobs import all_events, all_log_lines, download_outputs, follow, submit_spec_file

from .conftest import (
    DEPOSIT_MICROS,
    NODE_PRICE_MICROS,
    JobNetwork,
    child_env,
    submit,
    wait_ended,
    wait_for,
    wait_job,
)

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

EXAMPLES = Path(__file__).parents[2] / "examples" / "jobs"
SUMMARY_HEADER = (
    "region,gpu_model,orders,gpu_hours,revenue_usd,price_mean,price_median,price_min,"
    "price_max,price_stdev"
)
SESSION_PORT = 8000  # examples/jobs/session/job.yaml serves on it, on the node's loopback
HOST_FILE = Path("/etc/gpunet-test")
WRITE_OUTSIDE = f"open({str(HOST_FILE)!r}, 'w').write('escaped')"


def spec(name: str, command: list[str], **fields: Any) -> dict[str, Any]:
    """A small CPU job spec; ``fields`` add to it or replace its defaults."""
    return {
        "name": name,
        "command": command,
        "resources": {"cpu_cores": 1, "memory": "512MiB"},
        "max_price": "1.00",
        "max_duration": "2m",
        **fields,
    }


def log_text(api: Client, job_id: str, stream: str | None = None) -> str:
    lines = all_log_lines(api, job_id)
    return "\n".join(line.line for line in lines if stream in (None, line.stream))


def assert_billed_for_usage(api: Client, job: JobDetail) -> None:
    """The charge includes the 20% fee, and the buyer paid exactly the charge."""
    account = api.get_account(job.buyer)
    assert job.charged_micros > 0
    assert job.fee_micros == job.charged_micros * DEFAULT_FEE_BPS // 10_000
    assert job.hold_micros == 0
    assert job.refunded_micros == job.held_total_micros - job.charged_micros
    assert account.available_micros == DEPOSIT_MICROS - job.charged_micros
    assert account.held_micros == 0


def seconds_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def last_event(events: list[JobEvent], name: str) -> JobEvent:
    return [event for event in events if event.event == name][-1]


# -- example jobs --


def run_example(api: Client, example: str, dest: Path) -> tuple[JobDetail, list[LogLine]]:
    """Submit an example, follow it to its end, check its history, download its outputs."""
    submitted = submit_spec_file(api, EXAMPLES / example / "job.yaml")
    items = list(follow(api, submitted.job_id))
    events = [item for item in items if isinstance(item, JobEvent)]
    lines = [item for item in items if isinstance(item, LogLine)]
    job = api.get_job(submitted.job_id)

    assert job.state == "succeeded", (job.outcome, job.message, [line.line for line in lines])
    assert [event.to_state for event in events] == ["queued", "matched", "running", "succeeded"]
    assert job.lease is not None and job.lease.price_micros == NODE_PRICE_MICROS
    written = download_outputs(api, job, dest)
    assert sorted(path.relative_to(dest).as_posix() for path in written) == sorted(
        ref.path for ref in job.outputs
    )
    assert_both_receipts_signed(api, job)
    return job, lines


def assert_both_receipts_signed(api: Client, job: JobDetail) -> None:
    """The node signed its receipt with its operator key; the buyer signed for the outputs."""
    receipts = {r.party: r for r in api.get_job(job.job_id).receipts}
    node, client = receipts["node"], receipts["client"]
    pairs = [(ref.path, ref.sha256) for ref in job.outputs]
    assert node.outputs_sha256 == client.outputs_sha256 == outputs_digest(pairs)
    node_message = node_receipt_message(
        job.job_id, node.attempt, node.verdict, node.usage_s or 0.0, node.outputs_sha256
    )
    assert (signer_of(node_message, node.signature) or "").lower() == job.lease.operator.lower()
    client_message = client_receipt_message(
        job.job_id, client.attempt, client.verdict, client.outputs_sha256
    )
    assert (signer_of(client_message, client.signature) or "").lower() == job.buyer.lower()
    assert client.verdict == "accepted"


def test_matrix_example_runs_and_is_billed_for_its_usage(buyer: Client, tmp_path: Path) -> None:
    job, lines = run_example(buyer, "matrix-cpu", tmp_path)

    assert any(line.stream == "stdout" and "GFLOPS" in line.line for line in lines)
    assert json.loads((tmp_path / "result.json").read_text())["gflops"] > 0
    assert_billed_for_usage(buyer, job)


def test_data_example_runs_and_is_billed_for_its_usage(buyer: Client, tmp_path: Path) -> None:
    job, lines = run_example(buyer, "data-job", tmp_path)

    assert any(line.stream == "stdout" and "1000 orders" in line.line for line in lines)
    summary = (tmp_path / "out" / "summary.csv").read_text().splitlines()
    assert summary[0] == SUMMARY_HEADER
    assert len(summary) > 1
    assert json.loads((tmp_path / "out" / "report.json").read_text())["rows"] == 1000
    assert_billed_for_usage(buyer, job)


def test_cli_deposits_runs_the_data_example_and_prints_the_bill(
    jobnet: JobNetwork, tmp_path: Path
) -> None:
    env = {**child_env(tmp_path / "home"), "GPUNET_INDEXER_URL": jobnet.url, "COLUMNS": "200"}
    out = tmp_path / "results"

    def gpunet(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "gpunet.cli.main", *args]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90)

    deposited = gpunet("deposit", "5")
    ran = gpunet("run", str(EXAMPLES / "data-job" / "job.yaml"), "--out", str(out))

    assert deposited.returncode == 0, deposited.stdout + deposited.stderr
    assert "deposited 5.00 USD" in deposited.stdout
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (out / "out" / "summary.csv").read_text().startswith(SUMMARY_HEADER)
    assert "bill for j-" in ran.stdout
    assert "charged:" in ran.stdout and "protocol fee" in ran.stdout


@pytest.mark.inference
@pytest.mark.skipif(
    find_spec("sentence_transformers") is None,
    reason="needs the inference extra: pip install -e '.[inference]'",
)
def test_embeddings_example_runs_on_a_node(buyer: Client, tmp_path: Path) -> None:
    submitted = submit_spec_file(buyer, EXAMPLES / "embeddings" / "job.yaml")
    job = wait_ended(buyer, submitted.job_id, timeout_s=100)

    assert job.state == "succeeded", (job.outcome, job.message, log_text(buyer, job.job_id))
    download_outputs(buyer, job, tmp_path)
    sentences = [
        line
        for line in (EXAMPLES / "embeddings" / "sentences.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    vectors = np.load(tmp_path / "out" / "embeddings.npy")
    assert vectors.shape == (len(sentences), 384)
    assert_billed_for_usage(buyer, job)


# -- sessions --


def fetch(url: str) -> str | None:
    try:
        response = httpx.get(url, timeout=5.0)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


def handshake_reply(endpoint: str, token: str) -> bytes:
    with socket.create_connection(parse_endpoint(endpoint), timeout=5.0) as sock:
        sock.sendall(GREETING + token.encode() + b"\n")
        return sock.recv(64)


def refuses_connections(endpoint: str) -> bool:
    try:
        with socket.create_connection(parse_endpoint(endpoint), timeout=2.0):
            return False
    except ConnectionRefusedError:
        return True


def test_session_is_reached_through_its_forwarder_and_billed_until_closed(
    jobnet: JobNetwork, buyer: Client
) -> None:
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", SESSION_PORT)) != 0, (
            f"port {SESSION_PORT} on 127.0.0.1 is in use; the session example serves on it"
        )
    page = (EXAMPLES / "session" / "site" / "index.html").read_text()
    submitted = submit_spec_file(buyer, EXAMPLES / "session" / "job.yaml")
    wait_job(buyer, submitted.job_id, lambda job: job.state == "running", "running")
    access = buyer.session_access(submitted.job_id)
    assert access.endpoint is not None and access.token is not None
    stop = threading.Event()
    bound: list[tuple[str, int]] = []
    tunnel = threading.Thread(
        target=connect_local,
        args=(access.endpoint, access.token, 0, stop),
        kwargs={"ready": bound.append},
        daemon=True,
    )
    tunnel.start()
    try:
        host, port = wait_for(lambda: bound, "the tunnel's local port")[0]
        served = wait_for(lambda: fetch(f"http://{host}:{port}/"), "the page through the tunnel")
        refused = handshake_reply(access.endpoint, "not-the-token")
    finally:
        stop.set()
        tunnel.join(timeout=10)

    assert served == page
    assert refused == FORBIDDEN_REPLY
    still = buyer.get_job(submitted.job_id)
    assert still.state == "running", (still.outcome, still.message, log_text(buyer, still.job_id))
    wait_for(  # this session's server answered: http.server logs every request it serves
        lambda: "GET / HTTP" in log_text(buyer, submitted.job_id, "stderr"),
        "the session's log of the request",
    )

    buyer.cancel_job(submitted.job_id)
    closed = wait_ended(buyer, submitted.job_id)

    assert closed.state == "cancelled"
    assert closed.charged_micros > 0
    assert closed.hold_micros == 0
    assert buyer.get_account(closed.buyer).held_micros == 0
    wait_for(lambda: refuses_connections(access.endpoint), "the node to close the forwarder")


# -- cancelling, bad jobs, lost nodes --


def processes_with(marker: str) -> list[psutil.Process]:
    """Live processes whose command line holds ``marker``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if marker in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def run_good_job(api: Client, folder: Path, region: str) -> JobDetail:
    command = ["python", "-c", "print('still serving')"]
    job = submit(api, folder, spec("good", command, region=region), {})
    return wait_ended(api, job.job_id)


def test_cancel_stops_the_sandbox_and_pays_for_the_seconds_run(
    jobnet: JobNetwork, buyer: Client, tmp_path: Path
) -> None:
    region = jobnet.region("node-2")
    marker = f"gpunet-cancel-{uuid.uuid4().hex}"
    code = "import time; print('sleeping', flush=True); time.sleep(30)"
    sleeper = spec("sleeper", ["python", "-c", code, marker], region=region)
    job = submit(buyer, tmp_path / "sleeper", sleeper, {})
    wait_job(buyer, job.job_id, lambda j: "sleeping" in log_text(buyer, j.job_id), "its output")
    assert processes_with(marker)

    buyer.cancel_job(job.job_id)
    wait_for(lambda: not processes_with(marker), "the sandbox's processes to end", 10)
    cancelled = buyer.get_job(job.job_id)
    events = all_events(buyer, job.job_id)
    ran_s = seconds_between(last_event(events, "start").at, last_event(events, "cancel").at)

    assert cancelled.state == "cancelled"
    assert 0 < cancelled.charged_micros <= usage_charge(NODE_PRICE_MICROS, 1, ran_s + 1)
    assert cancelled.hold_micros == 0
    good = run_good_job(buyer, tmp_path / "good", region)
    assert good.state == "succeeded"
    assert good.lease is not None and good.lease.node_id == jobnet.node_id("node-2")


def bad_jobs(indexer_port: int) -> dict[str, dict[str, Any]]:
    """Specs of jobs that break the rules, by name, without a region."""
    connect = f"import socket; socket.create_connection(('127.0.0.1', {indexer_port}), timeout=5)"
    fork = (
        "import os, time\n"
        "while True:\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(60)\n"
        "        os._exit(0)\n"
    )
    return {
        "write-outside": spec("write-outside", ["python", "-c", WRITE_OUTSIDE]),
        "network-unasked": spec("network-unasked", ["python", "-c", connect]),
        "fork-forever": spec("fork-forever", ["python", "-c", fork], max_duration="30s"),
        "memory-hog": spec(
            "memory-hog",
            ["python", "-c", "block = bytearray(1 << 30)"],
            resources={"cpu_cores": 1, "memory": "256MiB"},
        ),
        "overtime": spec(
            "overtime", ["python", "-c", "import time; time.sleep(30)"], max_duration="3s"
        ),
    }


def test_bad_jobs_are_stopped_and_reported_and_the_node_keeps_serving(
    jobnet: JobNetwork, buyer: Client, tmp_path: Path
) -> None:
    assert not HOST_FILE.exists(), f"remove {HOST_FILE} first: the test checks it is not made"
    region, node_id = jobnet.region("node-3"), jobnet.node_id("node-3")
    specs = bad_jobs(jobnet.port)
    submitted = {
        name: submit(buyer, tmp_path / name, {**body, "region": region}, {})
        for name, body in specs.items()
    }
    ended = {name: wait_ended(buyer, job.job_id, 90) for name, job in submitted.items()}
    logs = {name: log_text(buyer, job.job_id, "stderr") for name, job in ended.items()}

    for name, job in ended.items():
        assert job.state == "failed", (name, job.outcome, job.message, logs[name])
        assert job.lease is not None and job.lease.node_id == node_id, name
        assert job.charged_micros > 0 and job.hold_micros == 0, name
    assert ended["write-outside"].outcome == "failed"
    assert str(HOST_FILE) in logs["write-outside"]
    assert not HOST_FILE.exists()
    assert ended["network-unasked"].outcome == "failed"
    assert "ConnectionRefusedError" in logs["network-unasked"] or (
        "Network is unreachable" in logs["network-unasked"]
    )
    assert ended["fork-forever"].outcome == "process_limit"
    assert "process" in (ended["fork-forever"].message or "")
    assert ended["memory-hog"].outcome in {"memory_exceeded", "failed"}
    assert "memory" in (ended["memory-hog"].message or "")
    assert ended["overtime"].outcome == "timed_out"
    assert "3 s wall-time limit" in (ended["overtime"].message or "")

    good = run_good_job(buyer, tmp_path / "good", region)
    assert good.state == "succeeded"
    assert good.lease is not None and good.lease.node_id == node_id
    assert "still serving" in log_text(buyer, good.job_id, "stdout")


CHECKPOINTED = """\
import os
import time
from pathlib import Path

STEPS = 64
state = Path("ckpt/step")
start = int(state.read_text()) if state.exists() else 0
print(f"attempt {os.environ['GPUNET_ATTEMPT']} starts at step {start}")
for step in range(start + 1, STEPS + 1):
    time.sleep(0.25)
    Path("step.tmp").write_text(str(step))
    os.replace("step.tmp", state)  # atomic: a checkpoint never holds half a file
    print(f"step {step}")
Path("done.txt").write_text(f"resumed from step {start}\\n")
"""


def test_a_job_on_a_killed_node_resumes_elsewhere_and_the_lost_run_is_free(
    jobnet: JobNetwork, buyer: Client, tmp_path: Path
) -> None:
    body = spec(
        "checkpointed",
        ["python", "ckpt.py"],
        inputs=["ckpt.py"],
        outputs=["done.txt"],
        checkpoint_dir="ckpt",
    )
    job = submit(buyer, tmp_path / "job", body, {"ckpt.py": CHECKPOINTED})
    running = wait_job(
        buyer,
        job.job_id,
        lambda j: j.state == "running" and "checkpoint saved" in log_text(buyer, j.job_id),
        "running with a checkpoint saved",
    )
    assert running.lease is not None
    lost = running.lease.node_id

    jobnet.kill_node(jobnet.name_of(lost))
    done = wait_ended(buyer, job.job_id, 90)
    events = all_events(buyer, job.job_id)

    assert done.state == "succeeded", (done.outcome, done.message, log_text(buyer, job.job_id))
    assert [event.to_state for event in events] == [
        "queued", "matched", "running", "requeued", "matched", "running", "succeeded",
    ]  # fmt: skip
    node_lost = last_event(events, "node_lost")
    assert node_lost.node_id == lost and lost in node_lost.cause
    assert done.attempts == 2
    assert done.lease is not None and done.lease.node_id != lost
    first_steps = [
        int(line.line.split()[-1])
        for line in all_log_lines(buyer, job.job_id)
        if line.attempt == 1 and line.line.startswith("step ")
    ]
    download_outputs(buyer, done, tmp_path / "out")
    resumed = int((tmp_path / "out" / "done.txt").read_text().split()[-1])
    assert 0 < resumed <= max(first_steps)  # from a step the lost attempt reached
    assert "restored the last checkpoint" in log_text(buyer, job.job_id, "system")
    second_run_s = seconds_between(last_event(events, "start").at, events[-1].at)
    assert done.charged_micros <= usage_charge(NODE_PRICE_MICROS, 1, second_run_s + 1)
    assert_billed_for_usage(buyer, done)  # the lost attempt's hold came back whole
