"""Jobs in a real bubblewrap sandbox: what they can do, what they cannot, and their limits.

bwrap is a system package (``bubblewrap``); CI installs it, so there a missing bwrap
fails these tests instead of skipping them. After every job that misbehaves, a good
job must still run, and no process of the bad one may be left on the host.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy
import pytest

from gpunet.node.runtime import BwrapRuntime, Limits, Outcome, RunRequest, RunResult

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

SMALL = Limits(memory_mib=512, wall_time_s=60.0, max_processes=64, max_file_mib=16)


@pytest.fixture(scope="module")
def runtime() -> BwrapRuntime:
    if shutil.which("bwrap") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install bubblewrap: apt-get install bubblewrap")
        pytest.skip("bwrap is not installed: apt-get install bubblewrap")
    sandbox = BwrapRuntime()
    reason = sandbox.available()
    assert reason is None, reason  # bwrap present but unusable is a failure, not a skip
    return sandbox


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "job" / "work"
    work.mkdir(parents=True)
    return work


class Job:
    """Runs one request and keeps its output lines."""

    def __init__(self, runtime: BwrapRuntime) -> None:
        self.runtime = runtime
        self.lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(
        self,
        workdir: Path,
        *argv: str,
        limits: Limits = SMALL,
        env: dict[str, str] | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        request = RunRequest(argv=argv, workdir=workdir, env=env or {}, limits=limits)
        return self.runtime.run(request, self._collect, cancel or threading.Event())

    def _collect(self, stream: str, line: str) -> None:
        with self._lock:
            self.lines.append((stream, line))

    def out(self, stream: str = "stdout") -> list[str]:
        with self._lock:
            return [line for name, line in self.lines if name == stream]


@pytest.fixture
def job(runtime: BwrapRuntime) -> Job:
    return Job(runtime)


@pytest.fixture
def marker() -> Iterator[str]:
    """A unique word for job command lines; the test fails if a process keeps it."""
    word = f"gpunet-marker-{os.urandom(6).hex()}"
    yield word
    assert processes_with(word) == []


def processes_with(word: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and entry != str(os.getpid()):
            try:
                cmdline = Path("/proc", entry, "cmdline").read_bytes()
            except OSError:
                continue
            if word.encode() in cmdline:
                found.append(int(entry))
    return found


def good_job_still_runs(job: Job, tmp_path: Path) -> None:
    work = tmp_path / "after"
    work.mkdir(exist_ok=True)
    result = job(work, "python", "-c", "print(6 * 7)")
    assert result.outcome is Outcome.SUCCEEDED, result.message
    assert job.out()[-1] == "42"


def python(code: str, *args: str) -> tuple[str, ...]:
    return ("python", "-c", code, *args)


# --- (1) success, outputs, streaming ---------------------------------------------------


def test_a_job_writes_outputs_the_host_sees_and_streams_its_lines(job: Job, workdir: Path) -> None:
    (workdir / "input.txt").write_text("3 4\n", encoding="utf-8")
    code = (
        "import sys; a, b = map(int, open('input.txt').read().split());"
        "open('/work/output.txt', 'w').write(str(a * b)); print('product', a * b);"
        "print('to stderr', file=sys.stderr)"
    )
    result = job(workdir, *python(code))
    assert result.outcome is Outcome.SUCCEEDED, result.message
    assert (result.exit_code, result.signal) == (0, None)
    assert (workdir / "output.txt").read_text(encoding="utf-8") == "12"
    assert job.out() == ["product 12"]
    assert job.out("stderr") == ["to stderr"]
    assert result.cpu_time_s > 0 and result.max_rss_mib > 1


# --- (2) the host file system is read-only or absent -----------------------------------


def test_writes_outside_work_are_refused_and_the_host_is_unchanged(
    job: Job, workdir: Path, tmp_path: Path
) -> None:
    parent = workdir.parent
    targets = ["/etc/gpunet-x", "/usr/gpunet-x", "/gpunet-x", "/work/../gpunet-x", f"{parent}/x"]
    code = (
        "import json, sys\nresults = {}\nfor path in sys.argv[1:]:\n"
        "    try:\n        open(path, 'w').write('x'); results[path] = 'written'\n"
        "    except OSError as exc:\n        results[path] = type(exc).__name__\n"
        "print(json.dumps(results))"
    )
    before = sorted(os.listdir(parent))
    result = job(workdir, *python(code, *targets))
    assert result.outcome is Outcome.SUCCEEDED, result.message
    assert "written" not in json.loads(job.out()[-1]).values()
    assert sorted(os.listdir(parent)) == before
    assert not Path("/etc/gpunet-x").exists() and not Path("/usr/gpunet-x").exists()
    good_job_still_runs(job, tmp_path)


# --- (3) network -----------------------------------------------------------------------


@pytest.fixture
def tcp_server() -> Iterator[tuple[int, list[bytes]]]:
    """A server on the host's 127.0.0.1 that records what each connection sends."""
    server = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                received.append(conn.recv(100))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    server.close()
    thread.join(5)


