"""The capacity runner against fake nodes: an honest node passes, every lie fails."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from gpunet.checker.capacity import BUSY_PROOF_S, CapacityContext, check_capacity
from gpunet.checker.errors import CheckNotRun
from gpunet.checker.outcome import CheckOutcome
from gpunet.checker.testing import FakeClock, FakeNode, NodeLies, make_task
from gpunet.protocol.challenge import CPU_POLICY, deadline_for
from gpunet.protocol.vote import Verdict

NODE_ID = "n-0123456789ab"
CLAIM = 2e9  # ops/s: a small CPU node, so the honest NumPy product stays fast


def run(
    node: FakeNode,
    operator: LocalAccount,
    clock: FakeClock,
    *,
    budget_s: float | None = 60.0,
    entropy: Callable[[int], bytes] = os.urandom,
) -> CheckOutcome:
    http = httpx.Client(transport=httpx.MockTransport(node))
    context = CapacityContext(http, CPU_POLICY, clock, clock.sleep, entropy, random.Random(7))
    task = make_task(operator.address, "capacity", claimed_ops_per_s=CLAIM)
    return check_capacity(task, context, budget_s)


def test_honest_node_passes_with_its_evidence(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(ping_s=0.004, compute_s=0.05))

    outcome = run(node, operator, clock)

    assert outcome.verdict is Verdict.PASS, outcome.detail
    evidence = outcome.evidence
    assert outcome.detail.startswith(f"{CPU_POLICY.opens} tiles correct; answered in 0.05 s")
    assert evidence["elapsed_s"] == pytest.approx(0.05)
    assert evidence["rtt_ms"] == pytest.approx(4.0)  # measured by the checker's own pings
    n, k = evidence["n"], evidence["k"]
    assert evidence["deadline_s"] == pytest.approx(deadline_for(n, k, CLAIM, 0.004, CPU_POLICY))
    assert len(set(evidence["tiles"])) == CPU_POLICY.opens
    assert evidence["reason"] == outcome.detail
    assert node.challenges[0]["challenge_id"].startswith("c-0123456789abcdef-")


def test_tiles_are_picked_only_after_the_root_is_known(
    operator: LocalAccount, clock: FakeClock
) -> None:
    node = FakeNode(NODE_ID, operator, clock)
    draws: list[tuple[int, int]] = []

    def entropy(size: int) -> bytes:
        draws.append((size, len(node.challenges)))
        return os.urandom(size)

    outcome = run(node, operator, clock, entropy=entropy)

    assert outcome.verdict is Verdict.PASS
    # challenge id and seed before the challenge is sent; the tile pick after the answer.
    assert draws == [(6, 0), (32, 0), (32, 1)]


def test_late_answer_fails(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(compute_s=30.0))

    outcome = run(node, operator, clock)

    assert outcome.verdict is Verdict.FAIL
    deadline = outcome.evidence["deadline_s"]
    assert outcome.detail == f"answered in 30.00 s, deadline {deadline:.2f} s"
    assert outcome.evidence["elapsed_s"] == pytest.approx(30.0)


def test_no_answer_to_the_challenge_fails(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(hang_challenge=True))

    outcome = run(node, operator, clock)

    assert outcome.verdict is Verdict.FAIL
    assert outcome.detail.startswith("no answer to the challenge within")


def test_a_node_that_answers_nothing_gets_no_capacity_vote(
    operator: LocalAccount, clock: FakeClock
) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(silent=True))

    with pytest.raises(CheckNotRun, match="stopped answering pings"):
        run(node, operator, clock)


def test_a_node_gone_offline_during_the_challenge_gets_no_capacity_vote(
    operator: LocalAccount, clock: FakeClock
) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(hang_challenge=True))

    def answer(request: httpx.Request) -> httpx.Response:
        if node.challenges:  # it answered pings until the challenge, then nothing
            node.lies.silent = True
        if request.url.path == "/v1/check/capacity":
            node.challenges.append({})
        return node(request)

    http = httpx.Client(transport=httpx.MockTransport(answer))
    context = CapacityContext(http, CPU_POLICY, clock, clock.sleep)
    task = make_task(operator.address, "capacity", claimed_ops_per_s=CLAIM)

    with pytest.raises(CheckNotRun, match="stopped answering pings"):
        check_capacity(task, context)


def test_wrong_signer_fails(
    operator: LocalAccount, stranger: LocalAccount, clock: FakeClock
) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(signer=stranger))

    outcome = run(node, operator, clock)

    assert outcome.verdict is Verdict.FAIL
    assert outcome.detail == (
        f"the commitment is signed by {stranger.address}, not the operator {operator.address}"
    )


def test_answer_as_another_node_fails(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(node_id="n-ffffffffffff"))

    outcome = run(node, operator, clock)

    assert outcome.verdict is Verdict.FAIL
    assert "from node 'n-ffffffffffff'" in outcome.detail


def test_bad_tile_fails(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(bad_tile=True))

    outcome = run(node, operator, clock)

    assert outcome.verdict is Verdict.FAIL
    first = outcome.evidence["tiles"][0]
    assert outcome.detail == f"bad Merkle proof for tile {first}"


def test_wrong_proof_fails(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(wrong_proof=True))

    outcome = run(node, operator, clock)

    assert outcome.verdict is Verdict.FAIL
    assert outcome.detail.startswith("bad Merkle proof for tile")


def test_replayed_root_fails(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(replay=True))

    first = run(node, operator, clock)
    second = run(node, operator, clock)

    assert first.verdict is Verdict.PASS  # its first answer is honest
    assert second.verdict is Verdict.FAIL
    assert second.detail.startswith("bad Merkle proof for tile")


def test_replayed_commitment_fails(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(stale_commitment=True))

    run(node, operator, clock)
    outcome = run(node, operator, clock)

    assert outcome.verdict is Verdict.FAIL
    assert "(a replayed commitment?)" in outcome.detail


def test_busy_node_is_asked_again(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(busy_times=2))

    outcome = run(node, operator, clock)

    assert outcome.verdict is Verdict.PASS, outcome.detail
    assert len(node.challenges) == 3
    # Paused a jittered quarter to three quarters of a deadline: about one proof.
    deadline = node.challenges[0]["deadline_s"]
    assert len(clock.slept) == 2
    assert all(0.25 * deadline <= pause <= 0.75 * deadline for pause in clock.slept)


def test_node_busy_until_a_short_check_is_due_gets_no_vote(
    operator: LocalAccount, clock: FakeClock
) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(busy_times=10**6))

    with pytest.raises(CheckNotRun, match=r"busy with other challenges \(HTTP 429\)"):
        run(node, operator, clock, budget_s=20.0)


def test_node_busy_for_longer_than_a_panel_needs_fails(
    operator: LocalAccount, clock: FakeClock
) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(busy_times=10**6))

    outcome = run(node, operator, clock, budget_s=BUSY_PROOF_S + 10)

    assert outcome.verdict is Verdict.FAIL
    assert outcome.detail.startswith("the node answered busy (HTTP 429) for 6")
    assert outcome.evidence["busy_s"] >= BUSY_PROOF_S


def test_refused_challenge_fails_with_the_status(operator: LocalAccount, clock: FakeClock) -> None:
    honest = FakeNode(NODE_ID, operator, clock)

    def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/check/capacity":
            return httpx.Response(413, text="challenge_too_large")
        return honest(request)

    http = httpx.Client(transport=httpx.MockTransport(refuse))
    context = CapacityContext(http, CPU_POLICY, clock, clock.sleep)
    task = make_task(operator.address, "capacity", claimed_ops_per_s=CLAIM)

    outcome = check_capacity(task, context)

    assert outcome.verdict is Verdict.FAIL
    assert outcome.detail == "the node refused the challenge: HTTP 413 challenge_too_large"


def test_gpu_node_gets_the_gpu_policy(operator: LocalAccount, clock: FakeClock) -> None:
    from gpunet.checker.capacity import new_spec

    context = CapacityContext(httpx.Client(), None, clock, clock.sleep)
    task = make_task(operator.address, "capacity", gpu_model="H100", claimed_ops_per_s=1.978e15)

    spec = new_spec(task, context, 0.01)

    assert spec.n >= 4096 and spec.tile == 128 and spec.opens == 64


def test_the_networks_deadline_factor_stretches_the_deadline_for_shared_machines(
    operator: LocalAccount, clock: FakeClock
) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(compute_s=2.0))
    http = httpx.Client(transport=httpx.MockTransport(node))
    context = CapacityContext(http, CPU_POLICY, clock, clock.sleep, os.urandom, random.Random(7))
    strict = make_task(operator.address, "capacity", claimed_ops_per_s=CLAIM)
    lenient = strict.model_copy(update={"deadline_factor": 4.0})

    failed = check_capacity(strict, context, 60.0)
    passed = check_capacity(lenient, context, 60.0)

    assert failed.verdict is Verdict.FAIL
    assert passed.verdict is Verdict.PASS, passed.detail
    assert passed.evidence["deadline_s"] == pytest.approx(4 * failed.evidence["deadline_s"])
