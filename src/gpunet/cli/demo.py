"""``gpunet demo``: a scripted tour of a local network, which fails loudly if a step does."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from gpunet.cli import demo_chain, demo_checks, demo_jobs
from gpunet.cli.console import out
from gpunet.cli.listing import nodes_table, offers_table
from gpunet.cli.localnet import MAX_NODES, LocalNetwork, NetworkSpec, free_port, wait_until
from gpunet.errors import ApiError, GpunetError
from gpunet.sdk import Client

DEMO_HEARTBEAT_S = 1.0
ONLINE_TIMEOUT_S = 40.0
OFFLINE_TIMEOUT_S = 10.0
QUERIES = (("", "price"), ("gpu=CPU price<1", "price"), ("region=eu", "-price"))
BAD_QUERY = "gpu=CPU price<cheap"


class DemoFailed(GpunetError):
    """A demo step did not show what it should have."""


@dataclass
class Tour:
    """The demo's steps over one running network, timed for the summary."""

    network: LocalNetwork
    client: Client
    timings: list[tuple[str, float]] = field(default_factory=list)

    def step(self, title: str, action: Callable[[], None]) -> None:
        out.rule(f"[bold]{len(self.timings) + 1}. {title}")
        started = time.monotonic()
        action()
        self.timings.append((title, time.monotonic() - started))

    def states(self) -> dict[str, str]:
        """Registry state of each local node (``unregistered`` until it has registered)."""
        listed = {n.node_id: n.state for n in self.client.list_nodes(limit=1000).nodes}
        ids = {name: self.network.node_id(name) for name in self.network.nodes}
        return {name: listed.get(node_id or "", "unregistered") for name, node_id in ids.items()}

    def wait_for(self, names: list[str], online: bool, timeout_s: float) -> None:
        word = "online" if online else "offline"

        def reached() -> bool:
            states = self.states()
            return all((states[n] in ("idle", "busy")) == online for n in names)

        wait_until(reached, timeout_s, f"{', '.join(names)} not {word} after {timeout_s:g}s")
        out.print(f"{', '.join(names)}: {word}")

    def start(self) -> None:
        self.network.start()
        self.wait_for(list(self.network.nodes), online=True, timeout_s=ONLINE_TIMEOUT_S)

    def show_nodes(self) -> None:
        listing = self.client.list_nodes()
        out.print(nodes_table(listing.nodes, title=f"{listing.total} node(s)"))

    def show_offers(self) -> None:
        for where, order in QUERIES:
            listing = self.client.list_offers(where=where, order=order)
            if listing.total == 0:
                raise DemoFailed(f"offers where {where!r} found nothing; expected online nodes")
            out.print(offers_table(listing.offers, title=f"offers where {where!r} order {order}"))

    def show_bad_query(self) -> None:
        out.print(f"offers where {BAD_QUERY!r}:")
        try:
            self.client.list_offers(where=BAD_QUERY)
        except ApiError as exc:
            out.print(Text(f"error: {exc}", style="red"), soft_wrap=True)
            return
        raise DemoFailed(f"the indexer accepted the bad filter {BAD_QUERY!r}")

    def stop_node(self, name: str) -> None:
        self.network.stop_node(name)
        self.wait_for([name], online=False, timeout_s=OFFLINE_TIMEOUT_S)
        self.show_nodes()

    def kill_node(self, name: str) -> None:
        self.network.kill_node(name)
        timeout = self.network.spec.timeout_s
        out.print(f"{name} killed; the indexer marks it offline after {timeout:g}s of silence")
        self.wait_for([name], online=False, timeout_s=timeout + OFFLINE_TIMEOUT_S)
        self.show_nodes()

    def restart_node(self, name: str) -> None:
        self.network.start_node(name)
        self.wait_for([name], online=True, timeout_s=ONLINE_TIMEOUT_S)
        self.show_nodes()

    def print_summary(self, total_s: float) -> None:
        summary = Table("step", "seconds", title="summary", title_justify="left")
        for title, seconds in self.timings:
            summary.add_row(title, f"{seconds:.1f}")
        summary.add_row("[bold]total", f"[bold]{total_s:.1f}")
        out.print(summary)


