"""A local network on loopback: one indexer, N node agents and K checkers, each a process.

Everything lives under one data directory, so a second run reuses it::

    <data_dir>/up.lock              held while a network runs on this directory
    <data_dir>/password             generated key password (0600), unless $GPUNET_KEY_PASSWORD
    <data_dir>/keys/node-1.json     one operator key per node (checker-1.json per checker)
    <data_dir>/indexer/indexer.db   the registry (SQLite)
    <data_dir>/nodes/node-1/        each node's data dir (node.json: its node id)
    <data_dir>/logs/indexer.log, logs/node-1.log

Children run ``python -m gpunet.cli.main``. They get their own session, so a Ctrl-C
reaches only the supervisor, which stops nodes first (so they can leave) and the
indexer last; on Linux they also get SIGTERM if the supervisor dies.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from gpunet.cli.process import ChildProcess
from gpunet.errors import ConfigError, GpunetError
from gpunet.protocol.units import format_usd
from gpunet.sdk import Client

PASSWORD_ENV = "GPUNET_KEY_PASSWORD"
# (region, USD micro-dollars per node-hour): varied so that listings are worth sorting.
NODE_OFFERS = (
    ("eu-west", 450_000),
    ("us-east", 620_000),
    ("ap-south", 380_000),
    ("eu-north", 510_000),
    ("us-west", 700_000),
    ("sa-east", 550_000),
)
MAX_NODES = 32
MAX_CHECKERS = 15


class NetworkError(GpunetError):
    """The local network could not start, or a part of it failed."""


@dataclass(frozen=True)
class NetworkSpec:
    """What to run: how many nodes, where, and how fast they heartbeat."""

    nodes: int = 4
    port: int = 8700
    host: str = "127.0.0.1"
    heartbeat_s: float = 2.0
    benchmark_size: int = 256
    checkers: int = 0
    epoch_s: float = 15.0
    # A --misbehave mode for the last node, to watch the checkers catch it.
    lying_node: str | None = None
    # Canary jobs per epoch (0: none, so a node stays idle between buyers' jobs).
    canaries_per_epoch: int = 1
    # An in-process chain in <root>/chain: epochs settle on it (the token contracts).
    chain: bool = False
    # Stretches capacity deadlines: every node shares this machine's cores with the
    # others and the checkers. Larger lets a slower liar (claim-faster) pass, and past
    # about 4 a challenge no longer fits a check window of seconds, so none is judged.
    capacity_deadline_factor: float = 3.0

    @property
    def timeout_s(self) -> float:
        """Heartbeat timeout: five missed beats (at least a second more than one)."""
        return max(5 * self.heartbeat_s, self.heartbeat_s + 1)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class Layout:
    """Where each file of a local network lives under ``root``."""

    root: Path

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def indexer_dir(self) -> Path:
        return self.root / "indexer"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def chain_dir(self) -> Path:
        return self.root / "chain"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    def node_dir(self, name: str) -> Path:
        return self.root / "nodes" / name

    def log(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"


# The local network's chain: claimed rewards pay at once (no vesting) so a demo can
# show them; everything else is the deployment defaults (examples/chain/local.toml).
LOCAL_CHAIN_CONFIG: dict[str, dict[str, int]] = {"rewards": {"reward_vest_s": 0}}


def ensure_local_chain(chain_dir: Path) -> bool:
    """Deploy the contracts on the in-process chain in ``chain_dir`` unless recorded there.

    Returns True when it deployed. The state is the chain's journal in ``chain_dir``,
    so a later ``gpunet up`` on the same data dir finds the same contracts and balances.
    """
    from gpunet.chain.config import parse_config
    from gpunet.chain.deploy import deploy_system, record_path, save_deployment
    from gpunet.chain.inprocess import InProcessChain

    backend = InProcessChain(chain_dir)
    try:
        if record_path(chain_dir, backend.chain_id).exists():
            return False
        deployment = deploy_system(backend, parse_config(LOCAL_CHAIN_CONFIG, "local network"))
        save_deployment(chain_dir, deployment)
        return True
    finally:
        backend.close()


def node_name(index: int) -> str:
    return f"node-{index}"


def checker_name(index: int) -> str:
    return f"checker-{index}"


def node_offer(index: int) -> tuple[str, int]:
    """Region and price of node ``index`` (1-based)."""
    region, price = NODE_OFFERS[(index - 1) % len(NODE_OFFERS)]
    return region, price + 10_000 * ((index - 1) // len(NODE_OFFERS))


def network_password(layout: Layout) -> str:
    """$GPUNET_KEY_PASSWORD if set, else the password stored in the data dir (made once)."""
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    path = layout.password_file
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
    return path.read_text(encoding="utf-8").strip()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def require_free_port(host: str, port: int) -> None:
    with socket.socket() as probe:
        # Same option uvicorn sets, so a port in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"port {port} on {host} is in use ({exc.strerror}); stop what uses it "
                "or pass another --port"
            ) from None


class LocalNetwork:
    """Starts, watches and stops the indexer and node processes of one data directory."""

    def __init__(self, spec: NetworkSpec, root: Path, python: str = sys.executable) -> None:
        if not 1 <= spec.nodes <= MAX_NODES:
            raise ConfigError(f"--nodes {spec.nodes} is out of range; use 1 to {MAX_NODES}")
        if not 0 <= spec.checkers <= MAX_CHECKERS:
            raise ConfigError(
                f"--checkers {spec.checkers} is out of range; use 0 to {MAX_CHECKERS}"
            )
        self.spec = spec
        self.layout = Layout(root.resolve())
        self._python = python
        self._lock: IO[str] | None = None
        self.indexer = ChildProcess("indexer", self._indexer_argv(), self.layout.log("indexer"))
        self.nodes = {
            node_name(i): ChildProcess(
                node_name(i), self._node_argv(i), self.layout.log(node_name(i))
            )
            for i in range(1, spec.nodes + 1)
        }
        self.checkers = {
            checker_name(i): ChildProcess(
                checker_name(i), self._checker_argv(i), self.layout.log(checker_name(i))
            )
            for i in range(1, spec.checkers + 1)
        }

    def start(self, ready_timeout_s: float = 30.0) -> None:
        """Prepare the directory, start the indexer, wait for it, then nodes and checkers."""
        self.prepare()
        self.start_indexer(ready_timeout_s)
        for name in self.nodes:
            self.start_node(name)
        for child in self.checkers.values():
            child.start(self._env())

    def start_indexer(self, ready_timeout_s: float = 30.0) -> None:
        """Start (or restart) the indexer on the same database; return once it answers."""
        self.indexer.start({**self._env(), **self._indexer_env()})
        self.wait_for_indexer(ready_timeout_s)

    def start_node(self, name: str) -> None:
        self.layout.node_dir(name).mkdir(parents=True, exist_ok=True)
        self.nodes[name].start(self._env())

    def stop_node(self, name: str, grace_s: float = 10.0) -> None:
        self.nodes[name].stop(grace_s)

    def kill_node(self, name: str) -> None:
        """End a node without letting it leave: the indexer must notice the silence."""
        self.nodes[name].kill()

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop nodes and checkers first (nodes leave while the indexer answers), then it."""
        agents = [*self.nodes.values(), *self.checkers.values()]
        for child in agents:
            child.terminate()
        for child in agents:
            child.stop(grace_s)
        self.indexer.stop(grace_s)
        self._release_lock()

    def client(self) -> Client:
        return Client(self.spec.url, timeout=5.0)

    def node_id(self, name: str) -> str | None:
        """The node id the agent ``name`` stored, once it has started."""
        from gpunet.node.identity import NODE_FILE, read_node_id

        path = self.layout.node_dir(name) / NODE_FILE
        return read_node_id(path) if path.exists() else None

    def wait_for_indexer(self, timeout_s: float) -> None:
        with self.client() as client:
            wait_until(
                lambda: _answers(client) or self._indexer_died(),
                timeout_s,
                f"the indexer did not answer at {self.spec.url} within {timeout_s:g}s; "
                f"see {self.indexer.log_path}",
            )

    def exited(self) -> list[ChildProcess]:
        """Children that ended without being asked to."""
        children = [self.indexer, *self.nodes.values(), *self.checkers.values()]
        return [c for c in children if c.exit_code is not None and not c.stopping]

    def _indexer_died(self) -> bool:
        code = self.indexer.exit_code
        if code is None:
            return False
        raise NetworkError(
            f"the indexer exited with code {code} before answering; "
            f"last lines of {self.indexer.log_path}:\n{self.indexer.log_tail()}"
        )

    def prepare(self) -> None:
        """Create the directory layout, lock it, and check that the port is free."""
        self.layout.root.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        for directory in (self.layout.keys_dir, self.layout.indexer_dir, self.layout.logs_dir):
            directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.layout.keys_dir, 0o700)
        require_free_port(self.spec.host, self.spec.port)
        if self.spec.chain:
            ensure_local_chain(self.layout.chain_dir)

    def _take_lock(self) -> None:
        lock = (self.layout.root / "up.lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise ConfigError(
                f"another local network is running on {self.layout.root}; stop it "
                "or pass another --data-dir"
            ) from None
        self._lock = lock

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "GPUNET_DATABASE_URL"}
        env.update(
            GPUNET_HOME=str(self.layout.root),
            GPUNET_KEY_PASSWORD=network_password(self.layout),
            PYTHONUNBUFFERED="1",
        )
        # Throwaway local keys: pbkdf2 starts nodes faster than scrypt (override by env).
        env.setdefault("GPUNET_KEY_KDF", "pbkdf2")
        return env

    def _command(self, *args: str) -> list[str]:
        return [self._python, "-m", "gpunet.cli.main", *args]

    def _indexer_argv(self) -> list[str]:
        spec = self.spec
        return self._command(
            "indexer", "start",
            "--host", spec.host,
            "--port", str(spec.port),
            "--data-dir", str(self.layout.indexer_dir),
            "--heartbeat-interval", f"{spec.heartbeat_s:g}",
            "--heartbeat-timeout", f"{spec.timeout_s:g}",
        )  # fmt: skip

    def _indexer_env(self) -> dict[str, str]:
        """Epochs of seconds, so checks and canaries happen while one watches."""
        return {
            "GPUNET_EPOCH_S": f"{self.spec.epoch_s:g}",
            "GPUNET_CHECK_WINDOW_S": f"{self.spec.epoch_s * 0.8:g}",
            "GPUNET_CANARIES_PER_EPOCH": str(self.spec.canaries_per_epoch),
            "GPUNET_CHECK_TICK_S": "0.5",
            "GPUNET_CAPACITY_DEADLINE_FACTOR": f"{self.spec.capacity_deadline_factor:g}",
            **({"GPUNET_CHAIN_DIR": str(self.layout.chain_dir)} if self.spec.chain else {}),
        }

    def _checker_argv(self, index: int) -> list[str]:
        return self._command(
            "checker", "start",
            "--indexer", self.spec.url,
            "--key", checker_name(index),
            "--keys-dir", str(self.layout.keys_dir),
        )  # fmt: skip

    def _node_argv(self, index: int) -> list[str]:
        name = node_name(index)
        region, price = node_offer(index)
        lying = self.spec.lying_node if index == self.spec.nodes else None
        misbehave = ["--misbehave", lying] if lying else []
        return self._command(
            "node", "start",
            "--indexer", self.spec.url,
            "--key", name,
            "--keys-dir", str(self.layout.keys_dir),
            "--price", format_usd(price),
            "--region", region,
            "--data-dir", str(self.layout.node_dir(name)),
            "--interval", f"{self.spec.heartbeat_s:g}",
            "--benchmark-size", str(self.spec.benchmark_size),
            # Sessions on a local network forward their port on 127.0.0.1 only.
            "--allow-network",
            "--checkpoint-every", "1",
            *misbehave,
        )  # fmt: skip


def _answers(client: Client) -> bool:
    try:
        client.health()
    except GpunetError:
        return False
    return True


def wait_until(
    condition: Callable[[], bool], timeout_s: float, message: str, poll_s: float = 0.2
) -> None:
    """Poll ``condition`` until it holds; NetworkError(``message``) after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            raise NetworkError(message)
        time.sleep(poll_s)
