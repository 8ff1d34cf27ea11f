"""One attempt at one job, from the assignment to the signed receipt.

::

    prepare: fresh work dir, inputs (hash-checked), last checkpoint, forwarder
        |-- the node cannot run it (runtime, network, bad input) --> receipt: sandbox_error
    start_job (with the session's endpoint) --> the indexer starts billing
    run in the sandbox, and every few seconds:
        flush output lines, upload the checkpoint folder if it changed,
        report a session's usage (a closed session stops the workload)
    outputs: hash and upload every file the spec's patterns match
    finish_job: the receipt (outcome, exit code, usage, outputs); 409 means "already over"

The node reports what the runtime measured; the indexer bills it. A node stopped by its
operator mid-run reports ``sandbox_error``, which sends the job to another node, and
uploads its checkpoint first so the next attempt resumes where this one stopped.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from gpunet.api.jobs import Assignment, FileRef, FinishIn
from gpunet.errors import ApiError, GpunetError
from gpunet.node import checkpoint, misbehave, workdir
from gpunet.node.forward import Forwarder, serve_forwarder
from gpunet.node.joblog import LogBuffer
from gpunet.node.reporting import REPORT_TRIES, WorkApi, end_line, receipt, with_retries
from gpunet.node.runtime import Limits, Outcome, RunRequest, RunResult, Runtime
from gpunet.protocol.jobspec import JobSpec, job_spec_from_dict
from gpunet.protocol.leases import ACTIVE
from gpunet.sdk.retry import Backoff

log = logging.getLogger("gpunet.node")

T = TypeVar("T")
MAX_TICK_S = 1.0
# Every CUDA job needs these beside its own /dev/nvidiaN; the runtime binds those present.
NVIDIA_SHARED_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")


class Refused(GpunetError):
    """This node cannot run the assignment; the message says why and what would help."""


class Cancellation:
    """Why an attempt must stop, set once from any thread; the event goes to the runtime."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""
        self.by_indexer = False

    def set(self, reason: str, *, by_indexer: bool) -> bool:
        """Cancel with ``reason``; False when it was cancelled already."""
        if self.event.is_set():
            return False
        self.reason, self.by_indexer = reason, by_indexer
        self.event.set()
        return True


@dataclass(frozen=True)
class AttemptSettings:
    """What the operator decided for every attempt on this node."""

    node_id: str
    work_root: Path
    allow_network: bool = False
    log_flush_s: float = 0.25
    checkpoint_every_s: float = 10.0
    usage_every_s: float = 5.0
    session_host: str = "127.0.0.1"
    gpu_devices: tuple[str, ...] = ()
    keep_failed: bool = False
    backoff: Backoff = field(default_factory=Backoff)
    misbehaviour: misbehave.Misbehaviour = misbehave.HONEST  # demos and checker tests only


