"""One checker's load: a farm of honest node check endpoints, and a checker process.

One uvicorn process serves ``FARM_NODES`` node check endpoints (each its own node id
and operator key) under ``/n/{i}``; a checker process (``CheckerAgent``, the real
``CheckRunner``, an in-process stand-in for the indexer) probes every node's liveness,
then challenges the capacity of every ``CAPACITY_STEP``-th. Part of ``bench_checks``;
run as a script, this module is that checker process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
from eth_account import Account
from eth_account.signers.local import LocalAccount
from harness import (
    PYTHON,
    REPO_ROOT,
    BenchmarkError,
    free_port,
    running,
    tree_cpu_seconds,
    uvicorn_command,
    wait_http,
)
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gpunet.api.checks import (
    CheckerPublic,
    CheckKindName,
    CheckResultAck,
    CheckResultIn,
    CheckTask,
    DeliveryTask,
    TaskBatch,
)
from gpunet.checker.agent import CheckerAgent
from gpunet.checker.runner import CheckRunner
from gpunet.node.capacity import CapacityProver
from gpunet.node.check_server import ChallengeLimits, CheckService, check_app
from gpunet.protocol import challenge as ch

FARM_NODES, FARM_CLAIM = 1_000, 5e9  # each node claims docs/checks-capacity.md's smallest CPU
CAPACITY_STEP = 4  # capacity challenges to every 4th node; the per-node time is extrapolated
WORKERS = 4  # `gpunet checker start`'s default --workers
EPOCH_S, WINDOW_S = 86_400.0, 900.0  # the production epoch and check window
PHASE_TIMEOUT_S = 240.0
NODES_ENV = "BENCH_CHECKS_NODES"
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

Progress = Callable[[str], None]


class _NoBlobs:
    """Liveness and capacity checks download nothing."""

    def check_output(self, check_id: str, sha256: str) -> bytes:
        raise KeyError(sha256)


def node_id(index: int) -> str:
    return f"n-{index:012x}"


def operator(index: int) -> LocalAccount:
    key = hashlib.sha256(f"bench-checks-operator-{index}".encode()).digest()
    account: LocalAccount = Account.from_key(key)
    return account


class _Farm:
    """Node ``i``'s check endpoint at ``/n/{i}/v1/check/...``."""

    def __init__(self, apps: Sequence[ASGIApp]) -> None:
        self._apps = apps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        _, prefix, index, rest = [*scope["path"].split("/", 3), "", "", ""][:4]
        if prefix != "n" or not index.isdigit() or int(index) >= len(self._apps):
            await PlainTextResponse("no such node", status_code=404)(scope, receive, send)
            return
        path = "/" + rest
        await self._apps[int(index)](
            {**scope, "path": path, "raw_path": path.encode()}, receive, send
        )


def node_farm() -> ASGIApp:
    """uvicorn's factory: ``$BENCH_CHECKS_NODES`` honest nodes, each claiming FARM_CLAIM."""
    limits, prover = ChallengeLimits(FARM_CLAIM, (ch.CPU_POLICY,)), CapacityProver("numpy")
    count = int(os.environ.get(NODES_ENV, FARM_NODES))
    services = [CheckService(node_id(i), operator(i), limits, prover=prover) for i in range(count)]
    return _Farm([check_app(service) for service in services])


def farm_task(
    kind: CheckKindName, index: int, url: str, address: str, delivery: DeliveryTask | None = None
) -> CheckTask:
    return CheckTask(
        check_id=f"c-{kind}-{index}",
        kind=kind,
        epoch=1,
        node_id=node_id(index),
        operator=address,
        check_url=url or None,
        gpu_model="CPU",
        gpu_count=0,
        claimed_ops_per_s=FARM_CLAIM,
        rtt_ms=None,
        due_at=time.time() + WINDOW_S,
        delivery=delivery,
    )


class _Indexer:
    """The indexer as the checker sees it: one batch of tasks, then results kept here."""

    def __init__(self, address: str, tasks: list[CheckTask]) -> None:
        self._address, self._tasks, self._given = address, tasks, False
        self.results: dict[str, CheckResultIn] = {}
        self.done = threading.Event()
        self._lock = threading.Lock()

    def register_checker(self, registration: object = None) -> CheckerPublic:
        now = datetime.now(UTC)
        return CheckerPublic(
            address=self._address,
            operator=None,
            registered_at=now,
            last_seen_at=now,
            results_total=0,
            against_majority=0,
            against_majority_week=0,
            banned_until=None,
            reward_eligible=True,
        )

    def checker_tasks(self, wait_s: float = 20) -> TaskBatch:
        if not self._given:
            self._given = True
            return TaskBatch(epoch=1, epoch_s=EPOCH_S, tasks=self._tasks)
        self.done.wait(wait_s)
        return TaskBatch(epoch=1, epoch_s=EPOCH_S, tasks=[])

    def report_check(self, check_id: str, result: CheckResultIn) -> CheckResultAck:
        with self._lock:
            self.results[check_id] = result
            if len(self.results) == len(self._tasks):
                self.done.set()
        return CheckResultAck(check_id=check_id, accepted=True, state="open", verdict=None)


