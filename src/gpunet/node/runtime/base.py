"""What every job runtime shares: the request, the limits, the result, and the output pump.

A runtime runs one job's command to completion inside an isolation boundary and says
how it ended. The agent streams the job's output lines as they come, and reads one
``Outcome`` at the end, so a client sees "exceeded 256 MiB memory limit" instead of a
bare exit status. How an ending is classified is shared here, so the bwrap and Docker
runtimes report the same words for the same cause; where a cause is inferred from the
job's error output rather than known from a signal, the message says so.
"""

from __future__ import annotations

import logging
import math
import os
import re
import signal
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import IO, Protocol

from gpunet.errors import ValidationError

log = logging.getLogger("gpunet.node")

OutputCallback = Callable[[str, str], None]
MAX_LINE_BYTES = 16 * 1024
_READ_CHUNK = 64 * 1024
_ERROR_TAIL_LINES = 20
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LINE_BREAK = re.compile(rb"[\r\n]")


@dataclass(frozen=True)
class Limits:
    """What one job may use; the runtime kills or refuses what goes past.

    ``cpu_time_s`` defaults to ``wall_time_s * cpu_cores`` (rounded up). ``tmp_mib``
    caps each RAM-backed scratch file system (``/tmp`` and ``/dev/shm``).
    """

    cpu_cores: int = 1
    memory_mib: int = 1024
    wall_time_s: float = 3600.0
    cpu_time_s: int | None = None
    max_processes: int = 256
    max_file_mib: int = 1024
    network: bool = False
    tmp_mib: int = 256

    def __post_init__(self) -> None:
        for name in ("cpu_cores", "memory_mib", "max_processes", "max_file_mib", "tmp_mib"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError(name, value, "must be a whole number of at least 1")
        if not math.isfinite(self.wall_time_s) or self.wall_time_s <= 0:
            raise ValidationError("wall_time_s", self.wall_time_s, "must be a positive number")
        if self.cpu_time_s is not None and self.cpu_time_s < 1:
            raise ValidationError("cpu_time_s", self.cpu_time_s, "must be at least 1 or None")

    @property
    def effective_cpu_time_s(self) -> int:
        """The CPU-time limit in seconds, derived from wall time and cores when unset."""
        if self.cpu_time_s is not None:
            return self.cpu_time_s
        return max(1, math.ceil(self.wall_time_s * self.cpu_cores))


@dataclass(frozen=True)
class RunRequest:
    """One job to run: its command, its work directory (``/work`` inside), env and limits."""

    argv: tuple[str, ...]
    workdir: Path
    env: Mapping[str, str]
    limits: Limits
    gpu_devices: tuple[str, ...] = ()
    image: str | None = None

    def __post_init__(self) -> None:
        if not self.argv or not all(isinstance(arg, str) and "\0" not in arg for arg in self.argv):
            raise ValidationError("argv", self.argv, "must be a non-empty tuple of strings")
        if not self.workdir.is_absolute() or not self.workdir.is_dir():
            raise ValidationError("workdir", str(self.workdir), "must be an existing directory")
        for name, value in self.env.items():
            if not _ENV_NAME.fullmatch(name) or "\0" in value:
                raise ValidationError("env", name, "names are letters, digits and _; no NUL")


class Outcome(StrEnum):
    """How a job ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    MEMORY_EXCEEDED = "memory_exceeded"
    CPU_TIME_EXCEEDED = "cpu_time_exceeded"
    PROCESS_LIMIT = "process_limit"
    FILE_TOO_LARGE = "file_too_large"
    CANCELLED = "cancelled"
    SANDBOX_ERROR = "sandbox_error"


@dataclass(frozen=True)
class RunResult:
    """The end of one run; ``message`` is one line a person can act on.

    ``signal`` is set when the job's main process was killed by a signal (then
    ``exit_code`` is None). ``cpu_time_s`` and ``max_rss_mib`` are 0.0 where the runtime
    could not measure them (a job it killed, or a container).
    """

    outcome: Outcome
    exit_code: int | None
    signal: int | None
    wall_time_s: float
    cpu_time_s: float
    max_rss_mib: float
    message: str


class Runtime(Protocol):
    """Runs jobs in an isolation boundary; ``name`` is what the node offers."""

    name: str

    def available(self) -> str | None:
        """None when this runtime works on this host, else why not and what to do."""
        ...

    def run(
        self, request: RunRequest, on_output: OutputCallback, cancel: threading.Event
    ) -> RunResult:
        """Run to the end; ``on_output(stream, line)`` per line; ``cancel`` stops it."""
        ...


class Symptom(Enum):
    """A limit a job's error output says it ran into."""

    MEMORY = "memory"
    PROCESSES = "processes"
    FILE_SIZE = "file size"


