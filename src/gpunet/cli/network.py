"""``gpunet up``: run a local network and show it live until Ctrl-C (or ``--for``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table

from gpunet.api.models import NodePublic
from gpunet.cli.console import note, out
from gpunet.cli.listing import ago, styled_state
from gpunet.cli.localnet import (
    MAX_CHECKERS,
    MAX_NODES,
    LocalNetwork,
    NetworkError,
    NetworkSpec,
)
from gpunet.errors import GpunetError
from gpunet.protocol.units import format_usd
from gpunet.sdk import Client

REFRESH_S = 1.0
Snapshot = dict[str, tuple[str, str]]  # process name -> (process status, registry state)


def up(
    nodes: Annotated[
        int, typer.Option(min=1, max=MAX_NODES, help="How many node agents to run.")
    ] = 4,
    data_dir: Annotated[
        Path,
        typer.Option(help="Directory for keys, node ids, the registry and logs; reused."),
    ] = Path(".gpunet"),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Indexer TCP port.")] = 8700,
    heartbeat: Annotated[
        float,
        typer.Option(
            min=0.2, help="Seconds between heartbeats; nodes go offline after 5 missed beats."
        ),
    ] = 2.0,
    checkers: Annotated[
        int,
        typer.Option(
            min=0, max=MAX_CHECKERS, help="How many checkers to run (3 gives a 2N+1 panel)."
        ),
    ] = 0,
    epoch: Annotated[
        float, typer.Option(min=2.0, help="Seconds per check epoch on this local network.")
    ] = 15.0,
    lying_node: Annotated[
        str | None,
        typer.Option(
            help="Make the last node lie, for demos: a `gpunet node start --misbehave` "
            "mode such as random-outputs, claim-faster or offline-idle.",
            show_default=False,
        ),
    ] = None,
    chain: Annotated[
        bool,
        typer.Option(
            "--chain/--no-chain",
            help="Settle epochs on an in-process EVM chain kept in DATA_DIR/chain "
            "(deployed on the first run; `gpunet claim`, `gpunet supply` use it).",
        ),
    ] = True,
    run_for: Annotated[
        float | None,
        typer.Option(
            "--for",
            min=0,
            help="Stop after this many seconds (CI, demos). Default: run until Ctrl-C.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run an indexer and N nodes on 127.0.0.1, each its own process, with a live table.

    Each node gets its own key in DATA_DIR/keys, its own data dir, region and price.
    With --checkers, checker agents verify the nodes every --epoch seconds and vote;
    --lying-node makes the last node misbehave so you can watch it get caught
    (`gpunet node checks NODE_ID`, the reputation column of `gpunet nodes`).
    Keys are encrypted with $GPUNET_KEY_PASSWORD if set, else with a random password
    generated once and kept in DATA_DIR/password (mode 0600). Child logs go to
    DATA_DIR/logs. Running it again on the same DATA_DIR reuses keys, node ids and the
    registry. Ctrl-C or SIGTERM stops nodes (they leave), then the indexer.
    """
    from gpunet.node.signals import stop_on_signals

    spec = NetworkSpec(
        nodes=nodes,
        port=port,
        heartbeat_s=heartbeat,
        checkers=checkers,
        epoch_s=epoch,
        lying_node=lying_node,
        chain=chain,
    )
    network = LocalNetwork(spec, data_dir)
    stop = threading.Event()
    with stop_on_signals(stop.set):
        try:
            extra = f" and {checkers} checker(s)" if checkers else ""
            note(f"starting an indexer, {nodes} node(s){extra} in {network.layout.root}")
            network.start()
            watch(network, stop, None if run_for is None else time.monotonic() + run_for)
        finally:
            note("stopping: nodes first, then the indexer")
            network.stop()
    report_exits(network)


def watch(network: LocalNetwork, stop: threading.Event, deadline: float | None) -> None:
    """Refresh the status every second until ``stop`` is set or ``deadline`` passes."""
    previous: Snapshot = {}
    with network.client() as client, Live(console=out, auto_refresh=False) as live:
        while True:
            listing, problem = fetch_nodes(client)
            live.update(status_table(network, listing, problem, deadline), refresh=True)
            if not out.is_terminal:
                previous = log_changes(network, listing, previous)
            if stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
                return
            stop.wait(REFRESH_S)


def fetch_nodes(client: Client) -> tuple[dict[str, NodePublic], str | None]:
    """Registered nodes by id, or the reason the indexer could not be asked."""
    try:
        listing = client.list_nodes(limit=1000)
    except GpunetError as exc:
        return {}, str(exc)
    return {node.node_id: node for node in listing.nodes}, None


def snapshot(network: LocalNetwork, listing: dict[str, NodePublic]) -> Snapshot:
    states: Snapshot = {"indexer": (network.indexer.describe(), "")}
    for name, child in network.nodes.items():
        node = listing.get(network.node_id(name) or "")
        states[name] = (child.describe(), node.state if node else "unregistered")
    return states


def log_changes(
    network: LocalNetwork, listing: dict[str, NodePublic], before: Snapshot
) -> Snapshot:
    """Without a terminal there is no live table: print one line per change instead."""
    now = snapshot(network, listing)
    for name, (process, state) in now.items():
        if before.get(name) != (process, state):
            note(f"{name}: process {process}" + (f", {state}" if state else ""))
    return now


def status_table(
    network: LocalNetwork,
    listing: dict[str, NodePublic],
    problem: str | None,
    deadline: float | None,
) -> Table:
    online = sum(1 for node in listing.values() if node.state != "offline")
    table = Table(
        title=f"gpunet local network at {network.spec.url}: {online}/{len(network.nodes)} "
        f"node(s) online (data in {network.layout.root})",
        title_justify="left",
        caption=_caption(problem, deadline),
        caption_justify="left",
    )
    for column in ("process", "pid", "status", "node id", "state", "region", "USD/h"):
        table.add_column(column)
    for column in ("reputation", "beats", "last beat"):
        table.add_column(column, justify="right")
    indexer = network.indexer
    table.add_row("indexer", str(indexer.pid or "-"), indexer.describe(), *[""] * 7)
    for name, child in network.nodes.items():
        table.add_row(
            name, str(child.pid or "-"), child.describe(), *_node_cells(network, name, listing)
        )
    for name, child in network.checkers.items():
        table.add_row(name, str(child.pid or "-"), child.describe(), *[""] * 7)
    return table


def _node_cells(network: LocalNetwork, name: str, listing: dict[str, NodePublic]) -> list[str]:
    node_id = network.node_id(name)
    node = listing.get(node_id or "")
    if node is None:
        return [node_id or "-", "[dim]unregistered[/]", "", "", "", "", ""]
    return [
        node.node_id,
        styled_state(node.state),
        node.offer.region,
        format_usd(node.offer.price_micros),
        f"{node.reputation:.2f}",
        str(node.heartbeats),
        ago(node.last_heartbeat_at),
    ]


def _caption(problem: str | None, deadline: float | None) -> str:
    if problem:
        return f"[red]{problem}[/]"
    if deadline is not None:
        return f"stopping in {max(0.0, deadline - time.monotonic()):.0f}s"
    return "Ctrl-C to stop"


def report_exits(network: LocalNetwork) -> None:
    """Fail (exit 2) if a child ended on its own while the network ran."""
    crashed = network.exited()
    if crashed:
        names = ", ".join(f"{c.name} (exit {c.exit_code}, log {c.log_path})" for c in crashed)
        raise NetworkError(f"some processes ended on their own: {names}")
    note(f"stopped; data kept in {network.layout.root}")
