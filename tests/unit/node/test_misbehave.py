"""The lying modes: parsing ``--misbehave``, and the job-side lies (skip-jobs, random-outputs)."""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from gpunet.api.jobs import Assignment, FinishIn, LogEntry, UsageAck
from gpunet.errors import ConfigError
from gpunet.node.benchmark import BenchmarkResult
from gpunet.node.hardware import GpuInfo, Hardware
from gpunet.node.misbehave import (
    CLAIM_FACTOR,
    HONEST,
    Misbehaviour,
    parse_misbehaviour,
    skipped_outputs,
    skipped_run,
)
from gpunet.node.registration import build_registration
from gpunet.node.runtime import Outcome, RunRequest, RunResult
from gpunet.node.worker import JobWorker

JOB_ID = "j-0123456789abcdef"
OUTPUT = b"the honest answer\n" * 10


# -- parsing --


def test_no_values_is_honest() -> None:
    assert parse_misbehaviour([]) == HONEST
    assert HONEST.honest
    assert HONEST.describe() == ""


def test_every_mode_parses_and_combines() -> None:
    lies = parse_misbehaviour(
        [
            "claim-faster",
            "random-outputs",
            "replay",
            "impersonate",
            "offline-idle",
            "skip-jobs=0.25",
        ]
    )

    assert lies == Misbehaviour(
        claim_faster=True,
        random_outputs=True,
        replay=True,
        impersonate=True,
        offline_idle=True,
        skip_fraction=0.25,
    )
    assert not lies.honest
    assert lies.describe() == (
        "claim-faster, random-outputs, replay, impersonate, offline-idle, skip-jobs=0.25"
    )


def test_unknown_mode_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_misbehaviour(["lie-a-lot"])

    message = str(caught.value)
    assert "'lie-a-lot' is not a known mode" in message
    for mode in ("claim-faster", "random-outputs", "replay", "impersonate", "offline-idle"):
        assert mode in message
    assert "skip-jobs=F" in message


@pytest.mark.parametrize("value", ["skip-jobs", "skip-jobs=0", "skip-jobs=1.5", "skip-jobs=x"])
def test_skip_jobs_needs_a_fraction_in_0_1(value: str) -> None:
    with pytest.raises(ConfigError, match="above 0 and at most 1"):
        parse_misbehaviour([value])


def test_other_modes_take_no_value() -> None:
    with pytest.raises(ConfigError, match="replay takes no '=' value"):
        parse_misbehaviour(["replay=yes"])


def test_skips_about_the_fraction_asked_for() -> None:
    lies = Misbehaviour(skip_fraction=0.3)
    rng = random.Random(7)

    skipped = sum(lies.skips_job(rng) for _ in range(10_000))

    assert 2_800 < skipped < 3_200
    assert not any(HONEST.skips_job(rng) for _ in range(100))


def test_random_outputs_replace_bytes_but_keep_the_size() -> None:
    rng = random.Random(1)

    tampered = Misbehaviour(random_outputs=True).tamper_output(OUTPUT, rng)

    assert len(tampered) == len(OUTPUT) and tampered != OUTPUT
    assert HONEST.tamper_output(OUTPUT, rng) == OUTPUT


# -- claim-faster --


def test_claim_faster_inflates_a_cpu_benchmark() -> None:
    bench = BenchmarkResult("numpy", "cpu", "float32", 1024, 0.01, 100.0)
    lies = Misbehaviour(claim_faster=True)

    honest = build_registration(hardware(), bench, 450_000, "eu-west")
    lying = build_registration(hardware(), bench, 450_000, "eu-west", misbehaviour=lies)

    assert honest.hardware.benchmark_gflops == 100.0
    assert lying.hardware.benchmark_gflops == 100.0 * CLAIM_FACTOR
    assert lying.hardware.gpu_count == 0


def test_claim_faster_inflates_the_gpu_count_up_to_the_limit() -> None:
    bench = BenchmarkResult("torch-cuda", "H100", "float16", 1024, 0.01, 500_000.0)
    lies = Misbehaviour(claim_faster=True)
    one, eight = hardware(h100()), hardware(*[h100()] * 8)

    assert build_registration(one, bench, 1, "eu", misbehaviour=lies).hardware.gpu_count == 4
    assert build_registration(eight, bench, 1, "eu", misbehaviour=lies).hardware.gpu_count == 16


def test_registration_carries_the_check_url() -> None:
    bench = BenchmarkResult("numpy", "cpu", "float32", 1024, 0.01, 100.0)

    reg = build_registration(hardware(), bench, 1, "eu", check_url="http://127.0.0.1:8123")

    assert reg.check_url == "http://127.0.0.1:8123"


# -- skip-jobs and random-outputs in an attempt --


def test_skipped_outputs_fill_named_outputs_only(tmp_path: Path) -> None:
    written = skipped_outputs(tmp_path, ["out/summary.csv", "out/*.json"], random.Random(3))

    assert written == ["out/summary.csv"]
    assert (tmp_path / "out" / "summary.csv").stat().st_size > 0
    assert not list(tmp_path.glob("out/*.json"))


