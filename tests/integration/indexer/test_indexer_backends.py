"""The indexer's core behaviours on each store: SQLite file and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from eth_account import Account
from eth_account.signers.local import LocalAccount

from gpunet.indexer import IndexerSettings, create_app
from gpunet.indexer.context import app_context
from gpunet.indexer.database import make_engine
from gpunet.indexer.orm import Base
from gpunet.indexer.sweeper import sweep_once
from gpunet.indexer.testing import IndexerTestClient, ManualClock, sample_registration

START = 1_750_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def client(database_url: str, clock: ManualClock) -> Iterator[IndexerTestClient]:
    settings = IndexerSettings(
        database_url=database_url,
        heartbeat_interval_s=10,
        heartbeat_timeout_s=30,
        sweep_interval_s=3600,
    )
    with IndexerTestClient(create_app(settings, clock=clock)) as test_client:
        yield test_client


@pytest.fixture
def alice() -> LocalAccount:
    account: LocalAccount = Account.create()
    return account


@pytest.fixture
def bob() -> LocalAccount:
    account: LocalAccount = Account.create()
    return account


def test_migrated_schema_matches_the_orm(client: IndexerTestClient, database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_health_names_the_dialect(client: IndexerTestClient, database_url: str) -> None:
    assert client.get("/v1/health").json()["database"] == database_url.split(":")[0].split("+")[0]


def test_register_update_and_ownership(
    client: IndexerTestClient, alice: LocalAccount, bob: LocalAccount
) -> None:
    created = client.signed("PUT", "/v1/nodes/n-1", alice, json=sample_registration())
    updated = client.signed(
        "PUT", "/v1/nodes/n-1", alice, json=sample_registration(price_micros=900_000)
    )
    stolen = client.signed("PUT", "/v1/nodes/n-1", bob, json=sample_registration())

    assert (created.status_code, updated.status_code, stolen.status_code) == (201, 200, 403)
    assert client.get("/v1/nodes/n-1").json()["offer"]["price_micros"] == 900_000


def test_refused_registration_changes_nothing(
    client: IndexerTestClient, alice: LocalAccount
) -> None:
    client.signed("PUT", "/v1/nodes/n-1", alice, json=sample_registration())
    before = client.get("/v1/nodes").json()

    bad = client.signed("PUT", "/v1/nodes/n-1", alice, json=sample_registration(price_micros=-5))
    unknown = client.signed("PUT", "/v1/nodes/n-2", alice, json=sample_registration("Z80"))

    assert (bad.status_code, unknown.status_code) == (422, 422)
    assert client.get("/v1/nodes").json() == before


def test_heartbeat_leave_and_liveness(
    client: IndexerTestClient, alice: LocalAccount, clock: ManualClock
) -> None:
    for node in ("n-1", "n-2"):
        client.signed("PUT", f"/v1/nodes/{node}", alice, json=sample_registration())
    assert client.signed("POST", "/v1/nodes/n-9/heartbeat", alice, json={}).status_code == 404
    client.signed("POST", "/v1/nodes/n-2/leave", alice)

    clock.advance(31)
    assert client.get("/v1/offers").json()["total"] == 0
    assert sweep_once(app_context(client.app)).marked_offline == 1  # type: ignore[arg-type]

    beat = client.signed("POST", "/v1/nodes/n-1/heartbeat", alice, json={"gpu_utilization": 50})
    assert beat.json()["state"] == "idle"
    node = client.get("/v1/nodes/n-1").json()
    assert (node["state"], node["heartbeats"]) == ("idle", 1)
    assert [o["node_id"] for o in client.get("/v1/offers").json()["offers"]] == ["n-1"]


def test_offer_filters_and_order(client: IndexerTestClient, alice: LocalAccount) -> None:
    nodes = {
        "n-eu": sample_registration("H100", 8, 2_000_000, "eu-west-1"),
        "n-euw": sample_registration("H100", 1, 1_000_000, "euw"),
        "n-us": sample_registration("RTX4090", 2, 500_000, "us-east"),
    }
    for node_id, body in nodes.items():
        client.signed("PUT", f"/v1/nodes/{node_id}", alice, json=body)

    def ids(where: str, order: str = "price") -> list[str]:
        listing = client.get("/v1/offers", params={"where": where, "order": order}).json()
        return [offer["node_id"] for offer in listing["offers"]]

    assert ids("region=eu") == ["n-eu"]
    assert ids("gpu=H100,RTX4090 price<=1") == ["n-us", "n-euw"]
    assert ids("", order="-tflops") == ["n-eu", "n-euw", "n-us"]
    assert ids(f"operator={alice.address.upper().replace('0X', '0x')} count>=2") == ["n-us", "n-eu"]


def test_replayed_nonce_is_refused(client: IndexerTestClient, alice: LocalAccount) -> None:
    body = sample_registration()
    first = client.signed("PUT", "/v1/nodes/n-1", alice, json=body, nonce="z" * 32)
    second = client.signed("PUT", "/v1/nodes/n-1", alice, json=body, nonce="z" * 32)

    assert first.status_code == 201
    assert second.status_code == 401
    assert second.json()["error"] == "auth_replayed"


def test_concurrent_heartbeats_are_all_counted(
    client: IndexerTestClient, alice: LocalAccount
) -> None:
    client.signed("PUT", "/v1/nodes/n-1", alice, json=sample_registration())

    def beat(_: int) -> int:
        return client.signed("POST", "/v1/nodes/n-1/heartbeat", alice, json={}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(beat, range(40)))

    assert statuses == [200] * 40
    assert client.get("/v1/nodes/n-1").json()["heartbeats"] == 40


def test_refused_requests_use_up_their_nonce(
    client: IndexerTestClient, alice: LocalAccount, bob: LocalAccount
) -> None:
    client.signed("PUT", "/v1/nodes/n-1", alice, json=sample_registration())
    before = client.get("/v1/nodes/n-1").json()
    refused = [
        (bob, "POST", "/v1/nodes/n-1/heartbeat", {}, 403),
        (alice, "POST", "/v1/nodes/n-9/heartbeat", {}, 404),
        (alice, "POST", "/v1/nodes/n-1/heartbeat", {"jobs_running": -1}, 422),
        (bob, "PUT", "/v1/nodes/n-1", sample_registration(), 403),
        (alice, "PUT", "/v1/nodes/n-1", sample_registration(price_micros=-5), 422),
        (bob, "POST", "/v1/nodes/n-1/leave", None, 403),
    ]

    for index, (account, method, path, body, status) in enumerate(refused):
        nonce = f"refused-{index}-{'x' * 16}"
        first = client.signed(method, path, account, json=body, nonce=nonce)
        again = client.signed(method, path, account, json=body, nonce=nonce)
        assert (first.status_code, again.status_code) == (status, 401), (method, path)
        assert again.json()["error"] == "auth_replayed"

    assert client.get("/v1/nodes/n-1").json() == before
