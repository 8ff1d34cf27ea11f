"""Run a job in a bubblewrap sandbox: its own file system, no network, kernel limits.

The sandbox is built from nothing: a read-only ``/usr`` (and the ``/bin``, ``/lib*``
links or directories), a few files of ``/etc``, the agent's Python installation
read-only, fresh ``/proc`` and ``/dev``, RAM-backed ``/tmp`` and ``/dev/shm`` of a fixed
size, and the job's work directory read-write at ``/work``. Nothing else of the host is
there, so home directories, the agent's keys and its data directory cannot be read.
Every namespace is new (network too, unless the job may use it), nested user namespaces
are refused, and the root is remounted read-only. docs/sandbox.md has the threat model.

Inside, a tiny job init (the agent's Python, run with ``-I -S``) starts the command,
reaps orphans as a subreaper, and reports through a private pipe that the sandbox came
up and how the command ended, with its CPU time and peak memory. The job cannot write
to that pipe, so a sandbox that failed to start is told apart from a job that failed.

On timeout or cancel the sandbox's init and bwrap's process group get SIGKILL; the
kernel then kills everything in the pid namespace, daemons included. ``run`` returns
only once the init has exited.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gpunet.errors import ConfigError
from gpunet.node.runtime.base import (
    Evidence,
    Limits,
    Outcome,
    OutputCallback,
    OutputPump,
    RunRequest,
    RunResult,
    StopReason,
    classify,
    hand_over,
    split_shell_status,
)
from gpunet.node.runtime.limits import (
    LAUNCH_ERROR_PREFIX,
    CpuSlots,
    LaunchPlan,
    SandboxInit,
    launcher_argv,
    nproc_limit,
    rlimits_for,
    watch,
)

SANDBOX_WORKDIR = "/work"
SANDBOX_HOSTNAME = "gpunet-job"
# Where a virtual environment goes when its own path would clash with the sandbox's.
VENV_DEST = "/opt/gpunet/venv"
PYTHON_DEST = "/opt/gpunet/python"
SYSTEM_ROOTS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
RESERVED = (SANDBOX_WORKDIR, "/tmp", "/proc", "/dev", "/etc", "/opt/gpunet")
# Of /etc only what programs need to load libraries, verify TLS and tell the time.
ETC_ENTRIES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "ssl",
    "ca-certificates",
    "pki",
    "crypto-policies",
    "localtime",
    "timezone",
    "alternatives",
)
ETC_NETWORK_ENTRIES = ("resolv.conf",)
_LAUNCHER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
MIB = 1024 * 1024

# The job init, run inside the sandbox as ``python -I -S -c JOB_INIT REPORT_FD ARGV...``.
JOB_INIT = """
import json, os, resource, signal, sys
fd, argv = int(sys.argv[1]), sys.argv[2:]
os.set_inheritable(fd, False)
def report(**fields):
    os.write(fd, (json.dumps(fields) + "\\n").encode())
try:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans are reaped and counted here
    libc.prctl(4, 0, 0, 0, 0)  # not dumpable: the job cannot open this pipe via /proc
except (ImportError, OSError):
    pass
report(event="ready")
child = os.fork()
if child == 0:
    for number in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores them; the job must not
        signal.signal(number, signal.SIG_DFL)
    for name in os.listdir("/proc/self/fd"):
        if int(name) > 2:
            try:
                os.close(int(name))
            except OSError:
                pass
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, ("cannot run %r: %s\\n" % (argv[0], exc.strerror)).encode())
        os._exit(127 if isinstance(exc, FileNotFoundError) else 126)
while True:
    pid, status = os.waitpid(-1, 0)
    if pid == child:
        break
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
code = os.waitstatus_to_exitcode(status)
report(event="exit", exit_code=code if code >= 0 else None, signal=-code if code < 0 else None,
       cpu_s=usage.ru_utime + usage.ru_stime, max_rss_kib=usage.ru_maxrss)