CONNECT = (
    "import socket, sys\n"
    "with socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5) as s:\n"
    "    s.sendall(b'hello from the job')\n"
)


def test_network_is_closed_unless_allowed(
    job: Job, workdir: Path, tcp_server: tuple[int, list[bytes]]
) -> None:
    port, received = tcp_server
    closed = job(workdir, *python(CONNECT, str(port)))
    assert closed.outcome is Outcome.FAILED
    assert any("ConnectionRefusedError" in line for line in job.out("stderr"))

    opened = job(workdir, *python(CONNECT, str(port)), limits=Limits(network=True))
    assert opened.outcome is Outcome.SUCCEEDED, opened.message
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received == [b"hello from the job"]


# --- (4) memory, (5) processes, (10) file size, CPU time ----------------------------------


def test_memory_past_the_limit_is_refused(job: Job, workdir: Path, tmp_path: Path) -> None:
    limits = Limits(memory_mib=256, wall_time_s=60)
    result = job(workdir, *python("block = bytearray(512 * 1024 * 1024)"), limits=limits)
    assert result.outcome is Outcome.MEMORY_EXCEEDED
    assert "256 MiB memory limit" in result.message
    good_job_still_runs(job, tmp_path)


FORK_BOMB = (
    "import os, sys, time\nroot = os.getpid()\nwhile True:\n    try:\n        os.fork()\n"
    "    except OSError as exc:\n        if os.getpid() == root:\n"
    "            print('fork failed:', exc, file=sys.stderr); sys.exit(1)\n"
    "        time.sleep(0.01)\n"
)


def test_a_fork_bomb_stops_at_the_process_limit(
    job: Job, workdir: Path, tmp_path: Path, marker: str
) -> None:
    limits = Limits(max_processes=32, wall_time_s=60)
    result = job(workdir, *python(FORK_BOMB, marker), limits=limits)
    assert result.outcome in (Outcome.PROCESS_LIMIT, Outcome.FAILED)
    assert "32-process limit" in result.message or result.exit_code == 1
    assert processes_with(marker) == []
    good_job_still_runs(job, tmp_path)


def test_a_file_past_the_size_limit_is_refused(job: Job, workdir: Path, tmp_path: Path) -> None:
    limits = Limits(max_file_mib=1, wall_time_s=60)
    by_python = job(workdir, *python("open('big', 'wb').write(b'x' * (2 << 20))"), limits=limits)
    assert by_python.outcome is Outcome.FILE_TOO_LARGE
    by_shell = job(workdir, "sh", "-c", "head -c 3000000 /dev/zero > big2", limits=limits)
    assert by_shell.outcome is Outcome.FILE_TOO_LARGE
    assert "1 MiB file-size limit" in by_shell.message
    assert (workdir / "big2").stat().st_size <= 1 << 20
    good_job_still_runs(job, tmp_path)


def test_cpu_time_past_the_limit_is_stopped(job: Job, workdir: Path, tmp_path: Path) -> None:
    limits = Limits(cpu_time_s=1, wall_time_s=60)
    result = job(workdir, *python("while True: pass"), limits=limits)
    assert result.outcome is Outcome.CPU_TIME_EXCEEDED
    assert "1 s CPU-time limit" in result.message
    good_job_still_runs(job, tmp_path)


# --- (6) wall time, (7) cancel: nothing survives ------------------------------------------

SPAWNER = (
    "import os, subprocess, sys, time\nmarker = sys.argv[1]\n"
    "sleep = [sys.executable, '-c', 'import time; time.sleep(1000)', marker]\n"
    "subprocess.Popen(sleep)\n"
    "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
    "        os.execv(sys.executable, [*sleep, 'daemon'])\n    os._exit(0)\n"
    "print('spawned', flush=True)\ntime.sleep(1000)\n"
)


