"""Fixtures for CLI tests: a runner, a private GPUNET_HOME, a fake indexer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from typer.testing import CliRunner

from gpunet.cli import listing
from gpunet.sdk import Client

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private GPUNET_HOME with a password in the environment and a fast KDF."""
    home = tmp_path / "home"
    monkeypatch.setenv("GPUNET_HOME", str(home))
    monkeypatch.setenv("GPUNET_KEY_PASSWORD", "correct horse")
    monkeypatch.setenv("GPUNET_KEY_KDF", "pbkdf2")
    monkeypatch.setenv("GPUNET_KEY_KDF_ITERATIONS", "2")
    monkeypatch.delenv("GPUNET_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("GPUNET_INDEXER_URL", raising=False)
    return home


@pytest.fixture
def indexer_answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Handler], None]]:
    """Route the listing commands' client to a handler (``httpx.MockTransport``)."""

    def use(handler: Handler) -> None:
        def client(url: str, account: LocalAccount | None = None) -> Client:
            return Client(url, account, transport=httpx.MockTransport(handler))

        monkeypatch.setattr(listing, "Client", client)

    yield use


def json_response(status: int, body: object) -> httpx.Response:
    headers = {"content-type": "application/json"}
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


@pytest.fixture
def answer_json() -> Callable[[int, object], httpx.Response]:
    return json_response
