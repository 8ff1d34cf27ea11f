"""The runners against the node's real check endpoint (``node.check_server``), in process.

Starlette's TestClient is an ``httpx.Client`` that serves the app itself, so the
checker's runners talk to the same routes and answers a node agent serves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from eth_account.signers.local import LocalAccount
from starlette.testclient import TestClient

from gpunet.checker.capacity import CapacityContext, check_capacity
from gpunet.checker.liveness import check_liveness
from gpunet.checker.outcome import CheckOutcome
from gpunet.checker.testing import make_task
from gpunet.node.capacity import CapacityProver
from gpunet.node.check_server import ChallengeLimits, CheckService, check_app
from gpunet.node.misbehave import HONEST, Misbehaviour
from gpunet.protocol.challenge import CPU_POLICY
from gpunet.protocol.liveness import ProbePolicy
from gpunet.protocol.vote import Verdict

NODE_ID = "n-0123456789ab"
CLAIM = 2e9  # a small CPU claim: NumPy answers well inside the deadline
URL = "http://node.test:9100"
Serve = Callable[..., TestClient]
# The runners set per-request timeouts, which TestClient (serving in process) ignores.
pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


@pytest.fixture
def node(operator: LocalAccount) -> Iterator[Serve]:
    clients: list[TestClient] = []
    prover = CapacityProver(backend="numpy")

    def serve(lies: Misbehaviour = HONEST) -> TestClient:
        limits = ChallengeLimits(CLAIM, (CPU_POLICY,))
        service = CheckService(NODE_ID, operator, limits, prover=prover, misbehaviour=lies)
        client = TestClient(check_app(service), base_url=URL)
        clients.append(client)
        return client

    yield serve
    for client in clients:
        client.close()


def capacity(http: TestClient, operator: LocalAccount) -> CheckOutcome:
    task = make_task(operator.address, "capacity", check_url=URL, claimed_ops_per_s=CLAIM)
    return check_capacity(task, CapacityContext(http, CPU_POLICY), budget_s=60)


def liveness(http: TestClient, operator: LocalAccount) -> CheckOutcome:
    task = make_task(operator.address, "liveness", check_url=URL)
    policy = ProbePolicy(attempts=2, timeout_s=2.0, spacing_s=0.0)
    return check_liveness(task, http, policy=policy)


def test_honest_node_passes_liveness_and_capacity(node: Serve, operator: LocalAccount) -> None:
    http = node()

    alive = liveness(http, operator)
    fast = capacity(http, operator)

    assert alive.verdict is Verdict.PASS, alive.detail
    assert fast.verdict is Verdict.PASS, fast.detail
    assert "tiles correct" in fast.detail


def test_impersonating_node_fails_both(node: Serve, operator: LocalAccount) -> None:
    http = node(Misbehaviour(impersonate=True))

    alive = liveness(http, operator)
    fast = capacity(http, operator)

    assert alive.verdict is Verdict.FAIL and "not by the node's operator" in alive.detail
    assert fast.verdict is Verdict.FAIL and "not the operator" in fast.detail


def test_replaying_node_fails_its_second_challenge(node: Serve, operator: LocalAccount) -> None:
    http = node(Misbehaviour(replay=True))

    capacity(http, operator)
    second = capacity(http, operator)

    assert second.verdict is Verdict.FAIL
    assert "tile" in second.detail


def test_random_outputs_node_fails(node: Serve, operator: LocalAccount) -> None:
    http = node(Misbehaviour(random_outputs=True))

    outcome = capacity(http, operator)

    assert outcome.verdict is Verdict.FAIL
    assert (
        outcome.detail.startswith("tile ")
        and "differs from the recomputed product" in outcome.detail
    )