class Attempt:
    """Runs one assignment to its receipt; ``run`` returns the receipt it sent (or None)."""

    def __init__(
        self,
        client: WorkApi,
        settings: AttemptSettings,
        runtimes: Mapping[str, Runtime],
        assignment: Assignment,
        cancellation: Cancellation,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], object],
        rng: random.Random,
    ) -> None:
        self.assignment = assignment
        self.job_id, self.number = assignment.job_id, assignment.attempt
        self._client = client
        self._settings = settings
        self._runtimes = runtimes
        self._cancel = cancellation
        self._clock, self._sleep, self._rng = clock, sleep, rng
        self._dir = settings.work_root / f"{self.job_id}-{self.number}"
        self._forwarder: Forwarder | None = None
        self._checkpoint_dir: Path | None = None
        self._checkpointed: checkpoint.Fingerprint = ()
        self._logs = LogBuffer(lambda lines: client.append_logs(self.job_id, self.number, lines))

    def run(self) -> FinishIn | None:
        receipt: FinishIn | None = None
        try:
            receipt = self._run()
        finally:
            if self._forwarder is not None:
                self._forwarder.close()
            if not self._settings.keep_failed or (receipt and receipt.outcome == Outcome.SUCCEEDED):
                workdir.remove_work_dir(self._dir)
        return receipt

    def _run(self) -> FinishIn | None:
        try:
            spec = job_spec_from_dict(self.assignment.spec)
            runtime = self._runtime(spec)
            request = self._prepare(spec)
        except (GpunetError, OSError) as exc:
            # Refused, a bad input or checkpoint, an input the indexer would not give,
            # a full disk: the node cannot run this attempt, another node may.
            log.warning("job %s attempt %d not run: %s", self.job_id, self.number, exc)
            return self._finish(receipt(self.number, Outcome.SANDBOX_ERROR, _why(exc)))
        log.info(
            "took job %s attempt %d: %s %r with %s",
            self.job_id, self.number, spec.kind, spec.name, runtime.name,
        )  # fmt: skip
        if not self._start():
            return None
        if self._settings.misbehaviour.skips_job(self._rng):
            result = misbehave.skipped_run(self._dir, spec.outputs, self._rng)
        else:
            result = self._supervise(spec, runtime, request)
        outputs, notes = self._upload_outputs(spec, result)
        return self._finish(self._resultreceipt(result, outputs, notes))

    # -- preparing --

    def _runtime(self, spec: JobSpec) -> Runtime:
        runtime = self._runtimes.get(spec.runtime)
        if runtime is None:
            offered = ", ".join(sorted(self._runtimes)) or "none"
            raise Refused(
                f"job {self.job_id} needs the {spec.runtime} runtime, which this node does "
                f"not offer (it offers: {offered})"
            )
        return runtime

    def _prepare(self, spec: JobSpec) -> RunRequest:
        limits = self._limits(spec)
        self._dir = workdir.fresh_work_dir(self._settings.work_root, self.job_id, self.number)
        for ref in self.assignment.inputs:
            workdir.write_input(self._dir, ref, self._fetch_input(ref))
        if spec.checkpoint_dir is not None:
            self._checkpoint_dir = workdir.make_folder(self._dir, spec.checkpoint_dir)
            self._restore_checkpoint(spec)
        if spec.kind == "session" and spec.expose_port is not None:
            self._forwarder = self._open_forwarder(spec.expose_port)
        return RunRequest(
            argv=tuple(spec.command),
            workdir=self._dir,
            env=self._env(spec),
            limits=limits,
            gpu_devices=self._gpu_devices(spec.resources.gpu_count),
            image=spec.image,
        )

    def _limits(self, spec: JobSpec) -> Limits:
        exposes = spec.kind == "session" and spec.expose_port is not None
        if (spec.network or exposes) and not self._settings.allow_network:
            need = (
                f"session {self.job_id} exposes port {spec.expose_port}, which needs the network"
                if exposes
                else f"job {self.job_id} asks for network access"
            )
            raise Refused(
                f"{need}, but this node's operator does not allow jobs on the network; "
                "the operator can allow it with gpunet node start --allow-network"
            )
        return Limits(
            cpu_cores=spec.resources.cpu_cores,
            memory_mib=spec.resources.memory_mib,
            wall_time_s=spec.max_duration_s,
            max_file_mib=max(spec.resources.disk_gib, 1) * 1024,
            network=spec.network or exposes,
        )

    def _gpu_devices(self, count: int) -> tuple[str, ...]:
        if count == 0:
            return ()
        return (*self._settings.gpu_devices[:count], *NVIDIA_SHARED_DEVICES)

    def _env(self, spec: JobSpec) -> dict[str, str]:
        env = dict(spec.env)
        env["GPUNET_JOB_ID"] = self.job_id
        env["GPUNET_ATTEMPT"] = str(self.number)
        if spec.checkpoint_dir is not None:
            env["GPUNET_CHECKPOINT_DIR"] = spec.checkpoint_dir
        return env

    def _fetch_input(self, ref: FileRef) -> bytes:
        return self._call(
            f"download input {ref.path}", lambda: self._client.get_input(self.job_id, ref.path)
        )

    def _restore_checkpoint(self, spec: JobSpec) -> None:
        expected = self.assignment.checkpoint_sha256
        if expected is None or self._checkpoint_dir is None:
            return
        data = self._call(
            "download the checkpoint", lambda: self._client.get_checkpoint(self.job_id)
        )
        actual = workdir.file_ref("checkpoint", data).sha256
        if actual != expected:
            raise workdir.WorkDirError(
                f"the job's last checkpoint arrived with SHA-256 {actual}, but the indexer "
                f"named {expected}; it was not restored and the attempt was not started"
            )
        max_bytes = max(spec.resources.disk_gib, 1) << 30
        files = checkpoint.restore(data, self._checkpoint_dir, max_bytes=max_bytes)
        self._checkpointed = checkpoint.fingerprint(self._checkpoint_dir)
        self._logs.system(f"restored the last checkpoint ({files} files, {len(data)} bytes)")

    def _open_forwarder(self, port: int) -> Forwarder:
        token = self.assignment.session_token
        if not token:
            raise Refused(f"session {self.job_id} came without a session token; not exposing it")
        try:
            return serve_forwarder(token, port, host=self._settings.session_host)
        except OSError as exc:
            raise Refused(
                f"cannot listen on {self._settings.session_host} for session {self.job_id} "
                f"({exc}); check the node's --session-host"
            ) from exc

    # -- running --

    def _start(self) -> bool:
        """Tell the indexer the attempt starts; False when it should not run after all."""
        endpoint = self._forwarder.endpoint if self._forwarder else None
        try:
            ack = self._call(
                "report the start",
                lambda: self._client.start_job(self.job_id, self.number, endpoint),
            )
        except GpunetError as exc:
            log.warning("job %s attempt %d not started: %s", self.job_id, self.number, exc)
            return False
        if ack.state not in ACTIVE:
            log.info("job %s is %s at the indexer; not running it", self.job_id, ack.state)
            return False
        return True

    def _supervise(self, spec: JobSpec, runtime: Runtime, request: RunRequest) -> RunResult:
        where = f" ({spec.image})" if spec.image else ""
        self._logs.system(f"running on node {self._settings.node_id} with {runtime.name}{where}")
        if self._forwarder is not None:
            self._logs.system(
                f"session port {spec.expose_port} reachable at {self._forwarder.endpoint}"
            )
        self._logs.flush()
        run = _RunThread(runtime, request, self._logs.add, self._cancel.event, self._clock)
        run.start()
        self._watch(spec, run)
        result = run.result()
        if self._checkpoint_dir is not None and not self._cancel.by_indexer:
            self._upload_checkpoint(final=True)
        self._logs.system(end_line(result))
        self._flush_last_lines()
        return result

    def _watch(self, spec: JobSpec, run: _RunThread) -> None:
        s = self._settings
        is_session = spec.kind == "session"
        tick = min(s.log_flush_s, s.checkpoint_every_s, s.usage_every_s, MAX_TICK_S)
        start = self._clock()
        due = {"logs": start + s.log_flush_s, "checkpoint": start + s.checkpoint_every_s}
        due["usage"] = start + s.usage_every_s
        while not run.done.is_set():
            self._sleep(tick)
            now = self._clock()
            if now >= due["logs"]:
                self._logs.flush()
                due["logs"] = now + s.log_flush_s
            if self._checkpoint_dir is not None and now >= due["checkpoint"]:
                self._upload_checkpoint(final=False)
                due["checkpoint"] = now + s.checkpoint_every_s
            if is_session and now >= due["usage"]:
                self._report_usage(now - start)
                due["usage"] = now + s.usage_every_s

    def _flush_last_lines(self) -> None:
        for failures in range(1, REPORT_TRIES):
            if self._logs.flush():
                return
            self._sleep(self._settings.backoff.delay(failures, self._rng))
        if not self._logs.flush():
            log.warning("job %s: %d log lines not delivered", self.job_id, self._logs.pending)

    def _upload_checkpoint(self, *, final: bool) -> None:
        assert self._checkpoint_dir is not None
        seen = checkpoint.fingerprint(self._checkpoint_dir)
        if not seen or seen == self._checkpointed:
            return
        try:
            data = checkpoint.pack(self._checkpoint_dir)
            tries = REPORT_TRIES if final else 1
            self._call(
                "upload the checkpoint",
                lambda: self._client.put_checkpoint(self.job_id, data),
                tries,
            )
        except (OSError, GpunetError) as exc:
            log.warning("job %s: checkpoint not saved this time (%s)", self.job_id, exc)
            return
        self._checkpointed = seen
        self._logs.system(f"checkpoint saved ({len(seen)} files, {len(data)} bytes)")

    def _report_usage(self, used_s: float) -> None:
        try:
            ack = self._client.report_usage(self.job_id, self.number, round(used_s, 3))
        except ApiError as exc:
            if exc.status_code in (404, 409):
                self._cancel.set(f"the indexer ended the session: {exc.message}", by_indexer=True)
            else:
                log.warning("session %s: usage not reported (%s)", self.job_id, exc)
            return
        except GpunetError as exc:
            log.warning("session %s: usage not reported (%s)", self.job_id, exc)
            return
        if ack.state not in ACTIVE:
            funds = " (out of funds)" if ack.low_funds else ""
            reason = f"the indexer closed the session: it is {ack.state}{funds}"
            self._cancel.set(reason, by_indexer=True)
        elif ack.low_funds:
            log.warning("session %s is low on funds; the indexer may close it", self.job_id)

    # -- finishing --

    def _upload_outputs(self, spec: JobSpec, result: RunResult) -> tuple[list[FileRef], list[str]]:
        if result.outcome in (Outcome.CANCELLED, Outcome.SANDBOX_ERROR) or not spec.outputs:
            return [], []
        outputs: list[FileRef] = []
        notes: list[str] = []
        for path in workdir.find_outputs(self._dir, spec.outputs):
            try:
                data = workdir.read_beneath(self._dir, path)
                data = self._settings.misbehaviour.tamper_output(data, self._rng)
                ref = workdir.file_ref(path, data)
                self._call(f"upload {path}", partial(self._client.put_output, self.job_id, data))
            except (OSError, GpunetError, ValueError) as exc:
                notes.append(f"output {path} not delivered: {exc}")
                continue
            outputs.append(ref)
        return outputs, notes

    def _resultreceipt(
        self, result: RunResult, outputs: list[FileRef], notes: list[str]
    ) -> FinishIn:
        outcome, message = Outcome(result.outcome), result.message
        if outcome is Outcome.CANCELLED and self._cancel.reason:
            message = self._cancel.reason
            if not self._cancel.by_indexer:
                outcome = Outcome.SANDBOX_ERROR  # the node stopped: the job goes elsewhere
        return receipt(
            self.number,
            outcome,
            "; ".join(filter(None, [message, *notes])),
            exit_code=result.exit_code,
            usage_s=result.wall_time_s,
            cpu_time_s=result.cpu_time_s,
            max_rss_mib=result.max_rss_mib,
            outputs=outputs,
        )

    def _finish(self, receipt: FinishIn) -> FinishIn:
        try:
            self._call("send the receipt", lambda: self._client.finish_job(self.job_id, receipt))
        except ApiError as exc:
            if exc.status_code != 409:
                log.error("job %s: the indexer refused the receipt: %s", self.job_id, exc)
        except GpunetError as exc:
            log.error(
                "job %s: receipt not delivered (%s); the indexer will time the attempt out",
                self.job_id,
                exc,
            )
        log.info(
            "finished job %s attempt %d: %s after %.1f s, %d output(s)%s",
            self.job_id, self.number, receipt.outcome, receipt.usage_s,
            len(receipt.outputs), f" ({receipt.message})" if receipt.message else "",
        )  # fmt: skip
        return receipt

    def _call(self, action: str, call: Callable[[], T], tries: int = REPORT_TRIES) -> T:
        return with_retries(
            call,
            f"job {self.job_id}: {action}",
            tries=tries,
            backoff=self._settings.backoff,
            rng=self._rng,
            sleep=self._sleep,
        )


