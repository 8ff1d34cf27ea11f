"""The real server: uvicorn in a subprocess, a signed registration over real HTTP."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from gpunet.indexer.testing import sample_registration
from gpunet.protocol.auth import sign_request

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_healthy(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"indexer exited with code {process.returncode}")
        try:
            if httpx.get(f"{base_url}/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("indexer did not answer /v1/health within 30 s")


@pytest.fixture
def indexer_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "GPUNET_DATA_DIR": str(tmp_path / "data")}
    env.pop("GPUNET_DATABASE_URL", None)
    command = [sys.executable, "-m", "gpunet.indexer", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url, process)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_signed_registration_over_http(indexer_url: str, tmp_path: Path) -> None:
    account = Account.create()
    body = httpx.Request("PUT", "http://x", json=sample_registration()).content
    path = "/v1/nodes/n-http-1"
    headers = sign_request(account, "PUT", path, body, int(time.time()), secrets.token_hex(16))
    headers["Content-Type"] = "application/json"

    response = httpx.put(indexer_url + path, content=body, headers=headers, timeout=10)

    assert response.status_code == 201, response.text
    assert response.json()["operator"] == account.address.lower()
    offers = httpx.get(f"{indexer_url}/v1/offers", params={"where": "gpu=H100"}).json()
    assert [offer["node_id"] for offer in offers["offers"]] == ["n-http-1"]
    assert (tmp_path / "data" / "indexer.db").exists()
