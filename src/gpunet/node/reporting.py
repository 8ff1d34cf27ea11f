"""How the node reports to the indexer: the calls it makes, which failures to retry, and
the receipt that ends an attempt.

Reports are retried with the agent's backoff while the indexer is away or busy (no
answer, 5xx, 408/425/429), and never on a refusal: a 4xx means the indexer decided, and
asking again would not change its mind.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from typing import Protocol, TypeVar

from gpunet.api.jobs import FileRef, FinishIn, LogEntry, UsageAck, WorkPoll
from gpunet.errors import ApiError, GpunetError
from gpunet.node.runtime import Outcome, RunResult
from gpunet.sdk.errors import IndexerUnreachable
from gpunet.sdk.retry import Backoff, retryable

log = logging.getLogger("gpunet.node")

T = TypeVar("T")
REPORT_TRIES = 6  # about a minute of backoff before a report is given up
MAX_USAGE_S = 366 * 86400
MAX_MESSAGE_CHARS = 2000


class WorkApi(Protocol):
    """The calls the job worker makes, signed by the operator; ``gpunet.sdk.Client``."""

    def poll_work(self, node_id: str, wait_s: float = 20) -> WorkPoll: ...

    def start_job(self, job_id: str, attempt: int, endpoint: str | None = None) -> UsageAck: ...

    def append_logs(self, job_id: str, attempt: int, lines: list[LogEntry]) -> None: ...

    def report_usage(self, job_id: str, attempt: int, usage_s: float) -> UsageAck: ...

    def put_checkpoint(self, job_id: str, data: bytes) -> str: ...

    def get_checkpoint(self, job_id: str) -> bytes: ...

    def get_input(self, job_id: str, target: str) -> bytes: ...

    def put_output(self, job_id: str, data: bytes) -> str: ...

    def finish_job(self, job_id: str, receipt: FinishIn) -> UsageAck: ...


def with_retries(
    call: Callable[[], T],
    action: str,
    *,
    tries: int,
    backoff: Backoff,
    rng: random.Random,
    sleep: Callable[[float], object],
) -> T:
    """``call()``, tried up to ``tries`` times while the failure is transient."""
    failures = 0
    while True:
        try:
            return call()
        except (ApiError, IndexerUnreachable) as exc:
            failures += 1
            if not is_transient(exc) or failures >= tries:
                raise
            delay = backoff.delay(failures, rng)
            log.warning("%s failed (%s); retrying in %.1fs", action, exc, delay)
            sleep(delay)


def is_transient(exc: GpunetError) -> bool:
    """An outage or a "not now": worth retrying, unlike a refusal."""
    if isinstance(exc, IndexerUnreachable):
        return True
    return isinstance(exc, ApiError) and (retryable(exc))


def receipt(
    attempt: int,
    outcome: Outcome,
    message: str,
    *,
    exit_code: int | None = None,
    usage_s: float = 0.0,
    cpu_time_s: float = 0.0,
    max_rss_mib: float = 0.0,
    outputs: list[FileRef] | None = None,
) -> FinishIn:
    """A receipt with measurements made safe for the wire (finite, non-negative, capped)."""
    return FinishIn(
        attempt=attempt,
        outcome=str(outcome),
        exit_code=exit_code,
        message=message[:MAX_MESSAGE_CHARS],
        usage_s=round(_measure(usage_s, MAX_USAGE_S), 3),
        cpu_time_s=round(_measure(cpu_time_s), 3),
        max_rss_mib=round(_measure(max_rss_mib), 1),
        outputs=outputs or [],
    )


def _measure(value: float | None, cap: float = math.inf) -> float:
    if value is None or not math.isfinite(value):
        return 0.0
    return min(max(float(value), 0.0), cap)


def end_line(result: RunResult) -> str:
    """The "system" log line that closes a run: ``exit 0 after 3.2 s``, or why it ended."""
    took = f"after {result.wall_time_s:.1f} s"
    if result.outcome in (Outcome.SUCCEEDED, Outcome.FAILED) and result.exit_code is not None:
        return f"exit {result.exit_code} {took}"
    return result.message or f"{result.outcome} {took}"
