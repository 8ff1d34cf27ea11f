"""The check endpoint over real HTTP: uvicorn on a free loopback port, in a thread.

A full round trip as a checker makes it (ping, capacity challenge, open, judge), the
port given back on stop, and an offline-idle node's silence as a checker sees it.
"""

from __future__ import annotations

import base64
import logging
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from gpunet.node.check_server import ChallengeLimits, CheckService, check_app
from gpunet.node.misbehave import Misbehaviour
from gpunet.node.setup import CheckServer
from gpunet.protocol.challenge import (
    CPU_POLICY,
    Opening,
    commitment_message,
    judge_capacity,
    new_challenge,
    pick_tiles,
)
from gpunet.protocol.liveness import ping_message

NODE_ID = "n-0123456789ab"
CLAIM_OPS = 5e9  # small challenges, answered well before their deadline


@pytest.fixture
def operator() -> LocalAccount:
    account: LocalAccount = Account.create()
    return account


@pytest.fixture
def node_url(operator: LocalAccount) -> Iterator[str]:
    service = CheckService(NODE_ID, operator, ChallengeLimits(CLAIM_OPS, (CPU_POLICY,)))
    with CheckServer("127.0.0.1", 0) as server:
        server.start(check_app(service))
        yield server.url


def signer(text: str, signature: str) -> str:
    address: str = Account.recover_message(encode_defunct(text=text), signature=signature)
    return address


def test_ping_challenge_and_open_over_http(node_url: str, operator: LocalAccount) -> None:
    assert node_url.startswith("http://127.0.0.1:") and not node_url.endswith(":0")
    spec = new_challenge("c-http", NODE_ID, CLAIM_OPS, secrets.token_bytes(32), 0.001, CPU_POLICY)
    nonce = secrets.token_hex(16)
    with httpx.Client(base_url=node_url, timeout=10) as client:
        ping = client.get("/v1/check/ping", params={"nonce": nonce}).json()
        started = time.monotonic()
        commitment = client.post(
            "/v1/check/capacity",
            json={
                "challenge_id": spec.challenge_id,
                "node_id": NODE_ID,
                "seed": spec.seed.hex(),
                "n": spec.n,
                "k": spec.k,
                "tile": spec.tile,
                "opens": spec.opens,
                "deadline_s": spec.deadline_s,
            },
        ).json()
        elapsed = time.monotonic() - started
        root = bytes.fromhex(commitment["root"])
        tiles = pick_tiles(spec, root, secrets.token_bytes(32))
        opened = client.post(
            f"/v1/check/capacity/{spec.challenge_id}/open", json={"tiles": list(tiles)}
        ).json()

    assert signer(ping_message(NODE_ID, nonce), ping["signature"]) == operator.address
    message = commitment_message(spec.challenge_id, NODE_ID, root)
    assert signer(message, commitment["signature"]) == operator.address
    openings = [
        Opening(o["index"], base64.b64decode(o["data"]), tuple(map(bytes.fromhex, o["proof"])))
        for o in opened["openings"]
    ]
    finding = judge_capacity(spec, root, elapsed, tiles, openings)
    assert finding.passed, finding.reason


def test_the_server_stops_and_frees_its_port(operator: LocalAccount) -> None:
    service = CheckService(NODE_ID, operator, ChallengeLimits(CLAIM_OPS, (CPU_POLICY,)))
    server = CheckServer("127.0.0.1", 0)
    server.start(check_app(service))
    url = server.url

    server.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/v1/check/ping", params={"nonce": "ab" * 16}, timeout=2)


def test_an_offline_idle_node_leaves_probes_unanswered(
    operator: LocalAccount, caplog: pytest.LogCaptureFixture
) -> None:
    lies = Misbehaviour(offline_idle=True)
    limits = ChallengeLimits(CLAIM_OPS, (CPU_POLICY,))
    service = CheckService(NODE_ID, operator, limits, misbehaviour=lies)
    with CheckServer("127.0.0.1", 0) as server:
        server.start(check_app(service))
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{server.url}/v1/check/ping", params={"nonce": "ab" * 16}, timeout=0.5)
        waited = time.monotonic() - started

    assert waited >= 0.5
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
