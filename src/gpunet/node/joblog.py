"""A job's output lines on their way to the indexer, sent in batches.

The runtime hands over lines from its reader threads as the job writes them; the attempt
flushes the buffer every fraction of a second, so a chatty job makes a few requests a
second, not one per line. While the indexer is away the lines wait, up to a bound; past
it the oldest are dropped and a "system" line says how many.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from gpunet.api.jobs import LogEntry
from gpunet.errors import GpunetError

MAX_LINE_CHARS = 8192  # LogEntry's bound
BATCH_LINES = 1000  # LogBatch's bound
MAX_PENDING_LINES = 50_000
STREAMS = ("stdout", "stderr", "system")

Send = Callable[[list[LogEntry]], None]


class LogBuffer:
    """Thread-safe: ``add`` from any thread, ``flush`` from the one that reports."""

    def __init__(self, send: Send, max_pending: int = MAX_PENDING_LINES) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._pending: deque[LogEntry] = deque()
        self._max_pending = max_pending
        self._dropped = 0

    def add(self, stream: str, line: str) -> None:
        """Queue one line; the runtime's ``on_output`` callback."""
        entry = LogEntry(
            stream=stream if stream in STREAMS else "stdout",
            line=line.rstrip("\r\n")[:MAX_LINE_CHARS],
        )
        with self._lock:
            self._pending.append(entry)
            while len(self._pending) > self._max_pending:
                self._pending.popleft()
                self._dropped += 1

    def system(self, line: str) -> None:
        """A line from the node itself, shown to the buyer beside the job's own."""
        self.add("system", line)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> bool:
        """Send what is queued, in batches; True when nothing is left.

        A batch the indexer did not take goes back to the front of the queue, so lines
        keep their order, and waits for the next flush.
        """
        while batch := self._take():
            try:
                self._send(batch)
            except GpunetError:
                self._put_back(batch)
                return False
        return True

    def _take(self) -> list[LogEntry]:
        with self._lock:
            batch: list[LogEntry] = []
            if self._dropped:
                note = f"{self._dropped} lines dropped while the indexer was unreachable"
                batch.append(LogEntry(stream="system", line=note))
                self._dropped = 0
            while self._pending and len(batch) < BATCH_LINES:
                batch.append(self._pending.popleft())
            return batch

    def _put_back(self, batch: list[LogEntry]) -> None:
        with self._lock:
            self._pending.extendleft(reversed(batch))
