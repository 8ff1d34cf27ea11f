"""The indexer killed (SIGKILL) in the middle of a job load, then restarted.

A buyer submits jobs and deposits while a node takes, starts and finishes them; the
indexer dies mid-load and comes back on the same store. Nothing accepted may be
lost or duplicated:

- every job the indexer answered 201 for exists, once;
- every account's balance equals the sum of its ledger entries, all balances sum
  to zero, and each job's recorded hold equals its escrow account's balance;
- deposits credited equal the deposits answered 200 plus, at most, the ones whose
  answer was lost in the crash (committed but unanswered).

Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select

from gpunet.indexer.database import make_engine
from gpunet.indexer.orm import AccountRecord, JobRecord, LedgerEntryRecord
from gpunet.indexer.testing import sample_registration
from gpunet.protocol import ledger
from gpunet.protocol.auth import sign_request

from .test_indexer_server import free_port, wait_until_healthy

pytestmark = pytest.mark.slow

SPEC = {
    "name": "load",
    "command": ["true"],
    "max_price": "1.00",
    "max_duration": "10m",
    "resources": {"cpu_cores": 1, "memory": "512MiB"},
}


class Signer:
    """Signed requests with fresh nonces, over one HTTP client."""

    def __init__(self, base_url: str, account: LocalAccount) -> None:
        self.base_url = base_url
        self.account = account
        self.http = httpx.Client(base_url=base_url, timeout=5)

    def send(self, method: str, path: str, body: Any = None) -> httpx.Response:
        raw = b"" if body is None else json.dumps(body).encode()
        headers = sign_request(
            self.account, method, path, raw, int(time.time()), secrets.token_hex(16)
        )
        headers["Content-Type"] = "application/json"
        return self.http.request(method, path, content=raw, headers=headers)


class Indexer:
    """``python -m gpunet.indexer`` on a fixed port and store, restartable."""

    def __init__(self, database_url: str, port: int) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "GPUNET_DATABASE_URL": database_url,
            "GPUNET_HEARTBEAT_INTERVAL_S": "5",
            "GPUNET_HEARTBEAT_TIMEOUT_S": "60",
            "GPUNET_MATCH_INTERVAL_S": "0.2",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "gpunet.indexer", "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until_healthy(self.base_url, self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


@pytest.fixture
def indexer(database_url: str) -> Iterator[Indexer]:
    server = Indexer(database_url, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _buyer_load(
    signer: Signer, stop: threading.Event, accepted: list[str], deposits: dict[str, int]
) -> None:
    while not stop.is_set():
        try:
            response = signer.send("POST", "/v1/accounts/deposit", {"amount_micros": 200_000})
            if response.status_code == 200:
                deposits["answered"] += 200_000
            else:
                deposits["refused"] += 1
            deposits["sent"] += 200_000
            response = signer.send("POST", "/v1/jobs", {"spec": SPEC, "inputs": []})
            if response.status_code == 201:
                accepted.append(response.json()["job_id"])
        except httpx.TransportError:
            deposits["sent"] += 0
            time.sleep(0.05)


def _node_load(signer: Signer, stop: threading.Event, finished: list[str]) -> None:
    while not stop.is_set():
        try:
            if signer.send("PUT", "/v1/nodes/load-node", _registration()).status_code >= 400:
                time.sleep(0.1)
                continue
            while not stop.is_set():
                work = signer.send("GET", "/v1/nodes/load-node/work?wait_s=1")
                if work.status_code != 200:
                    break
                for item in work.json()["assignments"]:
                    job_id, attempt = item["job_id"], item["attempt"]
                    signer.send("POST", f"/v1/jobs/{job_id}/start", {"attempt": attempt})
                    receipt = {"attempt": attempt, "outcome": "succeeded", "usage_s": 0.5}
                    answer = signer.send("POST", f"/v1/jobs/{job_id}/finish", receipt)
                    if answer.status_code == 200:
                        finished.append(job_id)
        except httpx.TransportError:
            time.sleep(0.05)


def _registration() -> dict[str, Any]:
    body = sample_registration("CPU", 0, price_micros=360_000)
    body["runtimes"] = ["bwrap"]
    return body


def test_no_accepted_job_or_ledger_entry_is_lost_or_duplicated(
    indexer: Indexer, database_url: str
) -> None:
    buyer: LocalAccount = Account.create()
    operator: LocalAccount = Account.create()
    buyer_signer = Signer(indexer.base_url, buyer)
    node_signer = Signer(indexer.base_url, operator)
    stop = threading.Event()
    accepted: list[str] = []
    finished: list[str] = []
    deposits = {"answered": 0, "sent": 0, "refused": 0}
    threads = [
        threading.Thread(target=_buyer_load, args=(buyer_signer, stop, accepted, deposits)),
        threading.Thread(target=_node_load, args=(node_signer, stop, finished)),
    ]
    for thread in threads:
        thread.start()
    try:
        _wait_for(lambda: len(finished) >= 5 and len(accepted) >= 10, "load to get going")
        indexer.kill()
        before_restart = len(accepted)
        time.sleep(0.5)
        indexer.start()
        _wait_for(lambda: len(accepted) >= before_restart + 5, "load to resume")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        buyer_signer.http.close()
        node_signer.http.close()
    indexer.stop()

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            job_ids = list(connection.scalars(select(JobRecord.job_id)))
            assert len(job_ids) == len(set(job_ids))
            assert set(accepted) <= set(job_ids)
            # Only jobs whose answer the crash swallowed may exist without a 201.
            assert len(set(job_ids) - set(accepted)) <= 2

            balances = dict(
                connection.execute(select(AccountRecord.account, AccountRecord.balance)).all()
            )
            sums = dict(
                connection.execute(
                    select(LedgerEntryRecord.account, func.sum(LedgerEntryRecord.amount)).group_by(
                        LedgerEntryRecord.account
                    )
                ).all()
            )
            assert {k: int(v) for k, v in sums.items() if int(v) != 0} == {
                k: v for k, v in balances.items() if v != 0
            }
            assert sum(balances.values()) == 0
            for job_id, hold in connection.execute(select(JobRecord.job_id, JobRecord.hold_micros)):
                assert balances.get(ledger.escrow_account(job_id), 0) == hold
            credited = -balances[ledger.WORLD]
            assert deposits["answered"] <= credited <= deposits["answered"] + 2 * 200_000
            succeeded = set(
                connection.scalars(select(JobRecord.job_id).where(JobRecord.state == "succeeded"))
            )
            assert set(finished) <= succeeded
    finally:
        engine.dispose()


def _wait_for(condition: Any, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
