"""A NodeAgent against a real indexer process that is killed and started again."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from gpunet.api.models import NodeRegistration
from gpunet.cli.localnet import LocalNetwork, NetworkSpec, free_port, wait_until
from gpunet.indexer.testing import sample_registration
from gpunet.node.agent import AgentState, NodeAgent
from gpunet.protocol.nodes import NodeState
from gpunet.sdk import Client
from gpunet.sdk.retry import Backoff

pytestmark = pytest.mark.slow

NODE_ID = "n-agent-itest"


def registration() -> NodeRegistration:
    return NodeRegistration.model_validate(sample_registration("CPU", gpu_count=0, detection="cpu"))


@pytest.fixture
def network(tmp_path: Path) -> Iterator[LocalNetwork]:
    net = LocalNetwork(NetworkSpec(nodes=1, port=free_port(), heartbeat_s=0.5), tmp_path)
    net.prepare()
    net.start_indexer()
    try:
        yield net
    finally:
        net.stop()


def heartbeats(network: LocalNetwork) -> int:
    with network.client() as reader:
        return reader.get_node(NODE_ID).heartbeats


def test_agent_survives_indexer_restarts_and_leaves_on_stop(network: LocalNetwork) -> None:
    client = Client(network.spec.url, Account.create(), timeout=2.0)
    agent = NodeAgent(
        client, NODE_ID, registration(), interval_s=0.3, backoff=Backoff(base_s=0.1, cap_s=0.5)
    )
    runner = threading.Thread(target=agent.run, name="agent")
    runner.start()
    try:
        wait_until(lambda: agent.state is AgentState.ONLINE, 10, "agent never registered")
        wait_until(lambda: heartbeats(network) >= 2, 10, "no heartbeats arrived")

        network.indexer.stop(grace_s=0)  # SIGKILL: the indexer vanishes mid-flight
        wait_until(lambda: agent.state is AgentState.RETRYING, 10, "agent missed the outage")

        network.start_indexer()  # same database: the node is still known
        wait_until(lambda: agent.state is AgentState.ONLINE, 15, "agent did not come back")
        before = heartbeats(network)
        wait_until(lambda: heartbeats(network) > before, 10, "heartbeats did not resume")

        network.indexer.stop(grace_s=0)
        shutil.rmtree(network.layout.indexer_dir)  # a fresh, empty registry
        network.start_indexer()
        wait_until(lambda: _registered_again(network), 15, "agent did not register again")
    finally:
        agent.stop()
        runner.join(timeout=15)
        client.close()

    assert not runner.is_alive()
    assert agent.state is AgentState.STOPPED
    with network.client() as reader:
        assert reader.get_node(NODE_ID).state is NodeState.OFFLINE  # it left


def _registered_again(network: LocalNetwork) -> bool:
    with network.client() as reader:
        listed = reader.list_nodes()
    return any(n.node_id == NODE_ID and n.state is NodeState.IDLE for n in listed.nodes)
