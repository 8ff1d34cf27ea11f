"""Offer search over 100,000 registered nodes, over real HTTP.

The indexer's migrations create the schema; then ``NODES`` nodes with a seeded,
plausible mix of GPU models, counts, prices, regions and states are bulk-inserted
into its ``nodes`` table (``gpunet.indexer.orm.NodeRecord``), almost all with a
fresh heartbeat so they count as online. The indexer then runs under uvicorn in a
subprocess and each filter in ``QUERIES`` is asked ``REPEATS`` times, one request at
a time over a keep-alive connection, after ``WARMUP`` untimed requests.

Run alone: ``.venv/bin/python benchmarks/bench_offers.py``.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from harness import BenchmarkError, free_port, running, uvicorn_command, wait_http
from report import Figure, Section, Table, ms, section_markdown
from sqlalchemy import insert

from gpunet.indexer import upgrade_database
from gpunet.indexer.database import make_engine
from gpunet.indexer.orm import NodeRecord
from gpunet.protocol.catalogue import CATALOGUE, CPU_MODEL
from gpunet.protocol.offers import nominal_vram_gib

NODES = 100_000
OPERATORS = 500
REPEATS = 40
WARMUP = 3
GOAL_P95_S = 0.050
SEED = 20261125
INDEXER_APP = "gpunet.indexer.app:create_app"

# (where, order): the three filters, then a rare match in a busy model and a
# filter that runs against the sort order.
QUERIES: tuple[tuple[str, str], ...] = (
    ("gpu=H100 count>=2 price<2.5 region=eu", "price"),
    ("", "price"),
    ("vram>=24 price<1", "price"),
    ("gpu=RTX4090 region=us-east cpu>=32", "price"),
    ("vram>=80", "tflops"),
)

# Share of each catalogue model among nodes, roughly what a public marketplace lists.
MODEL_WEIGHTS = {
    "RTX4090": 24,
    "RTX3090": 10,
    "H100": 14,
    "H200": 3,
    "A100-80GB": 10,
    "A100-40GB": 5,
    "L40S": 7,
    "L4": 7,
    "A10G": 6,
    "V100": 4,
    "T4": 6,
    CPU_MODEL: 4,
}
REGIONS = (
    "eu-west",
    "eu-central",
    "eu-north",
    "us-east",
    "us-west",
    "us-central",
    "ap-south",
    "ap-northeast",
    "sa-east",
    "af-south",
)
STATES = (("idle", 80), ("busy", 15), ("offline", 5))
DEFAULT_PRICE_MICROS = 500_000

Progress = Callable[[str], None]


def _price_micros(rng: random.Random, model: str) -> int:
    reference = CATALOGUE[model].reference_price_micros or DEFAULT_PRICE_MICROS
    return max(10_000, int(round(reference * rng.uniform(0.25, 1.2), -4)))


def _node_row(rng: random.Random, index: int, now: float, operators: list[str]) -> dict[str, Any]:
    model = rng.choices(list(MODEL_WEIGHTS), weights=list(MODEL_WEIGHTS.values()))[0]
    spec = CATALOGUE[model]
    count = 0 if model == CPU_MODEL else rng.choices((1, 2, 4, 8), weights=(40, 25, 15, 20))[0]
    vram_mib = spec.vram_gib * 1024 - rng.randrange(0, 600) if count else 0
    state = rng.choices([s for s, _ in STATES], weights=[w for _, w in STATES])[0]
    return {
        "node_id": f"n-{index:012x}",
        "operator": operators[index % len(operators)],
        "state": state,
        "last_heartbeat_at": now - rng.uniform(0, 60),
        "registered_at": now - rng.uniform(3600, 86400 * 30),
        "gpu_model": model,
        "gpu_count": count,
        "vram_mib": vram_mib,
        "vram_gib": nominal_vram_gib(vram_mib),
        "fp16_tflops": count * spec.fp16_tflops,
        "price_micros": _price_micros(rng, model),
        "region": rng.choice(REGIONS),
        "cpu_cores": rng.choice((8, 16, 32, 64, 128)),
        "memory_mib": rng.choice((32, 64, 128, 256, 512)) * 1024,
        "disk_gib": rng.choice((200, 500, 1000, 4000)),
        "benchmark_gflops": round(rng.uniform(1_000, 900_000), 1),
        "detection": "cpu" if count == 0 else "nvml",
        "agent_version": "bench",
        "heartbeats": rng.randrange(0, 10_000),
        "gpu_utilization": None,
        "jobs_running": 0,
    }


def node_rows(count: int, now: float, seed: int = SEED) -> Iterator[dict[str, Any]]:
    """``count`` seeded node rows; the same seed gives the same nodes."""
    rng = random.Random(seed)
    operators = [f"0x{rng.getrandbits(160):040x}" for _ in range(OPERATORS)]
    for index in range(count):
        yield _node_row(rng, index, now, operators)


def populate(database_url: str, count: int) -> float:
    """Migrate, then bulk-insert ``count`` nodes; return the seconds it took."""
    started = time.perf_counter()
    upgrade_database(database_url)
    engine = make_engine(database_url)
    try:
        rows = list(node_rows(count, time.time()))
        with engine.begin() as connection:
            connection.execute(insert(NodeRecord), rows)
    finally:
        engine.dispose()
    return time.perf_counter() - started


@dataclass(frozen=True)
class QueryResult:
    where: str
    order: str
    total: int
    returned: int
    latencies: list[float]

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))]


def _ask(client: httpx.Client, where: str, order: str) -> tuple[float, dict[str, Any]]:
    params = {"where": where, "order": order, "limit": "100"}
    started = time.perf_counter()
    response = client.get("/v1/offers", params=params)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise BenchmarkError(
            f"offers?where={where!r} answered {response.status_code}: {response.text[:300]}"
        )
    body: dict[str, Any] = response.json()
    return elapsed, body


def measure_query(client: httpx.Client, where: str, order: str) -> QueryResult:
    for _ in range(WARMUP):
        _, body = _ask(client, where, order)
    latencies = [_ask(client, where, order)[0] for _ in range(REPEATS)]
    return QueryResult(where, order, body["total"], len(body["offers"]), latencies)


def _serve_and_query(root: Path, database_url: str, progress: Progress) -> list[QueryResult]:
    port = free_port()
    env = {"GPUNET_DATABASE_URL": database_url, "GPUNET_DATA_DIR": str(root)}
    command = uvicorn_command(INDEXER_APP, port, 1, factory=True)
    base = f"http://127.0.0.1:{port}"
    with running(command, root / "indexer.log", env) as server:
        wait_http(server, base + "/v1/health")
        with httpx.Client(base_url=base, timeout=30.0) as client:
            results = []
            for where, order in QUERIES:
                progress(f"offers: where={where!r} order={order}")
                results.append(measure_query(client, where, order))
    return results


def _section(results: list[QueryResult], populate_s: float) -> Section:
    figures = [
        Figure(
            f'p95 `where="{r.where}"` order={r.order}',
            ms(r.percentile(0.95)),
            "< 50 ms",
            r.percentile(0.95) < GOAL_P95_S,
        )
        for r in results
    ]
    rows = [
        (
            f'`"{r.where}"`',
            r.order,
            f"{r.total:,}",
            str(r.returned),
            ms(r.percentile(0.5)),
            ms(r.percentile(0.95)),
            ms(max(r.latencies)),
        )
        for r in results
    ]
    headers = ("where", "order", "matches", "returned", "p50", "p95", "max")
    return Section(
        title=f"Offer search over {NODES:,} nodes",
        figures=figures,
        tables=[Table("Per query", headers, rows)],
        notes=[
            f"{NODES:,} nodes (seed {SEED}, {OPERATORS} operators; about 95% online) "
            f"bulk-inserted into a migrated SQLite (WAL) store in {populate_s:.1f} s.",
            f"`GET /v1/offers?where=...&order=...&limit=100` on the indexer under uvicorn "
            f"(1 worker, uvloop+httptools, no access log), {REPEATS} sequential requests per "
            f"query over one keep-alive connection after {WARMUP} untimed ones; latency is "
            "measured by the client (httpx) and includes reading the whole answer.",
        ],
    )


def run(progress: Progress = lambda _: None) -> Section:
    """Populate a store with ``NODES`` nodes and time each query in ``QUERIES``."""
    with tempfile.TemporaryDirectory(prefix="gpunet-bench-offers-") as tmp:
        root = Path(tmp)
        database_url = f"sqlite:///{root / 'indexer.db'}"
        progress(f"offers: inserting {NODES:,} nodes")
        populate_s = populate(database_url, NODES)
        results = _serve_and_query(root, database_url, progress)
    return _section(results, populate_s)


if __name__ == "__main__":
    print(section_markdown(run(progress=print)))
