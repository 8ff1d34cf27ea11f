"""``gpunet nodes`` and ``gpunet offers`` against a fake indexer."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from typer.testing import CliRunner

from gpunet.cli.listing import ago, gib, short_address
from gpunet.cli.main import app

Handler = Callable[[httpx.Request], httpx.Response]
UseIndexer = Callable[[Handler], None]
JsonAnswer = Callable[[int, object], httpx.Response]

OPERATOR = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
OFFER = {
    "node_id": "n-0123456789ab",
    "operator": OPERATOR,
    "gpu": "H100",
    "gpu_count": 2,
    "vram_mib": 81559,
    "price_micros": 1_990_000,
    "region": "eu-west",
    "fp16_tflops": 1978.0,
    "cpu_cores": 32,
    "memory_mib": 262144,
    "disk_gib": 1000,
    "state": "idle",
    "benchmark_gflops": 50000.0,
    "reputation": 0.75,
    "failure_rate": 0.1,
    "value_per_dollar": 22613.065,
}
NODE = {
    "node_id": "n-0123456789ab",
    "operator": OPERATOR,
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
    "state": "offline",
    "registered_at": "2025-01-01T00:00:00Z",
    "last_heartbeat_at": "2025-01-01T00:00:00Z",
    "heartbeats": 12,
}


def test_offers_table_shows_usd_and_gib(
    runner: CliRunner, home: Path, indexer_answers: UseIndexer, answer_json: JsonAnswer
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer_json(200, {"offers": [OFFER], "total": 1})

    indexer_answers(answer)
    result = runner.invoke(
        app, ["offers", "--where", "gpu=H100 price<2.5", "--order", "-price", "--limit", "5"]
    )

    assert result.exit_code == 0, result.output
    assert "1.99" in result.stdout  # micro-dollars shown as USD
    assert "79.6" in result.stdout  # 81559 MiB shown as GiB
    assert "2 x H100" in result.stdout
    assert dict(seen[0].url.params) == {
        "where": "gpu=H100 price<2.5",
        "order": "-price",
        "limit": "5",
    }
    assert str(seen[0].url).startswith("http://127.0.0.1:8700/v1/offers")


def test_offers_json_parses(
    runner: CliRunner, home: Path, indexer_answers: UseIndexer, answer_json: JsonAnswer
) -> None:
    answer = {"offers": [OFFER], "total": 1, "total_is_exact": True}
    indexer_answers(lambda r: answer_json(200, answer))

    result = runner.invoke(app, ["offers", "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == answer


def test_offers_title_says_when_the_total_is_a_lower_bound(
    runner: CliRunner, home: Path, indexer_answers: UseIndexer, answer_json: JsonAnswer
) -> None:
    answer = {"offers": [OFFER], "total": 10_000, "total_is_exact": False}
    indexer_answers(lambda r: answer_json(200, answer))

    result = runner.invoke(app, ["offers"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert "more than 10000 offer(s)" in result.stdout


def test_bad_where_exits_2_with_the_indexers_message(
    runner: CliRunner, home: Path, indexer_answers: UseIndexer, answer_json: JsonAnswer
) -> None:
    body = {
        "error": "query_syntax_error",
        "message": "where: expected field, operator and value, like price<2.5 (got 'price<<x')",
        "field": "where",
        "value": "price<<x",
    }
    indexer_answers(lambda r: answer_json(400, body))

    result = runner.invoke(app, ["offers", "--where", "price<<x"])

    assert result.exit_code == 2
    assert result.stderr.startswith("error: where: expected field, operator and value")
    assert "HTTP 400" in result.stderr
    assert "Traceback" not in result.output


def test_nodes_json_and_filters(
    runner: CliRunner, home: Path, indexer_answers: UseIndexer, answer_json: JsonAnswer
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer_json(200, {"nodes": [NODE], "total": 1})

    indexer_answers(answer)
    result = runner.invoke(
        app, ["nodes", "--indexer", "http://idx.test:9000", "--state", "offline", "--json"]
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["nodes"][0]["node_id"] == "n-0123456789ab"
    assert seen[0].url.host == "idx.test"
    assert seen[0].url.params["state"] == "offline"


def test_nodes_table(
    runner: CliRunner, home: Path, indexer_answers: UseIndexer, answer_json: JsonAnswer
) -> None:
    indexer_answers(lambda r: answer_json(200, {"nodes": [NODE], "total": 1}))

    result = runner.invoke(app, ["nodes"])

    assert result.exit_code == 0, result.output
    for text in ("n-0123456789ab", "0x2c75...5c23", "us-east", "0.45", "offline", "12"):
        assert text in result.stdout


def test_indexer_url_comes_from_the_environment(
    runner: CliRunner, home: Path, indexer_answers: UseIndexer, answer_json: JsonAnswer
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer_json(200, {"nodes": [], "total": 0})

    indexer_answers(answer)
    result = runner.invoke(app, ["nodes"], env={"GPUNET_INDEXER_URL": "http://env.test:1234"})

    assert result.exit_code == 0, result.output
    assert (seen[0].url.host, seen[0].url.port) == ("env.test", 1234)


def test_unreachable_indexer_names_the_url(
    runner: CliRunner, home: Path, indexer_answers: UseIndexer
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    indexer_answers(refuse)
    result = runner.invoke(app, ["nodes", "--indexer", "http://down.test:8700"])

    assert result.exit_code == 2
    assert "cannot reach the indexer at http://down.test:8700" in result.stderr


def test_formatting_of_sizes_addresses_and_ages() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    assert (gib(0), gib(81559), gib(24576)) == ("0", "79.6", "24")
    assert short_address(OPERATOR) == "0x2c75...5c23"
    assert ago(now - timedelta(seconds=5), now) == "5s"
    assert ago(now - timedelta(minutes=10), now) == "10m"
    assert ago(now - timedelta(hours=5), now) == "5h"
