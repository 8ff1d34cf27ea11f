"""Signed heartbeats through a real indexer, next to a FastAPI endpoint that does nothing.

For each server configuration (uvicorn workers, event loop and HTTP parser) this
starts the indexer with uvicorn in a subprocess on SQLite (WAL) in a temporary
directory, registers ``NODES`` nodes over ``OPERATORS`` keys through the API, and
replays pre-signed heartbeats from ``loadgen.py``, a second process:

- saturation: ``CONNECTIONS`` keep-alive connections back to back for ``SATURATION_S``;
- open loop: ``OPEN_RATE`` requests/s for ``OPEN_S``, latency counted from when each
  request was due.

Then the same requests go to ``bare_app.py`` under the same uvicorn settings, and to
``null_server.py`` once, to show the generator's own ceiling. Finally the database
is read to check that every heartbeat answered 200 was persisted (and no more than
were sent: requests the generator gave up on may still have been persisted).

Run alone: ``.venv/bin/python benchmarks/bench_heartbeats.py``.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness import (
    BENCH_DIR,
    PYTHON,
    BenchmarkError,
    Measured,
    Running,
    free_port,
    generate_load,
    running,
    uvicorn_command,
    wait_http,
)
from loadgen import write_requests
from presign import Fleet, sign_many
from report import Figure, Section, Table, ms, per_second, section_markdown

from gpunet.indexer import upgrade_database

NODES = 1000
OPERATORS = 4
CONNECTIONS = 32
SATURATION_S = 5.0
OPEN_RATE = 1000.0
OPEN_S = 8.0
OPEN_CONNECTIONS = 64
WARMUP = 1500
GOAL_THROUGHPUT = 2000.0
GOAL_P99_S = 0.050
GOAL_RATIO = 0.4
INDEXER_APP = "gpunet.indexer.app:create_app"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ServerConfig:
    """How uvicorn runs: worker processes, and uvloop + httptools or asyncio + h11."""

    workers: int
    fast: bool = True

    @property
    def label(self) -> str:
        stack = "uvloop+httptools" if self.fast else "asyncio+h11"
        return f"{self.workers} worker{'s' if self.workers > 1 else ''}, {stack}"

    @property
    def slug(self) -> str:
        return f"w{self.workers}-{'fast' if self.fast else 'std'}"


# The first is what `gpunet indexer start` runs (one process; uvicorn picks uvloop and
# httptools when installed); goals are judged on it, the others are for comparison.
CONFIGS = (ServerConfig(1), ServerConfig(2), ServerConfig(1, fast=False))


@dataclass(frozen=True)
class ConfigResult:
    config: ServerConfig
    saturated: Measured
    open_loop: Measured
    bare: Measured
    answered: int
    persisted: int

    @property
    def ratio(self) -> float:
        return self.saturated.load.throughput_per_s / self.bare.load.throughput_per_s

    @property
    def failed(self) -> int:
        return self.saturated.load.failed + self.open_loop.load.failed

    @property
    def unanswered(self) -> int:
        return self.open_loop.load.unanswered

    @property
    def persisted_ok(self) -> bool:
        """Every 2xx was persisted; the only extras are requests given up on."""
        return self.answered <= self.persisted <= self.answered + self.unanswered


@dataclass
class Workspace:
    """Where one run keeps its files, and the pool that signs its requests."""

    root: Path
    pool: ProcessPoolExecutor
    fleet: Fleet
    progress: Progress

    def signed_file(self, name: str, kind: str, count: int, port: int) -> Path:
        stamp = int(time.time())
        requests = sign_many(self.pool, self.fleet, kind, count, stamp, port)
        path = self.root / f"{name}.bin"
        write_requests(path, requests)
        return path


def _indexer_env(root: Path, database: Path) -> dict[str, str]:
    return {
        "GPUNET_DATABASE_URL": f"sqlite:///{database}",
        "GPUNET_DATA_DIR": str(root),
        "GPUNET_HEARTBEAT_INTERVAL_S": "60",
        "GPUNET_HEARTBEAT_TIMEOUT_S": "180",
    }


def _phase(
    work: Workspace, server: Running, port: int, name: str, count: int, *options: str
) -> Measured:
    work.progress(f"heartbeats: signing {count:,} requests for {name}")
    path = work.signed_file(name, "heartbeat", count, port)
    work.progress(f"heartbeats: {name}")
    return generate_load(server, port, path, *options)


def _register(work: Workspace, server: Running, port: int) -> None:
    path = work.signed_file("register", "register", len(work.fleet.node_ids), port)
    measured = generate_load(server, port, path, "--connections", "8", "--duration", "60")
    if measured.load.ok != len(work.fleet.node_ids):
        raise BenchmarkError(
            f"registration failed: statuses {measured.load.statuses}; server log ends:\n"
            + server.log_tail()
        )


def _saturation_count(warm: Measured) -> int:
    """Enough requests to saturate for ``SATURATION_S`` at twice the warm-up's rate."""
    return max(5000, int(warm.load.throughput_per_s * SATURATION_S * 2))


