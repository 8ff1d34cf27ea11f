"""``CheckRunner``: runs one check task with the runner of its kind, within its time.

The runner owns what the checks share: one HTTP client for talking to nodes directly,
the SDK client through which delivery checks read outputs from the indexer, the probe
and deadline policies, and the clocks. Each check gets the seconds left before its
``due_at``, less a margin for signing and reporting the result.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable

import httpx

from gpunet.api.checks import CheckTask
from gpunet.checker.capacity import CapacityContext, check_capacity
from gpunet.checker.delivery import OutputSource, check_delivery
from gpunet.checker.errors import CheckNotRun
from gpunet.checker.liveness import check_liveness
from gpunet.checker.outcome import CheckOutcome
from gpunet.protocol.challenge import DeadlinePolicy
from gpunet.protocol.liveness import ProbePolicy

REPORT_MARGIN_S = 1.0  # kept for signing and posting the result before the task is due


class CheckRunner:
    """Runs a ``CheckTask``; ``__call__`` is what ``CheckerAgent`` takes as its runner."""

    def __init__(
        self,
        http: httpx.Client,
        outputs: OutputSource,
        *,
        probe: ProbePolicy | None = None,
        deadline: DeadlinePolicy | None = None,  # None: by the node's model (policy_for)
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = time.sleep,
        entropy: Callable[[int], bytes] = os.urandom,
        rng: random.Random | None = None,
    ) -> None:
        self._http = http
        self._outputs = outputs
        self._probe = probe or ProbePolicy()
        self._capacity = CapacityContext(
            http, deadline, clock, sleep, entropy, rng or random.Random()
        )
        self._clock, self._wall_clock, self._sleep = clock, wall_clock, sleep

    def __call__(self, task: CheckTask) -> CheckOutcome:
        budget_s = task.due_at - self._wall_clock() - REPORT_MARGIN_S
        if task.kind == "liveness":
            return check_liveness(
                task,
                self._http,
                policy=self._probe,
                clock=self._clock,
                sleep=self._sleep,
                budget_s=budget_s,
            )
        if task.kind == "capacity":
            return check_capacity(task, self._capacity, budget_s)
        if task.kind == "delivery":
            return check_delivery(task, self._outputs)
        raise CheckNotRun(f"check {task.check_id} has kind {task.kind!r}, which this checker lacks")
