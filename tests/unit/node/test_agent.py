"""NodeAgent's loop against a scripted fake indexer and a fake clock."""

from __future__ import annotations

import random
import threading
from collections import deque
from datetime import UTC, datetime

import pytest

from gpunet.api.models import (
    HeartbeatAck,
    HeartbeatIn,
    NodePublic,
    NodeRegistration,
)
from gpunet.errors import ApiError, GpunetError
from gpunet.indexer.testing import sample_registration
from gpunet.node.agent import AgentRefused, AgentState, NodeAgent
from gpunet.protocol.nodes import NodeState
from gpunet.sdk import IndexerUnreachable
from gpunet.sdk.retry import Backoff

NODE_ID = "n-0123456789ab"
OPERATOR = "0x" + "ab" * 20
DOWN = IndexerUnreachable("http://indexer.test", "ConnectError: refused")
NOT_FOUND = ApiError(404, "not_found", "no node n-0123456789ab")
CRASHED = ApiError(503, "unavailable", "database is down")
FORBIDDEN = ApiError(403, "permission_denied", "node belongs to 0xother")

Outcome = GpunetError | None  # None: the call succeeds


def registration() -> NodeRegistration:
    return NodeRegistration.model_validate(sample_registration("CPU", gpu_count=0, detection="cpu"))


class FakeIndexer:
    """Answers each call with the next scripted outcome (success once the script ends)."""

    def __init__(self, **scripts: list[Outcome]) -> None:
        self.scripts = {name: deque(outcomes) for name, outcomes in scripts.items()}
        self.calls: list[str] = []
        self.next_heartbeat_s = 60.0

    def _answer(self, name: str) -> None:
        self.calls.append(name)
        script = self.scripts.get(name)
        outcome = script.popleft() if script else None
        if outcome is not None:
            raise outcome

    def register_node(self, node_id: str, registration: NodeRegistration) -> NodePublic:
        self._answer("register")
        return node(NodeState.IDLE, registration)

    def heartbeat(self, node_id: str, beat: HeartbeatIn | None = None) -> HeartbeatAck:
        self._answer("heartbeat")
        return HeartbeatAck(
            node_id=node_id, state=NodeState.IDLE, next_heartbeat_s=self.next_heartbeat_s
        )

    def leave(self, node_id: str) -> NodePublic:
        self._answer("leave")
        return node(NodeState.OFFLINE, registration())


def node(state: NodeState, reg: NodeRegistration) -> NodePublic:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    return NodePublic(
        node_id=NODE_ID,
        operator=OPERATOR,
        hardware=reg.hardware,
        offer=reg.offer,
        agent_version=reg.agent_version,
        state=state,
        registered_at=now,
        last_heartbeat_at=now,
        heartbeats=0,
    )


class FakeTime:
    """A clock that sleeping advances; stops the agent after ``sleeps`` sleeps."""

    def __init__(self, sleeps: int) -> None:
        self.now = 1000.0
        self.delays: list[float] = []
        self.sleeps = sleeps
        self.agent: NodeAgent | None = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds
        if len(self.delays) >= self.sleeps and self.agent is not None:
            self.agent.stop()


def make_agent(
    indexer: FakeIndexer, sleeps: int, interval_s: float = 10.0, jitter: float = 0.0
) -> tuple[NodeAgent, FakeTime]:
    time = FakeTime(sleeps)
    agent = NodeAgent(
        indexer,
        NODE_ID,
        registration(),
        interval_s,
        backoff=Backoff(base_s=1.0, factor=2.0, cap_s=30.0, jitter=jitter),
        clock=time.clock,
        sleep=time.sleep,
        rng=random.Random(7),
    )
    time.agent = agent
    return agent, time


def test_registers_then_heartbeats_every_interval_then_leaves() -> None:
    indexer = FakeIndexer()
    agent, time = make_agent(indexer, sleeps=3)

    agent.run()

    assert indexer.calls == ["register", "heartbeat", "heartbeat", "leave"]
    assert all(9.0 <= d <= 11.0 for d in time.delays)  # 10 s +- 10% jitter
    assert agent.state is AgentState.STOPPED


