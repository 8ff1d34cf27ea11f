"""The checker's loop: register, long-poll for tasks, run each, sign and report it.

::

    STARTING --register ok--> POLLING --tasks--> run each in a worker --> sign --> report
        |                       |  \\--404: the indexer forgot us--> REGISTERING --> POLLING
        |                       |
        +--unreachable / 5xx--> RETRYING (backoff 1, 2, 4 ... 30 s, jittered) --ok--> POLLING
        +--other 4xx----------> FAILED (CheckerRefused: a misconfiguration, retrying won't help)
    stop() --> STOPPING (running checks finish and report, up to 30 s) --> STOPPED

Polls run in a thread of their own, so ``stop()`` need not wait for a long poll. Tasks
run in a small pool of worker threads, so a slow capacity challenge does not delay a
liveness probe due sooner; a task whose ``due_at`` has passed is not started. Each
result is signed with the checker's key over ``protocol.vote.result_message`` and
posted; a report that meets an outage is retried with backoff until the task is due,
a report the indexer no longer takes (404, 409: check closed or already reported) is
dropped, and any other 4xx stops the checker. A check the checker could not run for a
reason of its own (``CheckNotRun``) gets no vote. Time, sleep, randomness and the
worker pool are injectable for tests.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from gpunet import __version__
from gpunet.api.checks import (
    CheckerPublic,
    CheckerRegistration,
    CheckResultAck,
    CheckResultIn,
    CheckTask,
    TaskBatch,
)
from gpunet.checker.errors import CheckerRefused, CheckNotRun
from gpunet.checker.outcome import CheckOutcome, sign_result
from gpunet.errors import ApiError
from gpunet.sdk.errors import IndexerUnreachable, InvalidResponse
from gpunet.sdk.retry import Backoff, IndexerFailure, IndexerLink, Next, retryable

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

log = logging.getLogger("gpunet.checker")

REPEAT_WAIT_S = 1.0  # the indexer repeats tasks still running here: poll again soon, not at once
POLL_JITTER_S = 0.2
FORGET_AFTER_S = 120.0  # a task taken is remembered this long past its due time
GONE_STATUSES = frozenset({404, 409})  # a report the indexer no longer takes
STOP_GRACE_S = 30.0  # on stop, running checks get this long to end and report
LOOP_JOIN_S = 1.0  # how long stop waits for a poll in flight; the poll thread is a daemon

TaskRunner = Callable[[CheckTask], CheckOutcome]


class CheckerState(StrEnum):
    """Where the checker stands with the indexer."""

    STARTING = "starting"
    REGISTERING = "registering"
    POLLING = "polling"
    RETRYING = "retrying"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class CheckerApi(Protocol):
    """The calls the checker makes; ``gpunet.sdk.Client`` provides them."""

    def register_checker(
        self, registration: CheckerRegistration | None = None
    ) -> CheckerPublic: ...

    def checker_tasks(self, wait_s: float = 20) -> TaskBatch: ...

    def report_check(self, check_id: str, result: CheckResultIn) -> CheckResultAck: ...


@dataclass(frozen=True)
class CheckerHealth:
    """A snapshot for health checks: state and time since the indexer last answered."""

    state: CheckerState
    seconds_since_poll: float | None
    consecutive_failures: int
    last_error: str | None
    in_flight: int
    reported: int


class CheckerAgent:
    """Runs the checks the indexer assigns to ``account`` until ``stop()``."""

    def __init__(
        self,
        client: CheckerApi,
        account: LocalAccount,
        runner: TaskRunner,
        registration: CheckerRegistration | None = None,
        *,
        poll_wait_s: float = 20.0,
        workers: int = 4,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] | None = None,
        rng: random.Random | None = None,
        executor: Executor | None = None,
        stop_grace_s: float = STOP_GRACE_S,
    ) -> None:
        self.address: str = account.address
        self._client = client
        self._account = account
        self._runner = runner
        self._registration = registration or CheckerRegistration(agent_version=__version__)
        self._poll_wait_s = poll_wait_s
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._rng = rng or random.Random()
        self._pool = executor or ThreadPoolExecutor(workers, thread_name_prefix="check")
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified as checks end
        self._stop_grace_s = stop_grace_s
        self._known: dict[str, float] = {}  # check id -> when to forget it, for tasks taken
        self._in_flight = 0
        self._reported = 0
        self._state = CheckerState.STARTING
        self._registered = False
        self._link = IndexerLink(self._backoff, self._rng, clock)
        self._ended_by: Exception | None = None  # CheckerRefused, or a bug in the loop

    @property
    def state(self) -> CheckerState:
        return self._state

    def stop(self) -> None:
        """Ask the loop to return; safe from any thread. Running checks still finish and
        report (for up to ``stop_grace_s``); queued ones are dropped."""
        self._stop.set()

    def health(self) -> CheckerHealth:
        link = self._link
        with self._lock:
            in_flight, reported = self._in_flight, self._reported
        return CheckerHealth(
            self._state,
            link.seconds_since_ok(),
            link.failures,
            link.last_error,
            in_flight,
            reported,
        )

    def run(self) -> None:
        """Register, then poll and run checks until stopped.

        The polls run in a thread of their own, so ``stop()`` ends this call within
        ``LOOP_JOIN_S`` (plus the running checks' grace) rather than after the long poll
        in flight. Raises ``CheckerRefused`` when the indexer answers a 4xx that
        retrying cannot change (a bad key, a banned checker, a result it calls
        malformed), and whatever else ended the poll loop (a bug) in this thread.
        """
        loop = threading.Thread(target=self._poll_loop, name="checker-poll", daemon=True)
        loop.start()
        try:
            self._stop.wait()
        finally:
            self._stop.set()
            loop.join(timeout=LOOP_JOIN_S)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._drain()
        if self._ended_by is not None:
            self._set_state(CheckerState.FAILED, str(self._ended_by))
            raise self._ended_by
        self._set_state(CheckerState.STOPPED, "checker ended")

    def _poll_loop(self) -> None:
        try:
            while not self._stop.is_set():
                self._sleep(self._step())
        except Exception as exc:  # CheckerRefused, or a bug: run() raises it in its thread
            self._ended_by = self._ended_by or exc
        finally:
            self._stop.set()

    def _drain(self) -> None:
        """Wait a while for running checks, so they end (and report) before the clients close."""
        with self._idle:
            if self._in_flight:
                self._set_state(CheckerState.STOPPING, f"finishing {self._in_flight} check(s)")
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout=self._stop_grace_s):
                log.warning("stopped with %d check(s) still running", self._in_flight)

    def _step(self) -> float:
        """One call to the indexer; returns the seconds to wait before the next."""
        try:
            return self._poll() if self._registered else self._register()
        except (ApiError, IndexerUnreachable, InvalidResponse) as exc:
            return self._on_failure(exc)

    def _register(self) -> float:
        checker = self._client.register_checker(self._registration)
        self._registered = True
        self._on_success()
        standing = "eligible for rewards" if checker.reward_eligible else "barred from rewards"
        self._set_state(
            CheckerState.POLLING,
            f"registered checker {checker.address} ({checker.results_total} results, {standing})",
        )
        return 0.0

    def _poll(self) -> float:
        batch = self._client.checker_tasks(self._poll_wait_s)
        self._on_success()
        if self._stop.is_set():  # stopped during the poll: the pool takes no more work
            return 0.0
        fresh = self._take_new(batch.tasks)
        for task in fresh:
            self._pool.submit(self._work, task)
        self._set_state(CheckerState.POLLING, f"epoch {batch.epoch}: {len(fresh)} new task(s)")
        if batch.tasks and not fresh:
            return REPEAT_WAIT_S * self._rng.uniform(0.8, 1.2)
        return self._rng.uniform(0.0, POLL_JITTER_S) if not fresh else 0.0

    def _take_new(self, tasks: Iterable[CheckTask]) -> list[CheckTask]:
        now = self._clock()
        with self._lock:
            for check_id, forget_at in list(self._known.items()):
                if forget_at < now:
                    del self._known[check_id]
            fresh = [task for task in tasks if task.check_id not in self._known]
            # Remembered past its due time, so a task sent late is still taken only once.
            self._known.update(
                (task.check_id, max(task.due_at, now) + FORGET_AFTER_S) for task in fresh
            )
            self._in_flight += len(fresh)
        return fresh

    def _work(self, task: CheckTask) -> None:
        try:
            if self._stop.is_set():
                return
            outcome = self._run_task(task)
            if outcome is not None:
                self._report(task, outcome, sign_result(self._account, task, outcome))
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _run_task(self, task: CheckTask) -> CheckOutcome | None:
        late_s = self._clock() - task.due_at
        if late_s >= 0:
            log.warning("skipped %s: it was due %.1f s ago", _name(task), late_s)
            return None
        try:
            return self._runner(task)
        except CheckNotRun as exc:
            log.warning("no vote on %s: %s", _name(task), exc)
        except Exception:
            if self._stop.is_set():  # its clients may be closing under it
                log.info("no vote on %s: the checker stopped during it", _name(task))
                return None
            # A worker thread has no caller to raise to; the loop goes on with other checks.
            log.exception(
                "no vote on %s: the checker failed (a bug; please report it)", _name(task)
            )
        return None

    def _report(self, task: CheckTask, outcome: CheckOutcome, result: CheckResultIn) -> None:
        """Post ``result``; retry outages with backoff until the task is due (not once
        the checker is stopping: a check finished then is reported once)."""
        failures = 0
        while (error := self._post_result(task, outcome, result)) is not None:
            failures += 1
            delay = self._backoff.delay(failures, self._rng)
            if self._stop.is_set() or self._clock() + delay >= task.due_at:
                log.warning("gave up reporting %s: %s", _name(task), error)
                return
            self._sleep(delay)

    def _post_result(
        self, task: CheckTask, outcome: CheckOutcome, result: CheckResultIn
    ) -> Exception | None:
        """One report: the error worth retrying, or None when done (taken, gone, refused)."""
        try:
            ack = self._client.report_check(task.check_id, result)
        except ApiError as exc:
            if exc.status_code in GONE_STATUSES:
                log.warning("%s: result not taken: %s", _name(task), exc.message)
                return None
            if not retryable(exc):
                self._refuse(f"take the result of {_name(task)}", exc)
                return None
            return exc
        except (IndexerUnreachable, InvalidResponse) as exc:
            return exc
        self._reported_ok(task, outcome, ack)
        return None

    def _reported_ok(self, task: CheckTask, outcome: CheckOutcome, ack: CheckResultAck) -> None:
        with self._lock:
            self._reported += 1
        closed = f"closed, verdict {ack.verdict}" if ack.state == "closed" else "open"
        log.info("%s: %s, %s [check %s]", _name(task), outcome.verdict, outcome.detail, closed)

    def _refuse(self, action: str, error: ApiError) -> None:
        refused = CheckerRefused(action, error)
        self._ended_by = self._ended_by or refused
        self._link.last_error = str(refused)
        self._stop.set()

    def _on_success(self) -> None:
        self._link.succeeded()

    def _on_failure(self, exc: IndexerFailure) -> float:
        step, delay = self._link.failed(exc, registered=self._registered)
        if step is Next.REGISTER_AGAIN:
            self._registered = False
            self._set_state(CheckerState.REGISTERING, "the indexer does not know this checker")
        elif step is Next.REFUSED:
            assert isinstance(exc, ApiError)
            action = "give this checker tasks" if self._registered else "register this checker"
            raise CheckerRefused(action, exc) from exc
        else:
            self._set_state(CheckerState.RETRYING, f"{exc}; retrying in {delay:.1f}s")
        return delay

    def _set_state(self, state: CheckerState, reason: str) -> None:
        changed = state is not self._state
        self._state = state
        log.log(logging.INFO if changed else logging.DEBUG, "%s: %s", state, reason)


def _name(task: CheckTask) -> str:
    return f"{task.kind} check {task.check_id} of {task.node_id}"
