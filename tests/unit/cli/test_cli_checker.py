"""``gpunet checker start|stats``, ``gpunet node checks`` and the offers' reputation column."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from typer.testing import CliRunner

from gpunet.cli import checker, listing, node_checks
from gpunet.cli.main import app
from gpunet.sdk import Client

Handler = Callable[[httpx.Request], httpx.Response]
UseIndexer = Callable[[Handler], None]
JsonAnswer = Callable[[int, object], httpx.Response]

CHECKER = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
OTHER = "0x" + "01" * 20
NODE_ID = "n-0123456789ab"
WHEN = "2025-01-01T00:00:00Z"


def checker_json(address: str, *, banned: bool = False) -> dict[str, object]:
    return {
        "address": address,
        "operator": None,
        "registered_at": WHEN,
        "last_seen_at": WHEN,
        "results_total": 42,
        "against_majority": 3,
        "against_majority_week": 2 if banned else 0,
        "banned_until": "2025-02-01T00:00:00Z" if banned else None,
        "reward_eligible": not banned,
    }


def vote(checker_address: str, verdict: str, with_majority: bool | None) -> dict[str, object]:
    return {
        "checker": checker_address,
        "verdict": verdict,
        "detail": "answered in 2.31 s, deadline 1.20 s" if verdict == "fail" else "ok",
        "evidence": {},
        "signature": "0x" + "1" * 130,
        "reported_at": WHEN,
        "with_majority": with_majority,
    }


def check(check_id: str, verdict: str | None, votes: list[dict[str, object]]) -> dict[str, object]:
    return {
        "check_id": check_id,
        "kind": "capacity",
        "epoch": 7,
        "node_id": NODE_ID,
        "panel": [CHECKER, OTHER, "0x" + "02" * 20],
        "created_at": WHEN,
        "due_at": WHEN,
        "closed_at": WHEN if verdict else None,
        "verdict": verdict,
        "finding": "answered in 2.31 s, deadline 1.20 s" if verdict == "fail" else None,
        "votes": votes,
    }


NODE_CHECKS = {
    "node_id": NODE_ID,
    "reputation": {"score": 0.4242, "capacity": 0.31, "liveness": 0.97, "delivery": 0.5},
    "checks": [
        check(
            "c-00000000000000aa",
            "fail",
            [vote(CHECKER, "fail", True), vote(OTHER, "fail", True)],
        ),
        check("c-00000000000000bb", "pass", [vote(CHECKER, "pass", True)] * 3),
        check("c-00000000000000cc", None, [vote(CHECKER, "pass", None)]),
    ],
    "penalties": [
        {
            "penalty_id": 1,
            "node_id": NODE_ID,
            "operator": OTHER,
            "kind": "below_spec",
            "amount": "1500000000000000000",
            "check_id": "c-00000000000000aa",
            "job_id": None,
            "epoch": 7,
            "created_at": WHEN,
            "reason": "capacity check c-00000000000000aa: answered in 2.31 s",
        }
    ],
}


@pytest.fixture
def use_indexer(monkeypatch: pytest.MonkeyPatch) -> Iterator[UseIndexer]:
    """Route the checker commands' clients to a handler (``httpx.MockTransport``)."""

    def use(handler: Handler) -> None:
        def make(url: str, account: LocalAccount | None = None) -> Client:
            return Client(url, account, transport=httpx.MockTransport(handler))

        for module in (checker, node_checks, listing):
            monkeypatch.setattr(module, "Client", make)

    yield use


def test_stats_lists_checkers_and_their_standing(
    runner: CliRunner, home: Path, use_indexer: UseIndexer, answer_json: JsonAnswer
) -> None:
    body = {"checkers": [checker_json(CHECKER), checker_json(OTHER, banned=True)]}
    use_indexer(lambda r: answer_json(200, body))

    result = runner.invoke(app, ["checker", "stats"])

    assert result.exit_code == 0, result.output
    assert CHECKER in result.stdout and OTHER in result.stdout
    assert "2025-02-01 00:00Z" in result.stdout
    assert "eligible" in result.stdout and "barred" in result.stdout


