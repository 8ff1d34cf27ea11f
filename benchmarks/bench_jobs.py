"""Jobs end to end on loopback: dispatch latency, and throughput through 8 nodes.

An indexer runs under uvicorn in a subprocess (SQLite store) and 8 ``gpunet node
start`` processes register with it, each running jobs in its bubblewrap sandbox.

- Dispatch latency: with every node idle, one job at a time is submitted and the
  time from its ``queued`` event to its ``running`` event (both stamped by the
  indexer) is taken: matching, the node's long-poll wake-up, the input download and
  the start call. ``DISPATCH_JOBS`` jobs, the median and p95 reported.
- Throughput: ``THROUGHPUT_JOBS`` short jobs (``true``) submitted at once; jobs per
  second from the first submission to the last job's end, and the indexer's share
  of the CPU time that all processes (indexer, agents, sandboxes) used meanwhile.

Run alone: ``.venv/bin/python benchmarks/bench_jobs.py``. Needs bwrap on PATH.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eth_account import Account
from harness import (
    BenchmarkError,
    Running,
    free_port,
    running,
    tree_cpu_seconds,
    uvicorn_command,
    wait_http,
)
from report import Figure, Section, Table, section_markdown

from gpunet.api.jobs import JobDetail
from gpunet.keys import new_key
from gpunet.sdk import Client

NODES = 8
DISPATCH_JOBS = 30
THROUGHPUT_JOBS = 1000
GOAL_DISPATCH_MEDIAN_S = 0.300
PASSWORD = "benchmark-only"
GPUNET = str(Path(sys.executable).with_name("gpunet"))
INDEXER_APP = "gpunet.indexer.app:create_app"
TERMINAL = {"succeeded", "failed", "cancelled"}

SPEC = {
    "name": "bench",
    "command": ["true"],
    "max_price": "1.00",
    "max_duration": "1m",
    "resources": {"cpu_cores": 1, "memory": "256MiB"},
}

Progress = Callable[[str], None]


def _node_command(index: int, root: Path, indexer: str) -> list[str]:
    name = f"node{index}"
    return [
        GPUNET,
        "node",
        "start",
        "--indexer",
        indexer,
        "--key",
        name,
        "--keys-dir",
        str(root / "keys"),
        "--data-dir",
        str(root / name),
        "--interval",
        "2",
        "--benchmark-size",
        "64",
        "--price",
        "0.50",
    ]


@contextlib.contextmanager
def _network(root: Path, progress: Progress) -> Iterator[tuple[str, Running, list[Running]]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "GPUNET_DATA_DIR": str(root / "indexer"),
        "GPUNET_HEARTBEAT_INTERVAL_S": "2",
        "GPUNET_HEARTBEAT_TIMEOUT_S": "10",
        "GPUNET_HOME": str(root),
        "GPUNET_KEY_PASSWORD": PASSWORD,
    }
    for index in range(NODES):
        new_key(f"node{index}", PASSWORD, root / "keys", kdf="pbkdf2", iterations=1000)
    with contextlib.ExitStack() as stack:
        indexer = stack.enter_context(
            running(uvicorn_command(INDEXER_APP, port, 1, factory=True), root / "indexer.log", env)
        )
        wait_http(indexer, f"{url}/v1/health")
        nodes = [
            stack.enter_context(running(_node_command(i, root, url), root / f"node{i}.log", env))
            for i in range(NODES)
        ]
        progress("jobs: waiting for 8 nodes to register")
        _wait_idle(url, nodes)
        yield url, indexer, nodes


def _wait_idle(url: str, nodes: list[Running], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    with Client(url) as client:
        while time.monotonic() < deadline:
            for node in nodes:
                node.check_alive()
            listing = client.list_offers(where="state=idle")
            if listing.total >= NODES:
                return
            time.sleep(0.3)
    raise BenchmarkError(f"fewer than {NODES} nodes became idle in {timeout_s:g} s")


def _event_time(client: Client, job_id: str, state: str) -> float | None:
    for event in client.job_events(job_id).events:
        if event.to_state == state:
            return event.at.timestamp()
    return None


def _ended(client: Client) -> int:
    """How many of the buyer's jobs have ended (one cheap listing per state)."""
    assert client.core.account is not None
    buyer = client.core.account.address
    return sum(client.list_jobs(buyer=buyer, state=s, limit=1).total for s in TERMINAL)


def _wait_terminal(
    client: Client, job_ids: list[str], timeout_s: float, ended_before: int
) -> list[JobDetail]:
    """Wait until ``job_ids`` have all ended, then read each job once."""
    deadline = time.monotonic() + timeout_s
    while _ended(client) < ended_before + len(job_ids):
        if time.monotonic() > deadline:
            raise BenchmarkError(f"jobs did not finish within {timeout_s:g} s")
        time.sleep(0.2)
    return [client.get_job(job_id) for job_id in job_ids]