def wait_for_processes(word: str, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(processes_with(word)) < count:
        assert time.monotonic() < deadline, f"the job never started {count} processes"
        time.sleep(0.05)


def test_wall_time_limit_kills_the_job_and_all_it_started(
    job: Job, workdir: Path, tmp_path: Path, marker: str
) -> None:
    seen: list[int] = []

    def note_running() -> None:
        wait_for_processes(marker, 3)
        seen.append(len(processes_with(marker)))

    watcher = threading.Thread(target=note_running, daemon=True)
    watcher.start()
    result = job(workdir, *python(SPAWNER, marker), limits=Limits(wall_time_s=5.0))
    watcher.join(5)
    assert seen and seen[0] >= 3  # the children and the daemon ran before the kill
    assert result.outcome is Outcome.TIMED_OUT
    assert result.message == "killed after 5 s wall-time limit"
    assert processes_with(marker) == []
    good_job_still_runs(job, tmp_path)


def test_cancel_kills_the_job_and_all_it_started(
    job: Job, workdir: Path, tmp_path: Path, marker: str
) -> None:
    cancel = threading.Event()

    def cancel_when_running() -> None:
        wait_for_processes(marker, 3)
        cancel.set()

    canceller = threading.Thread(target=cancel_when_running, daemon=True)
    canceller.start()
    result = job(workdir, *python(SPAWNER, marker), cancel=cancel)
    canceller.join(5)
    assert result.outcome is Outcome.CANCELLED
    assert processes_with(marker) == []
    good_job_still_runs(job, tmp_path)


# --- (8) secrets and environment, (9) the agent's packages --------------------------------


SNOOP = """
import json, os, sys
try:
    text = open(sys.argv[1]).read()
except OSError as exc:
    text = type(exc).__name__
home = sys.argv[2]
listing = sorted(os.listdir(home)) if os.path.isdir(home) else []
print(json.dumps({"read": text, "env": dict(os.environ), "home": listing}))
"""


def test_host_secrets_and_the_agents_environment_stay_out(
    job: Job,
    workdir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = tmp_path_factory.mktemp("gpunet-home")
    secret = keys / "operator.key"
    secret.write_text("0xdeadbeef", encoding="utf-8")
    monkeypatch.setenv("GPUNET_HOME", str(keys))
    monkeypatch.setenv("GPUNET_TEST_AGENT_SECRET", "agent-only")

    result = job(workdir, *python(SNOOP, str(secret), str(Path.home())), env={"JOB": "1"})

    assert result.outcome is Outcome.SUCCEEDED, result.message
    seen = json.loads(job.out()[-1])
    assert seen["read"] == "FileNotFoundError"
    assert "GPUNET_TEST_AGENT_SECRET" not in seen["env"]
    assert "GPUNET_HOME" not in seen["env"]
    assert seen["env"]["JOB"] == "1"
    # Of the host's home, at most the top of a Python installation bound below it shows.
    home = Path.home()
    prefixes = [Path(sys.prefix), Path(sys.base_prefix)]
    bound = {p.relative_to(home).parts[0] for p in prefixes if p.is_relative_to(home)}
    assert set(seen["home"]) <= bound


def test_a_python_job_imports_numpy_from_the_agents_environment(job: Job, workdir: Path) -> None:
    result = job(workdir, *python("import numpy; print(numpy.__version__)"))
    assert result.outcome is Outcome.SUCCEEDED, result.message
    assert job.out() == [numpy.__version__]


# --- sandbox errors ----------------------------------------------------------------------


def test_a_sandbox_that_cannot_be_built_is_a_sandbox_error(workdir: Path) -> None:
    missing = Path(f"/gpunet-does-not-exist-{os.urandom(4).hex()}")
    broken = BwrapRuntime(extra_ro_paths=[missing])
    request = RunRequest(argv=("true",), workdir=workdir, env={}, limits=SMALL)
    result = broken.run(request, lambda stream, line: None, threading.Event())
    assert result.outcome is Outcome.SANDBOX_ERROR
    assert str(missing) in result.message
    assert result.message.startswith("the sandbox could not start:")


def test_concurrent_jobs_run_side_by_side(runtime: BwrapRuntime, tmp_path: Path) -> None:
    results: dict[int, RunResult] = {}

    def run(index: int) -> None:
        work = tmp_path / f"w{index}"
        work.mkdir()
        request = RunRequest(
            argv=python(f"open('out', 'w').write('{index}')"), workdir=work, env={}, limits=SMALL
        )
        results[index] = runtime.run(request, lambda stream, line: None, threading.Event())

    threads = [threading.Thread(target=run, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert {index: result.outcome for index, result in results.items()} == dict.fromkeys(
        range(4), Outcome.SUCCEEDED
    )
    assert [(tmp_path / f"w{index}" / "out").read_text() for index in range(4)] == list("0123")