def _persisted(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        (total,) = connection.execute("SELECT COALESCE(SUM(heartbeats), 0) FROM nodes").fetchone()
    return int(total)


def _measure_indexer(
    work: Workspace, config: ServerConfig
) -> tuple[Measured, Measured, Measured, Path]:
    database = work.root / f"indexer-{config.slug}.db"
    upgrade_database(f"sqlite:///{database}")
    port = free_port()
    command = uvicorn_command(INDEXER_APP, port, config.workers, fast=config.fast, factory=True)
    log = work.root / f"indexer-{config.slug}.log"
    with running(command, log, _indexer_env(work.root, database)) as server:
        wait_http(server, f"http://127.0.0.1:{port}/v1/health")
        work.progress(f"heartbeats: registering {len(work.fleet.node_ids):,} nodes")
        _register(work, server, port)
        closed = ("--connections", str(CONNECTIONS))
        warm = _phase(work, server, port, "warm-up", WARMUP, *closed, "--duration", "30")
        count = _saturation_count(warm)
        saturated = _phase(
            work, server, port, "saturation", count, *closed, "--duration", str(SATURATION_S)
        )
        open_options = ("--mode", "open", "--rate", str(OPEN_RATE), "--duration", str(OPEN_S))
        open_loop = _phase(
            work,
            server,
            port,
            "open loop",
            int(OPEN_RATE * OPEN_S),
            *open_options,
            "--connections",
            str(OPEN_CONNECTIONS),
        )
    return warm, saturated, open_loop, database


def _measure_static(
    work: Workspace, command: list[str], name: str, requests: Path, port: int
) -> Measured:
    """Saturate a server that ignores nonces, cycling through ``requests``."""
    with running(command, work.root / f"{name}.log") as server:
        wait_http(server, f"http://127.0.0.1:{port}/v1/health")
        closed = ("--connections", str(CONNECTIONS), "--cycle")
        generate_load(server, port, requests, *closed, "--duration", "1")
        return generate_load(server, port, requests, *closed, "--duration", str(SATURATION_S))


def _measure_bare(work: Workspace, config: ServerConfig, requests: Path) -> Measured:
    work.progress(f"heartbeats: bare endpoint, {config.label}")
    port = free_port()
    command = uvicorn_command("bare_app:app", port, config.workers, fast=config.fast)
    return _measure_static(work, command, f"bare-{config.slug}", requests, port)


def measure_generator_ceiling(work: Workspace, requests: Path) -> Measured:
    """The generator against a server that does no work: how far it can go."""
    work.progress("heartbeats: generator ceiling (null server)")
    port = free_port()
    command = [PYTHON, str(Path(__file__).with_name("null_server.py")), str(port)]
    return _measure_static(work, command, "null-server", requests, port)


def measure_config(work: Workspace, config: ServerConfig) -> ConfigResult:
    work.progress(f"heartbeats: indexer, {config.label}")
    warm, saturated, open_loop, database = _measure_indexer(work, config)
    bare = _measure_bare(work, config, work.root / "warm-up.bin")
    answered = warm.load.ok + saturated.load.ok + open_loop.load.ok
    return ConfigResult(config, saturated, open_loop, bare, answered, _persisted(database))


def _config_row(result: ConfigResult) -> tuple[str, ...]:
    sat, opened = result.saturated, result.open_loop.load
    return (
        result.config.label,
        per_second(sat.load.throughput_per_s),
        per_second(result.bare.load.throughput_per_s),
        f"{result.ratio:.2f}",
        _latency(opened.p50_s, result.unanswered),
        _latency(opened.p99_s, result.unanswered),
        _latency(opened.max_s, result.unanswered),
        f"{sat.server_cpu_percent:.0f}% / {sat.generator_cpu_percent:.0f}%",
        f"{result.bare.server_cpu_percent:.0f}% / {result.bare.generator_cpu_percent:.0f}%",
        str(result.failed),
        str(result.unanswered),
        f"{result.persisted:,} / {result.answered:,}",
    )


CONFIG_HEADERS = (
    "server",
    "heartbeats/s",
    "bare/s",
    "ratio",
    "p50 @1k/s",
    "p99 @1k/s",
    "max @1k/s",
    "CPU server/gen (heartbeats)",
    "CPU server/gen (bare)",
    "failed",
    "given up @1k/s",
    "persisted / answered 2xx",
)


def _latency(seconds: float, unanswered: int) -> str:
    """A latency; a lower bound when some requests were given up on."""
    return f"≥ {ms(seconds)}" if unanswered else ms(seconds)


def _speed_figures(main: ConfigResult) -> list[Figure]:
    sat, opened = main.saturated.load.throughput_per_s, main.open_loop.load
    p50, p99 = (_latency(t, main.unanswered) for t in (opened.p50_s, opened.p99_s))
    bare = main.bare.load.throughput_per_s
    return [
        Figure("heartbeats/s at saturation", per_second(sat), "≥ 2,000/s", sat >= GOAL_THROUGHPUT),
        Figure("p50 latency at 1,000/s (open loop)", p50),
        Figure("p99 latency at 1,000/s (open loop)", p99, "< 50 ms", opened.p99_s < GOAL_P99_S),
        Figure("bare FastAPI endpoint at saturation", per_second(bare)),
        Figure("ratio heartbeat / bare", f"{main.ratio:.2f}", "≥ 0.4", main.ratio >= GOAL_RATIO),
    ]


def _check_figures(main: ConfigResult, ceiling: Measured) -> list[Figure]:
    persisted = f"{main.persisted:,} / {main.answered:,}"
    ceiling_rate = ceiling.load.throughput_per_s
    bare = main.bare.load.throughput_per_s
    return [
        Figure(
            "failed requests (non-2xx, broken connections)", str(main.failed), "0", main.failed == 0
        ),
        Figure("open-loop requests given up 5 s after the last was due", str(main.unanswered)),
        Figure(
            "heartbeats persisted / answered 2xx",
            persisted,
            "every 2xx persisted",
            main.persisted_ok,
        ),
        Figure(
            "generator alone vs null server",
            per_second(ceiling_rate),
            "> 2 x bare",
            ceiling_rate > 2 * bare,
        ),
    ]


def _notes(results: list[ConfigResult]) -> list[str]:
    command = " ".join(uvicorn_command(INDEXER_APP, 0, 1, factory=True)[1:])
    command = command.replace("--port 0", "--port PORT").replace(str(BENCH_DIR), "benchmarks")
    return [
        f"Goals are judged on the first configuration ({results[0].config.label}), which is "
        "what `gpunet indexer start` runs; the others are for comparison.",
        f"Indexer: `python {command}` (workers, loop and http varied per row), SQLite WAL in "
        "a temporary directory, default settings (max skew 60 s).",
        f"{NODES:,} nodes over {OPERATORS} operator keys, registered through the API first. "
        'Heartbeats (`POST /v1/nodes/{id}/heartbeat`, body `{"jobs_running":0}`) are signed '
        "with `gpunet.protocol.auth.sign_request` just before each phase, with unique nonces.",
        f"Saturation: {CONNECTIONS} keep-alive connections, {SATURATION_S:g} s, after "
        f"{WARMUP:,} untimed requests. Open loop: {OPEN_RATE:,.0f} requests/s for {OPEN_S:g} s "
        f"over up to {OPEN_CONNECTIONS} connections, latency from when each request was due.",
        "CPU columns: percent of one core used by the server (all workers) and by the "
        "load generator during the phase; the machine has "
        f"{multiprocessing.cpu_count()} cores shared by both.",
        "Bare: `benchmarks/bare_app.py`, an async route on the heartbeat path that returns a "
        "constant, under the same uvicorn flags, fed the same requests.",
    ]


def _section(results: list[ConfigResult], ceiling: Measured) -> Section:
    table = Table("All server configurations", CONFIG_HEADERS, [_config_row(r) for r in results])
    return Section(
        title="Heartbeats: signed, persisted, from a second process",
        figures=_speed_figures(results[0]) + _check_figures(results[0], ceiling),
        tables=[table],
        notes=_notes(results),
    )


def run(progress: Progress = lambda _: None) -> Section:
    """Measure every configuration in ``CONFIGS``; goals on the first."""
    context = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="gpunet-bench-hb-") as root,
        ProcessPoolExecutor(2, mp_context=context) as pool,
    ):
        work = Workspace(Path(root), pool, Fleet.create(OPERATORS, NODES), progress)
        results = [measure_config(work, config) for config in CONFIGS]
        ceiling = measure_generator_ceiling(work, work.root / "warm-up.bin")
    return _section(results, ceiling)


if __name__ == "__main__":
    print(section_markdown(run(progress=print)))
