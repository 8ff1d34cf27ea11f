"""Turn a job's ``Limits`` into kernel limits, and the launcher that applies them.

The limits are applied by a small launcher process, not by a ``preexec_fn``: the agent
is multi-threaded, and code run between ``fork`` and ``exec`` in a threaded program can
deadlock. The launcher is this module's ``main`` run by ``python -I``: it starts
single-threaded, in an environment of two variables, and ``-I`` keeps the environment
and the working directory out of its imports. It then

1. when the agent is root, makes a private mount namespace and bind-mounts the
   directories the sandbox needs (the work dir, the Python installation) under a
   staging directory that the job's uid can reach; the originals may sit below
   directories only root may enter (``/root``, a 0700 data dir);
2. when the agent is root, drops to the job's uid and gid (no supplementary groups),
   because the kernel does not enforce ``RLIMIT_NPROC`` for uid 0;
3. sets the resource limits and the CPU affinity;
4. executes bwrap, which inherits all of it.

``RLIMIT_NPROC`` counts every task of the uid on the host, so the limit is set to the
tasks the uid already runs plus the job's ``max_processes`` plus the sandbox's own three
(bwrap's monitor, the sandbox init, and the job init that reaps and reports).

The wall-time limit is the one the kernel cannot enforce: ``watch`` waits for the
sandbox and kills it at the deadline or on cancel.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gpunet.node.runtime.base import Limits, StopReason

log = logging.getLogger("gpunet.node")

MIB = 1024 * 1024
# RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL this much later for jobs that ignore it.
CPU_HARD_GRACE_S = 5
# Processes of the sandbox itself under the job's uid: bwrap's monitor, bwrap's init in the
# pid namespace, and the job init that starts the command and reports how it ended.
SANDBOX_OWN_PROCESSES = 3
LAUNCH_ERROR_STATUS = 125
POLL_S = 0.1
KILL_REPEAT_S = 1.0
GONE_TIMEOUT_S = 10.0
LAUNCH_ERROR_PREFIX = "gpunet-sandbox:"

_CLONE_NEWNS = 0x00020000
_MS_BIND = 4096
_MS_REC = 16384
_MS_SLAVE = 1 << 19


@dataclass(frozen=True)
class LaunchPlan:
    """Everything the launcher does before it becomes bwrap; travels as JSON."""

    argv: tuple[str, ...]
    rlimits: dict[str, tuple[int, int]]
    cpus: tuple[int, ...] | None = None
    uid: int | None = None
    gid: int | None = None
    staging: tuple[tuple[str, str], ...] = field(default=())

    def to_json(self) -> str:
        """Serialize for the launcher's command line."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LaunchPlan:
        """Read what ``to_json`` wrote."""
        raw = json.loads(text)
        return cls(
            argv=tuple(raw["argv"]),
            rlimits={name: (int(soft), int(hard)) for name, (soft, hard) in raw["rlimits"].items()},
            cpus=None if raw["cpus"] is None else tuple(raw["cpus"]),
            uid=raw["uid"],
            gid=raw["gid"],
            staging=tuple((source, target) for source, target in raw["staging"]),
        )


def rlimits_for(limits: Limits, *, nproc: int, gpu: bool) -> dict[str, tuple[int, int]]:
    """The (soft, hard) resource limits for one job, by ``resource`` constant name.

    Memory is an address-space limit (RLIMIT_AS), except for GPU jobs: CUDA reserves far
    more address space than it uses, so they get a data-segment limit (RLIMIT_DATA),
    which counts private writable memory only.
    """
    memory = limits.memory_mib * MIB
    cpu = limits.effective_cpu_time_s
    return {
        "RLIMIT_DATA" if gpu else "RLIMIT_AS": (memory, memory),
        "RLIMIT_CPU": (cpu, cpu + CPU_HARD_GRACE_S),
        "RLIMIT_FSIZE": (limits.max_file_mib * MIB, limits.max_file_mib * MIB),
        "RLIMIT_NPROC": (nproc, nproc),
        "RLIMIT_CORE": (0, 0),
    }


def nproc_limit(limits: Limits, uid: int, proc: Path = Path("/proc")) -> int:
    """RLIMIT_NPROC for a job run as ``uid``: what the uid already runs, plus the job's."""
    return count_tasks(uid, proc) + limits.max_processes + SANDBOX_OWN_PROCESSES


def count_tasks(uid: int, proc: Path = Path("/proc")) -> int:
    """Count the threads whose real uid is ``uid``: what RLIMIT_NPROC counts."""
    total = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "status").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # exited while we looked
        total += tasks_in_status(text, uid)
    return total


def tasks_in_status(text: str, uid: int) -> int:
    """Threads of one ``/proc/PID/status`` text if its real uid is ``uid``, else 0."""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    uids = fields.get("Uid", "").split()
    if not uids or uids[0] != str(uid):
        return 0
    threads = fields.get("Threads", "1").strip()
    return int(threads) if threads.isdigit() else 1


