"""``gpunet settlements`` and ``gpunet rewards`` against a fake indexer."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from typer.testing import CliRunner

from gpunet.cli import rewards
from gpunet.cli.main import app
from gpunet.sdk import Client

from .conftest import json_response

ACCOUNT = "0x" + "0a" * 20
WHEN = "2026-11-26T00:00:00Z"
PART = {"emission": "10", "budget": "12", "paid": "11000000000000000000", "carry": "1"}


def settlement(epoch: int, status: str, error: str | None = None) -> dict[str, object]:
    return {
        "epoch": epoch,
        "settled_at": WHEN,
        "status": status,
        "root": "0x" + "11" * 32,
        "reward_total": "33",
        "fee_total": "0",
        "carry_out": "3",
        "leaves": 2,
        "parts": {"capacity": PART, "delivery": PART, "checkers": PART},
        "slashed": {ACCOUNT: "5000000000000000000"},
        "posted_at": None,
        "post_tx": None,
        "post_error": error,
    }


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, object]], list[str]]:
    """Serve fixed JSON by path; returns the list of paths asked."""

    def use(by_path: dict[str, object]) -> list[str]:
        asked: list[str] = []

        def handle(request: httpx.Request) -> httpx.Response:
            asked.append(request.url.path)
            return json_response(200, by_path[request.url.path])

        def client(url: str, account: LocalAccount | None = None) -> Client:
            return Client(url, account, transport=httpx.MockTransport(handle))

        monkeypatch.setattr(rewards, "Client", client)
        return asked

    return use


def test_settlements_shows_each_epoch_and_a_retried_post(
    runner: CliRunner, answers: Callable[[dict[str, object]], list[str]]
) -> None:
    listing = {"settlements": [settlement(8, "computed", "distributor: above the emission cap")]}
    answers({"/v1/settlements": listing})

    result = runner.invoke(app, ["settlements"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert "computed (retrying)" in result.output
    row = next(line for line in result.output.splitlines() if " 8 " in line)
    cells = [cell.strip() for cell in row.strip().strip("│┃").split("│")]
    assert cells == ["8", "computed (retrying)", "2", "11", "11", "11", "5"]


def test_settlements_says_when_nothing_is_settled_yet(
    runner: CliRunner, answers: Callable[[dict[str, object]], list[str]]
) -> None:
    answers({"/v1/settlements": {"settlements": []}})
    result = runner.invoke(app, ["settlements"])
    assert result.exit_code == 0
    assert "No settled epochs yet" in result.output


def test_rewards_lists_claims_and_prints_the_proofs_as_json(
    runner: CliRunner, answers: Callable[[dict[str, object]], list[str]]
) -> None:
    claim = {"epoch": 8, "reward": "7", "fee": "0", "proof": ["0x" + "33" * 32],
             "root": "0x" + "11" * 32, "status": "posted"}  # fmt: skip
    asked = answers({f"/v1/rewards/{ACCOUNT}": {"account": ACCOUNT, "claims": [claim]}})

    table = runner.invoke(app, ["rewards", ACCOUNT], env={"COLUMNS": "200"})
    as_json = runner.invoke(app, ["rewards", ACCOUNT, "--json"])

    assert table.exit_code == 0, table.output
    assert "posted" in table.output and "1 hashes" in table.output
    assert json.loads(as_json.stdout)["claims"][0]["proof"] == claim["proof"]
    assert asked == [f"/v1/rewards/{ACCOUNT}"] * 2


def test_a_bad_address_is_refused_before_asking(
    runner: CliRunner, answers: Callable[[dict[str, object]], list[str]]
) -> None:
    asked = answers({})
    result = runner.invoke(app, ["rewards", "alice"])
    assert result.exit_code == 2
    assert "account" in result.output and "0x and 40 hex digits" in result.output
    assert asked == []
