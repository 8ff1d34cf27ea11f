"""JobWorker against a fake indexer client and a fake runtime: the whole attempt, end to end.

The fake runtime stands in for the sandbox: each test gives it a script that looks at
the work dir, writes files, prints lines, waits for a cancel, and returns a result.
"""

from __future__ import annotations

import hashlib
import io
import logging
import queue
import random
import socket
import tarfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from gpunet.api.jobs import Assignment, FileRef, FinishIn, LogEntry, UsageAck, WorkPoll
from gpunet.errors import ApiError
from gpunet.node.forward import parse_endpoint
from gpunet.node.runtime import Outcome, RunRequest, RunResult
from gpunet.node.worker import JobWorker
from gpunet.sdk.errors import IndexerUnreachable
from gpunet.sdk.retry import Backoff

NODE_ID = "n-0123456789ab"
JOB_ID = "j-0123456789abcdef"
DOWN = IndexerUnreachable("http://indexer.test", "ConnectError: refused")
WAIT_S = 10.0

Script = Callable[[RunRequest, Callable[[str, str], None], threading.Event], RunResult]


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "train",
        "command": ["python", "train.py"],
        "max_price_micros": 2_000_000,
        "resources": {"cpu_cores": 2, "memory_mib": 2048, "disk_gib": 1},
        "max_duration_s": 600,
        "env": {"EPOCHS": "3"},
    }
    return base | overrides


def assignment(attempt: int = 1, inputs: list[FileRef] | None = None, **kw: Any) -> Assignment:
    fields: dict[str, Any] = {
        "job_id": JOB_ID,
        "attempt": attempt,
        "spec": spec(),
        "inputs": inputs or [],
        "price_micros": 1_500_000,
    }
    return Assignment(**(fields | kw))