def test_stats_of_one_checker_as_json(
    runner: CliRunner, home: Path, use_indexer: UseIndexer, answer_json: JsonAnswer
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer_json(200, checker_json(CHECKER))

    use_indexer(answer)
    result = runner.invoke(app, ["checker", "stats", CHECKER, "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results_total"] == 42
    assert seen[0].url.path == f"/v1/checkers/{CHECKER}"


def test_stats_of_an_unknown_checker_is_one_error_line(
    runner: CliRunner, home: Path, use_indexer: UseIndexer, answer_json: JsonAnswer
) -> None:
    error = {"error": "not_found", "message": f"no checker {OTHER}", "field": None, "value": None}
    use_indexer(lambda r: answer_json(404, error))

    result = runner.invoke(app, ["checker", "stats", OTHER])

    assert result.exit_code == 2
    assert f"no checker {OTHER}" in result.stderr


def test_node_checks_shows_reputation_votes_and_penalties(
    runner: CliRunner, home: Path, use_indexer: UseIndexer, answer_json: JsonAnswer
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer_json(200, NODE_CHECKS)

    use_indexer(answer)
    result = runner.invoke(app, ["node", "checks", NODE_ID, "--limit", "3"])

    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "reputation 0.42" in text
    assert "capacity 0.31, liveness 0.97, delivery 0.50" in text
    assert "2/3 fail" in text and "3/3 pass" in text and "1/3 in" in text
    assert "answered in 2.31 s" in text  # the finding
    assert "below_spec" in text and "1.5" in text  # the penalty, in tokens
    assert seen[0].url.path == f"/v1/nodes/{NODE_ID}/checks"
    assert seen[0].url.params["limit"] == "3"


def test_node_checks_as_json(
    runner: CliRunner, home: Path, use_indexer: UseIndexer, answer_json: JsonAnswer
) -> None:
    use_indexer(lambda r: answer_json(200, NODE_CHECKS))

    result = runner.invoke(app, ["node", "checks", NODE_ID, "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["reputation"]["score"] == 0.4242


def test_inconclusive_check_shows_both_counts() -> None:
    from gpunet.api.checks import CheckPublic

    split = CheckPublic.model_validate(
        check("c-00000000000000dd", "inconclusive", [vote(CHECKER, "pass", None)])
    )

    assert node_checks.votes_summary(split) == "1 pass, 0 fail of 3"


def test_offers_show_the_reputation(
    runner: CliRunner, home: Path, use_indexer: UseIndexer, answer_json: JsonAnswer
) -> None:
    offer = {
        "node_id": NODE_ID,
        "operator": OTHER,
        "gpu": "H100",
        "gpu_count": 1,
        "vram_mib": 81559,
        "price_micros": 1_990_000,
        "region": "eu-west",
        "fp16_tflops": 989.0,
        "cpu_cores": 32,
        "memory_mib": 262144,
        "disk_gib": 1000,
        "state": "idle",
        "reputation": 0.837,
    }
    use_indexer(lambda r: answer_json(200, {"offers": [offer], "total": 1}))

    result = runner.invoke(app, ["offers"])

    assert result.exit_code == 0, result.output
    assert "rep" in result.stdout and "0.84" in result.stdout


def test_nodes_show_the_reputation(
    runner: CliRunner, home: Path, use_indexer: UseIndexer, answer_json: JsonAnswer
) -> None:
    node = {
        "node_id": NODE_ID,
        "operator": OTHER,
        "hardware": {
            "gpu_model": "CPU",
            "gpu_count": 0,
            "vram_mib": 0,
            "cpu_cores": 4,
            "memory_mib": 8192,
            "disk_gib": 100,
            "benchmark_gflops": 50.0,
            "detection": "cpu",
        },
        "offer": {"price_micros": 450_000, "region": "us-east"},
        "agent_version": "0.1.0",
        "state": "idle",
        "registered_at": WHEN,
        "last_heartbeat_at": WHEN,
        "heartbeats": 3,
        "reputation": 0.271,
    }
    use_indexer(lambda r: answer_json(200, {"nodes": [node], "total": 1}))

    result = runner.invoke(app, ["nodes"])

    assert result.exit_code == 0, result.output
    assert "rep" in result.stdout and "0.27" in result.stdout


def test_start_creates_the_key_registers_and_stops_on_a_refusal(
    runner: CliRunner, home: Path, use_indexer: UseIndexer, answer_json: JsonAnswer
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        if request.url.path == "/v1/checkers":
            address = request.headers["x-gpunet-address"]
            return answer_json(200, checker_json(address))
        error = {"error": "permission_denied", "message": "checker is banned"}
        return answer_json(403, {**error, "field": None, "value": None})

    use_indexer(answer)
    result = runner.invoke(
        app, ["checker", "start", "--indexer", "http://indexer.test", "--operator", OTHER]
    )

    assert result.exit_code == 2
    assert "created key checker" in result.stderr
    assert "checker is banned" in result.stderr
    assert [r.url.path for r in seen] == ["/v1/checkers", "/v1/checkers/me/tasks"]
    assert json.loads(seen[0].content)["operator"] == OTHER
    assert (home / "keys" / "checker.json").exists()


def test_start_refuses_a_malformed_operator(runner: CliRunner, home: Path) -> None:
    result = runner.invoke(app, ["checker", "start", "--operator", "0x12"])

    assert result.exit_code == 2
    assert "--operator" in result.stderr


def test_the_checker_uses_one_blas_thread_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gpunet.cli.checker import BLAS_THREAD_VARIABLES, use_one_blas_thread

    for name in BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "8")

    use_one_blas_thread()

    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert os.environ["OMP_NUM_THREADS"] == "1"
    assert os.environ["MKL_NUM_THREADS"] == "8"
