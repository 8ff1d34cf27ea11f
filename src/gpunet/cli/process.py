"""One supervised child process: started with its output in a log file, stopped politely.

Stopping sends SIGTERM, waits a grace period, then SIGKILL, so a hung child cannot
keep the supervisor from exiting.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1
LOG_TAIL_LINES = 15


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGTERM the child when the supervisor dies."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def hook() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


class ChildProcess:
    """A named command whose output goes to ``log_path``; restartable."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.stopping = False
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._popen is None else self._popen.pid

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def exit_code(self) -> int | None:
        """The exit status once it has ended; None while running or never started."""
        return None if self._popen is None else self._popen.poll()

    def start(self, env: dict[str, str]) -> None:
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.stopping = False
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C in the terminal reaches only the supervisor
                preexec_fn=_die_with_parent(),  # only calls prctl: safe after fork
            )

    def terminate(self) -> None:
        """Send SIGTERM without waiting; a child that already ended keeps its exit status."""
        if self.running and self._popen is not None:
            self.stopping = True
            self._popen.terminate()

    def kill(self) -> int | None:
        """SIGKILL at once, as a crash or a pulled plug would; return the exit status."""
        if self._popen is None:
            return None
        self.stopping = True
        self._popen.kill()
        return self._popen.wait()

    def stop(self, grace_s: float) -> int | None:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL; return the exit status."""
        if self._popen is None:
            return None
        self.terminate()
        try:
            return self._popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            return self._popen.wait()

    def describe(self) -> str:
        """``running``, ``exited 3``, ``stopped`` or ``not started``."""
        code = self.exit_code
        if self._popen is None:
            return "not started"
        if code is None:
            return "running"
        return "stopped" if self.stopping else f"exited {code}"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(cannot read {self.log_path}: {exc})"
        return "\n".join(text.splitlines()[-lines:])
