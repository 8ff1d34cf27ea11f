"""``gpunet quote``, ``gpunet run``, ``gpunet jobs`` and ``gpunet job show|logs|cancel``.

Progress and lifecycle lines go to stderr; a job's own output (its stdout log lines,
tables, JSON) goes to stdout, so ``gpunet run job.yaml > log.txt`` keeps the log clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from gpunet.api.jobs import JobDetail, JobEvent, LeaseHardware, LogLine
from gpunet.cli.accounts import (
    BUYER_KEY,
    AsJson,
    BuyerKey,
    buyer_account,
    key_address,
    open_client,
)
from gpunet.cli.console import INDEXER_OPTION, err, note, out, print_json
from gpunet.cli.keys import KeysDir
from gpunet.cli.listing import ago, gib, short_address, styled_state
from gpunet.errors import ValidationError
from gpunet.protocol.units import format_usd
from gpunet.sdk import DEFAULT_INDEXER_URL, Client
from gpunet.sdk.jobs import (
    DEFAULT_POLL_S,
    TERMINAL_STATES,
    LocalInput,
    all_events,
    all_log_lines,
    download_outputs,
    find_inputs,
    follow,
    job_bill,
    load_spec,
    upload_inputs,
)

if TYPE_CHECKING:
    from gpunet.api.jobs import QuoteOut
    from gpunet.protocol.jobspec import JobSpec

job_app = typer.Typer(
    help="One job or session by its id: show it, read its logs, cancel it.", no_args_is_help=True
)

SpecFile = Annotated[
    Path,
    typer.Argument(
        help="Job spec file (YAML); input paths are relative to its folder.", show_default=False
    ),
]
JobId = Annotated[str, typer.Argument(help="Job id, like j-0123456789abcdef.", show_default=False)]
Indexer = Annotated[str, INDEXER_OPTION]
Poll = Annotated[
    float, typer.Option(min=0.0, max=30.0, help="Seconds each long poll waits.", hidden=True)
]
DEFAULT_OUT = Path("gpunet-out")
EVENT_STYLES = {"low_funds": "yellow", "failed": "red", "cancelled": "red", "succeeded": "green"}


def quote(
    spec_file: SpecFile, indexer: Indexer = DEFAULT_INDEXER_URL, as_json: AsJson = False
) -> None:
    """Price a spec on the current market, without submitting it.

    Shows the best qualifying offer's price per GPU-hour, how many offers qualify of how
    many were checked, the estimated cost for max_duration, the hold taken from your
    deposit, and the savings against a reference cloud. When no offer qualifies, shows
    why the closest offers do not, with advice, and exits 1.
    """
    from gpunet.protocol.jobspec import job_spec_to_dict

    spec = load_spec(spec_file)
    with open_client(indexer) as client:
        answer = client.quote(job_spec_to_dict(spec))
    if as_json:
        print_json(answer.model_dump(mode="json"))
    elif answer.best is None:
        print_no_offer(spec, answer)
    else:
        print_quote(spec, answer)
    if answer.best is None:
        raise typer.Exit(1)


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


# -- run --


def run(
    spec_file: SpecFile,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for the outputs. Default: ./gpunet-out/<job id>.",
            show_default=False,
        ),
    ] = None,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="On Ctrl-C, leave the job running and print its id instead of asking "
            "whether to cancel it.",
        ),
    ] = False,
    indexer: Indexer = DEFAULT_INDEXER_URL,
    key: BuyerKey = BUYER_KEY,
    keys_dir: KeysDir = None,
    poll: Poll = DEFAULT_POLL_S,
) -> None:
    """Submit a job, follow it live, download its outputs and print the bill.

    Input files are uploaded first (with a progress bar). Then the job's progress (queued,
    matched to a node with its exact hardware and price, running, finished) appears on
    stderr and its log lines as they come. Outputs are saved to --out after their SHA-256
    is checked. Exits 0 when the job succeeded, 1 when it failed or was cancelled, 2 on
    an error. Ctrl-C asks whether to cancel the job (see --detach).
    """
    spec = load_spec(spec_file)
    if spec.kind == "session":
        raise ValidationError("kind", spec.kind, "open a session with `gpunet session open`")
    files = find_inputs(spec, spec_file.parent)
    with open_client(indexer, buyer_account(key, keys_dir)) as client:
        job = submit_with_progress(client, spec, files)
        note(f"submitted job {job.job_id} ({job.name}); Ctrl-C to stop watching")
        try:
            watch(client, job.job_id, poll)
        except KeyboardInterrupt:
            interrupted(client, job.job_id, detach)
        job = client.get_job(job.job_id)
        if job.outputs:
            save_outputs(client, job, out_dir or DEFAULT_OUT / job.job_id)
    print_bill(job)
    if job.state != "succeeded":
        raise typer.Exit(1)


def submit_with_progress(client: Client, spec: JobSpec, files: list[LocalInput]) -> JobDetail:
    """Upload the inputs (a progress bar on a terminal), then submit the spec."""
    from gpunet.protocol.jobspec import job_spec_to_dict

    if not files or not err.is_terminal:
        for item in files:
            note(f"uploading {item.target} ({item.size} bytes)")
        refs = upload_inputs(client, files)
    else:
        columns = (TextColumn("uploading inputs"), BarColumn(), DownloadColumn())
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("inputs", total=sum(item.size for item in files))
            refs = upload_inputs(client, files, lambda item: bar.advance(task, item.size))
    return client.submit_job(job_spec_to_dict(spec), refs)


@contextmanager
def live_status(text: str) -> Iterator[Callable[[str], None]]:
    """A spinner line showing the job's state, on a terminal; a no-op elsewhere."""
    if not err.is_terminal:
        yield lambda _: None
        return
    with err.status(text) as spinner:
        yield lambda new_text: spinner.update(new_text)


