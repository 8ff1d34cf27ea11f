"""``gpunet nodes`` and ``gpunet offers``: what an indexer knows, as tables or JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from gpunet.api.models import NodePublic, OfferPublic
from gpunet.cli.console import INDEXER_OPTION, out, print_json
from gpunet.protocol.units import format_usd
from gpunet.sdk import DEFAULT_INDEXER_URL, ORDERS, Client

STATE_STYLES = {"idle": "green", "busy": "yellow", "offline": "red"}

AsJson = Annotated[bool, typer.Option("--json", help="Print the indexer's JSON answer.")]
Limit = Annotated[int, typer.Option(min=1, max=1000, help="Most rows to fetch.")]


def nodes(
    indexer: Annotated[str, INDEXER_OPTION] = DEFAULT_INDEXER_URL,
    state: Annotated[
        str | None, typer.Option(help="Only nodes in this state: idle, busy or offline.")
    ] = None,
    operator: Annotated[
        str | None, typer.Option(help="Only nodes of this operator address (0x...).")
    ] = None,
    limit: Limit = 100,
    as_json: AsJson = False,
) -> None:
    """List the nodes registered with an indexer; "rep" is each one's reputation (0 to 1)."""
    with Client(indexer) as client:
        listing = client.list_nodes(state=state, operator=operator, limit=limit)
    if as_json:
        print_json(listing.model_dump(mode="json"))
        return
    out.print(nodes_table(listing.nodes, title=f"{listing.total} node(s) at {indexer}"))


def offers(
    indexer: Annotated[str, INDEXER_OPTION] = DEFAULT_INDEXER_URL,
    where: Annotated[
        str,
        typer.Option(
            help='Filter, e.g. "gpu=H100 count>=2 price<2.5 region=eu". Fields: gpu, count, '
            "vram (GiB), price (USD/GPU-hour), region, tflops (FP16), cpu, ram (GiB), "
            "disk (GiB), state, operator."
        ),
    ] = "",
    order: Annotated[
        str, typer.Option(help=f"Sort key: {', '.join(ORDERS)} ('-' = descending).")
    ] = "price",
    limit: Limit = 100,
    as_json: AsJson = False,
) -> None:
    """List the offers of online nodes, cheapest first by default.

    The "GFLOPS/$" column is the node's benchmark per USD-hour, discounted by its
    share of failed leases: `--order -value` ranks the most useful compute per dollar
    first. "rep" is the node's reputation score (0 to 1) from its checks.
    """
    with Client(indexer) as client:
        listing = client.list_offers(where=where, order=order, limit=limit)
    if as_json:
        print_json(listing.model_dump(mode="json"))
        return
    total = str(listing.total) if listing.total_is_exact else f"more than {listing.total}"
    title = f"{total} offer(s)" + (f" where {where}" if where.strip() else "")
    out.print(offers_table(listing.offers, title=title))


def gib(mib: int) -> str:
    """MiB as GiB with one decimal, without a trailing .0."""
    return f"{mib / 1024:.1f}".removesuffix(".0")


def short_address(address: str) -> str:
    """``0x1234...abcd``: enough to tell operators apart in a table."""
    return f"{address[:6]}...{address[-4:]}" if len(address) > 12 else address


def styled_state(state: str) -> str:
    return f"[{STATE_STYLES.get(state, 'white')}]{state}[/]"


def ago(moment: datetime, now: datetime | None = None) -> str:
    """Age of ``moment`` as ``12s``, ``5m`` or ``3h``."""
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    return f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"


def nodes_table(rows: list[NodePublic], title: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("node", no_wrap=True, min_width=14)
    table.add_column("operator", no_wrap=True)
    table.add_column("gpu", no_wrap=True)
    table.add_column("VRAM GiB", justify="right")
    table.add_column("region", no_wrap=True)
    table.add_column("USD/h", justify="right")
    table.add_column("state")
    table.add_column("beats", justify="right")
    table.add_column("last beat", justify="right")
    table.add_column("rep", justify="right")
    for node in rows:
        hw = node.hardware
        table.add_row(
            node.node_id,
            short_address(node.operator),
            f"{hw.gpu_count} x {hw.gpu_model}" if hw.gpu_count else hw.gpu_model,
            gib(hw.vram_mib),
            node.offer.region,
            format_usd(node.offer.price_micros),
            styled_state(node.state),
            str(node.heartbeats),
            ago(node.last_heartbeat_at),
            f"{node.reputation:.2f}",
        )
    return table


def offers_table(rows: list[OfferPublic], title: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("node", no_wrap=True, min_width=14)
    table.add_column("gpu", no_wrap=True)
    for column in ("VRAM GiB", "USD/h", "TFLOPS", "CPU", "RAM GiB", "disk GiB", "GFLOPS/$"):
        table.add_column(column, justify="right")
    table.add_column("fail", justify="right")
    table.add_column("rep", justify="right")
    table.add_column("region", no_wrap=True)
    table.add_column("state")
    for offer in rows:
        table.add_row(
            offer.node_id,
            f"{offer.gpu_count} x {offer.gpu}" if offer.gpu_count else offer.gpu,
            gib(offer.vram_mib),
            format_usd(offer.price_micros),
            f"{offer.fp16_tflops:g}",
            str(offer.cpu_cores),
            gib(offer.memory_mib),
            str(offer.disk_gib),
            f"{offer.value_per_dollar:,.0f}",
            f"{offer.failure_rate:.0%}",
            f"{offer.reputation:.2f}",
            offer.region,
            styled_state(offer.state),
        )
    return table
