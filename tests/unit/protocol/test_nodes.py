from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gpunet.protocol.nodes import NodeState, state_after_heartbeat, state_after_sweep


def test_heartbeat_brings_offline_node_back_as_idle() -> None:
    assert state_after_heartbeat(NodeState.OFFLINE) is NodeState.IDLE
    assert state_after_heartbeat(NodeState.BUSY) is NodeState.BUSY


def test_sweep_marks_stale_nodes_offline() -> None:
    assert state_after_sweep(NodeState.IDLE, 100.0, 111.0, 10.0) is NodeState.OFFLINE
    assert state_after_sweep(NodeState.BUSY, 100.0, 111.0, 10.0) is NodeState.OFFLINE
    assert state_after_sweep(NodeState.IDLE, 100.0, 110.0, 10.0) is NodeState.IDLE


@given(
    st.sampled_from(list(NodeState)),
    st.integers(0, 10**9),
    st.integers(0, 10**4),
    st.integers(1, 10**4),
)
def test_fresh_nodes_keep_their_state(state: NodeState, last: int, age: int, timeout: int) -> None:
    now = last + min(age, timeout)
    assert state_after_sweep(state, last, now, timeout) is state


@given(st.sampled_from(list(NodeState)))
def test_after_a_heartbeat_a_node_is_online(state: NodeState) -> None:
    assert state_after_heartbeat(state).online
