"""``gpunet deposit|withdraw|balance|earnings`` against a fake indexer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from typer.testing import CliRunner

from gpunet.cli import accounts
from gpunet.cli.main import app
from gpunet.keys import KeyInfo, new_key
from gpunet.protocol.auth import verify_request
from gpunet.sdk import Client


class FakeAccounts:
    """Answers every account route with one ``AccountView``; keeps what it was sent."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []
        self.view: dict[str, Any] = {
            "address": "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23",
            "available_micros": 20_500_000,
            "held_micros": 4_000_000,
            "earned_micros": 12_345_678,
            "deposited_micros": 25_000_000,
            "withdrawn_micros": 500_000,
            "jobs_paid": 7,
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.seen.append(request)
        if request.url.path == "/v1/accounts/auto-topup":
            body = json.loads(request.content)
            self.view |= {
                "auto_topup_amount_micros": body["amount_micros"],
                "auto_topup_threshold_micros": body["threshold_micros"],
                "auto_topup_limit_micros": body["limit_micros"],
            }
        return httpx.Response(200, json=self.view)


@pytest.fixture
def indexer(monkeypatch: pytest.MonkeyPatch) -> FakeAccounts:
    fake = FakeAccounts()

    def client(url: str, account: LocalAccount | None = None) -> Client:
        return Client(url, account, transport=httpx.MockTransport(fake))

    monkeypatch.setattr(accounts, "Client", client)
    return fake


def make_key(home: Path, name: str) -> KeyInfo:
    return new_key(name, "correct horse", home / "keys", kdf="pbkdf2", iterations=2)


def signer(request: httpx.Request) -> str:
    now = float(request.headers["x-gpunet-timestamp"])
    target = request.url.raw_path.decode()
    return verify_request(request.headers, request.method, target, request.content, now).address


def test_deposit_sends_micro_dollars_signed_by_the_buyer_key(
    runner: CliRunner, home: Path, indexer: FakeAccounts
) -> None:
    info = make_key(home, "buyer")

    result = runner.invoke(app, ["deposit", "12.50"])

    assert result.exit_code == 0, result.output
    request = indexer.seen[0]
    assert (request.method, request.url.path) == ("POST", "/v1/accounts/deposit")
    assert json.loads(request.content) == {"amount_micros": 12_500_000}
    assert signer(request) == info.address
    assert "deposited 12.50 USD" in result.stdout
    assert "available: 20.50 USD" in result.stdout


def test_deposit_creates_the_buyer_key_when_missing(
    runner: CliRunner, home: Path, indexer: FakeAccounts
) -> None:
    result = runner.invoke(app, ["deposit", "1"])

    assert result.exit_code == 0, result.output
    assert (home / "keys" / "buyer.json").is_file()
    assert "created key buyer" in result.stderr


def test_deposit_with_auto_topup_sets_the_rule(
    runner: CliRunner, home: Path, indexer: FakeAccounts
) -> None:
    make_key(home, "buyer")

    result = runner.invoke(
        app, ["deposit", "10", "--auto-topup", "5", "--threshold", "2", "--limit", "50"]
    )

    assert result.exit_code == 0, result.output
    assert [r.url.path for r in indexer.seen] == [
        "/v1/accounts/deposit",
        "/v1/accounts/auto-topup",
    ]
    assert json.loads(indexer.seen[1].content) == {
        "amount_micros": 5_000_000,
        "threshold_micros": 2_000_000,
        "limit_micros": 50_000_000,
    }
    assert "auto top-up: 5.00 USD below 2.00 USD" in result.stdout


def test_auto_topup_alone_needs_all_three_options(
    runner: CliRunner, home: Path, indexer: FakeAccounts
) -> None:
    make_key(home, "buyer")

    result = runner.invoke(app, ["deposit", "0", "--auto-topup", "5"])

    assert result.exit_code == 2
    assert "--threshold, --limit" in result.stderr
    assert indexer.seen == []


def test_auto_topup_zero_turns_it_off_without_a_deposit(
    runner: CliRunner, home: Path, indexer: FakeAccounts
) -> None:
    make_key(home, "buyer")

    result = runner.invoke(app, ["deposit", "0", "--auto-topup", "0"])

    assert result.exit_code == 0, result.output
    assert [r.url.path for r in indexer.seen] == ["/v1/accounts/auto-topup"]
    assert "auto top-up turned off" in result.stdout


@pytest.mark.parametrize("amount", ["0", "abc", "1.0000001", "-3"])
def test_a_bad_amount_is_one_line_and_exit_2(
    runner: CliRunner, home: Path, indexer: FakeAccounts, amount: str
) -> None:
    make_key(home, "buyer")

    result = runner.invoke(app, ["deposit", "--", amount])

    assert result.exit_code == 2
    assert result.stderr.startswith("error: amount")
    assert len(result.stderr.strip().splitlines()) == 1
    assert indexer.seen == []


def test_withdraw(runner: CliRunner, home: Path, indexer: FakeAccounts) -> None:
    make_key(home, "buyer")

    result = runner.invoke(app, ["withdraw", "0.5"])

    assert result.exit_code == 0, result.output
    assert json.loads(indexer.seen[0].content) == {"amount_micros": 500_000}
    assert "withdrew 0.50 USD" in result.stdout


def test_an_indexer_refusal_is_one_line_and_exit_2(
    runner: CliRunner, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_key(home, "buyer")
    body = {"error": "conflict", "message": "only 0.10 USD available", "field": None}

    def client(url: str, account: LocalAccount | None = None) -> Client:
        return Client(
            url, account, transport=httpx.MockTransport(lambda r: httpx.Response(409, json=body))
        )

    monkeypatch.setattr(accounts, "Client", client)
    result = runner.invoke(app, ["withdraw", "5"])

    assert result.exit_code == 2
    assert result.stderr == "error: only 0.10 USD available (HTTP 409, conflict)\n"


def test_balance_defaults_to_the_buyer_keys_address_without_a_password(
    runner: CliRunner, home: Path, indexer: FakeAccounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = make_key(home, "buyer")
    monkeypatch.delenv("GPUNET_KEY_PASSWORD")

    result = runner.invoke(app, ["balance"])
    as_json = runner.invoke(app, ["balance", "--json"])

    assert result.exit_code == 0, result.output
    assert indexer.seen[0].url.path == f"/v1/accounts/{info.address}"
    assert "x-gpunet-signature" not in indexer.seen[0].headers
    assert "held:      4.00 USD" in result.stdout
    assert json.loads(as_json.stdout)["available_micros"] == 20_500_000


def test_balance_of_a_bad_address_is_refused(
    runner: CliRunner, home: Path, indexer: FakeAccounts
) -> None:
    result = runner.invoke(app, ["balance", "0xnot-an-address"])

    assert result.exit_code == 2
    assert result.stderr.startswith("error: address:")


def test_earnings_default_to_the_operator_key(
    runner: CliRunner, home: Path, indexer: FakeAccounts
) -> None:
    info = make_key(home, "operator")

    result = runner.invoke(app, ["earnings"])
    as_json = runner.invoke(app, ["earnings", info.address, "--json"])

    assert result.exit_code == 0, result.output
    assert indexer.seen[0].url.path == f"/v1/accounts/{info.address}"
    assert "earned:    12.345678 USD" in result.stdout
    assert "jobs paid: 7" in result.stdout
    assert json.loads(as_json.stdout)["earned_micros"] == 12_345_678


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["deposit"], ["USD", "--auto-topup", "--threshold", "--limit", "--key"]),
        (["withdraw"], ["USD", "--key"]),
        (["balance"], ["--json", "--key"]),
        (["earnings"], ["--json", "operator"]),
    ],
)
def test_help_explains(runner: CliRunner, command: list[str], expected: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    for text in expected:
        assert text in result.stdout