def test_backoff_grows_and_caps_while_the_indexer_is_unreachable() -> None:
    indexer = FakeIndexer(register=[DOWN] * 8)
    agent, time = make_agent(indexer, sleeps=9)

    agent.run()

    assert time.delays[:8] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert indexer.calls[8] == "register"  # the ninth try got through
    assert agent.health().consecutive_failures == 0


def test_backoff_jitter_stays_within_bounds_and_cap() -> None:
    backoff = Backoff(base_s=1.0, factor=2.0, cap_s=30.0, jitter=0.2)
    rng = random.Random(1)

    delays = [backoff.delay(n, rng) for n in range(1, 2000)]

    assert 0.8 <= delays[0] <= 1.2
    assert 3.2 <= delays[2] <= 4.8
    assert max(delays) <= 30.0
    assert min(delays[10:]) >= 24.0


def test_server_errors_back_off_during_heartbeats_and_recover() -> None:
    indexer = FakeIndexer(heartbeat=[CRASHED, CRASHED])
    agent, time = make_agent(indexer, sleeps=5)

    agent.run()

    assert indexer.calls == [
        "register",
        "heartbeat",
        "heartbeat",
        "heartbeat",
        "heartbeat",
        "leave",
    ]
    assert time.delays[1:3] == [1.0, 2.0]


def test_unknown_node_on_heartbeat_registers_again_at_once() -> None:
    indexer = FakeIndexer(heartbeat=[NOT_FOUND])
    agent, time = make_agent(indexer, sleeps=3)

    agent.run()

    assert indexer.calls == ["register", "heartbeat", "register", "leave"]
    assert time.delays[1] == 0.0


def test_other_client_errors_stop_the_agent_with_a_clear_error() -> None:
    indexer = FakeIndexer(register=[FORBIDDEN])
    agent, _ = make_agent(indexer, sleeps=100)

    with pytest.raises(
        AgentRefused, match="refused to register this node: node belongs to 0xother"
    ):
        agent.run()

    assert agent.state is AgentState.FAILED
    assert indexer.calls == ["register"]  # never registered, so nothing to leave


def test_too_many_requests_is_retried_not_fatal() -> None:
    indexer = FakeIndexer(heartbeat=[ApiError(429, "rate_limited", "slow down")])
    agent, time = make_agent(indexer, sleeps=3)

    agent.run()

    assert time.delays[1] == 1.0
    assert indexer.calls[-1] == "leave"


def test_stop_sends_leave_even_if_it_fails() -> None:
    indexer = FakeIndexer(leave=[DOWN])
    agent, _ = make_agent(indexer, sleeps=1)

    agent.run()

    assert indexer.calls == ["register", "leave"]
    assert agent.state is AgentState.STOPPED


def test_heartbeats_follow_a_shorter_interval_asked_by_the_indexer() -> None:
    indexer = FakeIndexer()
    indexer.next_heartbeat_s = 2.0
    agent, time = make_agent(indexer, sleeps=3, interval_s=60.0)

    agent.run()

    assert 54.0 <= time.delays[0] <= 66.0  # after register: our own interval
    assert all(1.8 <= d <= 2.2 for d in time.delays[1:])


def test_health_reports_time_since_the_last_good_answer() -> None:
    indexer = FakeIndexer(heartbeat=[DOWN, DOWN, DOWN])
    agent, time = make_agent(indexer, sleeps=4)

    agent.run()

    health = agent.health()
    assert health.seconds_since_heartbeat == pytest.approx(sum(time.delays))  # since register
    assert health.consecutive_failures == 3
    assert "refused" in (health.last_error or "")


def test_stop_from_another_thread_interrupts_the_real_sleep() -> None:
    indexer = FakeIndexer()
    agent = NodeAgent(indexer, NODE_ID, registration(), interval_s=3600.0)
    runner = threading.Thread(target=agent.run)

    runner.start()
    while "register" not in indexer.calls:
        threading.Event().wait(0.01)
    agent.stop()
    runner.join(timeout=5)

    assert not runner.is_alive()
    assert indexer.calls == ["register", "leave"]
