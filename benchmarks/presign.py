"""Signed requests built ahead of time, as raw HTTP/1.1 bytes for ``loadgen``.

Signing costs about 0.2 ms per request in Python, more than the generator spends
sending it, so requests are signed before a timed phase, in a process pool. A signed
request is only good for ``max_skew_s`` (60 s) after its timestamp, so each phase's
requests are signed just before it runs.
"""

from __future__ import annotations

import secrets
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount

from gpunet.api.models import HardwareClaimModel, NodeRegistration, OfferModel
from gpunet.protocol.auth import sign_request

HEARTBEAT_BODY = b'{"jobs_running":0}'
_CHUNK = 2000


def raw_request(method: str, path: str, body: bytes, headers: dict[str, str], port: int) -> bytes:
    """One HTTP/1.1 keep-alive request, exactly as it goes on the wire."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def signed_request(
    account: LocalAccount, method: str, path: str, body: bytes, timestamp: int, port: int
) -> bytes:
    nonce = secrets.token_urlsafe(24)
    headers = sign_request(account, method, path, body, timestamp, nonce)
    return raw_request(method, path, body, headers, port)


@dataclass(frozen=True)
class Fleet:
    """Node ids spread over operator keys: node ``i`` belongs to key ``i % len(keys)``."""

    keys: tuple[bytes, ...]
    node_ids: tuple[str, ...]

    @classmethod
    def create(cls, operators: int, nodes: int, prefix: str = "bench") -> Fleet:
        keys = tuple(bytes(Account.create().key) for _ in range(operators))
        return cls(keys, tuple(f"{prefix}-{i:06d}" for i in range(nodes)))

    def accounts(self) -> list[LocalAccount]:
        return [Account.from_key(key) for key in self.keys]


def registration(index: int) -> NodeRegistration:
    """A plausible 8 x H100 node; the price varies so that nodes differ."""
    hardware = HardwareClaimModel(
        gpu_model="H100",
        gpu_count=8,
        vram_mib=81559,
        cpu_cores=192,
        memory_mib=2_000_000,
        disk_gib=20_000,
        benchmark_gflops=700_000.0,
        detection="nvml",
    )
    offer = OfferModel(price_micros=1_500_000 + (index % 100) * 10_000, region="eu-west")
    return NodeRegistration(hardware=hardware, offer=offer, agent_version="bench")


@dataclass(frozen=True)
class _Batch:
    fleet: Fleet
    kind: str
    first: int
    count: int
    timestamp: int
    port: int


def _sign_batch(batch: _Batch) -> list[bytes]:
    accounts = batch.fleet.accounts()
    node_ids = batch.fleet.node_ids
    signed = []
    for index in range(batch.first, batch.first + batch.count):
        node = index % len(node_ids)
        account = accounts[node % len(accounts)]
        if batch.kind == "register":
            path, method = f"/v1/nodes/{node_ids[node]}", "PUT"
            body = registration(node).model_dump_json().encode()
        else:
            path, method = f"/v1/nodes/{node_ids[node]}/heartbeat", "POST"
            body = HEARTBEAT_BODY
        signed.append(signed_request(account, method, path, body, batch.timestamp, batch.port))
    return signed


def sign_many(
    pool: ProcessPoolExecutor, fleet: Fleet, kind: str, count: int, timestamp: int, port: int
) -> list[bytes]:
    """``count`` signed requests (``register`` or ``heartbeat``), nodes in turn."""
    batches = [
        _Batch(fleet, kind, first, min(_CHUNK, count - first), timestamp, port)
        for first in range(0, count, _CHUNK)
    ]
    return [request for part in pool.map(_sign_batch, batches) for request in part]
