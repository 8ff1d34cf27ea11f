"""The liveness runner against fake nodes: honest passes, every lie fails, with a reason."""

from __future__ import annotations

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from gpunet.checker.errors import CheckNotRun
from gpunet.checker.liveness import check_liveness
from gpunet.checker.testing import FakeClock, FakeNode, NodeLies, make_task
from gpunet.protocol.liveness import ProbePolicy
from gpunet.protocol.vote import Verdict

NODE_ID = "n-0123456789ab"
POLICY = ProbePolicy(attempts=3, timeout_s=5.0, spacing_s=2.0)


def probe(
    node: FakeNode, operator: LocalAccount, clock: FakeClock, budget_s: float | None = None
) -> tuple[Verdict, str, dict[str, object]]:
    http = httpx.Client(transport=httpx.MockTransport(node))
    outcome = check_liveness(
        make_task(operator.address),
        http,
        policy=POLICY,
        clock=clock,
        sleep=clock.sleep,
        budget_s=budget_s,
    )
    return outcome.verdict, outcome.detail, dict(outcome.evidence)


def test_honest_node_passes_on_the_first_attempt(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(ping_s=0.012))

    verdict, detail, evidence = probe(node, operator, clock)

    assert verdict is Verdict.PASS
    assert detail == "answered in 12 ms (attempt 1 of 3)"
    assert evidence["attempts"] == [{"rtt_ms": 12.0, "error": None}]
    assert node.pings == 1


def test_each_attempt_sends_a_fresh_nonce(operator: LocalAccount, clock: FakeClock) -> None:
    nonces: list[str] = []

    def lossy(request: httpx.Request) -> httpx.Response:
        nonces.append(request.url.params["nonce"])
        if len(nonces) < 3:
            raise httpx.ConnectError("refused", request=request)
        return FakeNode(NODE_ID, operator, clock)(request)

    http = httpx.Client(transport=httpx.MockTransport(lossy))
    task = make_task(operator.address)
    outcome = check_liveness(task, http, policy=POLICY, clock=clock, sleep=clock.sleep)

    assert outcome.verdict is Verdict.PASS
    assert len(set(nonces)) == 3
    assert clock.slept == [2.0, 2.0]  # the policy's spacing between attempts
    assert "attempt 3 of 3" in outcome.detail


def test_wrong_signer_fails(
    operator: LocalAccount, stranger: LocalAccount, clock: FakeClock
) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(signer=stranger))

    verdict, detail, evidence = probe(node, operator, clock)

    assert verdict is Verdict.FAIL
    assert f"signed by {stranger.address}, not by the node's operator" in detail
    assert len(evidence["attempts"]) == 3  # type: ignore[arg-type]


def test_answer_for_another_node_fails(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(node_id="n-ffffffffffff"))

    verdict, detail, _ = probe(node, operator, clock)

    assert verdict is Verdict.FAIL
    assert "answered as node 'n-ffffffffffff', not n-0123456789ab" in detail


def test_replayed_answer_with_an_old_nonce_fails(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(stale_nonce=True))

    verdict, detail, _ = probe(node, operator, clock)

    assert verdict is Verdict.FAIL
    assert "does not echo the nonce" in detail


def test_silent_node_times_out_and_fails(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(silent=True))

    verdict, detail, evidence = probe(node, operator, clock)

    assert verdict is Verdict.FAIL
    assert detail.startswith("no valid answer in 3 attempt(s): 1: no answer within 5 s")
    assert evidence["timeout_s"] == 5.0


def test_late_answer_counts_as_a_failed_attempt(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(ping_s=6.0))

    verdict, detail, _ = probe(node, operator, clock)

    assert verdict is Verdict.FAIL
    assert "answered in 6.00 s, after the 5 s timeout" in detail


def test_node_without_a_check_url_fails(operator: LocalAccount, clock: FakeClock) -> None:
    http = httpx.Client(transport=httpx.MockTransport(FakeNode(NODE_ID, operator, clock)))
    task = make_task(operator.address, check_url=None)

    outcome = check_liveness(task, http, policy=POLICY, clock=clock, sleep=clock.sleep)

    assert outcome.verdict is Verdict.FAIL
    assert "advertises no check_url" in outcome.detail


def test_error_status_fails_with_the_status(operator: LocalAccount, clock: FakeClock) -> None:
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503, text="down")))

    outcome = check_liveness(
        make_task(operator.address), http, policy=POLICY, clock=clock, sleep=clock.sleep
    )

    assert outcome.verdict is Verdict.FAIL
    assert "HTTP 503: down" in outcome.detail


def test_too_little_time_for_every_attempt_casts_no_vote(
    operator: LocalAccount, clock: FakeClock
) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(silent=True))

    with pytest.raises(CheckNotRun, match="only 1 of 3 ping attempts"):
        probe(node, operator, clock, budget_s=0.3)

    assert clock.slept == []


def test_a_short_budget_shrinks_every_attempt(operator: LocalAccount, clock: FakeClock) -> None:
    node = FakeNode(NODE_ID, operator, clock, NodeLies(silent=True))

    verdict, detail, evidence = probe(node, operator, clock, budget_s=10.56)

    # The 19 s probe fitted to 90% of the budget, half its length: 2.5 s attempts, 1 s apart.
    assert verdict is Verdict.FAIL
    assert detail.startswith("no valid answer in 3 attempt(s): 1: no answer within 2.5 s")
    assert evidence["timeout_s"] == pytest.approx(2.5, rel=1e-3)
    assert clock.slept == pytest.approx([1.0, 1.0], rel=1e-3)
