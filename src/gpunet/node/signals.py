"""Turn SIGINT and SIGTERM into a call to ``stop``, for the agent and the supervisor."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals(
    stop: Callable[[], None], signals: tuple[signal.Signals, ...] = STOP_SIGNALS
) -> Iterator[None]:
    """Within the block, each of ``signals`` calls ``stop`` instead of killing us."""

    def handle(signum: int, frame: FrameType | None) -> None:
        # A handler runs between bytecodes of the main thread, possibly while it holds
        # the lock inside Event.wait; calling stop from another thread cannot deadlock.
        threading.Thread(target=stop, name=f"stop-on-{signum}", daemon=True).start()

    previous = {sig: signal.signal(sig, handle) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