def _mean(results: Sequence[CheckResultIn], key: str) -> float:
    values = [float(r.evidence[key]) for r in results if key in r.evidence]
    return sum(values) / len(values) if values else 0.0


def checker_run(kind: CheckKindName, base: str, nodes: range) -> dict[str, object]:
    """One checker (``CheckerAgent``, ``WORKERS`` workers, the real ``CheckRunner``) running
    ``kind`` checks of ``nodes``: wall and CPU seconds of this process, and the votes."""
    tasks = [farm_task(kind, i, f"{base}/n/{i}", operator(i).address) for i in nodes]
    checker = Account.from_key(hashlib.sha256(b"bench-checks-checker").digest())
    indexer = _Indexer(checker.address, tasks)
    # No keep-alive: every request opens a connection, as to a thousand different hosts.
    with httpx.Client(timeout=10.0, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        runner = CheckRunner(http, _NoBlobs())
        agent = CheckerAgent(indexer, checker, runner, workers=WORKERS, poll_wait_s=1.0)
        me = psutil.Process()
        cpu_before, started = sum(me.cpu_times()[:2]), time.perf_counter()
        loop = threading.Thread(target=agent.run, name="bench-checker")
        loop.start()
        indexer.done.wait(PHASE_TIMEOUT_S)
        wall_s, cpu_s = time.perf_counter() - started, sum(me.cpu_times()[:2]) - cpu_before
        agent.stop()
        loop.join()
    results = list(indexer.results.values())
    votes = Counter(r.verdict for r in results) + Counter({"no vote": len(tasks) - len(results)})
    answer_s, deadline_s = _mean(results, "elapsed_s"), _mean(results, "deadline_s")
    return {
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "votes": votes,
        "answer_s": answer_s,
        "deadline_s": deadline_s,
    }


@dataclass(frozen=True)
class Phase:
    name: str
    nodes: int
    wall_s: float
    cpu_s: float  # the checker process's
    farm_cpu_s: float
    votes: dict[str, int]
    answer_s: float  # capacity: mean seconds from challenge to root
    deadline_s: float  # capacity: mean deadline

    @property
    def per_node_s(self) -> float:
        return self.wall_s / self.nodes


def _phase(
    name: str, kind: CheckKindName, base: str, nodes: range, farm: int, env: dict[str, str]
) -> Phase:
    """``checker_run`` in a process of its own, so its CPU is the checker's alone."""
    command = [PYTHON, str(Path(__file__).resolve()), "--checker", kind, "--base", base]
    command += ["--nodes", f"{nodes.start}:{nodes.stop}:{nodes.step}"]
    farm_before, full_env = tree_cpu_seconds(farm), {**os.environ, **env}
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=full_env,
        timeout=PHASE_TIMEOUT_S + 60,
    )
    farm_cpu_s = tree_cpu_seconds(farm) - farm_before  # the farm idles while the checker starts
    if done.returncode != 0:
        raise BenchmarkError(f"checker process failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return Phase(name, len(nodes), farm_cpu_s=farm_cpu_s, **json.loads(done.stdout))


def measure_checker(progress: Progress) -> list[Phase]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = uvicorn_command("check_farm:node_farm", port, 1, factory=True)
    sample = range(0, FARM_NODES, CAPACITY_STEP)
    plan: list[tuple[str, CheckKindName, range, dict[str, str]]] = [
        ("liveness", "liveness", range(FARM_NODES), {}),
        ("capacity", "capacity", sample, {}),
        ("capacity, 1 BLAS thread", "capacity", sample, ONE_BLAS_THREAD),
    ]
    progress(f"checks: starting {FARM_NODES:,} node check endpoints")
    with (
        tempfile.TemporaryDirectory() as tmp,
        running(command, Path(tmp) / "farm.log", {NODES_ENV: str(FARM_NODES)}) as farm,
    ):
        wait_http(farm, f"{base}/n/0/v1/check/ping?nonce={'00' * 16}", timeout_s=60)
        phases = []
        for name, kind, nodes, env in plan:
            progress(f"checks: one checker, {name}, {len(nodes):,} nodes")
            phases.append(_phase(name, kind, base, nodes, farm.pid, env))
            farm.check_alive()
    return phases


def main(argv: list[str] | None = None) -> int:
    """The checker process of ``measure_checker``: prints its run as JSON."""
    parser = argparse.ArgumentParser(description="One checker against the node farm.")
    parser.add_argument("--checker", choices=("liveness", "capacity"), required=True)
    parser.add_argument("--base", required=True)
    parser.add_argument("--nodes", required=True, help="start:stop:step")
    args = parser.parse_args(argv)
    start, stop, step = (int(part) for part in args.nodes.split(":"))
    print(json.dumps(checker_run(args.checker, args.base, range(start, stop, step))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