# Messages libc, Python, shells and C++ runtimes print when a limit refuses them.
SYMPTOM_MARKERS: tuple[tuple[str, Symptom], ...] = (
    ("MemoryError", Symptom.MEMORY),
    ("Cannot allocate memory", Symptom.MEMORY),
    ("std::bad_alloc", Symptom.MEMORY),
    ("out of memory", Symptom.MEMORY),
    ("Out of memory", Symptom.MEMORY),
    ("Resource temporarily unavailable", Symptom.PROCESSES),
    ("Cannot fork", Symptom.PROCESSES),
    ("can't fork", Symptom.PROCESSES),
    ("fork: retry", Symptom.PROCESSES),
    ("File too large", Symptom.FILE_SIZE),
)


class LineSplitter:
    """Cuts a byte stream into text lines; ``\\n``, ``\\r\\n`` and a lone ``\\r`` end one.

    A lone ``\\r`` counts so progress bars stream; lines longer than ``max_bytes`` keep
    their head and say how many bytes were cut. Bytes that are not UTF-8 are replaced.
    """

    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        self._max = max_bytes
        self._buffer = bytearray()
        self._cut = 0
        self._after_cr = False

    def feed(self, data: bytes) -> list[str]:
        """Add bytes; return the lines they completed."""
        lines: list[str] = []
        start = 1 if self._after_cr and data[:1] == b"\n" else 0
        self._after_cr = False
        while (found := _LINE_BREAK.search(data, start)) is not None:
            end = found.start()
            self._keep(data[start:end])
            if data[end : end + 1] == b"\r":
                if data[end + 1 : end + 2] == b"\n":
                    end += 1
                elif end + 1 == len(data):
                    self._after_cr = True
            self._emit(lines, bare_cr=data[end : end + 1] == b"\r")
            start = end + 1
        self._keep(data[start:])
        return lines

    def finish(self) -> list[str]:
        """Return the last, unterminated line, if any."""
        lines: list[str] = []
        self._emit(lines, bare_cr=True)
        return lines

    def _keep(self, piece: bytes) -> None:
        room = max(0, self._max - len(self._buffer))
        self._buffer += piece[:room]
        self._cut += max(0, len(piece) - room)

    def _emit(self, lines: list[str], *, bare_cr: bool) -> None:
        if bare_cr and not self._buffer and not self._cut:
            return  # "\r" right after a line end carries no text
        text = self._buffer.decode("utf-8", errors="replace")
        if self._cut:
            text += f" [... {self._cut} more bytes cut]"
        lines.append(text)
        self._buffer.clear()
        self._cut = 0


