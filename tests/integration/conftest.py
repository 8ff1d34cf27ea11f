"""A real local network for job tests: one indexer and three node agents, each a process.

The indexer runs as ``python -m gpunet.indexer`` on a SQLite file, the nodes as
``gpunet node start`` with the bubblewrap runtime, all on 127.0.0.1 with short
heartbeats, so that a silent node is noticed within seconds. Each node sits in a
region of its own under ``eu-west`` (``eu-west-1``...), so a spec with ``region:
eu-west-2`` lands on node-2 alone while a spec without a region may land anywhere.

Every process starts in a session of its own and is stopped at teardown, its whole
process group killed, whether or not the tests passed. Processes' output goes to
``<root>/logs/<name>.log``; ``JobNetwork.logs()`` shows the ends of them in failures.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from eth_account import Account
from eth_account.signers.local import LocalAccount

from gpunet.api.jobs import JobDetail
from gpunet.cli.localnet import free_port
from gpunet.cli.process import ChildProcess
from gpunet.errors import GpunetError
from gpunet.node.identity import NODE_FILE, read_node_id
from gpunet.protocol.nodes import NodeState
from gpunet.sdk import Client
from gpunet.sdk.jobs import TERMINAL_STATES, submit_spec_file

T = TypeVar("T")

NODE_NAMES = ("node-1", "node-2", "node-3")
NODE_PRICE_MICROS = 450_000
KEY_PASSWORD = "jobs-network-test"
DEPOSIT_MICROS = 5_000_000
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
INDEXER_SETTINGS = {
    "GPUNET_HEARTBEAT_INTERVAL_S": "1",
    "GPUNET_HEARTBEAT_TIMEOUT_S": "4",
    "GPUNET_SWEEP_INTERVAL_S": "0.5",
    "GPUNET_MATCH_INTERVAL_S": "0.2",
}


def child_env(home: Path) -> dict[str, str]:
    """This environment without any GPUNET_ setting, plus a private home and fast keys."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("GPUNET_")}
    env.update(
        GPUNET_HOME=str(home),
        GPUNET_KEY_PASSWORD=KEY_PASSWORD,
        GPUNET_KEY_KDF="pbkdf2",
        GPUNET_KEY_KDF_ITERATIONS="1000",
        PYTHONUNBUFFERED="1",
    )
    return env


def wait_for(condition: Callable[[], T], what: str, timeout_s: float = 30.0) -> T:
    """Poll ``condition`` until it returns something true; AssertionError after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.2)


class JobNetwork:
    """The indexer and node processes of one test module, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = child_env(root / "home")
        self.keys_dir = root / "keys"
        indexer_argv = [sys.executable, "-m", "gpunet.indexer", "--port", str(self.port)]
        self.indexer = ChildProcess("indexer", indexer_argv, self._log("indexer"))
        self.nodes = {
            name: ChildProcess(name, self._node_argv(name), self._log(name)) for name in NODE_NAMES
        }

    # -- layout --

    def region(self, name: str) -> str:
        return f"eu-west-{NODE_NAMES.index(name) + 1}"

    def node_dir(self, name: str) -> Path:
        return self.root / "nodes" / name

    def node_id(self, name: str) -> str:
        path = self.node_dir(name) / NODE_FILE
        return read_node_id(path) if path.exists() else ""

    def name_of(self, node_id: str) -> str:
        """The agent whose data dir holds ``node_id``."""
        for name in NODE_NAMES:
            if self.node_id(name) == node_id:
                return name
        raise AssertionError(f"no node of this network has the id {node_id}")

    def _log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def _node_argv(self, name: str) -> list[str]:
        return [
            sys.executable, "-m", "gpunet.cli.main", "node", "start",
            "--indexer", self.url,
            "--key", name,
            "--keys-dir", str(self.keys_dir),
            "--data-dir", str(self.node_dir(name)),
            "--price", "0.45",
            "--region", self.region(name),
            "--interval", "1",
            "--benchmark-size", "64",
            "--runtime", "bwrap",
            "--allow-network",
        ]  # fmt: skip

    # -- running --

    def start(self) -> None:
        """Start the indexer, wait until it answers, then start every node and wait for it."""
        data_dir = self.root / "indexer"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.indexer.start({**self.env, **INDEXER_SETTINGS, "GPUNET_DATA_DIR": str(data_dir)})
        wait_for(self._indexer_answers, f"the indexer at {self.url}\n{self.logs()}")
        self.keys_dir.mkdir(mode=0o700, exist_ok=True)
        self.ensure_ready()

    def ensure_ready(self) -> None:
        """Restart any node whose process ended, then wait until every node is idle."""
        for name, child in self.nodes.items():
            if not child.running:
                self.node_dir(name).mkdir(parents=True, exist_ok=True)
                child.start(self.env)
        for name in NODE_NAMES:
            wait_for(
                lambda name=name: self.node_state(name) == NodeState.IDLE,
                f"{name} to be online and idle\n{self.logs()}",
                START_TIMEOUT_S,
            )

    def node_state(self, name: str) -> NodeState | None:
        node_id = self.node_id(name)
        if not node_id:
            return None
        try:
            with Client(self.url, timeout=5.0) as reader:
                return reader.get_node(node_id).state
        except GpunetError:
            return None

    def kill_node(self, name: str) -> None:
        """SIGKILL the agent alone, as a crash would: it cannot leave or report."""
        self.nodes[name].kill()

    def stop(self) -> None:
        """Stop the nodes, then the indexer; every process group ends, even a stuck one."""
        for child in self.nodes.values():
            child.terminate()
        for child in [*self.nodes.values(), self.indexer]:
            with contextlib.suppress(Exception):
                child.stop(STOP_GRACE_S)
            _kill_group(child)

    def logs(self, lines: int = 30) -> str:
        """The last lines of every process's log, for failure messages."""
        children = [self.indexer, *self.nodes.values()]
        return "\n".join(f"--- {c.name} ({c.describe()}):\n{c.log_tail(lines)}" for c in children)

    def _indexer_answers(self) -> bool:
        if self.indexer.exit_code is not None:
            raise AssertionError(f"the indexer exited early\n{self.logs()}")
        try:
            with Client(self.url, timeout=2.0) as reader:
                reader.health()
        except GpunetError:
            return False
        return True


