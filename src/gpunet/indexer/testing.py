"""Helpers for testing an indexer in process: a manual clock and a signing client.

Used by gpunet's own tests and usable by anyone embedding the indexer::

    clock = ManualClock(1_700_000_000)
    with IndexerTestClient(create_app(settings, clock=clock)) as client:
        client.signed("PUT", "/v1/nodes/n-1", account, json=sample_registration())
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import httpx
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from starlette.applications import Starlette

from gpunet.indexer.context import app_context
from gpunet.protocol.auth import sign_request


@dataclass
class ManualClock:
    """A clock that moves only when told to."""

    now: float

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds


def sample_registration(
    gpu_model: str = "H100",
    gpu_count: int = 1,
    price_micros: int = 1_990_000,
    region: str = "eu-west",
    **hardware: Any,
) -> dict[str, Any]:
    """A valid registration body, with any hardware field overridden."""
    vram = {"CPU": 0}.get(gpu_model, 81_559 if gpu_model in ("H100", "H200") else 24_000)
    claim: dict[str, Any] = {
        "gpu_model": gpu_model,
        "gpu_count": gpu_count,
        "vram_mib": vram,
        "cpu_cores": 32,
        "memory_mib": 262_144,
        "disk_gib": 1_000,
        "benchmark_gflops": 50_000.0,
        "detection": "nvml",
    }
    claim.update(hardware)
    return {
        "hardware": claim,
        "offer": {"price_micros": price_micros, "region": region},
        "agent_version": "0.1.0",
    }


class IndexerTestClient(TestClient):
    """A ``TestClient`` that can sign requests as an account, at the app's clock."""

    def signed(
        self,
        method: str,
        path: str,
        account: LocalAccount,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
    ) -> httpx.Response:
        """Send ``method path`` signed by ``account`` (body from ``json`` or ``content``)."""
        body = content if content is not None else _json_bytes(json)
        stamp = timestamp if timestamp is not None else self.server_time()
        signature = sign_request(account, method, path, body, stamp, nonce or new_nonce())
        all_headers = {"Content-Type": "application/json", **signature, **(headers or {})}
        # Starlette's client is built on httpx2 when huggingface_hub brings it along.
        response: httpx.Response = cast(
            Any, self.request(method, path, content=body, headers=all_headers)
        )
        return response

    def server_time(self) -> int:
        """The app's clock, in whole seconds."""
        assert isinstance(self.app, Starlette)
        return int(app_context(self.app).clock())


def new_nonce() -> str:
    """A fresh random nonce."""
    return secrets.token_hex(16)


def _json_bytes(value: Any) -> bytes:
    return b"" if value is None else json.dumps(value).encode()
