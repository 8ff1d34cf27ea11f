"""Node states and the liveness rule.

A node is ``idle`` (online, free), ``busy`` (online, leased) or ``offline`` (missed
heartbeats past the timeout, or left). Only online nodes appear in the offer list.
"""

from __future__ import annotations

from enum import StrEnum


class NodeState(StrEnum):
    """Where a node stands in the registry."""

    IDLE = "idle"
    BUSY = "busy"
    OFFLINE = "offline"

    @property
    def online(self) -> bool:
        return self is not NodeState.OFFLINE


def is_stale(last_heartbeat_at: float, now: float, timeout_s: float) -> bool:
    """True when the last heartbeat is older than the timeout."""
    return now - last_heartbeat_at > timeout_s


def state_after_heartbeat(current: NodeState) -> NodeState:
    """A heartbeat brings an offline node back as idle and leaves others as they are."""
    return NodeState.IDLE if current is NodeState.OFFLINE else current


def state_after_sweep(
    current: NodeState, last_heartbeat_at: float, now: float, timeout_s: float
) -> NodeState:
    """The state a liveness sweep leaves a node in."""
    if current.online and is_stale(last_heartbeat_at, now, timeout_s):
        return NodeState.OFFLINE
    return current