def _why(exc: GpunetError | OSError) -> str:
    if isinstance(exc, GpunetError):
        return str(exc)
    return f"the node could not prepare the work dir: {exc}"


class _RunThread:
    """The runtime's blocking ``run`` in a thread; a crash becomes a sandbox_error result."""

    def __init__(
        self,
        runtime: Runtime,
        request: RunRequest,
        on_output: Callable[[str, str], None],
        cancel: threading.Event,
        clock: Callable[[], float],
    ) -> None:
        self.done = threading.Event()
        self._args = (runtime, request, on_output, cancel, clock)
        self._result: RunResult | None = None
        self._thread = threading.Thread(target=self._main, name="job-run", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def result(self) -> RunResult:
        self._thread.join()
        assert self._result is not None
        return self._result

    def _main(self) -> None:
        runtime, request, on_output, cancel, clock = self._args
        started = clock()
        try:
            self._result = runtime.run(request, on_output, cancel)
        except Exception as exc:  # a runtime bug must still end in a receipt
            log.exception("the %s runtime failed", runtime.name)
            self._result = RunResult(
                outcome=Outcome.SANDBOX_ERROR,
                exit_code=None,
                signal=None,
                wall_time_s=max(clock() - started, 0.0),
                cpu_time_s=0.0,
                max_rss_mib=0.0,
                message=f"the {runtime.name} runtime failed: {exc}",
            )
        finally:
            self.done.set()