def watch(client: Client, job_id: str, poll_s: float) -> None:
    """Print events and log lines until the job has ended and its logs are drained."""
    feed = follow(client, job_id, poll_s=poll_s)
    with live_status(f"job {job_id}: waiting for news") as update_status, closing(feed):
        for item in feed:
            if isinstance(item, LogLine):
                print_log_line(item)
            else:
                line = describe_event(client, job_id, item)
                print_event(item, line)
                update_status(f"job {job_id}: {line}")


def interrupted(client: Client, job_id: str, detach: bool) -> None:
    """After Ctrl-C: cancel the job if asked to, else leave it running and exit."""
    follow_hint = f"follow it with `gpunet job logs {job_id} --follow`"
    if not detach and typer.confirm(f"\ncancel job {job_id}?", default=False, err=True):
        client.cancel_job(job_id, "cancelled by the buyer (Ctrl-C)")
        note(f"cancelled job {job_id}")
        return
    note(f"job {job_id} keeps running; {follow_hint}")
    typer.echo(job_id)
    raise typer.Exit(0)


def save_outputs(client: Client, job: JobDetail, dest: Path) -> None:
    note(f"downloading {len(job.outputs)} output(s) to {dest}, checking each SHA-256")
    for path in download_outputs(client, job, dest):
        note(f"  saved {path}")


# -- listing, show, logs, cancel --


def jobs_list(
    indexer: Indexer = DEFAULT_INDEXER_URL,
    state: Annotated[
        str | None,
        typer.Option(
            help="Only jobs in this state: queued, matched, running, requeued, succeeded, "
            "failed or cancelled."
        ),
    ] = None,
    all_buyers: Annotated[
        bool, typer.Option("--all", help="Everyone's jobs, not just the --key key's.")
    ] = False,
    key: Annotated[str, typer.Option("--key", help="Key whose jobs to list.")] = BUYER_KEY,
    keys_dir: KeysDir = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Most rows to fetch.")] = 100,
    as_json: AsJson = False,
) -> None:
    """List your jobs and sessions (the --key key's), or everyone's with --all."""
    buyer = None if all_buyers else key_address(key, keys_dir)
    with open_client(indexer) as client:
        listing = client.list_jobs(buyer=buyer, state=state, limit=limit)
    if as_json:
        print_json(listing.model_dump(mode="json"))
        return
    table = Table(title=f"{listing.total} job(s)", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("job", "name", "kind", "state", "node", "USD/h", "charged", "created"):
        table.add_column(column, no_wrap=True, justify="right" if column[0].isupper() else "left")
    for job in listing.jobs:
        price = "" if job.price_micros is None else format_usd(job.price_micros)
        table.add_row(
            job.job_id,
            Text(job.name),
            job.kind,
            styled_state(job.state),
            job.node_id or "",
            price,
            format_usd(job.charged_micros),
            ago(job.created_at),
        )
    out.print(table)


@job_app.command("show")
def show(job_id: JobId, indexer: Indexer = DEFAULT_INDEXER_URL, as_json: AsJson = False) -> None:
    """Show a job: state, the leased hardware, its events, its outputs and its bill."""
    with open_client(indexer) as client:
        job = client.get_job(job_id)
        events = all_events(client, job_id)
    if as_json:
        print_json(
            {
                "job": job.model_dump(mode="json"),
                "events": [event.model_dump(mode="json") for event in events],
            }
        )
        return
    print_job(job, events)


@job_app.command("logs")
def logs(
    job_id: JobId,
    follow_logs: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep printing new lines until the job ends."),
    ] = False,
    indexer: Indexer = DEFAULT_INDEXER_URL,
    poll: Poll = DEFAULT_POLL_S,
) -> None:
    """Print a job's log lines: its stdout on stdout, its stderr and node notes on stderr."""
    with open_client(indexer) as client:
        if not follow_logs:
            for line in all_log_lines(client, job_id):
                print_log_line(line)
            return
        try:
            watch(client, job_id, poll)
        except KeyboardInterrupt:
            note(f"stopped following; job {job_id} keeps running")


@job_app.command("cancel")
def cancel(
    job_id: JobId,
    reason: Annotated[str, typer.Option(help="Why, recorded with the job.")] = (
        "cancelled by the buyer"
    ),
    indexer: Indexer = DEFAULT_INDEXER_URL,
    key: Annotated[str, typer.Option("--key", help="The buyer key that submitted it.")] = (
        BUYER_KEY
    ),
    keys_dir: KeysDir = None,
) -> None:
    """Cancel a job (or close a session); you pay only for the usage so far."""
    with open_client(indexer, buyer_account(key, keys_dir, create=False)) as client:
        job = client.cancel_job(job_id, reason)
    out.print(f"job {job.job_id}: {styled_state(job.state)}")
    print_bill(job)


# -- what the commands print --


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
