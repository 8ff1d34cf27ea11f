"""The node agent's loop: register, heartbeat, back off when the indexer is away, leave.

::

    STARTING --register ok--> ONLINE --heartbeat ok--> ONLINE
        |                       |  \\--404: indexer forgot us--> REGISTERING --> ONLINE
        |                       |
        +--unreachable / 5xx--> RETRYING (backoff 1, 2, 4 ... 30 s, jittered) --ok--> ONLINE
        +--other 4xx----------> FAILED (AgentRefused: a misconfiguration, retrying won't help)
    stop() or signal --> STOPPING (leave, best effort) --> STOPPED

The agent sleeps between calls on an ``Event``, so an idle agent costs no CPU and a stop
request ends the sleep at once. Time, sleep and randomness are injectable for tests.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from gpunet.api.models import HeartbeatAck, HeartbeatIn, NodePublic, NodeRegistration
from gpunet.errors import ApiError, GpunetError
from gpunet.sdk.errors import IndexerUnreachable, InvalidResponse
from gpunet.sdk.retry import Backoff, IndexerFailure, IndexerLink, Next

log = logging.getLogger("gpunet.node")

HEARTBEAT_JITTER = 0.10


class AgentState(StrEnum):
    """Where the agent stands with the indexer."""

    STARTING = "starting"
    REGISTERING = "registering"
    ONLINE = "online"
    RETRYING = "retrying"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class AgentRefused(GpunetError):
    """The indexer refused the agent with an answer that retrying cannot change."""

    def __init__(self, action: str, error: ApiError) -> None:
        self.error = error
        super().__init__(
            f"the indexer refused to {action}: {error.message} "
            f"(HTTP {error.status_code}, {error.code}); fix the node's settings and restart it"
        )


class NodeApi(Protocol):
    """The calls the agent makes; ``gpunet.sdk.Client`` provides them."""

    def register_node(self, node_id: str, registration: NodeRegistration) -> NodePublic: ...

    def heartbeat(self, node_id: str, beat: HeartbeatIn | None = None) -> HeartbeatAck: ...

    def leave(self, node_id: str) -> NodePublic: ...


@dataclass(frozen=True)
class AgentHealth:
    """A snapshot for health checks: state and time since the indexer last said yes."""

    state: AgentState
    seconds_since_heartbeat: float | None
    consecutive_failures: int
    last_error: str | None


class NodeAgent:
    """Keeps one node registered and heartbeating until ``stop()`` is called."""

    def __init__(
        self,
        client: NodeApi,
        node_id: str,
        registration: NodeRegistration,
        interval_s: float = 60.0,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.node_id = node_id
        self.interval_s = interval_s
        self._client = client
        self._registration = registration
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._rng = rng or random.Random()
        self._state = AgentState.STARTING
        self._registered = False
        self._link = IndexerLink(self._backoff, self._rng, clock)
        self._rtt_ms: float | None = None

    @property
    def state(self) -> AgentState:
        return self._state

    def stop(self) -> None:
        """Ask the loop to leave and return; safe from any thread."""
        self._stop.set()

    def health(self) -> AgentHealth:
        link = self._link
        return AgentHealth(self._state, link.seconds_since_ok(), link.failures, link.last_error)

    def run(self) -> None:
        """Register, heartbeat until stopped, then leave.

        Raises ``AgentRefused`` when the indexer answers a 4xx that is not 404 on a
        heartbeat (which means "register again"): a misconfiguration, not an outage.
        """
        try:
            while not self._stop.is_set():
                self._sleep(self._step())
        except AgentRefused as exc:
            self._set_state(AgentState.FAILED, str(exc))
            raise
        finally:
            self._leave()
        self._set_state(AgentState.STOPPED, "agent ended")

    def _step(self) -> float:
        """One call to the indexer; returns the seconds to wait before the next."""
        try:
            return self._heartbeat() if self._registered else self._register()
        except (ApiError, IndexerUnreachable, InvalidResponse) as exc:
            return self._on_failure(exc)

    def _register(self) -> float:
        node = self._client.register_node(self.node_id, self._registration)
        self._registered = True
        self._on_success()
        offer = node.offer
        self._set_state(
            AgentState.ONLINE,
            f"registered node {node.node_id} as {node.state} "
            f"(operator {node.operator}, region {offer.region})",
        )
        return self._next_beat(self.interval_s)

    def _heartbeat(self) -> float:
        # The round trip of the previous heartbeat is the node's latency estimate.
        sent = self._clock()
        ack = self._client.heartbeat(self.node_id, HeartbeatIn(rtt_ms=self._rtt_ms))
        self._rtt_ms = round(max(0.0, self._clock() - sent) * 1000.0, 3)
        self._on_success()
        self._set_state(AgentState.ONLINE, f"heartbeats accepted, node is {ack.state}")
        return self._next_beat(ack.next_heartbeat_s)

    def _on_success(self) -> None:
        self._link.succeeded()

    def _on_failure(self, exc: IndexerFailure) -> float:
        step, delay = self._link.failed(exc, registered=self._registered)
        if step is Next.REGISTER_AGAIN:
            self._registered = False
            self._set_state(AgentState.REGISTERING, "the indexer does not know this node")
        elif step is Next.REFUSED:
            assert isinstance(exc, ApiError)
            action = "accept a heartbeat" if self._registered else "register this node"
            raise AgentRefused(action, exc) from exc
        else:
            self._set_state(AgentState.RETRYING, f"{exc}; retrying in {delay:.1f}s")
        return delay

    def _next_beat(self, indexer_hint_s: float) -> float:
        # Beat at least as often as the indexer asks, so its timeout never fires on us.
        interval = min(self.interval_s, indexer_hint_s) if indexer_hint_s > 0 else self.interval_s
        return interval * self._rng.uniform(1 - HEARTBEAT_JITTER, 1 + HEARTBEAT_JITTER)

    def _leave(self) -> None:
        if not self._registered:
            return
        self._set_state(AgentState.STOPPING, "leaving the network")
        try:
            self._client.leave(self.node_id)
        except GpunetError as exc:
            # Best effort: the indexer marks us offline after its heartbeat timeout anyway.
            log.warning("could not leave cleanly (%s); the indexer will time the node out", exc)
        self._registered = False

    def _set_state(self, state: AgentState, reason: str) -> None:
        changed = state is not self._state
        self._state = state
        log.log(logging.INFO if changed else logging.DEBUG, "%s: %s", state, reason)
