"""The node's job loop: take work from the indexer and run it, one attempt at a time.

It runs in its own thread beside the heartbeat loop (``NodeAgent``), and is two threads
itself::

    poller:  poll_work (long poll) --assignments--> queue
                 |  \\--cancel ids--> the running attempt's cancel event
                 +--unreachable / 5xx--> backoff 1, 2, 4 ... 30 s, then poll again
                 +--404: the node is not registered yet--> wait, poll again
    runner:  queue --> Attempt.run(): prepare, start, run, outputs, receipt --> queue

The poller never stops polling while a job runs, so a cancellation (the buyer cancelled
a job, closed a session) reaches the sandbox within one poll. A node runs one job at a
time; the indexer gives it no second one while the first runs, and any it gives anyway
wait in the queue. ``stop()`` cancels the running attempt, which still sends its receipt
(and last checkpoint), so the indexer can requeue the job at once. A node killed outright
needs nothing from here: the indexer notices its silence and requeues the job.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path

from gpunet.api.jobs import Assignment, FinishIn, WorkPoll
from gpunet.errors import ApiError, GpunetError
from gpunet.node.attempt import Attempt, AttemptSettings, Cancellation
from gpunet.node.misbehave import HONEST, Misbehaviour
from gpunet.node.reporting import WorkApi, is_transient
from gpunet.node.runtime import Runtime
from gpunet.sdk.errors import IndexerUnreachable, InvalidResponse
from gpunet.sdk.retry import Backoff

__all__ = ["JobWorker", "WorkApi"]

log = logging.getLogger("gpunet.node")

REGISTER_WAIT_S = 2.0
REPEAT_WAIT_S = 1.0
WAIT_SLICE_S = 0.5  # long waits are cut in slices so that stop() ends them soon
REMEMBERED_JOBS = 1000
RECENT_RECEIPTS = 100


class JobWorker:
    """Polls for work and runs each assignment in a sandbox until ``stop()``."""

    def __init__(
        self,
        client: WorkApi,
        node_id: str,
        runtimes: Mapping[str, Runtime],
        work_root: Path,
        *,
        allow_network: bool = False,
        poll_wait_s: float = 20,
        log_flush_s: float = 0.25,
        checkpoint_every_s: float = 10,
        usage_every_s: float = 5,
        session_host: str = "127.0.0.1",
        gpu_devices: tuple[str, ...] = (),
        keep_failed: bool = False,
        misbehaviour: Misbehaviour = HONEST,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.node_id = node_id
        self.settings = AttemptSettings(
            node_id=node_id,
            work_root=work_root.absolute(),  # the runtime wants an absolute work dir
            allow_network=allow_network,
            log_flush_s=log_flush_s,
            checkpoint_every_s=checkpoint_every_s,
            usage_every_s=usage_every_s,
            session_host=session_host,
            gpu_devices=gpu_devices,
            keep_failed=keep_failed,
            backoff=backoff or Backoff(),
            misbehaviour=misbehaviour,
        )
        self._client = client
        self._runtimes = dict(runtimes)
        self._poll_wait_s = poll_wait_s
        self._clock, self._sleep = clock, sleep
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._queue: queue.Queue[Assignment | None] = queue.Queue()
        self._lock = threading.Lock()
        self._running: tuple[str, Cancellation] | None = None
        self._cancelled: deque[str] = deque(maxlen=REMEMBERED_JOBS)
        self._seen: deque[tuple[str, int]] = deque(maxlen=REMEMBERED_JOBS)
        self.receipts: deque[FinishIn] = deque(maxlen=RECENT_RECEIPTS)  # newest last

    @property
    def running_job(self) -> str | None:
        with self._lock:
            return self._running[0] if self._running else None

    def stop(self) -> None:
        """End the loop; a running attempt is cancelled and still reported. Any thread."""
        self._stop.set()
        self._queue.put(None)
        self.cancel(None, "the node is shutting down", by_indexer=False)

    def cancel(self, job_id: str | None, reason: str, *, by_indexer: bool = True) -> None:
        """Stop ``job_id`` (None: whatever runs) if it runs, or skip it if it is queued."""
        with self._lock:
            if job_id is not None and job_id not in self._cancelled:
                self._cancelled.append(job_id)
            running = self._running
        if (
            running
            and job_id in (None, running[0])
            and running[1].set(reason, by_indexer=by_indexer)
        ):
            log.info("cancelling job %s: %s", running[0], reason)

    def run(self) -> None:
        """Poll and run work until ``stop()``."""
        poller = threading.Thread(target=self._poll_loop, name="job-poll", daemon=True)
        poller.start()
        log.info("taking jobs with %s", ", ".join(sorted(self._runtimes)) or "no runtime")
        try:
            while not self._stop.is_set():
                assignment = self._queue.get()
                if assignment is not None and not self._stop.is_set():
                    self._run_safely(assignment)
        finally:
            self._stop.set()
            # A poll in flight ends within its wait; the thread is a daemon, not joined long.
            poller.join(timeout=WAIT_SLICE_S)

    def run_assignment(self, assignment: Assignment) -> FinishIn | None:
        """Run one attempt to its receipt (None when it was not run and not reported)."""
        cancellation = Cancellation()
        with self._lock:
            if assignment.job_id in self._cancelled:
                log.info("job %s was cancelled before it started; skipping it", assignment.job_id)
                return None
            self._running = (assignment.job_id, cancellation)
        try:
            attempt = Attempt(
                self._client,
                self.settings,
                self._runtimes,
                assignment,
                cancellation,
                clock=self._clock,
                sleep=self._sleep,
                rng=self._rng,
            )
            receipt = attempt.run()
        finally:
            with self._lock:
                self._running = None
        if receipt is not None:
            self.receipts.append(receipt)
        return receipt

    def _run_safely(self, assignment: Assignment) -> None:
        try:
            self.run_assignment(assignment)
        except Exception:
            # A bug in one attempt must not end the node's job loop; the indexer times
            # the attempt out and requeues the job.
            log.exception(
                "job %s attempt %d broke the job loop", assignment.job_id, assignment.attempt
            )

    def _poll_loop(self) -> None:
        failures = 0
        waiting_for_registration = False
        while not self._stop.is_set():
            try:
                answer = self._client.poll_work(self.node_id, wait_s=self._poll_wait_s)
            except ApiError as exc:
                if exc.status_code == 404:
                    if not waiting_for_registration:
                        log.info("the indexer does not know this node yet; waiting to take jobs")
                    waiting_for_registration = True
                    self._wait(REGISTER_WAIT_S)
                    continue
                failures += 1
                self._wait(self._retry_delay(exc, failures))
                continue
            except (IndexerUnreachable, InvalidResponse) as exc:
                failures += 1
                self._wait(self._retry_delay(exc, failures))
                continue
            except Exception:
                # The poller must outlive a bug, or the node would silently take no jobs.
                log.exception("polling for jobs failed unexpectedly")
                failures += 1
                self._wait(self.settings.backoff.delay(failures, self._rng))
                continue
            if failures or waiting_for_registration:
                log.info("the indexer answers job polls; taking jobs")
            failures, waiting_for_registration = 0, False
            if not self._take(answer):
                # The indexer repeats a cancel until the job has ended; don't spin on it.
                self._wait(REPEAT_WAIT_S)

    def _retry_delay(self, exc: GpunetError, failures: int) -> float:
        delay = self.settings.backoff.delay(failures, self._rng)
        level = logging.WARNING if failures == 1 or not is_transient(exc) else logging.DEBUG
        log.log(level, "cannot poll for jobs (%s); retrying in %.1fs", exc, delay)
        return delay

    def _take(self, answer: WorkPoll) -> bool:
        """Queue new assignments and apply cancels; True if the answer held news."""
        news = not answer.assignments and not answer.cancel  # a long poll that timed out
        for job_id in answer.cancel:
            with self._lock:
                news = news or job_id not in self._cancelled
            self.cancel(job_id, "cancelled at the indexer (by the buyer, or the lease ended)")
        for assignment in answer.assignments:
            key = (assignment.job_id, assignment.attempt)
            with self._lock:
                if key in self._seen:
                    continue  # the indexer repeats an assignment until it starts
                self._seen.append(key)
            news = True
            self._queue.put(assignment)
        return news

    def _wait(self, seconds: float) -> None:
        while seconds > 0 and not self._stop.is_set():
            step = min(seconds, WAIT_SLICE_S)
            self._sleep(step)
            seconds -= step
