"""``gpunet session open|close|connect``: a leased node that stays yours until you close it.

A session is a job with ``kind: session``: it runs until the buyer closes it (or its
deposit runs out), and its ``expose_port`` is reached through the node's forwarder.
``connect`` runs the buyer's end of that forwarder (``gpunet.node.forward``) on a local
port, like ``ssh -L``.
"""

from __future__ import annotations

import threading
from contextlib import closing
from typing import TYPE_CHECKING, Annotated

import typer

from gpunet.api.jobs import JobDetail, JobEvent, LogLine
from gpunet.cli.accounts import BUYER_KEY, BuyerKey, buyer_account, open_client
from gpunet.cli.console import note, out
from gpunet.cli.job_views import (
    describe_event,
    hardware,
    print_bill,
    print_event,
    print_log_line,
)
from gpunet.cli.jobs import Indexer, JobId, Poll, SpecFile, interrupted, submit_with_progress
from gpunet.cli.keys import KeysDir
from gpunet.errors import ConfigError, ConflictError, ValidationError
from gpunet.sdk import DEFAULT_INDEXER_URL
from gpunet.sdk.jobs import (
    DEFAULT_POLL_S,
    TERMINAL_STATES,
    all_events,
    find_inputs,
    follow,
    load_spec,
)

if TYPE_CHECKING:
    from gpunet.api.jobs import SessionAccess
    from gpunet.sdk import Client

app = typer.Typer(
    help="Interactive sessions: a node leased until you close it, reached through a port "
    "forwarder. Billing runs from the start until `gpunet session close`.",
    no_args_is_help=True,
)

DEFAULT_LOCAL_PORT = 8888
CONNECT_POLL_S = 10.0
OwnKey = Annotated[str, typer.Option("--key", help="The buyer key that opened the session.")]


@app.command("open")
def open_session(
    spec_file: SpecFile,
    indexer: Indexer = DEFAULT_INDEXER_URL,
    key: BuyerKey = BUYER_KEY,
    keys_dir: KeysDir = None,
    poll: Poll = DEFAULT_POLL_S,
) -> None:
    """Submit a `kind: session` spec, wait until it runs, and print how to connect.

    Exits 1 if the session ends before it runs. Ctrl-C while waiting asks whether to
    close it.
    """
    spec = load_spec(spec_file)
    if spec.kind != "session":
        raise ValidationError(
            "kind", spec.kind, "run a job with `gpunet run`, or set kind: session"
        )
    files = find_inputs(spec, spec_file.parent)
    with open_client(indexer, buyer_account(key, keys_dir)) as client:
        job = submit_with_progress(client, spec, files)
        note(f"opened session {job.job_id} ({job.name}); waiting for a node")
        try:
            state = wait_until_running(client, job.job_id, poll)
        except KeyboardInterrupt:
            interrupted(client, job.job_id, detach=False)
            state = "cancelled"
        if state != "running":
            print_bill(client.get_job(job.job_id))
            raise typer.Exit(1)
        print_access(client.get_job(job.job_id), client.session_access(job.job_id))


def wait_until_running(client: Client, job_id: str, poll_s: float) -> str:
    """Print events and log lines until the session runs or ends; returns its state."""
    with closing(follow(client, job_id, poll_s=poll_s)) as feed:
        for item in feed:
            if isinstance(item, LogLine):
                print_log_line(item)
                continue
            print_event(item, describe_event(client, job_id, item))
            if item.to_state == "running" or item.to_state in TERMINAL_STATES:
                return item.to_state
    return client.get_job(job_id).state


def print_access(job: JobDetail, access: SessionAccess) -> None:
    where = f" on node {job.lease.node_id}: {hardware(job.lease)}" if job.lease else ""
    port = access.port or DEFAULT_LOCAL_PORT
    out.print(f"session [bold]{job.job_id}[/] is running{where}", soft_wrap=True)
    out.print(f"  endpoint: {access.endpoint or 'not published yet'}")
    out.print(f"  connect:  gpunet session connect {job.job_id} --local-port {port}")
    out.print(f"            then point your client at 127.0.0.1:{port}")
    out.print(f"  close:    gpunet session close {job.job_id}  (billing runs until then)")


@app.command("close")
def close_session(
    job_id: JobId,
    indexer: Indexer = DEFAULT_INDEXER_URL,
    key: OwnKey = BUYER_KEY,
    keys_dir: KeysDir = None,
) -> None:
    """Close a session: the node stops it and you pay for the time it ran."""
    with open_client(indexer, buyer_account(key, keys_dir, create=False)) as client:
        job = client.cancel_job(job_id, "closed by the buyer")
    out.print(f"closed session {job.job_id} ({job.state})")
    print_bill(job)


@app.command("connect")
def connect(
    job_id: JobId,
    local_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help=f"Local port to listen on. Default: the session's port, else "
            f"{DEFAULT_LOCAL_PORT}.",
            show_default=False,
        ),
    ] = None,
    indexer: Indexer = DEFAULT_INDEXER_URL,
    key: OwnKey = BUYER_KEY,
    keys_dir: KeysDir = None,
    poll: Poll = CONNECT_POLL_S,
) -> None:
    """Forward 127.0.0.1:PORT to a running session until Ctrl-C or the session ends.

    Any program that connects to the local port reaches the session's exposed port.
    Prints a status line when the deposit runs low. Ctrl-C stops forwarding; the session
    stays open (and billed) until `gpunet session close`.
    """
    from gpunet.node.forward import connect_local

    with open_client(indexer, buyer_account(key, keys_dir, create=False)) as client:
        access = client.session_access(job_id)
        if access.state != "running" or not access.endpoint or not access.token:
            raise ConflictError(
                f"session {job_id} is {access.state} and has no endpoint yet; wait until it "
                f"runs (`gpunet job show {job_id}`)"
            )
        endpoint, token = access.endpoint, access.token
        port = local_port or access.port or DEFAULT_LOCAL_PORT
        seen = all_events(client, job_id)  # the watcher reports news from here on
        stop = threading.Event()
        watcher = threading.Thread(
            target=watch_session,
            args=(client, job_id, seen[-1].seq if seen else 0, stop, poll),
            daemon=True,
        )

        def ready(address: tuple[str, int]) -> None:
            note(f"forwarding {address[0]}:{address[1]} to session {job_id} at {endpoint}")
            watcher.start()

        try:
            connect_local(endpoint, token, port, stop, ready=ready)
        except KeyboardInterrupt:
            note(
                f"stopped forwarding; session {job_id} stays open and billed: "
                f"close it with `gpunet session close {job_id}`"
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot forward 127.0.0.1:{port} to {endpoint} ({exc}); "
                "pick another --local-port if that port is taken"
            ) from None
        finally:
            stop.set()


def watch_session(
    client: Client, job_id: str, after: int, stop: threading.Event, poll_s: float
) -> None:
    """Print a session's events after ``after`` (low funds above all); set ``stop`` when
    it ends."""
    try:
        feed = follow(client, job_id, poll_s=poll_s, after_event=after, after_line=None)
        with closing(feed):
            for item in feed:
                if stop.is_set():
                    return
                if isinstance(item, JobEvent):
                    print_event(item, describe_event(client, job_id, item))
    except Exception as exc:  # the forwarder keeps working without the indexer
        if not stop.is_set():
            note(f"stopped watching session {job_id} for low funds: {exc}")
        return
    note(f"session {job_id} has ended; stopping the forwarder")
    stop.set()