def _dispatch(client: Client, progress: Progress) -> list[float]:
    latencies = []
    for index in range(DISPATCH_JOBS):
        progress(f"jobs: dispatch latency, job {index + 1}/{DISPATCH_JOBS}")
        ended = _ended(client)
        job = client.submit_job(SPEC)
        [finished] = _wait_terminal(client, [job.job_id], 60, ended)
        queued = _event_time(client, job.job_id, "queued")
        started = _event_time(client, job.job_id, "running")
        if finished.state != "succeeded" or queued is None or started is None:
            raise BenchmarkError(f"job {job.job_id} ended {finished.state}: {finished.message}")
        latencies.append(started - queued)
        time.sleep(0.3)  # let the node go back to its long-poll
    return latencies


def _throughput(
    client: Client, indexer: Running, nodes: list[Running], progress: Progress
) -> dict[str, float]:
    ended = _ended(client)
    cpu_before = {p.pid: tree_cpu_seconds(p.pid) for p in [indexer, *nodes]}
    started = time.monotonic()
    progress(f"jobs: submitting {THROUGHPUT_JOBS} jobs")
    with ThreadPoolExecutor(max_workers=8) as pool:
        job_ids = list(pool.map(lambda _: client.submit_job(SPEC).job_id, range(THROUGHPUT_JOBS)))
    submitted = time.monotonic()
    progress("jobs: waiting for every job to finish")
    finished = _wait_terminal(client, job_ids, 900, ended)
    ended = time.monotonic()
    cpu_after = {p.pid: tree_cpu_seconds(p.pid) for p in [indexer, *nodes]}
    used = {pid: cpu_after[pid] - cpu_before[pid] for pid in cpu_before}
    succeeded = sum(1 for job in finished if job.state == "succeeded")
    return {
        "jobs_per_s": THROUGHPUT_JOBS / (ended - started),
        "submit_s": submitted - started,
        "wall_s": ended - started,
        "succeeded": float(succeeded),
        "indexer_cpu_s": used[indexer.pid],
        "all_cpu_s": sum(used.values()),
    }


def run(progress: Progress = lambda _: None) -> Section:
    if shutil.which("bwrap") is None:
        raise BenchmarkError("bwrap is not on PATH: install the bubblewrap package")
    root = Path(tempfile.mkdtemp(prefix="gpunet-bench-jobs-"))
    buyer = Account.create()
    with _network(root, progress) as (url, indexer, nodes), Client(url, buyer) as client:
        client.deposit(1_000 * 1_000_000)
        latencies = _dispatch(client, progress)
        flow = _throughput(client, indexer, nodes, progress)
    shutil.rmtree(root, ignore_errors=True)
    return _section(latencies, flow)


def _section(latencies: list[float], flow: dict[str, float]) -> Section:
    median = statistics.median(latencies)
    p95 = sorted(latencies)[int(0.95 * (len(latencies) - 1))]
    share = flow["indexer_cpu_s"] / flow["all_cpu_s"] if flow["all_cpu_s"] else 0.0
    return Section(
        title="Jobs: dispatch latency and throughput (8 local nodes, bubblewrap)",
        figures=[
            Figure(
                "submit to running on an idle node, median",
                f"{median * 1000:.0f} ms",
                "< 300 ms",
                median < GOAL_DISPATCH_MEDIAN_S,
            ),
            Figure("submit to running, p95", f"{p95 * 1000:.0f} ms"),
            Figure(
                f"throughput, {THROUGHPUT_JOBS} short jobs through {NODES} nodes",
                f"{flow['jobs_per_s']:.1f} jobs/s",
            ),
            Figure("indexer's share of all CPU time used", f"{share * 100:.0f}%"),
        ],
        tables=[
            Table(
                "Throughput run",
                ("jobs", "succeeded", "submit all", "wall", "indexer CPU", "all CPU"),
                [
                    (
                        str(THROUGHPUT_JOBS),
                        f"{flow['succeeded']:.0f}",
                        f"{flow['submit_s']:.1f} s",
                        f"{flow['wall_s']:.1f} s",
                        f"{flow['indexer_cpu_s']:.1f} s",
                        f"{flow['all_cpu_s']:.1f} s",
                    )
                ],
            )
        ],
        notes=[
            "Latency is the indexer's `running` event time minus its `queued` event time "
            f"for {DISPATCH_JOBS} jobs submitted one at a time to idle nodes.",
            "CPU time is user plus system of each process tree (indexer; each agent with "
            "its sandboxes), from psutil, over the throughput run.",
        ],
    )


def main() -> int:
    section = run(lambda message: print(message, file=sys.stderr))
    print(section_markdown(section))
    return 0 if section.goals_met else 1


if __name__ == "__main__":
    sys.exit(main())