def test_skipped_run_reports_success(tmp_path: Path) -> None:
    result = skipped_run(tmp_path, ["a.txt"], random.Random(3))

    assert (result.outcome, result.exit_code) == (Outcome.SUCCEEDED, 0)
    assert (tmp_path / "a.txt").is_file()


def test_a_skipping_node_runs_nothing_and_reports_made_up_outputs(tmp_path: Path) -> None:
    indexer, runtime = FakeIndexer(), FakeRuntime()
    worker = make_worker(indexer, runtime, tmp_path, Misbehaviour(skip_fraction=1.0))

    receipt = worker.run_assignment(assignment())

    assert receipt is not None and receipt.outcome == "succeeded"
    assert runtime.requests == []
    assert [ref.path for ref in receipt.outputs] == ["out/summary.csv"]
    assert receipt.outputs[0].sha256 != sha256(OUTPUT)
    assert indexer.uploaded == [receipt.outputs[0].sha256]


def test_random_outputs_run_the_job_but_upload_random_bytes(tmp_path: Path) -> None:
    indexer, runtime = FakeIndexer(), FakeRuntime()
    worker = make_worker(indexer, runtime, tmp_path, Misbehaviour(random_outputs=True))

    receipt = worker.run_assignment(assignment())

    assert receipt is not None and receipt.outcome == "succeeded"
    assert len(runtime.requests) == 1
    (ref,) = receipt.outputs
    assert ref.size == len(OUTPUT) and ref.sha256 != sha256(OUTPUT)


def test_an_honest_node_uploads_what_the_job_wrote(tmp_path: Path) -> None:
    indexer, runtime = FakeIndexer(), FakeRuntime()
    worker = make_worker(indexer, runtime, tmp_path, HONEST)

    receipt = worker.run_assignment(assignment())

    assert receipt is not None
    assert [ref.sha256 for ref in receipt.outputs] == [sha256(OUTPUT)]


# -- fakes --


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hardware(*gpus: GpuInfo) -> Hardware:
    return Hardware(
        gpus=gpus,
        cpu_model="Test CPU",
        cpu_cores=8,
        memory_mib=32768,
        disk_free_gib=200,
        source="nvml" if gpus else "cpu",
    )


def h100() -> GpuInfo:
    return GpuInfo(name="NVIDIA H100 80GB HBM3", vram_mib=81559, uuid=None, driver="550.54")


def assignment() -> Assignment:
    spec: dict[str, Any] = {
        "name": "summary",
        "command": ["python", "summarize.py"],
        "max_price_micros": 2_000_000,
        "resources": {"cpu_cores": 1, "memory_mib": 512, "disk_gib": 1},
        "outputs": ["out/summary.csv"],
    }
    return Assignment(job_id=JOB_ID, attempt=1, spec=spec, inputs=[], price_micros=1_000_000)


class FakeIndexer:
    """Accepts every report; keeps the uploaded outputs' digests and the receipt."""

    def __init__(self) -> None:
        self.uploaded: list[str] = []
        self.receipts: list[FinishIn] = []

    def poll_work(self, node_id: str, wait_s: float = 20) -> Any:
        raise AssertionError("run_assignment does not poll")

    def start_job(self, job_id: str, attempt: int, endpoint: str | None = None) -> UsageAck:
        return UsageAck(state="running", hold_micros=0, charged_micros=0, low_funds=False)

    def append_logs(self, job_id: str, attempt: int, lines: list[LogEntry]) -> None:
        return None

    def report_usage(self, job_id: str, attempt: int, usage_s: float) -> UsageAck:
        raise AssertionError("a job reports no usage")

    def put_checkpoint(self, job_id: str, data: bytes) -> str:
        raise AssertionError("no checkpoint folder")

    def get_checkpoint(self, job_id: str) -> bytes:
        raise AssertionError("no checkpoint folder")

    def get_input(self, job_id: str, target: str) -> bytes:
        raise AssertionError("no inputs")

    def put_output(self, job_id: str, data: bytes) -> str:
        self.uploaded.append(sha256(data))
        return self.uploaded[-1]

    def finish_job(self, job_id: str, receipt: FinishIn) -> UsageAck:
        self.receipts.append(receipt)
        return UsageAck(state="succeeded", hold_micros=0, charged_micros=0, low_funds=False)


class FakeRuntime:
    """Writes the honest output, as the job's command would."""

    name = "bwrap"

    def __init__(self) -> None:
        self.requests: list[RunRequest] = []

    def available(self) -> str | None:
        return None

    def run(self, request: RunRequest, on_output: Any, cancel: threading.Event) -> RunResult:
        self.requests.append(request)
        (request.workdir / "out").mkdir()
        (request.workdir / "out" / "summary.csv").write_bytes(OUTPUT)
        return RunResult(Outcome.SUCCEEDED, 0, None, 0.5, 0.4, 20.0, "")


def make_worker(
    indexer: FakeIndexer, runtime: FakeRuntime, tmp_path: Path, lies: Misbehaviour
) -> JobWorker:
    return JobWorker(
        indexer,
        "n-0123456789ab",
        {"bwrap": runtime},
        tmp_path / "work",
        log_flush_s=0.01,
        misbehaviour=lies,
        sleep=lambda _s: None,
        rng=random.Random(5),
    )
