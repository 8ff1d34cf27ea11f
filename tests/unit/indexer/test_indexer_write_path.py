"""The write path of signed requests: one transaction per request, nonces always used up.

A signed request's nonce and its change are written together; a request refused
after its signature checked out (403, 404, 422) still uses up its nonce, so sending
it again answers 401 ``auth_replayed``. On SQLite, writes run on the event loop and
wait for another process's lock without blocking it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, select
from sqlalchemy.exc import OperationalError

from gpunet.indexer import IndexerSettings, database, server, store, sweeper
from gpunet.indexer.__main__ import main as indexer_main
from gpunet.indexer.context import app_context
from gpunet.indexer.database import Database, make_engine
from gpunet.indexer.migrate import upgrade_database
from gpunet.indexer.orm import RequestNonce
from gpunet.indexer.testing import IndexerTestClient, ManualClock, sample_registration

NODE = "/v1/nodes/n-alpha"
NONCE = "refused-nonce-0123456789"


def stored_nonces(client: IndexerTestClient) -> list[str]:
    context = app_context(client.app)  # type: ignore[arg-type]
    with context.database.reading() as session:
        return list(session.scalars(select(RequestNonce.nonce)))


def send_twice(
    client: IndexerTestClient, account: LocalAccount, method: str, path: str, body: Any
) -> tuple[Any, Any]:
    first = client.signed(method, path, account, json=body, nonce=NONCE)
    again = client.signed(method, path, account, json=body, nonce=NONCE)
    return first, again


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("POST", "/v1/nodes/n-ghost/heartbeat", {}, 404, "not_found"),
        ("POST", f"{NODE}/heartbeat", {"jobs_running": -1}, 422, "validation_error"),
        ("POST", "/v1/nodes/n-ghost/leave", None, 404, "not_found"),
        ("PUT", NODE, sample_registration(price_micros=-5), 422, "validation_error"),
        ("PUT", "/v1/nodes/n-beta", sample_registration("Z80"), 422, "unknown_gpu_model"),
        ("PUT", "/v1/nodes/Bad_Id", sample_registration(), 422, "validation_error"),
        ("POST", "/v1/nodes/Bad_Id/heartbeat", {}, 422, "validation_error"),
    ],
)
def test_a_refused_request_uses_up_its_nonce(
    client: IndexerTestClient,
    operator: LocalAccount,
    method: str,
    path: str,
    body: Any,
    status: int,
    error: str,
) -> None:
    client.signed("PUT", NODE, operator, json=sample_registration())
    before = client.get(NODE).json()

    first, again = send_twice(client, operator, method, path, body)

    assert (first.status_code, first.json()["error"]) == (status, error)
    assert (again.status_code, again.json()["error"]) == (401, "auth_replayed")
    assert NONCE in stored_nonces(client)
    assert client.get(NODE).json() == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", f"{NODE}/heartbeat", {}),
        ("POST", f"{NODE}/leave", None),
        ("PUT", NODE, sample_registration(price_micros=1)),
    ],
)
def test_a_request_on_another_operators_node_uses_up_its_nonce(
    client: IndexerTestClient,
    operator: LocalAccount,
    other_operator: LocalAccount,
    method: str,
    path: str,
    body: Any,
) -> None:
    client.signed("PUT", NODE, operator, json=sample_registration())
    before = client.get(NODE).json()

    first, again = send_twice(client, other_operator, method, path, body)

    assert (first.status_code, first.json()["error"]) == (403, "permission_denied")
    assert (again.status_code, again.json()["error"]) == (401, "auth_replayed")
    assert client.get(NODE).json() == before


def test_an_accepted_request_writes_its_nonce_with_its_change(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    client.signed("PUT", NODE, operator, json=sample_registration())

    first, again = send_twice(client, operator, "POST", f"{NODE}/heartbeat", {})

    assert first.status_code == 200
    assert (again.status_code, again.json()["error"]) == (401, "auth_replayed")
    assert client.get(NODE).json()["heartbeats"] == 1
    assert NONCE in stored_nonces(client)


def test_an_unsigned_or_badly_signed_request_stores_no_nonce(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    client.signed("PUT", NODE, operator, json=sample_registration(), timestamp=0, nonce=NONCE)
    client.post(f"{NODE}/heartbeat", json={})

    assert stored_nonces(client) == []


def test_concurrent_heartbeats_on_the_event_loop_are_all_counted(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    client.signed("PUT", NODE, operator, json=sample_registration())

    def beat(_: int) -> int:
        return client.signed("POST", f"{NODE}/heartbeat", operator, json={}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(beat, range(40)))

    assert statuses == [200] * 40
    assert client.get(NODE).json()["heartbeats"] == 40
    assert len(stored_nonces(client)) == 41


class WriteLock:
    """Another process's view: a separate sqlite3 connection holding the write lock."""

    def __init__(self, url: str) -> None:
        path = url.removeprefix("sqlite:///")
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def __enter__(self) -> WriteLock:
        self.connection.execute("BEGIN IMMEDIATE")
        return self

    def release(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("COMMIT")

    def __exit__(self, *_: object) -> None:
        self.release()
        self.connection.close()


def test_a_write_waits_for_another_process_without_blocking_the_event_loop(
    client: IndexerTestClient, operator: LocalAccount, settings: IndexerSettings
) -> None:
    client.signed("PUT", NODE, operator, json=sample_registration())

    with WriteLock(settings.resolved_database_url()) as lock, ThreadPoolExecutor(1) as pool:
        beat = pool.submit(client.signed, "POST", f"{NODE}/heartbeat", operator, json={})
        time.sleep(0.3)  # the heartbeat is retrying by now
        started = time.monotonic()
        health = client.get("/v1/health")
        served_in = time.monotonic() - started
        assert not beat.done()
        lock.release()
        answer = beat.result(timeout=10)

    assert health.status_code == 200
    assert served_in < 1.0
    assert answer.status_code == 200
    assert client.get(NODE).json()["heartbeats"] == 1


@pytest.fixture
def sqlite_database(tmp_path: Any) -> Iterator[tuple[Database, str]]:
    url = f"sqlite:///{tmp_path}/store.db"
    upgrade_database(url)
    store = Database(make_engine(url))
    yield store, url
    store.close()


def _count_nonces(connection: Connection) -> int:
    return len(connection.execute(select(RequestNonce.nonce)).all())


def test_a_write_gives_up_after_the_busy_timeout(
    sqlite_database: tuple[Database, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, url = sqlite_database
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 100)

    with WriteLock(url), pytest.raises(OperationalError, match="locked"):
        asyncio.run(store.run_write(_count_nonces))


def test_a_write_goes_through_once_the_lock_is_free(
    sqlite_database: tuple[Database, str],
) -> None:
    store, url = sqlite_database

    with WriteLock(url) as lock:
        threading.Timer(0.2, lock.release).start()
        started = time.monotonic()
        assert asyncio.run(store.run_write(_count_nonces)) == 0
        waited = time.monotonic() - started

    assert 0.15 < waited < 2.0


def test_serve_has_the_access_log_off_unless_asked(
    settings: IndexerSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **options: calls.append(options))
    monkeypatch.setattr("gpunet.indexer.__main__.load_settings", lambda: settings)

    server.serve(settings)
    server.serve(settings, access_log=True)
    indexer_main(["--port", "8799"])
    indexer_main(["--port", "8799", "--access-log"])

    assert [call["access_log"] for call in calls] == [False, True, False, True]


def _insert_nonce(nonce: str, connection: Connection) -> bool:
    return store.record_nonce(connection, "0x" + "a" * 40, nonce, 1.0)


def _fail_after_insert(connection: Connection) -> None:
    _insert_nonce("rolled-back-nonce-000", connection)
    raise ValueError("refused")


def test_writes_queued_together_commit_or_roll_back_alone(
    sqlite_database: tuple[Database, str],
) -> None:
    store_, _ = sqlite_database

    async def three_writes() -> list[object]:
        return await asyncio.gather(
            store_.run_write(partial(_insert_nonce, "first-nonce-0000000")),
            store_.run_write(_fail_after_insert),
            store_.run_write(partial(_insert_nonce, "first-nonce-0000000")),
            return_exceptions=True,
        )

    first, failed, again = asyncio.run(three_writes())

    assert (first, again) == (True, False)  # the same transaction sees the first insert
    assert isinstance(failed, ValueError)
    with store_.reading() as session:
        assert list(session.scalars(select(RequestNonce.nonce))) == ["first-nonce-0000000"]


def test_the_app_sweeper_writes_in_short_batches(
    client: IndexerTestClient,
    operator: LocalAccount,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for index in range(5):
        client.signed("PUT", f"/v1/nodes/n-{index:03d}", operator, json=sample_registration())
    monkeypatch.setattr(sweeper, "SWEEP_BATCH", 2)
    clock.advance(121)
    context = app_context(client.app)  # type: ignore[arg-type]

    assert client.portal is not None
    report = client.portal.call(sweeper.sweep_in_app, context)

    assert (report.marked_offline, report.nonces_pruned, report.nodes_online) == (5, 5, 0)
    assert client.get("/v1/nodes", params={"state": "offline"}).json()["total"] == 5
    assert stored_nonces(client) == []


def test_the_writer_checkpoints_the_wal_from_a_thread(
    sqlite_database: tuple[Database, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store_, _ = sqlite_database
    writer = store_._loop_writer
    assert writer is not None
    monkeypatch.setattr(writer, "CHECKPOINT_EVERY", 3)
    threads: list[str] = []
    checkpoint = writer._checkpoint

    def recorded() -> None:
        threads.append(threading.current_thread().name)
        checkpoint()

    monkeypatch.setattr(writer, "_checkpoint", recorded)

    async def seven_writes() -> None:
        for index in range(7):
            await store_.run_write(partial(_insert_nonce, f"checkpoint-nonce-{index:04d}"))

    asyncio.run(seven_writes())

    assert 1 <= len(threads) <= 2
    assert threading.main_thread().name not in threads
