"""What ``gpunet quote``, ``run``, ``job show|logs|cancel`` and ``session`` print.

The commands in ``gpunet.cli.jobs`` and ``gpunet.cli.sessions`` decide what to fetch;
this module decides how it reads on the terminal: quotes, lifecycle events, log lines,
a job's details and its bill. Lifecycle events go to stderr; quotes, details and bills
to stdout; log lines keep the job's own streams (its stdout to stdout, stderr to stderr).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gpunet.api.jobs import JobDetail, JobEvent, LeaseHardware, LogLine
from gpunet.cli.console import err, out
from gpunet.cli.listing import gib, short_address, styled_state
from gpunet.protocol.units import format_usd
from gpunet.sdk.jobs import TERMINAL_STATES, job_bill

if TYPE_CHECKING:
    from gpunet.api.jobs import QuoteOut
    from gpunet.protocol.jobspec import JobSpec
    from gpunet.sdk import Client

EVENT_STYLES = {"low_funds": "yellow", "failed": "red", "cancelled": "red", "succeeded": "green"}


def print_quote(spec: JobSpec, answer: QuoteOut) -> None:
    best = answer.best
    assert best is not None and answer.price_micros is not None
    unit = "GPU" if spec.resources.gpu_count else "node"  # CPU work is billed per node
    out.print(
        f"[bold]{spec.name}[/]: {format_usd(answer.price_micros)} USD per {unit}-hour on "
        f"{best.node_id} ({gpus(best.gpu_count, best.gpu)}, {escape(best.region)})"
    )
    out.print(f"  qualifying offers: {answer.qualifying} of {answer.checked} checked")
    if answer.estimated_micros is not None:
        out.print(
            f"  estimated cost:    {format_usd(answer.estimated_micros)} USD for "
            f"{duration(answer.duration_s)} x {answer.units} {unit}(s)"
        )
    out.print(
        f"  hold:              {format_usd(answer.hold_micros)} USD at most, held from your "
        "deposit while it runs; what it does not use is refunded"
    )
    if answer.reference_micros is not None and answer.savings_pct is not None:
        source = f" ({escape(answer.reference_source)})" if answer.reference_source else ""
        saving = (
            f"you save {answer.savings_pct:.0f}%"
            if answer.savings_pct >= 0
            else f"{-answer.savings_pct:.0f}% more"
        )
        out.print(
            f"  reference cloud:   {format_usd(answer.reference_micros)} USD{source}; {saving}"
        )


def print_no_offer(spec: JobSpec, answer: QuoteOut) -> None:
    out.print(f"[red]no offer qualifies[/] for {spec.name}: 0 of {answer.checked} online offer(s)")
    if answer.offers:
        table = Table(title="closest offers", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("node", "gpu", "USD/h", "region", "state", "why not"):
            table.add_column(column, justify="right" if column == "USD/h" else "left")
        for offer in answer.offers[:5]:
            table.add_row(
                offer.node_id,
                gpus(offer.gpu_count, offer.gpu),
                format_usd(offer.price_micros),
                Text(offer.region),
                Text(offer.state),
                Text(offer.reason or ""),
            )
        out.print(table)
    if answer.advice:
        out.print(Text(f"advice: {answer.advice}"))


def gpus(count: int, model: str) -> str:
    return f"{count} x {model}" if count else model


def hardware(lease: LeaseHardware) -> str:
    """The exact hardware and price a lease names."""
    memory = f", {gib(lease.vram_mib)} GiB each" if lease.gpu_count else ""
    unit = "GPU" if lease.gpu_count else "node"  # CPU work is billed per node
    return (
        f"{gpus(lease.gpu_count, lease.gpu_model)}{memory} at "
        f"{format_usd(lease.price_micros)} USD per {unit}-hour, operator "
        f"{short_address(lease.operator)}"
    )


def describe_event(client: Client, job_id: str, event: JobEvent) -> str:
    """One line for a lifecycle event; a match names the node's hardware and price."""
    cause = event.cause
    if event.event == "low_funds":
        return f"low funds: {cause}; add funds with `gpunet deposit AMOUNT_USD`"
    if event.to_state == "matched":
        lease = client.get_job(job_id).lease
        where = hardware(lease) if lease else "a node"
        return f"matched to node {event.node_id or (lease and lease.node_id)}: {where}"
    if event.to_state == "running":
        return f"running on node {event.node_id}"
    if event.to_state == "requeued":
        return f"requeued ({cause}); looking for another node"
    if event.to_state == "queued":
        return "queued, waiting for a node"
    return event.to_state if cause in ("", event.to_state) else f"{event.to_state}: {cause}"


