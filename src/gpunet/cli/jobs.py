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
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from gpunet.api.jobs import JobDetail, LogLine
from gpunet.cli.accounts import (
    BUYER_KEY,
    AsJson,
    BuyerKey,
    buyer_account,
    key_address,
    open_client,
)
from gpunet.cli.console import INDEXER_OPTION, err, note, out, print_json
from gpunet.cli.job_views import (
    describe_event,
    print_bill,
    print_event,
    print_job,
    print_log_line,
    print_no_offer,
    print_quote,
)
from gpunet.cli.keys import KeysDir
from gpunet.cli.listing import ago, styled_state
from gpunet.errors import ValidationError
from gpunet.protocol.units import format_usd
from gpunet.sdk import DEFAULT_INDEXER_URL, Client
from gpunet.sdk.jobs import (
    DEFAULT_POLL_S,
    LocalInput,
    all_events,
    all_log_lines,
    download_outputs,
    find_inputs,
    follow,
    load_spec,
    upload_inputs,
)

if TYPE_CHECKING:
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