def demo(
    nodes: Annotated[int, typer.Option(min=1, max=MAX_NODES, help="How many nodes to run.")] = 4,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Keep the network here. Default: a temporary dir, removed after."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65535, help="Indexer port. Default: a free one.", show_default=False
        ),
    ] = None,
    checks: Annotated[
        bool,
        typer.Option(
            help="End with checkers catching a lying node and epochs settling on chain "
            "(a second local network)."
        ),
    ] = True,
) -> None:
    """Start a local network, query it, run jobs, take nodes down and up again, then stop.

    A buyer deposits, gets a quote and runs a job in a node's sandbox; the node running
    a checkpointed job is killed and the job resumes on another node, the lost attempt
    unpaid. One node leaves cleanly; another is killed and must be noticed by its
    silence. Then a second network with three checkers and a lying node shows the
    checkers catching it: failed checks, penalties, and the lowest reputation. That
    network settles each epoch on an in-process EVM chain: an honest operator claims
    its reward with a Merkle proof, a holder locks tokens and earns a partner's token,
    and the supply shows where every token is. Exits 0 when every step showed what it
    should, 2 otherwise. Takes about two minutes.
    """
    root = data_dir or Path(tempfile.mkdtemp(prefix="gpunet-demo-"))
    spec = NetworkSpec(nodes=nodes, port=port or free_port(), heartbeat_s=DEMO_HEARTBEAT_S)
    network = LocalNetwork(spec, root)
    started = time.monotonic()
    try:
        with network.client() as client:
            tour = Tour(network, client)
            run_tour(tour)
        if checks:
            run_checks_tour(tour, root / "checks")
    finally:
        network.stop()  # again, in case a step failed; stopping twice is harmless
        if data_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    tour.print_summary(time.monotonic() - started)
    out.print("[green]demo passed[/]")


def _back_and_paid(tour: Tour) -> None:
    demo_jobs.wait_for_idle(tour.network, len(tour.network.nodes))
    tour.show_nodes()
    demo_jobs.show_earnings(tour.network)


def run_tour(tour: Tour) -> None:
    first, *others = tour.network.nodes
    crashed = others[0] if others else first
    tour.step("start an indexer and the nodes, wait until all are online", tour.start)
    tour.step("list the nodes", tour.show_nodes)
    tour.step("query the offers", tour.show_offers)
    tour.step("a bad query is refused with a clear error", tour.show_bad_query)
    buyer = demo_jobs.Buyer(tour.network)
    tour.step(
        "a buyer deposits 5 USD and asks for a quote", lambda: demo_jobs.deposit_and_quote(buyer)
    )
    tour.step(
        "run a job: matched, run in a sandbox, outputs checked, billed",
        lambda: demo_jobs.run_job(buyer),
    )
    if others:
        tour.step(
            "kill the node running a checkpointed job: it resumes on another node",
            lambda: demo_jobs.survive_a_crash(buyer, tour.network),
        )
        tour.step(
            "the restarted node is back; operators see their earnings",
            lambda: _back_and_paid(tour),
        )
    tour.step(f"stop {first}: it leaves and goes offline", lambda: tour.stop_node(first))
    tour.step(f"restart {first}: it comes back online", lambda: tour.restart_node(first))
    tour.step(
        f"kill {crashed} without warning: it misses heartbeats and goes offline",
        lambda: tour.kill_node(crashed),
    )
    tour.step(f"restart {crashed}: it comes back online", lambda: tour.restart_node(crashed))
    tour.step("stop everything: nodes leave, then the indexer stops", tour.network.stop)


def run_checks_tour(tour: Tour, root: Path) -> None:
    """Three checkers, honest nodes and one liar on a network of their own."""
    nodes = max(3, len(tour.network.nodes))
    network = demo_checks.checks_network(root, nodes, tour.network.spec.heartbeat_s)
    try:
        with network.client() as client:
            checks_tour = Tour(network, client, tour.timings)
            checks_tour.step(
                f"start {nodes} nodes (the last one lies) and 3 checkers", checks_tour.start
            )
            checks_tour.step(
                "checkers probe, challenge and vote until the liar is caught",
                lambda: demo_checks.wait_until_caught(network, client),
            )
            checks_tour.step(
                "the liar's failed checks, its penalties, and its reputation last",
                lambda: demo_checks.show_verdicts(network, client),
            )
            honest = next(iter(network.nodes))
            checks_tour.step(
                f"an epoch settles on chain; {honest}'s operator claims its reward",
                lambda: demo_chain.settle_and_claim(network, client, honest),
            )
            checks_tour.step(
                "a holder locks tokens and earns a partner's token",
                lambda: demo_chain.stake_and_earn(network),
            )
            checks_tour.step("where the fixed supply is", lambda: demo_chain.show_supply(network))
            checks_tour.step("stop the checkers' network", network.stop)
    finally:
        network.stop()
