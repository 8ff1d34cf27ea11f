"""Fixtures for SDK tests: an account, sample models, canned answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from gpunet.api.models import NodePublic, NodeRegistration
from gpunet.indexer.testing import sample_registration
from gpunet.protocol.nodes import NodeState


def json_response(status: int, body: object) -> httpx.Response:
    headers = {"content-type": "application/json"}
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


def error_body(code: str, message: str) -> dict[str, str | None]:
    return {"error": code, "message": message, "field": None, "value": None}


def make_registration() -> NodeRegistration:
    return NodeRegistration.model_validate(sample_registration("CPU", gpu_count=0, detection="cpu"))


def make_node(node_id: str, operator: str) -> NodePublic:
    reg = make_registration()
    when = datetime(2025, 1, 1, tzinfo=UTC)
    return NodePublic(
        node_id=node_id,
        operator=operator,
        hardware=reg.hardware,
        offer=reg.offer,
        agent_version=reg.agent_version,
        state=NodeState.IDLE,
        registered_at=when,
        last_heartbeat_at=when,
        heartbeats=1,
    )


@pytest.fixture
def account() -> LocalAccount:
    acct: LocalAccount = Account.from_key("0x" + "11" * 32)
    return acct


@pytest.fixture
def registration() -> NodeRegistration:
    return make_registration()


@pytest.fixture
def node_json(account: LocalAccount) -> dict[str, object]:
    """A ``NodePublic`` as the indexer sends it."""
    node: dict[str, object] = make_node("n-0123456789ab", account.address).model_dump(mode="json")
    return node


@pytest.fixture
def answer_json() -> Callable[[int, object], httpx.Response]:
    return json_response


@pytest.fixture
def answer_error() -> Callable[[int, str, str], httpx.Response]:
    return lambda status, code, message: json_response(status, error_body(code, message))