os._exit(code if code >= 0 else 128 - code)
"""


@dataclass(frozen=True)
class Bind:
    """A host directory seen inside; ``host`` is the original when ``source`` is staged."""

    source: str
    dest: str
    writable: bool = False
    host: str = ""


@dataclass(frozen=True)
class PythonLayout:
    """Where the agent's interpreter and its packages appear inside the sandbox."""

    binds: tuple[Bind, ...]
    sandbox_python: str

    @classmethod
    def of_this_interpreter(cls) -> PythonLayout:
        """The layout for the Python running the agent."""
        return python_layout(sys.prefix, sys.base_prefix, sys.executable, str(Path.home()))

    def job_env(self, env: Mapping[str, str], limits: Limits) -> dict[str, str]:
        """A clean environment: defaults, then the job's own variables over them."""
        defaults = {
            "PATH": f"{os.path.dirname(self.sandbox_python)}:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": str(limits.cpu_cores),
        }
        return {**defaults, **env}


def python_layout(prefix: str, base_prefix: str, executable: str, home: str) -> PythonLayout:
    """Bind exactly the interpreter's prefixes; move a venv whose path the sandbox uses.

    A venv finds its base through an absolute path, so the base prefix must keep its
    path; a venv may move (to ``/opt/gpunet/venv``), as may a Python that is no venv.
    """
    places = [(base_prefix, PYTHON_DEST if prefix == base_prefix else None)]
    if prefix != base_prefix:
        places.append((prefix, VENV_DEST))
    binds: list[Bind] = []
    mapping: list[tuple[str, str]] = []
    for host, fallback in places:
        if _under(host, SYSTEM_ROOTS):
            mapping.append((host, host))
            continue
        dest = _python_dest(host, fallback, home)
        binds.append(Bind(source=os.path.realpath(host), dest=dest))
        mapping.append((host, dest))
    sandbox_python = _translate(executable, mapping)
    if sandbox_python is None:
        raise ConfigError(f"the interpreter {executable} lies outside {prefix} and {base_prefix}")
    return PythonLayout(binds=tuple(binds), sandbox_python=sandbox_python)


def _python_dest(host: str, fallback: str | None, home: str) -> str:
    if host in ("/", home):
        raise ConfigError(
            f"Python prefix {host} would expose {'the host root' if host == '/' else 'a home'}"
            " to jobs; run the agent from a virtual environment"
        )
    if not _clashes(host):
        return host
    if fallback is None:
        raise ConfigError(
            f"Python base prefix {host} clashes with a sandbox path ({', '.join(RESERVED)}); "
            "install Python elsewhere"
        )
    return fallback


def _clashes(path: str) -> bool:
    """True for a path that is, holds, or lies in one of the sandbox's own paths."""
    return any(_under(path, (reserved,)) or _under(reserved, (path,)) for reserved in RESERVED)


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _translate(path: str, mapping: Sequence[tuple[str, str]]) -> str | None:
    for host, dest in sorted(mapping, key=lambda pair: len(pair[0]), reverse=True):
        if _under(path, (host,)):
            return dest + path[len(host) :]
    return None


