"""The demo's checker part: three checkers catch a lying node and down-rank it.

A second local network runs honest nodes, one node started with
``--misbehave random-outputs`` (it commits to random tiles in capacity challenges and
returns random job outputs) and three checkers with epochs of a few seconds. The demo
waits until the panels have judged every node, then shows the liar's failed checks,
its penalties and its reputation below every honest node's.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.table import Table

from gpunet.api.checks import NodeChecks
from gpunet.api.models import NodePublic
from gpunet.cli.console import out
from gpunet.cli.localnet import LocalNetwork, NetworkSpec, free_port, wait_until
from gpunet.errors import GpunetError
from gpunet.sdk import Client

LIE = "random-outputs"
DEMO_EPOCH_S = 12.0
CAUGHT_TIMEOUT_S = 120.0


class CheckDemoFailed(GpunetError):
    """The checkers did not catch the lying node as the demo expects."""


def checks_network(root: Path, nodes: int, heartbeat_s: float) -> LocalNetwork:
    """Honest nodes plus one liar (the last node), three checkers and a local chain."""
    spec = NetworkSpec(
        nodes=nodes,
        port=free_port(),
        heartbeat_s=heartbeat_s,
        checkers=3,
        epoch_s=DEMO_EPOCH_S,
        lying_node=LIE,
        chain=True,
    )
    return LocalNetwork(spec, root)


def liar_name(network: LocalNetwork) -> str:
    return list(network.nodes)[-1]


def wait_until_caught(network: LocalNetwork, client: Client) -> None:
    """Wait for a penalty on the liar and a failed check on no honest node."""
    liar = liar_name(network)
    out.print(
        f"{liar} runs with --misbehave {LIE}; 3 checkers probe, challenge and vote every "
        f"{DEMO_EPOCH_S:g}s"
    )

    def caught() -> bool:
        liar_id = network.node_id(liar)
        if liar_id is None:
            return False
        try:
            return bool(client.node_checks(liar_id).penalties)
        except GpunetError:
            return False

    wait_until(caught, CAUGHT_TIMEOUT_S, f"no penalty for {liar} after {CAUGHT_TIMEOUT_S:g}s")
    # One more epoch so every honest node has closed checks to compare with.
    time.sleep(DEMO_EPOCH_S)


def show_verdicts(network: LocalNetwork, client: Client) -> None:
    """The liar's checks and penalties, and every node ranked by reputation."""
    liar_id = network.node_id(liar_name(network)) or ""
    record = client.node_checks(liar_id, limit=12)
    out.print(checks_table(record, title=f"checks of the lying node {liar_id}"))
    for penalty in record.penalties:
        out.print(f"penalty {penalty.kind}: {penalty.amount} base units - {penalty.reason}")
    ranked = sorted(client.list_nodes(limit=1000).nodes, key=lambda n: -n.reputation)
    out.print(reputation_table(ranked, liar_id))
    _require_down_ranked(client, ranked, liar_id)


def _require_down_ranked(client: Client, ranked: list[NodePublic], liar_id: str) -> None:
    if not ranked or ranked[-1].node_id != liar_id:
        raise CheckDemoFailed(f"the lying node {liar_id} is not ranked last by reputation")
    for node in ranked[:-1]:
        honest = client.node_checks(node.node_id)
        failed = [c for c in honest.checks if c.verdict == "fail"]
        if honest.penalties or failed:
            raise CheckDemoFailed(
                f"honest node {node.node_id} was judged failing: {[c.finding for c in failed]}"
            )


def checks_table(record: NodeChecks, title: str) -> Table:
    table = Table("epoch", "kind", "verdict", "votes", "finding", title=title, title_justify="left")
    for check in record.checks:
        passes = sum(1 for v in check.votes if v.verdict == "pass")
        votes = f"{passes}/{len(check.votes)} pass"
        verdict = check.verdict or "open"
        style = {"pass": "green", "fail": "red"}.get(verdict, "yellow")
        table.add_row(
            str(check.epoch), check.kind, f"[{style}]{verdict}[/]", votes, check.finding or ""
        )
    return table


def reputation_table(nodes: list[NodePublic], liar_id: str) -> Table:
    table = Table("node id", "reputation", "", title="nodes by reputation", title_justify="left")
    for node in nodes:
        mark = "[red]lying node[/]" if node.node_id == liar_id else ""
        table.add_row(node.node_id, f"{node.reputation:.3f}", mark)
    return table
