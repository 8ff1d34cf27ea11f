"""Processes under test: start them in their own process group, wait for them, end them.

Every process started here runs in a new session, so stopping it (SIGTERM, then
SIGKILL after a grace period) takes its whole group: uvicorn's worker processes and
anything an agent spawned. ``running`` is a context manager, so a failing benchmark
still leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from loadgen import LoadResult

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
PYTHON = sys.executable
STOP_GRACE_S = 5.0


class BenchmarkError(RuntimeError):
    """A benchmark could not run: a process did not start or answered wrongly."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Running:
    """A started process and the file its output goes to."""

    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchmarkError(
                f"process {self.pid} exited with {self.process.returncode}; "
                f"its log ({self.log_path}) ends:\n{self.log_tail()}"
            )


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop(running: Running) -> None:
    """End the process group: SIGTERM, then SIGKILL for whatever is left."""
    pgid = running.pid  # start_new_session makes the child its group's leader
    _signal_group(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        running.process.wait(timeout=STOP_GRACE_S)
    _signal_group(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        running.process.wait(timeout=STOP_GRACE_S)


@contextlib.contextmanager
def running(
    command: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> Iterator[Running]:
    """Run ``command`` in its own process group for the duration of the block."""
    full_env = {**os.environ, **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
    started = Running(process, log_path)
    try:
        yield started
    finally:
        stop(started)


def wait_http(started: Running, url: str, timeout_s: float = 30.0) -> None:
    """Wait until ``url`` answers 200, or fail with the process's log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        started.check_alive()
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise BenchmarkError(f"{url} did not answer 200 within {timeout_s:g}s:\n{started.log_tail()}")


def tree_processes(pid: int) -> list[psutil.Process]:
    """The process and its descendants (uvicorn workers, agent children)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds used so far by a process and its descendants."""
    total = 0.0
    for proc in tree_processes(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def uvicorn_command(
    app: str, port: int, workers: int, *, fast: bool = True, factory: bool = False
) -> list[str]:
    """The uvicorn command line every server in these benchmarks runs with."""
    loop, http = ("uvloop", "httptools") if fast else ("asyncio", "h11")
    command = [PYTHON, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers), "--loop", loop, "--http", http]
    command += ["--no-access-log", "--log-level", "warning", "--app-dir", str(BENCH_DIR)]
    return [*command, "--factory"] if factory else command


@dataclass(frozen=True)
class Measured:
    """A load generator's result and the CPU the server used meanwhile."""

    load: LoadResult
    server_cpu_s: float

    @property
    def server_cpu_percent(self) -> float:
        return 100 * self.server_cpu_s / self.load.elapsed_s

    @property
    def generator_cpu_percent(self) -> float:
        return 100 * self.load.generator_cpu_s / self.load.elapsed_s


def generate_load(server: Running, port: int, requests: Path, *options: str) -> Measured:
    """Run ``loadgen.py`` against ``port`` with loadgen's flags (``--mode open`` ...).

    The server's CPU is counted over the generator's whole run, during which the
    server has no other work, so warm-ups belong in a separate call.
    """
    command = [PYTHON, str(BENCH_DIR / "loadgen.py"), "--port", str(port)]
    command += ["--requests", str(requests), *options]
    cpu_before = tree_cpu_seconds(server.pid)
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    server.check_alive()
    if done.returncode != 0:
        raise BenchmarkError(f"load generator failed ({done.returncode}):\n{done.stderr[-2000:]}")
    load = LoadResult(**json.loads(done.stdout))
    return Measured(load, tree_cpu_seconds(server.pid) - cpu_before)
