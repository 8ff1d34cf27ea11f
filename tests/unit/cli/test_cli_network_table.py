"""The ``gpunet up`` status table before anything has started."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from gpunet.cli.localnet import LocalNetwork, NetworkSpec
from gpunet.cli.network import snapshot, status_table


def render(network: LocalNetwork, problem: str | None) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=200).print(status_table(network, {}, problem, None))
    return buffer.getvalue()


def test_table_lists_every_process_and_the_problem(tmp_path: Path) -> None:
    network = LocalNetwork(NetworkSpec(nodes=2, port=9999), tmp_path)

    text = render(network, "cannot reach the indexer")

    assert "0/2 node(s) online" in text
    assert "cannot reach the indexer" in text
    for name in ("indexer", "node-1", "node-2"):
        assert name in text
    assert text.count("not started") == 3


def test_snapshot_marks_nodes_unregistered_until_listed(tmp_path: Path) -> None:
    network = LocalNetwork(NetworkSpec(nodes=1, port=9999), tmp_path)

    assert snapshot(network, {}) == {
        "indexer": ("not started", ""),
        "node-1": ("not started", "unregistered"),
    }