@dataclass
class OutputPump:
    """Reads stdout and stderr on two threads and hands each line to ``on_output``.

    Stderr lines are scanned for limit symptoms and the last few are kept for error
    messages. A callback that raises is logged once; the streams are still drained,
    so a failing log sink cannot stall the job on a full pipe.
    """

    on_output: OutputCallback
    max_line_bytes: int = MAX_LINE_BYTES
    symptoms: dict[Symptom, str] = field(default_factory=dict)
    error_tail: deque[str] = field(default_factory=lambda: deque(maxlen=_ERROR_TAIL_LINES))
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _callback_failed: bool = False

    def start(self, stdout: IO[bytes], stderr: IO[bytes]) -> None:
        """Start draining both streams."""
        for name, stream in (("stdout", stdout), ("stderr", stderr)):
            thread = threading.Thread(
                target=self._drain, args=(name, stream), name=f"job-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def join(self, timeout_s: float = 5.0) -> None:
        """Wait for both streams to end (every writer gone)."""
        for thread in self._threads:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("job output stream %s still open after the job ended", thread.name)

    def _drain(self, name: str, stream: IO[bytes]) -> None:
        splitter = LineSplitter(self.max_line_bytes)
        with stream:
            # os.read returns what the pipe holds now; a buffered read(n) would wait for
            # n bytes, and the job's lines would only arrive when it ends.
            while chunk := os.read(stream.fileno(), _READ_CHUNK):
                for line in splitter.feed(chunk):
                    self._deliver(name, line)
        for line in splitter.finish():
            self._deliver(name, line)

    def _deliver(self, name: str, line: str) -> None:
        if name == "stderr":
            with self._lock:
                self.error_tail.append(line)
                for marker, symptom in SYMPTOM_MARKERS:
                    if marker in line:
                        self.symptoms.setdefault(symptom, marker)
        try:
            self.on_output(name, line)
        except Exception:
            if not self._callback_failed:
                self._callback_failed = True
                log.exception("the job output callback failed; further output is dropped")


class StopReason(StrEnum):
    """Why the runtime killed a job."""

    TIMEOUT = "timeout"
    CANCEL = "cancel"


@dataclass(frozen=True)
class Evidence:
    """What a runtime knows about how a job ended, before it is named."""

    exit_code: int | None
    signal: int | None
    wall_time_s: float
    stopped: StopReason | None = None
    started: bool = True
    setup_error: str = ""
    symptoms: Mapping[Symptom, str] = field(default_factory=dict)
    cpu_time_s: float = 0.0
    unexplained_kill_is_oom: bool = False


def classify(evidence: Evidence, limits: Limits) -> tuple[Outcome, str]:
    """Name how a job ended and say why in one line."""
    if evidence.stopped is StopReason.CANCEL:
        return Outcome.CANCELLED, f"cancelled after {evidence.wall_time_s:.1f} s"
    if evidence.stopped is StopReason.TIMEOUT:
        return Outcome.TIMED_OUT, f"killed after {limits.wall_time_s:g} s wall-time limit"
    if not evidence.started:
        detail = evidence.setup_error or _ending(evidence)
        return Outcome.SANDBOX_ERROR, f"the sandbox could not start: {detail}"
    if evidence.exit_code == 0:
        return Outcome.SUCCEEDED, "exited with status 0"
    return _classify_failure(evidence, limits)


def _classify_failure(evidence: Evidence, limits: Limits) -> tuple[Outcome, str]:
    ending, cpu_limit = _ending(evidence), limits.effective_cpu_time_s
    symptoms, sig = evidence.symptoms, _effective_signal(evidence)
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and evidence.cpu_time_s >= cpu_limit):
        return Outcome.CPU_TIME_EXCEEDED, f"exceeded the {cpu_limit} s CPU-time limit ({ending})"
    if sig == signal.SIGXFSZ or Symptom.FILE_SIZE in symptoms:
        how = "" if sig == signal.SIGXFSZ else _inferred(symptoms, Symptom.FILE_SIZE)
        return Outcome.FILE_TOO_LARGE, (
            f"wrote past the {limits.max_file_mib} MiB file-size limit ({ending}{how})"
        )
    if Symptom.MEMORY in symptoms:
        return Outcome.MEMORY_EXCEEDED, (
            f"exceeded the {limits.memory_mib} MiB memory limit "
            f"({ending}{_inferred(symptoms, Symptom.MEMORY)})"
        )
    if sig == signal.SIGKILL and evidence.unexplained_kill_is_oom:
        return Outcome.MEMORY_EXCEEDED, (
            f"exceeded the {limits.memory_mib} MiB memory limit ({ending} without a cancel or "
            "timeout: most likely the out-of-memory killer)"
        )
    if Symptom.PROCESSES in symptoms:
        return Outcome.PROCESS_LIMIT, (
            f"hit the {limits.max_processes}-process limit "
            f"({ending}{_inferred(symptoms, Symptom.PROCESSES)})"
        )
    return Outcome.FAILED, ending


def _effective_signal(evidence: Evidence) -> int | None:
    # A shell whose command was killed by signal N exits with 128+N.
    if evidence.signal is None and evidence.exit_code is not None:
        return split_shell_status(evidence.exit_code)[1]
    return evidence.signal


def _ending(evidence: Evidence) -> str:
    if evidence.signal is not None:
        return f"killed by {signal_name(evidence.signal)}"
    code = evidence.exit_code
    hint = {126: " (command cannot be run)", 127: " (command not found)"}.get(code or 0, "")
    shell_signal = _effective_signal(evidence)
    if shell_signal is not None:
        hint = f", as a shell reports a command killed by {signal_name(shell_signal)}"
    return f"exited with status {code}{hint}"


def _inferred(symptoms: Mapping[Symptom, str], symptom: Symptom) -> str:
    return f"; inferred from {symptoms[symptom]!r} in its error output"


def signal_name(number: int) -> str:
    """``SIGKILL`` for 9; ``signal 70`` for numbers without a name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def split_shell_status(status: int) -> tuple[int | None, int | None]:
    """Read a shell-style status, where 128+N means "killed by signal N": (exit, signal)."""
    if 128 < status <= 128 + 64:
        return None, status - 128
    return status, None


def hand_over(workdir: Path, uid: int, gid: int) -> None:
    """Make ``workdir`` and everything in it belong to the job's uid (links not followed)."""
    os.lchown(workdir, uid, gid)
    for top, dirs, files in os.walk(workdir):
        for name in (*dirs, *files):
            os.lchown(os.path.join(top, name), uid, gid)
