"""``gpunet up`` and ``gpunet demo`` as a user runs them: real processes on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from gpunet.cli.localnet import free_port

pytestmark = pytest.mark.slow


def gpunet(*args: str) -> list[str]:
    return [sys.executable, "-m", "gpunet.cli.main", *args]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A private home and fast (test-only) key encryption for every child."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUNET_")}
    env.update(
        GPUNET_HOME=str(tmp_path / "home"),
        GPUNET_KEY_KDF="pbkdf2",
        GPUNET_KEY_KDF_ITERATIONS="2",
        COLUMNS="200",
    )
    return env


def processes_using(data_dir: Path) -> list[psutil.Process]:
    """Live processes whose command line mentions ``data_dir``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(data_dir) in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def node_ids(data_dir: Path) -> list[str]:
    files = sorted((data_dir / "nodes").glob("node-*/node.json"))
    return [json.loads(f.read_text())["node_id"] for f in files]


def run_up(data_dir: Path, env: dict[str, str], seconds: int) -> subprocess.CompletedProcess[str]:
    argv = gpunet(
        "up", "--nodes", "2", "--for", str(seconds), "--heartbeat", "1",
        "--port", str(free_port()), "--data-dir", str(data_dir),
    )  # fmt: skip
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90, check=False)


def test_up_runs_for_a_while_then_stops_everything(tmp_path: Path, env: dict[str, str]) -> None:
    data_dir = tmp_path / "net"

    first = run_up(data_dir, env, seconds=8)

    assert first.returncode == 0, first.stdout + first.stderr
    assert "2/2 node(s) online" in first.stdout
    assert "node-1: process running, idle" in first.stderr
    assert processes_using(data_dir) == []
    assert (data_dir / "logs" / "indexer.log").stat().st_size > 0
    assert "registered node" in (data_dir / "logs" / "node-2.log").read_text()
    ids = node_ids(data_dir)
    assert len(set(ids)) == 2
    # The in-process chain deployed on the first run; lock tokens on it between runs.
    (record,) = (data_dir / "chain").glob("deployment-*.json")
    deployed = record.read_text()
    chain_env = {**env, "GPUNET_CHAIN_DIR": str(data_dir / "chain")}
    # Schedule 2 is the ecosystem pool's, half of it unlocked at the TGE (to the treasury,
    # which on a local chain is the sender every command uses by default).
    released = subprocess.run(
        gpunet("vesting", "release", "2"), env=chain_env, capture_output=True, text=True
    )
    assert released.returncode == 0, released.stderr
    locked = subprocess.run(
        gpunet("lock", "10", "--duration", "1w"), env=chain_env, capture_output=True, text=True
    )
    assert locked.returncode == 0, locked.stderr

    second = run_up(data_dir, env, seconds=5)  # same data dir: same keys, ids, registry, chain

    assert second.returncode == 0, second.stdout + second.stderr
    assert node_ids(data_dir) == ids
    assert record.read_text() == deployed
    supply = subprocess.run(
        gpunet("supply", "--json"), env=chain_env, capture_output=True, text=True
    )
    assert supply.returncode == 0, supply.stderr
    assert json.loads(supply.stdout)["staked"] == str(10 * 10**18)
    assert sorted(p.name for p in (data_dir / "keys").iterdir()) == ["node-1.json", "node-2.json"]
    for node_id in ids:
        assert node_id in second.stdout


def test_up_stops_cleanly_on_sigterm(tmp_path: Path, env: dict[str, str]) -> None:
    data_dir = tmp_path / "net"
    argv = gpunet("up", "--nodes", "2", "--port", str(free_port()), "--data-dir", str(data_dir))
    up = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(node_ids(data_dir)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
        up.send_signal(signal.SIGTERM)
        out, err = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()

    assert up.returncode == 0, out + err
    assert "stopping: nodes first, then the indexer" in err
    assert processes_using(data_dir) == []


@pytest.mark.timeout(360)
def test_demo_passes_shows_a_liar_caught_and_an_epoch_settled_on_chain(
    tmp_path: Path, env: dict[str, str]
) -> None:
    demo = subprocess.run(
        gpunet("demo", "--nodes", "2", "--data-dir", str(tmp_path / "demo")),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "demo passed" in demo.stdout
    assert "error: price: expected a number" in demo.stdout  # the bad query, shown
    assert "checks of the lying node" in demo.stdout
    assert "penalty below_spec" in demo.stdout or "penalty malicious" in demo.stdout
    # The chain part: a root posted, an operator paid, a holder paid in a partner token.
    assert "posted to the reward distributor" in demo.stdout
    assert "'s operator 0x" in demo.stdout and " claimed epoch(s) " in demo.stdout
    assert "PCR (10 a second)" in demo.stdout
    assert "the fixed supply, where it is" in demo.stdout
    assert processes_using(tmp_path / "demo") == []
