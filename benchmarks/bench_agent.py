"""What an idle node agent costs its machine: CPU and resident memory.

An indexer runs under uvicorn in a subprocess; two ``gpunet node start`` processes
register with it, one with the default heartbeat interval and one with
``--interval 2``. Once each node is registered (after its start-up hardware
detection and matrix benchmark) and has settled, both processes are sampled with
psutil every second for ``WINDOW_S`` seconds: CPU time used (the process and any
children) over wall time, and resident set size.

Run alone: ``.venv/bin/python benchmarks/bench_agent.py``.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from harness import (
    BenchmarkError,
    Running,
    free_port,
    running,
    tree_cpu_seconds,
    tree_processes,
    uvicorn_command,
    wait_http,
)
from report import Figure, Section, Table, section_markdown

from gpunet.keys import new_key

WINDOW_S = 60.0
SETTLE_S = 3.0
REGISTER_TIMEOUT_S = 60.0
PASSWORD = "benchmark-only"
GOAL_CPU_PERCENT = 1.0
GOAL_RSS_MB = 100.0
INDEXER_APP = "gpunet.indexer.app:create_app"
GPUNET = str(Path(sys.executable).with_name("gpunet"))

Progress = Callable[[str], None]


@dataclass(frozen=True)
class AgentSetup:
    """One agent to start: its name and ``gpunet node start`` options."""

    name: str
    options: tuple[str, ...]

    @property
    def label(self) -> str:
        return " ".join(self.options) if self.options else "default interval"


AGENTS = (AgentSetup("default", ()), AgentSetup("fast", ("--interval", "2")))


@dataclass
class Samples:
    """Per-second readings of one agent process tree."""

    cpu_start: float
    started: float
    rss: list[int] = field(default_factory=list)
    cpu_end: float = 0.0
    ended: float = 0.0
    heartbeats: int = 0

    @property
    def cpu_percent(self) -> float:
        return 100 * (self.cpu_end - self.cpu_start) / (self.ended - self.started)

    @property
    def rss_max_mb(self) -> float:
        return max(self.rss) / 1e6

    @property
    def rss_mean_mb(self) -> float:
        return sum(self.rss) / len(self.rss) / 1e6


def _tree_rss(pid: int) -> int:
    total = 0
    for proc in tree_processes(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def _agent_command(setup: AgentSetup, root: Path, indexer: str) -> list[str]:
    command = [GPUNET, "node", "start", "--indexer", indexer, "--key", setup.name]
    command += ["--keys-dir", str(root / "keys"), "--data-dir", str(root / setup.name)]
    return command + list(setup.options)


def _node_id(data_dir: Path, agent: Running, deadline: float) -> str:
    path = data_dir / "node.json"
    while not path.exists():
        agent.check_alive()
        if time.monotonic() > deadline:
            raise BenchmarkError(f"agent wrote no {path}:\n{agent.log_tail()}")
        time.sleep(0.2)
    node_id: str = json.loads(path.read_text())["node_id"]
    return node_id


def _heartbeats(client: httpx.Client, node_id: str) -> int | None:
    response = client.get(f"/v1/nodes/{node_id}")
    return int(response.json()["heartbeats"]) if response.status_code == 200 else None


def _wait_registered(client: httpx.Client, agent: Running, node_id: str) -> None:
    deadline = time.monotonic() + REGISTER_TIMEOUT_S
    while _heartbeats(client, node_id) is None:
        agent.check_alive()
        if time.monotonic() > deadline:
            raise BenchmarkError(f"node {node_id} did not register:\n{agent.log_tail()}")
        time.sleep(0.2)


def _sample(agents: dict[str, Running], progress: Progress) -> dict[str, Samples]:
    now = time.monotonic()
    samples = {name: Samples(tree_cpu_seconds(a.pid), now) for name, a in agents.items()}
    for second in range(int(WINDOW_S)):
        progress(f"agent: sampling, {second}/{WINDOW_S:.0f} s")
        for name, agent in agents.items():
            agent.check_alive()
            samples[name].rss.append(_tree_rss(agent.pid))
        time.sleep(max(0.0, samples["default"].started + second + 1 - time.monotonic()))
    for name, agent in agents.items():
        samples[name].cpu_end, samples[name].ended = tree_cpu_seconds(agent.pid), time.monotonic()
    return samples


@contextlib.contextmanager
def _started_agents(root: Path, indexer: str) -> Iterator[dict[str, Running]]:
    """Every agent in ``AGENTS``, started; all are stopped when the block ends."""
    env = {"GPUNET_HOME": str(root), "GPUNET_KEY_PASSWORD": PASSWORD}
    with contextlib.ExitStack() as stack:
        yield {
            setup.name: stack.enter_context(
                running(_agent_command(setup, root, indexer), root / f"{setup.name}.log", env)
            )
            for setup in AGENTS
        }


def _measure_agents(root: Path, indexer: str, progress: Progress) -> dict[str, Samples]:
    for setup in AGENTS:
        new_key(setup.name, PASSWORD, root / "keys", kdf="pbkdf2", iterations=1000)
    with _started_agents(root, indexer) as agents, httpx.Client(base_url=indexer) as client:
        deadline = time.monotonic() + REGISTER_TIMEOUT_S
        node_ids = {n: _node_id(root / n, a, deadline) for n, a in agents.items()}
        progress("agent: waiting for the nodes to register")
        for name, agent in agents.items():
            _wait_registered(client, agent, node_ids[name])
        time.sleep(SETTLE_S)
        before = {name: _heartbeats(client, node_id) or 0 for name, node_id in node_ids.items()}
        samples = _sample(agents, progress)
        for name, node_id in node_ids.items():
            samples[name].heartbeats = (_heartbeats(client, node_id) or 0) - before[name]
    return samples


def _figures(setup: AgentSetup, samples: Samples) -> list[Figure]:
    return [
        Figure(
            f"CPU, {setup.label}",
            f"{samples.cpu_percent:.2f}%",
            "< 1%",
            samples.cpu_percent < GOAL_CPU_PERCENT,
        ),
        Figure(
            f"RSS (max), {setup.label}",
            f"{samples.rss_max_mb:.1f} MB",
            "< 100 MB",
            samples.rss_max_mb < GOAL_RSS_MB,
        ),
    ]


def _section(results: dict[str, Samples]) -> Section:
    by_name = {setup.name: setup for setup in AGENTS}
    figures = [f for name, s in results.items() for f in _figures(by_name[name], s)]
    rows = [
        (
            by_name[name].label,
            f"{s.cpu_percent:.2f}%",
            f"{s.rss_mean_mb:.1f} MB",
            f"{s.rss_max_mb:.1f} MB",
            str(s.heartbeats),
        )
        for name, s in results.items()
    ]
    headers = ("agent", "CPU (of one core)", "RSS mean", "RSS max", "heartbeats in window")
    return Section(
        title="Idle node agent",
        figures=figures,
        tables=[Table(f"Over {WINDOW_S:.0f} s", headers, rows)],
        notes=[
            "`gpunet node start --indexer URL --key NAME --keys-dir DIR --data-dir DIR "
            "[--interval 2]` against a local indexer (1 uvicorn worker, SQLite); both agents "
            "run at once and are sampled over the same window.",
            f"Sampling starts {SETTLE_S:g} s after each node is registered, so start-up "
            "(hardware detection, the matrix benchmark) is not counted. CPU is user + system "
            "time of the agent and its children over wall time; RSS is sampled every second "
            "(MB = 10^6 bytes).",
            "The default interval is 60 s with ±10% jitter and registering counts as a "
            "beat, so that agent sends at most one heartbeat in the window: its figure is the "
            "cost of waiting; the 2 s agent shows the cost of beating.",
        ],
    )


def run(progress: Progress = lambda _: None) -> Section:
    """Start an indexer and the agents in ``AGENTS``; sample them for ``WINDOW_S``."""
    with tempfile.TemporaryDirectory(prefix="gpunet-bench-agent-") as tmp:
        root = Path(tmp)
        port = free_port()
        env = {"GPUNET_DATABASE_URL": f"sqlite:///{root / 'indexer.db'}"}
        command = uvicorn_command(INDEXER_APP, port, 1, factory=True)
        indexer = f"http://127.0.0.1:{port}"
        progress("agent: starting an indexer and two agents")
        with running(command, root / "indexer.log", env) as server:
            wait_http(server, indexer + "/v1/health")
            results = _measure_agents(root, indexer, progress)
    return _section(results)


if __name__ == "__main__":
    print(section_markdown(run(progress=print)))