class CpuSlots:
    """Hands each job the least busy CPUs, so concurrent jobs spread over the cores."""

    def __init__(self, cpus: Iterable[int] | None = None) -> None:
        available = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
        self._load = dict.fromkeys(available, 0)
        self._lock = threading.Lock()

    def acquire(self, count: int) -> tuple[int, ...] | None:
        """Reserve ``count`` CPUs; None when the job may use them all (no pinning)."""
        if count >= len(self._load):
            return None
        with self._lock:
            chosen = sorted(sorted(self._load, key=lambda cpu: (self._load[cpu], cpu))[:count])
            for cpu in chosen:
                self._load[cpu] += 1
        return tuple(chosen)

    def release(self, cpus: Sequence[int] | None) -> None:
        """Give back what ``acquire`` returned."""
        if cpus is None:
            return
        with self._lock:
            for cpu in cpus:
                self._load[cpu] = max(0, self._load[cpu] - 1)


def within_hard_limit(wanted: tuple[int, int], hard: int) -> tuple[int, int]:
    """Lower ``wanted`` to the current hard limit: an unprivileged process cannot raise it."""
    if hard == resource.RLIM_INFINITY:
        return wanted
    return min(wanted[0], hard), min(wanted[1], hard)


def launcher_argv(plan: LaunchPlan) -> list[str]:
    """The command that applies ``plan`` and becomes bwrap."""
    # -c rather than -m: runpy warns when a package's __init__ already imported the module.
    code = "import sys; from gpunet.node.runtime.limits import main; sys.exit(main())"
    return [sys.executable, "-I", "-c", code, plan.to_json()]


def apply_plan(plan: LaunchPlan) -> None:
    """Stage, drop privileges, limit, pin, and exec; only returns by raising."""
    if plan.staging:
        _stage(plan.staging)
    if plan.uid is not None and plan.gid is not None:
        os.setgroups([])
        os.setgid(plan.gid)
        os.setuid(plan.uid)
    for name, wanted in plan.rlimits.items():
        kind = getattr(resource, name)
        resource.setrlimit(kind, within_hard_limit(wanted, resource.getrlimit(kind)[1]))
    if plan.cpus is not None:
        os.sched_setaffinity(0, plan.cpus)
    os.execvp(plan.argv[0], list(plan.argv))


def _stage(staging: Sequence[tuple[str, str]]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    _check(libc.unshare(_CLONE_NEWNS), "unshare the mount namespace")
    # A slave copy: nothing mounted from here on can propagate back to the host.
    _check(libc.mount(b"none", b"/", None, _MS_REC | _MS_SLAVE, None), "make / a slave mount")
    for source, target in staging:
        flags = _MS_BIND | _MS_REC
        _check(libc.mount(source.encode(), target.encode(), None, flags, None), f"bind {source}")


def _check(result: int, action: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{action}: {os.strerror(errno)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Launcher entry point: apply the JSON plan in ``argv[1]``."""
    args = list(sys.argv if argv is None else argv)
    try:
        apply_plan(LaunchPlan.from_json(args[1]))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        print(f"{LAUNCH_ERROR_PREFIX} {exc}", file=sys.stderr, flush=True)
    return LAUNCH_ERROR_STATUS


def watch(
    proc: subprocess.Popen[bytes],
    *,
    wall_time_s: float,
    cancel: threading.Event,
    started: float,
    kill: Callable[[], None],
    tick: Callable[[], None] = lambda: None,
) -> tuple[int, StopReason | None]:
    """Reap ``proc``; call ``kill`` (again each second) on cancel or at the wall-time limit.

    Returns the wait status and why the job was stopped, if it was. ``tick`` runs on
    every poll, for callers that watch something besides the process.
    """
    deadline = started + wall_time_s
    stopped: StopReason | None = None
    next_kill = 0.0
    while True:
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        tick()
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return status, stopped
        now = time.monotonic()
        if stopped is None and (cancel.is_set() or now >= deadline):
            stopped = StopReason.CANCEL if cancel.is_set() else StopReason.TIMEOUT
        if stopped is None:
            cancel.wait(min(POLL_S, max(0.0, deadline - now)))
            continue
        if now >= next_kill:
            kill()
            next_kill = now + KILL_REPEAT_S
        time.sleep(POLL_S)


@dataclass
class SandboxInit:
    """The sandbox's pid-namespace init, learned from bwrap's ``--info-fd`` JSON.

    Its death takes every process of the namespace with it, and it exits only once
    they are all gone, so waiting for it is waiting for the whole job.
    """

    fd: int
    pidfd: int | None = None
    _buffer: bytes = b""
    _done: bool = False

    def poll(self) -> None:
        """Read what bwrap wrote so far (the fd is non-blocking)."""
        while not self._done:
            try:
                chunk = os.read(self.fd, 4096)
            except BlockingIOError:
                return
            self._buffer += chunk
            self._done = not chunk or self._parse()

    def _parse(self) -> bool:
        try:
            pid = int(json.loads(self._buffer)["child-pid"])
        except (ValueError, KeyError, TypeError):
            return False  # not all of it yet
        with contextlib.suppress(ProcessLookupError):
            self.pidfd = os.pidfd_open(pid)
        return True

    def kill(self) -> None:
        """SIGKILL the init, if known and alive."""
        if self.pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    def wait_gone(self, timeout_s: float = GONE_TIMEOUT_S) -> bool:
        """Kill the init and wait until it has exited; False if it outlived ``timeout_s``."""
        if self.pidfd is None:
            return True
        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                self.kill()
                if poller.poll(int(KILL_REPEAT_S * 1000)):
                    return True
                if time.monotonic() >= deadline:
                    log.error("sandbox init still running %.0f s after SIGKILL", timeout_s)
                    return False
        finally:
            os.close(self.pidfd)
            self.pidfd = None
