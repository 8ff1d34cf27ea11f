"""The SDK end to end against a real indexer process (uvicorn, SQLite in a tmp dir)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from gpunet.api.models import HardwareClaimModel, HeartbeatIn, NodeRegistration, OfferModel
from gpunet.cli.localnet import LocalNetwork, NetworkSpec, free_port
from gpunet.errors import ApiError
from gpunet.protocol.nodes import NodeState
from gpunet.sdk import AsyncClient, Client, IndexerUnreachable

pytestmark = pytest.mark.slow


def registration(price_micros: int = 450_000, region: str = "eu-west") -> NodeRegistration:
    hardware = HardwareClaimModel(
        gpu_model="CPU",
        gpu_count=0,
        vram_mib=0,
        cpu_cores=2,
        memory_mib=4096,
        disk_gib=10,
        benchmark_gflops=20.0,
    )
    return NodeRegistration(
        hardware=hardware,
        offer=OfferModel(price_micros=price_micros, region=region),
        agent_version="itest",
    )


def new_account() -> LocalAccount:
    account: LocalAccount = Account.create()
    return account


@pytest.fixture(scope="module")
def indexer_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("sdk-net")
    network = LocalNetwork(NetworkSpec(nodes=1, port=free_port(), heartbeat_s=1.0), root)
    network.prepare()
    network.start_indexer()
    try:
        yield network.spec.url
    finally:
        network.stop()


def test_register_heartbeat_list_and_leave(indexer_url: str) -> None:
    account = new_account()
    with Client(indexer_url, account) as api:
        node = api.register_node("n-sdk-sync-1", registration(price_micros=333_000))
        ack = api.heartbeat("n-sdk-sync-1", HeartbeatIn(jobs_running=0))
        fetched = api.get_node("n-sdk-sync-1")
        mine = api.list_nodes(operator=account.address)
        offers = api.list_offers(where="gpu=CPU price<0.34", order="price")
        left = api.leave("n-sdk-sync-1")
        offers_after = api.list_offers(where="gpu=CPU price<0.34")

    assert node.operator.lower() == account.address.lower()
    assert node.state is NodeState.IDLE
    assert ack.state is NodeState.IDLE
    assert ack.next_heartbeat_s == 1.0
    assert fetched.heartbeats >= 1
    assert [n.node_id for n in mine.nodes] == ["n-sdk-sync-1"]
    assert "n-sdk-sync-1" in [o.node_id for o in offers.offers]
    assert left.state is NodeState.OFFLINE
    assert "n-sdk-sync-1" not in [o.node_id for o in offers_after.offers]


def test_another_operator_cannot_take_a_node(indexer_url: str) -> None:
    with Client(indexer_url, new_account()) as owner, Client(indexer_url, new_account()) as thief:
        owner.register_node("n-sdk-owned", registration())
        with pytest.raises(ApiError) as caught:
            thief.register_node("n-sdk-owned", registration(price_micros=1))

    assert caught.value.status_code == 403
    assert caught.value.code == "permission_denied"


def test_heartbeat_for_an_unknown_node_is_404(indexer_url: str) -> None:
    with Client(indexer_url, new_account()) as api, pytest.raises(ApiError) as caught:
        api.heartbeat("n-sdk-never-registered")

    assert caught.value.status_code == 404


def test_bad_filter_is_a_400_with_the_parsers_message(indexer_url: str) -> None:
    with Client(indexer_url) as api, pytest.raises(ApiError) as caught:
        api.list_offers(where="price<<cheap")

    assert caught.value.status_code == 400
    assert caught.value.code == "query_syntax_error"
    assert "price<2.5" in caught.value.message


def test_health_and_metrics(indexer_url: str) -> None:
    with Client(indexer_url) as api:
        health = api.health()
        metrics = api.metrics_text()

    assert health.status == "ok"
    assert "gpunet_nodes_online" in metrics


def test_async_client_does_the_same(indexer_url: str) -> None:
    account = new_account()

    async def scenario() -> tuple[NodeState, NodeState, int]:
        async with AsyncClient(indexer_url, account) as api:
            await api.register_node("n-sdk-async-1", registration(region="us-east"))
            ack = await api.heartbeat("n-sdk-async-1")
            listed = await api.list_nodes(operator=account.address)
            left = await api.leave("n-sdk-async-1")
        return ack.state, left.state, listed.total

    ack_state, left_state, total = asyncio.run(scenario())

    assert (ack_state, left_state, total) == (NodeState.IDLE, NodeState.OFFLINE, 1)


def test_unreachable_indexer_is_reported_with_its_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    with Client(url) as api, pytest.raises(IndexerUnreachable, match=url):
        api.health()