def _kill_group(child: ChildProcess) -> None:
    # Children start their own session, so the group id is the child's pid.
    if child.pid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def job_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobNetwork]:
    """A running network for a whole module; each test gets it with every node idle."""
    if shutil.which("bwrap") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install bubblewrap: apt-get install bubblewrap")
        pytest.skip("bwrap is not installed: apt-get install bubblewrap")
    network = JobNetwork(tmp_path_factory.mktemp("jobnet"))
    try:
        network.start()
        yield network
    finally:
        network.stop()


@pytest.fixture
def jobnet(job_network: JobNetwork) -> JobNetwork:
    """The module's network, with any node a previous test killed back and idle."""
    job_network.ensure_ready()
    return job_network


@pytest.fixture
def buyer(jobnet: JobNetwork) -> Iterator[Client]:
    """A client signed by a fresh buyer account holding ``DEPOSIT_MICROS``.

    Jobs the test left open (it failed half-way) are cancelled afterwards, so that their
    nodes are free for the next test.
    """
    account: LocalAccount = Account.create()
    with Client(jobnet.url, account, timeout=30.0) as api:
        api.deposit(DEPOSIT_MICROS)
        try:
            yield api
        finally:
            for job in api.list_jobs(buyer=account.address).jobs:
                if job.state not in TERMINAL_STATES:
                    with contextlib.suppress(GpunetError):
                        api.cancel_job(job.job_id, "cleanup after the test")


def submit(api: Client, folder: Path, spec: dict[str, Any], files: dict[str, str]) -> JobDetail:
    """Write ``files`` and the spec as job.yaml into ``folder``, then submit that file."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    spec_file = folder / "job.yaml"
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return submit_spec_file(api, spec_file)


def wait_job(
    api: Client,
    job_id: str,
    condition: Callable[[JobDetail], bool],
    what: str,
    timeout_s: float = 60.0,
) -> JobDetail:
    """The job once ``condition`` holds for it; fails early if it ends before."""

    def check() -> JobDetail | None:
        job = api.get_job(job_id)
        if condition(job):
            return job
        if job.state in TERMINAL_STATES:
            raise AssertionError(
                f"job {job_id} ended {job.state} ({job.outcome}: {job.message}) before {what}"
            )
        return None

    return wait_for(check, f"job {job_id}: {what}", timeout_s)


def wait_ended(api: Client, job_id: str, timeout_s: float = 60.0) -> JobDetail:
    return wait_job(api, job_id, lambda job: job.state in TERMINAL_STATES, "its end", timeout_s)