def ref(path: str, data: bytes) -> FileRef:
    return FileRef(path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def result(
    outcome: Outcome = Outcome.SUCCEEDED, exit_code: int | None = 0, message: str = ""
) -> RunResult:
    return RunResult(
        outcome=outcome,
        exit_code=exit_code,
        signal=None,
        wall_time_s=3.2,
        cpu_time_s=1.5,
        max_rss_mib=42.0,
        message=message,
    )


def ack(state: str = "running", low_funds: bool = False) -> UsageAck:
    return UsageAck(state=state, hold_micros=0, charged_micros=0, low_funds=low_funds)


class FakeIndexer:
    """Records every call; ``polls`` answers poll_work, ``errors`` scripts failures."""

    def __init__(self, **errors: list[Exception]) -> None:
        self.calls: list[str] = []
        self.polls: queue.Queue[WorkPoll | Exception] = queue.Queue()
        self.errors = {name: deque(items) for name, items in errors.items()}
        self.inputs: dict[str, bytes] = {}
        self.checkpoints: list[bytes] = []
        self.outputs: dict[str, bytes] = {}
        self.logs: list[LogEntry] = []
        self.receipts: list[FinishIn] = []
        self.usage: list[float] = []
        self.usage_states: deque[UsageAck] = deque()
        self.start_endpoint: str | None = None
        self.finished = threading.Event()

    def _call(self, name: str) -> None:
        self.calls.append(name)
        script = self.errors.get(name)
        if script:
            raise script.popleft()

    def poll_work(self, node_id: str, wait_s: float = 20) -> WorkPoll:
        self._call("poll")
        try:
            answer = self.polls.get(timeout=0.02)
        except queue.Empty:
            return WorkPoll(assignments=[], cancel=[])
        if isinstance(answer, Exception):
            raise answer
        return answer

    def start_job(self, job_id: str, attempt: int, endpoint: str | None = None) -> UsageAck:
        self._call("start")
        self.start_endpoint = endpoint
        return ack()

    def append_logs(self, job_id: str, attempt: int, lines: list[LogEntry]) -> None:
        self._call("logs")
        self.logs.extend(lines)

    def report_usage(self, job_id: str, attempt: int, usage_s: float) -> UsageAck:
        self._call("usage")
        self.usage.append(usage_s)
        return self.usage_states.popleft() if self.usage_states else ack()

    def put_checkpoint(self, job_id: str, data: bytes) -> str:
        self._call("put_checkpoint")
        self.checkpoints.append(data)
        return hashlib.sha256(data).hexdigest()

    def get_checkpoint(self, job_id: str) -> bytes:
        self._call("get_checkpoint")
        return self.checkpoints[-1]

    def get_input(self, job_id: str, target: str) -> bytes:
        self._call("get_input")
        return self.inputs[target]

    def put_output(self, job_id: str, data: bytes) -> str:
        self._call("put_output")
        digest = hashlib.sha256(data).hexdigest()
        self.outputs[digest] = data
        return digest

    def finish_job(self, job_id: str, receipt: FinishIn) -> UsageAck:
        self._call("finish")
        self.receipts.append(receipt)
        self.finished.set()
        return ack("succeeded")

    def lines(self, stream: str) -> list[str]:
        return [entry.line for entry in self.logs if entry.stream == stream]


class FakeRuntime:
    name = "bwrap"

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[RunRequest] = []
        self.started = threading.Event()

    def available(self) -> str | None:
        return None

    def run(
        self,
        request: RunRequest,
        on_output: Callable[[str, str], None],
        cancel: threading.Event,
    ) -> RunResult:
        self.requests.append(request)
        self.started.set()
        return self.script(request, on_output, cancel)


class FakeTime:
    """A clock that sleeping advances; each sleep also yields a little real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        time.sleep(0.001)


def make_worker(
    indexer: FakeIndexer,
    runtime: FakeRuntime,
    tmp_path: Path,
    fake: FakeTime | None = None,
    **options: Any,
) -> JobWorker:
    fake = fake or FakeTime()
    return JobWorker(
        indexer,
        NODE_ID,
        {"bwrap": runtime},
        tmp_path / "work",
        log_flush_s=0.05,
        checkpoint_every_s=0.1,
        usage_every_s=0.1,
        backoff=Backoff(base_s=1.0, factor=2.0, cap_s=30.0, jitter=0.0),
        clock=fake.clock,
        sleep=fake.sleep,
        rng=random.Random(1),
        **options,
    )


@contextmanager
def running(worker: JobWorker) -> Iterator[None]:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        worker.stop()
        thread.join(timeout=WAIT_S)
        assert not thread.is_alive(), "the worker did not stop"


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


def succeed(request: RunRequest, on_output: Callable[[str, str], None], cancel: Any) -> RunResult:
    return result()


def wait_for_cancel(
    request: RunRequest, on_output: Callable[[str, str], None], cancel: threading.Event
) -> RunResult:
    on_output("stdout", "serving")
    if not cancel.wait(WAIT_S):
        return result(Outcome.FAILED, 1, "never cancelled")
    return result(Outcome.CANCELLED, None, "cancelled")


# -- the happy path --


def test_runs_a_job_from_inputs_to_hashed_outputs(tmp_path: Path) -> None:
    indexer = FakeIndexer()
    indexer.inputs = {"data/in.txt": b"hello", "train.py": b"print(1)\n"}
    seen: dict[str, Any] = {}

    def job(request: RunRequest, on_output: Callable[[str, str], None], cancel: Any) -> RunResult:
        seen["input"] = (request.workdir / "data" / "in.txt").read_bytes()
        seen["calls_before_run"] = list(indexer.calls)
        (request.workdir / "out").mkdir()
        (request.workdir / "out" / "a.txt").write_bytes(b"alpha")
        (request.workdir / "out" / "b.txt").write_bytes(b"beta!")
        (request.workdir / "out" / "skip.bin").write_bytes(b"not matched")
        on_output("stdout", "epoch 1\n")
        on_output("stderr", "warning: slow")
        return result()

    runtime = FakeRuntime(job)
    worker = make_worker(indexer, runtime, tmp_path)
    work = assignment(
        spec=spec(outputs=["out/*.txt"]),
        inputs=[ref("data/in.txt", b"hello"), ref("train.py", b"print(1)\n")],
    )

    receipt = worker.run_assignment(work)

    assert seen["input"] == b"hello"
    assert seen["calls_before_run"] == ["get_input", "get_input", "start", "logs"]
    assert indexer.calls[-3:] == ["put_output", "put_output", "finish"]
    assert receipt is not None and indexer.receipts == [receipt]
    assert receipt.outcome == "succeeded" and receipt.exit_code == 0
    assert (receipt.usage_s, receipt.cpu_time_s, receipt.max_rss_mib) == (3.2, 1.5, 42.0)
    assert receipt.outputs == [ref("out/a.txt", b"alpha"), ref("out/b.txt", b"beta!")]
    assert set(indexer.outputs.values()) == {b"alpha", b"beta!"}
    assert indexer.lines("stdout") == ["epoch 1"]
    assert indexer.lines("stderr") == ["warning: slow"]
    system = indexer.lines("system")
    assert system[0] == f"running on node {NODE_ID} with bwrap"
    assert system[-1] == "exit 0 after 3.2 s"
    assert not (tmp_path / "work" / f"{JOB_ID}-1").exists()


def test_the_sandbox_gets_the_specs_limits_and_environment(tmp_path: Path) -> None:
    runtime = FakeRuntime(succeed)
    worker = make_worker(FakeIndexer(), runtime, tmp_path, gpu_devices=("0", "1"))

    worker.run_assignment(assignment(spec=spec(checkpoint_dir="ckpt")))

    (request,) = runtime.requests
    assert request.argv == ("python", "train.py")
    assert request.workdir == tmp_path / "work" / f"{JOB_ID}-1"
    limits = request.limits
    assert (limits.cpu_cores, limits.memory_mib, limits.wall_time_s) == (2, 2048, 600)
    assert limits.network is False
    assert request.gpu_devices == ()  # the spec asks for no GPU
    assert dict(request.env) == {
        "EPOCHS": "3",
        "GPUNET_JOB_ID": JOB_ID,
        "GPUNET_ATTEMPT": "1",
        "GPUNET_CHECKPOINT_DIR": "ckpt",
    }


def test_a_gpu_job_gets_its_gpus_and_the_shared_nvidia_devices(tmp_path: Path) -> None:
    runtime = FakeRuntime(succeed)
    gpus = ("/dev/nvidia0", "/dev/nvidia1")
    worker = make_worker(FakeIndexer(), runtime, tmp_path, gpu_devices=gpus)
    resources = {"gpu_count": 1, "cpu_cores": 2, "memory_mib": 2048}

    worker.run_assignment(assignment(spec=spec(resources=resources)))

    devices = runtime.requests[0].gpu_devices
    assert devices[0] == "/dev/nvidia0" and "/dev/nvidia1" not in devices
    assert "/dev/nvidiactl" in devices


def test_a_failing_job_is_reported_with_its_exit_code(tmp_path: Path) -> None:
    runtime = FakeRuntime(lambda r, o, c: result(Outcome.FAILED, 3, "exit status 3"))
    indexer = FakeIndexer()

    receipt = make_worker(indexer, runtime, tmp_path).run_assignment(assignment())

    assert receipt is not None
    assert (receipt.outcome, receipt.exit_code, receipt.message) == ("failed", 3, "exit status 3")
    assert indexer.lines("system")[-1] == "exit 3 after 3.2 s"


# -- refusals: nothing runs, the receipt says why --


def test_an_input_with_the_wrong_hash_is_not_run(tmp_path: Path) -> None:
    indexer = FakeIndexer()
    indexer.inputs = {"data/in.txt": b"tampered"}
    runtime = FakeRuntime(succeed)
    worker = make_worker(indexer, runtime, tmp_path)

    receipt = worker.run_assignment(assignment(inputs=[ref("data/in.txt", b"original")]))

    assert receipt is not None
    assert receipt.outcome == "sandbox_error"
    assert "data/in.txt" in receipt.message and "SHA-256" in receipt.message
    assert runtime.requests == []
    assert "start" not in indexer.calls


def test_an_input_the_indexer_will_not_give_is_reported(tmp_path: Path) -> None:
    indexer = FakeIndexer(get_input=[ApiError(404, "not_found", "no input data/in.txt")])
    runtime = FakeRuntime(succeed)

    receipt = make_worker(indexer, runtime, tmp_path).run_assignment(
        assignment(inputs=[ref("data/in.txt", b"x")])
    )

    assert receipt is not None and receipt.outcome == "sandbox_error"
    assert "no input data/in.txt" in receipt.message and runtime.requests == []


def test_a_runtime_that_crashes_still_ends_in_a_receipt(tmp_path: Path) -> None:
    def crash(request: RunRequest, on_output: Any, cancel: Any) -> RunResult:
        raise RuntimeError("bwrap vanished")

    indexer = FakeIndexer()
    receipt = make_worker(indexer, FakeRuntime(crash), tmp_path).run_assignment(assignment())

    assert receipt is not None and indexer.receipts == [receipt]
    assert receipt.outcome == "sandbox_error" and "bwrap vanished" in receipt.message


def test_a_broken_attempt_does_not_end_the_job_loop(tmp_path: Path) -> None:
    indexer = FakeIndexer(get_input=[RuntimeError("a bug")])
    indexer.inputs = {"in.txt": b"x"}
    runtime = FakeRuntime(succeed)
    worker = make_worker(indexer, runtime, tmp_path)

    with running(worker):
        broken = assignment(inputs=[ref("in.txt", b"x")])
        indexer.polls.put(WorkPoll(assignments=[broken], cancel=[]))
        indexer.polls.put(WorkPoll(assignments=[assignment(attempt=2)], cancel=[]))
        assert indexer.finished.wait(WAIT_S)

    assert [r.attempt for r in indexer.receipts] == [2]
    assert len(runtime.requests) == 1


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"network": True}, "asks for network access"),
        ({"kind": "session", "expose_port": 8888}, "exposes port 8888"),
    ],
)
def test_network_is_refused_unless_the_operator_allows_it(
    tmp_path: Path, overrides: dict[str, Any], needle: str
) -> None:
    indexer = FakeIndexer()
    runtime = FakeRuntime(succeed)
    worker = make_worker(indexer, runtime, tmp_path, allow_network=False)

    receipt = worker.run_assignment(assignment(spec=spec(**overrides), session_token="t" * 32))

    assert receipt is not None and receipt.outcome == "sandbox_error"
    assert needle in receipt.message and "--allow-network" in receipt.message
    assert runtime.requests == [] and indexer.calls == ["finish"]


def test_network_is_given_when_the_operator_allows_it(tmp_path: Path) -> None:
    runtime = FakeRuntime(succeed)
    worker = make_worker(FakeIndexer(), runtime, tmp_path, allow_network=True)

    worker.run_assignment(assignment(spec=spec(network=True)))

    assert runtime.requests[0].limits.network is True


def test_a_runtime_the_node_lacks_is_refused(tmp_path: Path) -> None:
    runtime = FakeRuntime(succeed)
    worker = make_worker(FakeIndexer(), runtime, tmp_path)

    receipt = worker.run_assignment(assignment(spec=spec(runtime="docker", image="python:3.11")))

    assert receipt is not None and receipt.outcome == "sandbox_error"
    assert "docker" in receipt.message and "offers: bwrap" in receipt.message
    assert runtime.requests == []


# -- cancellation --


def test_a_cancel_from_the_poll_stops_the_running_job(tmp_path: Path) -> None:
    indexer = FakeIndexer()
    runtime = FakeRuntime(wait_for_cancel)
    worker = make_worker(indexer, runtime, tmp_path)

    with running(worker):
        indexer.polls.put(WorkPoll(assignments=[assignment()], cancel=[]))
        assert runtime.started.wait(WAIT_S)
        indexer.polls.put(WorkPoll(assignments=[], cancel=[JOB_ID]))
        assert indexer.finished.wait(WAIT_S)

    (receipt,) = indexer.receipts
    assert receipt.outcome == "cancelled"
    assert "cancelled at the indexer" in receipt.message
    assert indexer.outputs == {}


def test_a_cancel_repeated_by_the_indexer_is_applied_once_without_spinning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    indexer = FakeIndexer()
    runtime = FakeRuntime(wait_for_cancel)
    fake = FakeTime()
    worker = make_worker(indexer, runtime, tmp_path, fake)

    with running(worker), caplog.at_level(logging.INFO, logger="gpunet.node"):
        indexer.polls.put(WorkPoll(assignments=[assignment()], cancel=[]))
        assert runtime.started.wait(WAIT_S)
        for _ in range(3):
            indexer.polls.put(WorkPoll(assignments=[], cancel=[JOB_ID]))
        assert indexer.finished.wait(WAIT_S)
        wait_for(indexer.polls.empty)

    cancels = [r for r in caplog.records if r.getMessage().startswith("cancelling job")]
    assert len(cancels) == 1
    assert indexer.receipts[0].outcome == "cancelled"
    assert fake.sleeps.count(0.5) >= 2 * 2  # the 2 repeats each waited 1 s


def test_a_job_cancelled_before_it_starts_is_skipped(tmp_path: Path) -> None:
    indexer = FakeIndexer()
    runtime = FakeRuntime(succeed)
    worker = make_worker(indexer, runtime, tmp_path)
    worker.cancel(JOB_ID, "cancelled by the buyer")

    assert worker.run_assignment(assignment()) is None
    assert runtime.requests == [] and indexer.calls == []


def test_stopping_the_node_cancels_the_job_and_reports_it_for_requeue(tmp_path: Path) -> None:
    indexer = FakeIndexer()
    runtime = FakeRuntime(wait_for_cancel)
    worker = make_worker(indexer, runtime, tmp_path)

    with running(worker):
        indexer.polls.put(WorkPoll(assignments=[assignment()], cancel=[]))
        assert runtime.started.wait(WAIT_S)

    (receipt,) = indexer.receipts
    assert receipt.outcome == "sandbox_error"
    assert "shutting down" in receipt.message


def test_a_finish_answered_409_counts_as_delivered(tmp_path: Path) -> None:
    conflict = ApiError(409, "conflict", "job j-0123456789abcdef is cancelled")
    indexer = FakeIndexer(finish=[conflict])
    runtime = FakeRuntime(succeed)
    worker = make_worker(indexer, runtime, tmp_path)

    receipt = worker.run_assignment(assignment())

    assert receipt is not None and receipt.outcome == "succeeded"
    assert indexer.calls.count("finish") == 1


# -- checkpoints --


def test_checkpoints_are_uploaded_when_they_change_and_restored_next_attempt(
    tmp_path: Path,
) -> None:
    indexer = FakeIndexer()

    def train(request: RunRequest, on_output: Any, cancel: Any) -> RunResult:
        state = request.workdir / "ckpt" / "state.txt"
        state.write_text("step 1")
        wait_for(lambda: len(indexer.checkpoints) == 1)
        state.write_text("step 2, later")
        wait_for(lambda: len(indexer.checkpoints) == 2)
        return result(Outcome.FAILED, 1, "preempted")

    worker = make_worker(indexer, FakeRuntime(train), tmp_path)
    worker.run_assignment(assignment(spec=spec(checkpoint_dir="ckpt")))

    assert len(indexer.checkpoints) == 2  # unchanged at the end: not sent a third time
    assert checkpoint_files(indexer.checkpoints[-1]) == {"state.txt": b"step 2, later"}

    restored: dict[str, str] = {}

    def resume(request: RunRequest, on_output: Any, cancel: Any) -> RunResult:
        restored["state"] = (request.workdir / "ckpt" / "state.txt").read_text()
        return result()

    digest = hashlib.sha256(indexer.checkpoints[-1]).hexdigest()
    worker = make_worker(indexer, FakeRuntime(resume), tmp_path)
    receipt = worker.run_assignment(
        assignment(attempt=2, spec=spec(checkpoint_dir="ckpt"), checkpoint_sha256=digest)
    )

    assert restored == {"state": "step 2, later"}
    assert receipt is not None and receipt.outcome == "succeeded"
    assert len(indexer.checkpoints) == 2  # the restored state is not sent back


def test_a_checkpoint_with_the_wrong_hash_is_not_restored(tmp_path: Path) -> None:
    indexer = FakeIndexer()
    indexer.checkpoints = [tarball({"state.txt": b"x"})]
    runtime = FakeRuntime(succeed)
    worker = make_worker(indexer, runtime, tmp_path)

    receipt = worker.run_assignment(
        assignment(spec=spec(checkpoint_dir="ckpt"), checkpoint_sha256="0" * 64)
    )

    assert receipt is not None and receipt.outcome == "sandbox_error"
    assert "checkpoint" in receipt.message and runtime.requests == []


def test_a_checkpoint_reaching_outside_its_folder_is_refused(tmp_path: Path) -> None:
    indexer = FakeIndexer()
    evil = tarball({"../../escaped.txt": b"x"})
    indexer.checkpoints = [evil]
    runtime = FakeRuntime(succeed)
    worker = make_worker(indexer, runtime, tmp_path)

    receipt = worker.run_assignment(
        assignment(
            spec=spec(checkpoint_dir="ckpt"),
            checkpoint_sha256=hashlib.sha256(evil).hexdigest(),
        )
    )

    assert receipt is not None and receipt.outcome == "sandbox_error"
    assert runtime.requests == []
    assert not list(tmp_path.rglob("escaped.txt"))


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def checkpoint_files(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


# -- the indexer going away --


def test_polling_backs_off_while_the_indexer_is_away_then_runs_the_job(tmp_path: Path) -> None:
    indexer = FakeIndexer()
    for answer in (DOWN, DOWN, ApiError(503, "unavailable", "database is down")):
        indexer.polls.put(answer)
    indexer.polls.put(WorkPoll(assignments=[assignment()], cancel=[]))
    fake = FakeTime()
    worker = make_worker(indexer, FakeRuntime(succeed), tmp_path, fake)

    with running(worker):
        assert indexer.finished.wait(WAIT_S)

    assert indexer.receipts[0].outcome == "succeeded"
    assert indexer.calls[:4] == ["poll"] * 4
    # Backoff waits 1, 2, then 4 s, in half-second slices (the job's own ticks are shorter).
    assert sum(s for s in fake.sleeps if s == 0.5) == 1.0 + 2.0 + 4.0


def test_polling_waits_while_the_node_is_not_registered(tmp_path: Path) -> None:
    indexer = FakeIndexer()
    indexer.polls.put(ApiError(404, "not_found", "no node n-0123456789ab"))
    indexer.polls.put(WorkPoll(assignments=[assignment()], cancel=[]))
    worker = make_worker(indexer, FakeRuntime(succeed), tmp_path)

    with running(worker):
        assert indexer.finished.wait(WAIT_S)

    assert indexer.calls[:2] == ["poll", "poll"]


def test_reports_are_retried_until_the_indexer_is_back(tmp_path: Path) -> None:
    indexer = FakeIndexer(start=[DOWN], put_output=[DOWN], finish=[DOWN, DOWN])

    def answer(request: RunRequest, on_output: Any, cancel: Any) -> RunResult:
        (request.workdir / "out.txt").write_text("42")
        return result()

    runtime = FakeRuntime(answer)
    worker = make_worker(indexer, runtime, tmp_path)

    receipt = worker.run_assignment(assignment(spec=spec(outputs=["out.txt"])))

    assert receipt is not None and receipt.outcome == "succeeded"
    assert receipt.outputs == [ref("out.txt", b"42")]
    assert (indexer.calls.count("start"), indexer.calls.count("finish")) == (2, 3)
    assert indexer.receipts == [receipt]


def test_an_assignment_repeated_by_the_indexer_runs_once(tmp_path: Path) -> None:
    indexer = FakeIndexer()
    for _ in range(2):
        indexer.polls.put(WorkPoll(assignments=[assignment()], cancel=[]))
    runtime = FakeRuntime(succeed)
    worker = make_worker(indexer, runtime, tmp_path)

    with running(worker):
        assert indexer.finished.wait(WAIT_S)
        wait_for(lambda: indexer.polls.empty())

    assert len(runtime.requests) == 1


# -- sessions --


def session_spec(**overrides: Any) -> dict[str, Any]:
    return spec(kind="session", expose_port=8888) | overrides


def test_a_session_is_forwarded_billed_and_stopped_when_the_indexer_closes_it(
    tmp_path: Path,
) -> None:
    indexer = FakeIndexer()
    indexer.usage_states.extend([ack("running", low_funds=True), ack("succeeded", low_funds=True)])
    runtime = FakeRuntime(wait_for_cancel)
    worker = make_worker(indexer, runtime, tmp_path, allow_network=True)

    receipt = worker.run_assignment(assignment(spec=session_spec(), session_token="s" * 32))

    assert runtime.requests[0].limits.network is True
    assert indexer.start_endpoint is not None
    host, port = parse_endpoint(indexer.start_endpoint)
    assert host == "127.0.0.1"
    assert len(indexer.usage) == 2 and 0 < indexer.usage[0] < indexer.usage[1]
    assert receipt is not None and receipt.outcome == "cancelled"
    assert "closed the session" in receipt.message and "out of funds" in receipt.message
    with pytest.raises(OSError):  # the forwarder is gone with the session
        socket.create_connection((host, port), timeout=1).close()


def test_a_session_without_a_token_is_not_exposed(tmp_path: Path) -> None:
    runtime = FakeRuntime(succeed)
    worker = make_worker(FakeIndexer(), runtime, tmp_path, allow_network=True)

    receipt = worker.run_assignment(assignment(spec=session_spec()))

    assert receipt is not None and receipt.outcome == "sandbox_error"
    assert "token" in receipt.message and runtime.requests == []
