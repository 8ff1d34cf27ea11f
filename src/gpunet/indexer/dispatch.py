"""Wake-ups inside one indexer process: the matcher, nodes' long-polls, job followers.

A change that gives a node work or adds to a job's history calls ``notify_*`` after
its transaction commits; whoever waits on that key (a node's ``GET .../work``, a
buyer's ``GET .../logs``) wakes at once instead of polling. Waiters also re-read the
store every ``recheck_s``, so several indexer replicas behind one PostgreSQL still
deliver within that time, and a wake-up lost to a race costs at most that long.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class Dispatcher:
    """Per-key events on the app's event loop; keys are node ids and job ids."""

    recheck_s: float = 1.0
    _waiters: defaultdict[str, set[asyncio.Event]] = field(default_factory=lambda: defaultdict(set))
    matcher_wake: asyncio.Event | None = None

    def notify(self, key: str) -> None:
        for event in self._waiters.get(key, ()):
            event.set()

    def wake_matcher(self) -> None:
        if self.matcher_wake is not None:
            self.matcher_wake.set()

    async def wait(self, key: str, timeout_s: float) -> None:
        """Return when ``key`` is notified, after ``recheck_s``, or after ``timeout_s``."""
        event = asyncio.Event()
        self._waiters[key].add(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(timeout_s, self.recheck_s))
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[key]
