"""stop_on_signals: SIGTERM and SIGINT become a stop call, and the old handlers return."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from gpunet.node.signals import stop_on_signals


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_calls_stop_instead_of_killing(signum: signal.Signals) -> None:
    stopped = threading.Event()
    before = signal.getsignal(signum)

    with stop_on_signals(stopped.set):
        os.kill(os.getpid(), signum)
        assert stopped.wait(timeout=5)

    assert signal.getsignal(signum) is before