def system_options(network: bool, root: str = "/") -> list[str]:
    """Read-only ``/usr``, the top-level links or directories, and chosen ``/etc`` files."""
    top = Path(root)
    options = ["--ro-bind", str(top / "usr"), "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = top / name
        if path.is_symlink():
            options += ["--symlink", os.readlink(path), f"/{name}"]
        elif path.is_dir():
            options += ["--ro-bind", str(path), f"/{name}"]
    names = ETC_ENTRIES + (ETC_NETWORK_ENTRIES if network else ())
    for name in names:
        if (top / "etc" / name).exists():  # follows links: a dangling one is left out
            options += ["--ro-bind", str(top / "etc" / name), f"/etc/{name}"]
    return options


def sandbox_options(
    *,
    system: Sequence[str],
    binds: Sequence[Bind],
    work: Bind,
    files: Mapping[str, int],
    env: Mapping[str, str],
    limits: Limits,
    gpu_devices: Sequence[str],
    info_fd: int,
) -> list[str]:
    """bwrap's options for one job (given through ``--args``, so no value shows in ps)."""
    options = ["--unshare-all", "--unshare-user", "--disable-userns"]
    if limits.network:
        options.append("--share-net")
    options += ["--die-with-parent", "--new-session", "--hostname", SANDBOX_HOSTNAME]
    options.append("--clearenv")
    for name, value in sorted(env.items()):
        options += ["--setenv", name, value]
    options += system
    for path, fd in files.items():
        options += ["--ro-bind-data", str(fd), path]
    for bind in binds:
        options += ["--bind" if bind.writable else "--ro-bind", bind.source, bind.dest]
    tmp_size = str(limits.tmp_mib * MIB)
    options += ["--proc", "/proc", "--dev", "/dev", "--size", tmp_size, "--tmpfs", "/dev/shm"]
    for device in gpu_devices:
        options += ["--dev-bind", device, device]
    options += ["--size", tmp_size, "--tmpfs", "/tmp", "--bind", work.source, work.dest]
    options += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", work.dest]
    return [*options, "--info-fd", str(info_fd)]


def etc_files(uid: int, gid: int) -> dict[str, str]:
    """Stand-ins for /etc/passwd, /etc/group and /etc/hosts that name no host account."""
    passwd = [
        "root:x:0:0:root:/root:/usr/sbin/nologin",
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
    ]
    group = ["root:x:0:", "nogroup:x:65534:"]
    if uid not in (0, 65534):
        passwd.append(f"job:x:{uid}:{gid}:gpunet job:/tmp:/bin/sh")
    if gid not in (0, 65534):
        group.append(f"job:x:{gid}:")
    hosts = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    return {
        "/etc/passwd": "\n".join(passwd) + "\n",
        "/etc/group": "\n".join(group) + "\n",
        "/etc/hosts": "\n".join(hosts) + "\n",
    }


class BwrapRuntime:
    """Runs jobs under bubblewrap; as root, jobs run as ``job_uid``/``job_gid``.

    As root the work directory is handed to the job uid (chown) before the run; as an
    ordinary user jobs run as that user and ``job_uid``/``job_gid`` are not used.
    ``extra_ro_paths`` are bound read-only at the same place inside.
    """

    name = "bwrap"

    def __init__(
        self,
        *,
        bwrap: str = "bwrap",
        job_uid: int = 65534,
        job_gid: int = 65534,
        extra_ro_paths: Sequence[Path] = (),
    ) -> None:
        self.bwrap = bwrap
        self.job_uid = job_uid
        self.job_gid = job_gid
        self.extra_ro_paths = tuple(_checked_extra(Path(path)) for path in extra_ro_paths)
        self._cpus = CpuSlots()

    def available(self) -> str | None:
        """Run a trivial job; None if it succeeds, else why this host cannot sandbox."""
        if shutil.which(self.bwrap) is None:
            return f"{self.bwrap} not found on PATH: install the bubblewrap package (0.8 or later)"
        with tempfile.TemporaryDirectory(prefix="gpunet-probe-") as workdir:
            limits = Limits(memory_mib=512, wall_time_s=30.0, max_processes=16)
            request = RunRequest(argv=("true",), workdir=Path(workdir), env={}, limits=limits)
            result = self.run(request, lambda stream, line: None, threading.Event())
        if result.outcome is Outcome.SUCCEEDED:
            return None
        return f"bwrap cannot run a sandbox on this host: {result.message}"

    def run(
        self, request: RunRequest, on_output: OutputCallback, cancel: threading.Event
    ) -> RunResult:
        """Run ``request`` to the end; see the module docstring for what the job sees."""
        started = time.monotonic()
        try:
            layout = PythonLayout.of_this_interpreter()
            bwrap = shutil.which(self.bwrap)
            if bwrap is None:
                raise ConfigError(f"{self.bwrap} not found on PATH: install bubblewrap")
        except ConfigError as exc:
            return _setup_failure(str(exc), time.monotonic() - started)
        as_root = os.geteuid() == 0
        cpus = self._cpus.acquire(request.limits.cpu_cores)
        try:
            with Staging(as_root) as staging:
                if as_root:
                    hand_over(request.workdir, self.job_uid, self.job_gid)
                job = _SandboxRun(self, request, layout, bwrap, staging, cpus, as_root)
                return job.run(on_output, cancel, started)
        finally:
            self._cpus.release(cpus)

    def job_ids(self, as_root: bool) -> tuple[int, int]:
        """The uid and gid a job runs as."""
        return (self.job_uid, self.job_gid) if as_root else (os.getuid(), os.getgid())

    def plan(
        self,
        request: RunRequest,
        *,
        layout: PythonLayout,
        bwrap: str,
        staging: Staging,
        cpus: tuple[int, ...] | None,
        as_root: bool,
        fds: SandboxFds,
    ) -> LaunchPlan:
        """The launcher's plan for ``request``; data for bwrap goes into ``fds``."""
        limits = request.limits
        uid, gid = self.job_ids(as_root)
        extra = [Bind(source=str(path.resolve()), dest=str(path)) for path in self.extra_ro_paths]
        work = Bind(source=str(request.workdir), dest=SANDBOX_WORKDIR, writable=True)
        staged = [staging.place(bind) for bind in (*layout.binds, *extra, work)]
        files = {path: fds.memfd(text) for path, text in etc_files(uid, gid).items()}
        options = sandbox_options(
            system=system_options(limits.network),
            binds=staged[:-1],
            work=staged[-1],
            files=files,
            env=layout.job_env(request.env, limits),
            limits=limits,
            gpu_devices=[device for device in request.gpu_devices if os.path.exists(device)],
            info_fd=fds.info_w,
        )
        args_fd = fds.memfd("\0".join(options) + "\0")
        command = (layout.sandbox_python, "-I", "-S", "-c", JOB_INIT, str(fds.report_w))
        return LaunchPlan(
            argv=(bwrap, "--args", str(args_fd), "--", *command, *request.argv),
            rlimits=rlimits_for(
                limits, nproc=nproc_limit(limits, uid), gpu=bool(request.gpu_devices)
            ),
            cpus=cpus,
            uid=uid if as_root else None,
            gid=gid if as_root else None,
            staging=tuple((bind.host, bind.source) for bind in staged if bind.host),
        )


def _checked_extra(path: Path) -> Path:
    text = str(path)
    if not path.is_absolute() or _clashes(text):
        raise ConfigError(
            f"extra read-only path {text!r} must be absolute and outside the sandbox's own "
            f"paths ({', '.join(RESERVED)})"
        )
    return path


class Staging:
    """As root: an empty, world-readable directory whose subdirectories are mount points."""

    def __init__(self, enabled: bool) -> None:
        self.root: Path | None = None
        self._enabled = enabled
        self._points: list[Path] = []

    def __enter__(self) -> Staging:
        if self._enabled:
            self.root = Path(tempfile.mkdtemp(prefix="gpunet-bwrap-"))
            self.root.chmod(0o755)
        return self

    def place(self, bind: Bind) -> Bind:
        """Where bwrap finds ``bind``'s source: a staging point as root, else the source."""
        if self.root is None:
            return bind
        point = self.root / str(len(self._points))
        point.mkdir(mode=0o755)
        self._points.append(point)
        return Bind(source=str(point), dest=bind.dest, writable=bind.writable, host=bind.source)

    def __exit__(self, *exc_info: object) -> None:
        # rmdir, never rmtree: should a mount ever leak here, nothing below is deleted.
        for path in [*reversed(self._points), *([self.root] if self.root else [])]:
            with contextlib.suppress(OSError):
                path.rmdir()


@dataclass
class SandboxFds:
    """The pipes and memory files of one run; all closed at the end."""

    opened: list[int] = field(default_factory=list)
    passed: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.info_r, self.info_w = self._pipe()
        self.report_r, self.report_w = self._pipe()

    def _pipe(self) -> tuple[int, int]:
        read_end, write_end = os.pipe()
        self.opened += [read_end, write_end]
        self.passed.append(write_end)
        return read_end, write_end

    def memfd(self, text: str) -> int:
        fd = os.memfd_create("gpunet-sandbox", 0)
        os.write(fd, text.encode())
        os.lseek(fd, 0, os.SEEK_SET)
        self.opened.append(fd)
        self.passed.append(fd)
        return fd

    def close_passed(self) -> None:
        """Close our copies of what the launcher inherited, so pipes see EOF."""
        for fd in self.passed:
            self.opened.remove(fd)
            os.close(fd)
        self.passed.clear()

    def close_all(self) -> None:
        for fd in self.opened:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.opened.clear()


@dataclass
class _SandboxRun:
    """One job's sandbox process, from start to the classified result."""

    runtime: BwrapRuntime
    request: RunRequest
    layout: PythonLayout
    bwrap: str
    staging: Staging
    cpus: tuple[int, ...] | None
    as_root: bool

    def run(self, on_output: OutputCallback, cancel: threading.Event, started: float) -> RunResult:
        fds = SandboxFds()
        try:
            plan = self.runtime.plan(
                self.request,
                layout=self.layout,
                bwrap=self.bwrap,
                staging=self.staging,
                cpus=self.cpus,
                as_root=self.as_root,
                fds=fds,
            )
            return self._supervise(plan, fds, on_output, cancel, started)
        finally:
            fds.close_all()

    def _supervise(
        self,
        plan: LaunchPlan,
        fds: SandboxFds,
        on_output: OutputCallback,
        cancel: threading.Event,
        started: float,
    ) -> RunResult:
        try:
            proc = subprocess.Popen(
                launcher_argv(plan),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=tuple(fds.passed),
                env=_LAUNCHER_ENV,
                cwd="/",
                start_new_session=True,
            )
        except OSError as exc:
            return _setup_failure(f"cannot start {sys.executable}: {exc}", 0.0)
        fds.close_passed()
        pump = OutputPump(on_output)
        assert proc.stdout is not None and proc.stderr is not None
        pump.start(proc.stdout, proc.stderr)
        os.set_blocking(fds.info_r, False)
        init = SandboxInit(fds.info_r)

        def kill() -> None:
            init.kill()  # first: its death takes the whole pid namespace
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

        try:
            status, stopped = watch(
                proc,
                wall_time_s=self.request.limits.wall_time_s,
                cancel=cancel,
                started=started,
                kill=kill,
                tick=init.poll,
            )
        except BaseException:
            kill()  # the agent is going down: leave no job behind
            proc.wait()
            raise
        finally:
            init.wait_gone()
        pump.join()
        report = read_report(fds.report_r)
        return _result(self.request.limits, status, stopped, pump, report, started)


def read_report(fd: int) -> dict[str, dict[str, object]]:
    """The job init's events by name ("ready", "exit"); every writer is gone by now."""
    os.set_blocking(fd, False)
    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            data += chunk
    events: dict[str, dict[str, object]] = {}
    for line in data.decode("utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict) and isinstance(event.get("event"), str):
                events[event["event"]] = event
    return events


def _result(
    limits: Limits,
    status: int,
    stopped: StopReason | None,
    pump: OutputPump,
    report: Mapping[str, Mapping[str, object]],
    started: float,
) -> RunResult:
    end = report.get("exit")
    exit_code, sig = _ending(status, end)
    cpu_s = _number(end, "cpu_s")
    wall = time.monotonic() - started
    evidence = Evidence(
        exit_code=exit_code,
        signal=sig,
        wall_time_s=wall,
        stopped=stopped,
        started="ready" in report,
        setup_error=_setup_error(pump),
        symptoms=dict(pump.symptoms),
        cpu_time_s=cpu_s,
    )
    outcome, message = classify(evidence, limits)
    return RunResult(
        outcome=outcome,
        exit_code=exit_code,
        signal=sig,
        wall_time_s=wall,
        cpu_time_s=cpu_s,
        max_rss_mib=_number(end, "max_rss_kib") / 1024,
        message=message,
    )


def _ending(status: int, end: Mapping[str, object] | None) -> tuple[int | None, int | None]:
    """(exit code, signal): from the job init's report, else from bwrap's wait status."""
    if end is not None:
        code, sig = end.get("exit_code"), end.get("signal")
        return (code if isinstance(code, int) else None), (sig if isinstance(sig, int) else None)
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    return split_shell_status(os.WEXITSTATUS(status))


def _number(event: Mapping[str, object] | None, key: str) -> float:
    value = (event or {}).get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def _setup_error(pump: OutputPump) -> str:
    lines = list(pump.error_tail)
    for line in reversed(lines):
        if line.startswith(("bwrap:", LAUNCH_ERROR_PREFIX)):
            return line
    return lines[-1] if lines else ""


def _setup_failure(message: str, wall_time_s: float) -> RunResult:
    return RunResult(
        outcome=Outcome.SANDBOX_ERROR,
        exit_code=None,
        signal=None,
        wall_time_s=wall_time_s,
        cpu_time_s=0.0,
        max_rss_mib=0.0,
        message=f"the sandbox could not start: {message}",
    )
