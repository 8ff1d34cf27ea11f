"""The local network's pieces that need no indexer: layout, offers, password, processes."""

from __future__ import annotations

import socket
import stat
import sys
import time
from pathlib import Path

import pytest

from gpunet.cli.localnet import (
    LocalNetwork,
    NetworkSpec,
    network_password,
    node_offer,
    require_free_port,
)
from gpunet.cli.process import ChildProcess
from gpunet.errors import ConfigError


def test_nodes_get_distinct_regions_and_prices() -> None:
    offers = [node_offer(i) for i in range(1, 7)]

    assert len({region for region, _ in offers}) == 6
    assert len({price for _, price in offers}) == 6
    assert node_offer(7) == (offers[0][0], offers[0][1] + 10_000)


def test_heartbeat_timeout_allows_several_missed_beats() -> None:
    assert NetworkSpec(heartbeat_s=2.0).timeout_s == 10.0
    assert NetworkSpec(heartbeat_s=0.2).timeout_s == 1.2


def test_node_commands_carry_their_own_key_dir_region_and_price(tmp_path: Path) -> None:
    network = LocalNetwork(NetworkSpec(nodes=2, port=9999, heartbeat_s=1.5), tmp_path)

    argv = " ".join(network.nodes["node-2"].argv)
    indexer = " ".join(network.indexer.argv)

    assert "--key node-2" in argv
    assert "--price 0.62 --region us-east" in argv
    assert f"--data-dir {tmp_path.resolve()}/nodes/node-2" in argv
    assert "--indexer http://127.0.0.1:9999 " in argv
    assert "--interval 1.5" in argv
    assert "--heartbeat-interval 1.5 --heartbeat-timeout 7.5" in indexer


def test_generated_password_is_private_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GPUNET_KEY_PASSWORD", raising=False)
    layout = LocalNetwork(NetworkSpec(nodes=1), tmp_path).layout

    first = network_password(layout)

    assert len(first) >= 24
    assert network_password(layout) == first
    assert stat.S_IMODE(layout.password_file.stat().st_mode) == 0o600


def test_password_from_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPUNET_KEY_PASSWORD", "from-env")
    layout = LocalNetwork(NetworkSpec(nodes=1), tmp_path).layout

    assert network_password(layout) == "from-env"
    assert not layout.password_file.exists()


def test_busy_port_is_a_clear_error() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is in use"):
            require_free_port("127.0.0.1", port)


def test_one_network_per_data_dir(tmp_path: Path) -> None:
    first = LocalNetwork(NetworkSpec(nodes=1, port=0), tmp_path)
    first.prepare()
    try:
        with pytest.raises(ConfigError, match="another local network is running"):
            LocalNetwork(NetworkSpec(nodes=1, port=0), tmp_path).prepare()
    finally:
        first.stop()
    again = LocalNetwork(NetworkSpec(nodes=1, port=0), tmp_path)
    again.prepare()  # the lock was released by stop()
    again.stop()


def test_node_count_is_bounded(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--nodes 0"):
        LocalNetwork(NetworkSpec(nodes=0), tmp_path)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_child_stops_on_sigterm_and_logs(tmp_path: Path) -> None:
    child = ChildProcess(
        "sleeper",
        python("import time; print('up', flush=True); time.sleep(60)"),
        tmp_path / "s.log",
    )
    child.start({})
    deadline = time.monotonic() + 10
    while "up" not in child.log_tail() and time.monotonic() < deadline:
        time.sleep(0.05)

    code = child.stop(grace_s=5)

    assert code == -15
    assert child.describe() == "stopped"
    assert child.log_tail() == "up"


def test_child_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('x', flush=True); time.sleep(60)"
    )
    child = ChildProcess("stubborn", python(code), tmp_path / "s.log")
    child.start({})
    while "x" not in child.log_tail():
        time.sleep(0.05)

    assert child.stop(grace_s=0.3) == -9


def test_child_that_crashes_keeps_its_exit_status(tmp_path: Path) -> None:
    child = ChildProcess("crasher", python("raise SystemExit(3)"), tmp_path / "c.log")
    child.start({})
    while child.exit_code is None:
        time.sleep(0.05)

    child.stop(grace_s=1)

    assert child.describe() == "exited 3"