def print_event(event: JobEvent, line: str) -> None:
    style = EVENT_STYLES.get(event.event or event.to_state, "cyan")
    err.print(Text(f"[{event.at:%H:%M:%S}] {line}", style=style), soft_wrap=True)


def print_log_line(line: LogLine) -> None:
    if line.stream == "stdout":
        typer.echo(line.line)
    elif line.stream == "stderr":
        typer.echo(line.line, err=True)
    else:
        err.print(Text(f"node: {line.line}", style="dim"), soft_wrap=True)


def print_job(job: JobDetail, events: list[JobEvent]) -> None:
    out.print(f"[bold]{job.job_id}[/] {escape(job.name)} ({job.kind}): {styled_state(job.state)}")
    out.print(f"  buyer:    {job.buyer}")
    out.print(f"  attempts: {job.attempts}, created {job.created_at:%Y-%m-%d %H:%M:%S} UTC")
    if job.lease:
        out.print(f"  node:     {job.lease.node_id}, {hardware(job.lease)}")
    if job.message:
        out.print(Text(f"  message:  {job.message}"))
    timeline = Table(title="events", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("time (UTC)", "change", "node", "cause"):
        timeline.add_column(column)
    for event in events:
        change = f"{event.from_state or '-'} -> {event.to_state}"
        if event.event and event.event not in (event.to_state, "low_funds"):
            change += f" ({event.event})"
        elif event.event == "low_funds":
            change = "low funds"
        at = f"{event.at:%Y-%m-%d %H:%M:%S}"
        timeline.add_row(at, change, event.node_id or "", Text(event.cause))
    out.print(timeline)
    if job.outputs:
        files = Table(title="outputs", title_justify="left", box=box.SIMPLE_HEAD)
        files.add_column("path")
        files.add_column("bytes", justify="right")
        files.add_column("sha256")
        for ref in job.outputs:
            files.add_row(Text(ref.path), str(ref.size), ref.sha256)
        out.print(files)
    for receipt in job.receipts:
        out.print(
            f"  {receipt.party} receipt: {receipt.verdict}, attempt {receipt.attempt}, "
            f"outputs {receipt.outputs_sha256[:16]}..., signed by {receipt.signer}"
        )
    print_bill(job)


def print_bill(job: JobDetail) -> None:
    """Charged (the protocol fee included), the hold and its refund, usage seconds."""
    bill = job_bill(job)
    out.print(f"bill for {job.job_id} ({job.state}):")
    out.print(f"  usage:    {bill.usage_s:.1f} s")
    out.print(
        f"  charged:  {format_usd(bill.charged_micros)} USD, of which protocol fee "
        f"{format_usd(bill.fee_micros)} USD ({bill.fee_bps / 100:g}%)"
    )
    if job.state not in TERMINAL_STATES:
        out.print(f"  held:     {format_usd(job.hold_micros)} USD, still in escrow")
    elif bill.held_micros is not None and bill.refunded_micros is not None:
        out.print(
            f"  hold:     {format_usd(bill.held_micros)} USD, "
            f"refunded {format_usd(bill.refunded_micros)} USD"
        )


def duration(seconds: int) -> str:
    """``5400`` -> ``1h30m``; whole units only."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
