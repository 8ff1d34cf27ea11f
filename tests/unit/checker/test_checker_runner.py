"""CheckRunner: each kind to its runner, with the time left before the task is due."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from gpunet.api.checks import DeliveryTask
from gpunet.api.jobs import FileRef
from gpunet.checker.errors import CheckNotRun
from gpunet.checker.liveness import FIT_SHARE
from gpunet.checker.runner import REPORT_MARGIN_S, CheckRunner
from gpunet.checker.testing import FakeClock, FakeNode, NodeLies, make_task
from gpunet.protocol.challenge import CPU_POLICY
from gpunet.protocol.liveness import ProbePolicy
from gpunet.protocol.vote import Verdict

NODE_ID = "n-0123456789ab"
DUE = 1_764_072_060.0


class Outputs:
    """An indexer that holds one output."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def check_output(self, check_id: str, sha256: str) -> bytes:
        return self.data


def runner_for(node: FakeNode, clock: FakeClock, wall: FakeClock) -> CheckRunner:
    return CheckRunner(
        httpx.Client(transport=httpx.MockTransport(node)),
        Outputs(b"result"),
        probe=ProbePolicy(attempts=3, timeout_s=5.0, spacing_s=2.0),
        deadline=CPU_POLICY,
        clock=clock,
        wall_clock=wall,
        sleep=clock.sleep,
    )


def test_each_kind_goes_to_its_runner(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock)
    run = runner_for(node, clock, FakeClock(DUE - 60))
    digest = hashlib.sha256(b"result").hexdigest()
    delivery = DeliveryTask(
        job_id="j-0123456789abcdef",
        canary_seed=None,
        expected_outputs={"out/r": digest},
        outputs=[FileRef(path="out/r", sha256=digest, size=6)],
    )

    liveness = run(make_task(operator.address, "liveness", due_at=DUE))
    capacity = run(make_task(operator.address, "capacity", due_at=DUE))
    deliver = run(make_task(operator.address, "delivery", due_at=DUE, delivery=delivery))

    assert liveness.verdict is Verdict.PASS and "attempt 1 of 3" in liveness.detail
    assert capacity.verdict is Verdict.PASS and "tiles correct" in capacity.detail
    assert deliver.verdict is Verdict.PASS and "1 output(s) match" in deliver.detail
    assert len(node.challenges) == 1


def test_a_probe_is_bounded_by_the_time_left(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(silent=True))
    # The probe is fitted to 90% of the time left: here a fifth of the 19 s probe.
    run = runner_for(node, clock, FakeClock(DUE - 3.8 / FIT_SHARE - REPORT_MARGIN_S))

    outcome = run(make_task(operator.address, "liveness", due_at=DUE))

    assert outcome.verdict is Verdict.FAIL
    assert "1: no answer within 1 s" in outcome.detail
    assert clock.now - 1000.0 == pytest.approx(3.8, rel=1e-3)


def test_no_time_left_for_a_probe_casts_no_vote(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(silent=True))
    run = runner_for(node, clock, FakeClock(DUE - REPORT_MARGIN_S))

    with pytest.raises(CheckNotRun, match="only 1 of 3 ping attempts"):
        run(make_task(operator.address, "liveness", due_at=DUE))
