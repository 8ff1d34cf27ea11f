"""Buyer workflows over a ``Client``: submit a spec file, follow a job, fetch its outputs.

    from pathlib import Path
    from gpunet.sdk import Client
    from gpunet.sdk.jobs import download_outputs, follow, submit_spec_file

    with Client(url, account=buyer) as api:
        job = submit_spec_file(api, Path("job.yaml"))
        for item in follow(api, job.job_id):
            print(item)
        download_outputs(api, api.get_job(job.job_id), Path("out"))

Input files are checked before anything is uploaded, outputs are checked against the
node's receipt before anything is written, and nothing is written outside ``dest``.
``job_bill`` says what a job cost: charged (the protocol fee included), the hold and
its refund, the usage seconds.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from gpunet.api.jobs import FileRef, JobDetail, JobEvent, LogLine
from gpunet.errors import ApiError, GpunetError, ValidationError
from gpunet.protocol.jobspec import (
    InputFile,
    JobSpec,
    billing_units,
    job_spec_from_dict,
    job_spec_to_dict,
    parse_job_spec,
)
from gpunet.protocol.leases import TERMINAL
from gpunet.protocol.ledger import DEFAULT_FEE_BPS, fee_for, hold_amount
from gpunet.protocol.receipts import ClientVerdict
from gpunet.sdk._core import sha256_hex
from gpunet.sdk.client import Client
from gpunet.sdk.receipts import client_receipt

__all__ = [
    "TERMINAL_STATES",
    "Bill",
    "LocalInput",
    "OutputMismatch",
    "all_events",
    "all_log_lines",
    "download_outputs",
    "find_inputs",
    "follow",
    "hold_of",
    "job_bill",
    "load_spec",
    "submit_spec",
    "submit_spec_file",
    "upload_inputs",
]

TERMINAL_STATES = frozenset(state.value for state in TERMINAL)
DEFAULT_POLL_S = 20.0

Progress = Callable[["LocalInput"], None]


class OutputMismatch(GpunetError):
    """A downloaded output whose size or SHA-256 differs from the node's receipt."""

    def __init__(self, job_id: str, ref: FileRef, size: int, sha256: str) -> None:
        self.job_id = job_id
        self.ref = ref
        super().__init__(
            f"output {ref.path!r} of job {job_id} is {size} bytes with SHA-256 {sha256}, "
            f"but the receipt says {ref.size} bytes with SHA-256 {ref.sha256}; it was not "
            "saved: download it again, and report the job if it differs again"
        )


@dataclass(frozen=True)
class LocalInput:
    """An input file on this machine and the place in the job's work dir it goes to."""

    index: int
    path: Path
    target: str
    size: int


def load_spec(path: Path) -> JobSpec:
    """Read and check a YAML spec file; errors name the file and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValidationError("spec", str(path), f"cannot read the spec file ({reason})") from None
    return parse_job_spec(text, source=str(path))


def find_inputs(spec: JobSpec, spec_dir: Path) -> list[LocalInput]:
    """Every input's file, resolved against ``spec_dir``; all checked before any upload."""
    return [_local_input(index, item, spec_dir) for index, item in enumerate(spec.inputs)]


def _local_input(index: int, item: InputFile, spec_dir: Path) -> LocalInput:
    path = spec_dir / Path(item.source).expanduser()
    if not path.is_file():
        problem = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ValidationError(
            f"inputs[{index}].source",
            item.source,
            f"{path} {problem}; paths are relative to the spec file's folder",
        )
    return LocalInput(index, path, item.target, path.stat().st_size)


def upload_inputs(
    client: Client, files: list[LocalInput], on_upload: Progress | None = None
) -> list[FileRef]:
    """Upload each file as a blob; returns the ``FileRef``s to submit with the spec."""
    refs = []
    for item in files:
        try:
            data = item.path.read_bytes()
        except OSError as exc:
            raise ValidationError(
                f"inputs[{item.index}].source", str(item.path), f"cannot read it ({exc.strerror})"
            ) from None
        digest = client.upload_blob(data)
        refs.append(FileRef(path=item.target, sha256=digest, size=len(data)))
        if on_upload is not None:
            on_upload(item)
    return refs


def submit_spec(
    client: Client, spec: JobSpec, spec_dir: Path, on_upload: Progress | None = None
) -> JobDetail:
    """Check the inputs exist, upload them, and submit ``spec``."""
    files = find_inputs(spec, spec_dir)
    refs = upload_inputs(client, files, on_upload)
    return client.submit_job(job_spec_to_dict(spec), refs)


def submit_spec_file(client: Client, path: Path) -> JobDetail:
    """Parse the spec file at ``path``, upload its inputs and submit it."""
    return submit_spec(client, load_spec(path), path.parent)


# -- following a job --


@dataclass(frozen=True)
class _Failed:
    error: Exception


_DONE = object()
Page = tuple[list[JobEvent] | list[LogLine], str, int]
Fetch = Callable[[int, float], Page]


def follow(
    client: Client,
    job_id: str,
    *,
    poll_s: float = DEFAULT_POLL_S,
    after_event: int = 0,
    after_line: int | None = 0,
) -> Generator[JobEvent | LogLine, None, None]:
    """Lifecycle events and log lines of a job, each in order, as they come.

    Events and logs are long-polled side by side (``poll_s`` seconds a poll), from
    after the sequence numbers ``after_event`` and ``after_line`` (``None``: events
    only); the iterator ends once the job has reached a terminal state and every feed
    is drained. An error of a poll is raised here; closing the generator stops them.
    """

    def events(after: int, wait_s: float) -> Page:
        page = client.job_events(job_id, after, wait_s)
        return page.events, page.state, page.next_after

    def logs(after: int, wait_s: float) -> Page:
        page = client.job_logs(job_id, after, wait_s)
        return page.lines, page.state, page.next_after

    feeds: list[tuple[str, Fetch, int]] = [("events", events, after_event)]
    if after_line is not None:
        feeds.append(("logs", logs, after_line))
    found: queue.Queue[object] = queue.Queue()
    stop = threading.Event()
    for name, fetch, after in feeds:
        thread = threading.Thread(
            target=_pump,
            args=(fetch, after, poll_s, found, stop),
            name=f"follow-{name}",
            daemon=True,
        )
        thread.start()
    try:
        yield from _drain(found, feeds=len(feeds))
    finally:
        stop.set()


def all_events(client: Client, job_id: str) -> list[JobEvent]:
    """Every event recorded so far, page after page, without waiting."""
    events: list[JobEvent] = []
    after = 0
    while True:
        page = client.job_events(job_id, after)
        events += page.events
        if not page.events or page.next_after <= after:
            return events
        after = page.next_after


def all_log_lines(client: Client, job_id: str) -> Iterator[LogLine]:
    """Every log line recorded so far, page after page, without waiting."""
    after = 0
    while True:
        page = client.job_logs(job_id, after)
        yield from page.lines
        if not page.lines or page.next_after <= after:
            return
        after = page.next_after


def _drain(found: queue.Queue[object], feeds: int) -> Iterator[JobEvent | LogLine]:
    while feeds:
        try:
            # A timeout keeps Ctrl-C responsive while nothing comes.
            item = found.get(timeout=0.5)
        except queue.Empty:
            continue
        if item is _DONE:
            feeds -= 1
        elif isinstance(item, _Failed):
            raise item.error
        elif isinstance(item, JobEvent | LogLine):
            yield item


def _pump(
    fetch: Fetch, after: int, poll_s: float, found: queue.Queue[object], stop: threading.Event
) -> None:
    """Long-poll one feed into ``found`` until the job has ended and the feed is empty."""
    wait_s = poll_s
    try:
        while not stop.is_set():
            items, state, after = fetch(after, wait_s)
            for item in items:
                found.put(item)
            if state in TERMINAL_STATES:
                if not items:
                    return
                wait_s = 0.0  # drain what is left without waiting
    except Exception as exc:
        found.put(_Failed(exc))
    finally:
        found.put(_DONE)


# -- the bill --


@dataclass(frozen=True)
class Bill:
    """What a job cost: ``charged_micros`` includes ``fee_micros``; ``held_micros`` is
    what its last match held (None when unknown) and ``refunded_micros`` its unused part."""

    charged_micros: int
    fee_micros: int
    fee_bps: int
    held_micros: int | None
    refunded_micros: int | None
    usage_s: float


def job_bill(job: JobDetail, fee_bps: int = DEFAULT_FEE_BPS) -> Bill:
    """The bill of ``job`` from the indexer's ledger totals.

    An indexer that reports no holds yet (older versions) gets the fee worked out at
    ``fee_bps`` and the hold from the lease price instead.
    """
    ended = job.state in TERMINAL_STATES
    if job.held_total_micros:
        charged = job.charged_micros
        rate = charged and round(job.fee_micros * 10_000 / charged)
        refunded = job.refunded_micros if ended else None
        return Bill(charged, job.fee_micros, rate, job.held_total_micros, refunded, job.usage_s)
    held = hold_of(job)
    refunded = max(held - job.charged_micros, 0) if held is not None and ended else None
    fee = fee_for(job.charged_micros, fee_bps)
    return Bill(job.charged_micros, fee, fee_bps, held, refunded, job.usage_s)


def hold_of(job: JobDetail) -> int | None:
    """What the last match held for a job: its lease price for the whole max_duration.

    None for sessions (paid as they go), before a match, and for a spec this version of
    gpunet cannot read.
    """
    if job.lease is None or job.kind != "job":
        return None
    try:
        spec = job_spec_from_dict(job.spec)
    except ValidationError:
        return None
    return hold_amount(job.lease.price_micros, billing_units(spec), spec.max_duration_s)


# -- outputs --


def download_outputs(client: Client, job: JobDetail, dest: Path) -> list[Path]:
    """Download every output of ``job`` into ``dest``, checked against its ``FileRef``.

    Each file is written atomically (a temporary file, then a rename) only after its
    size and SHA-256 match; a path that would leave ``dest`` is refused before any
    download. Then the buyer signs for the outputs: an ``accepted`` receipt when every
    file checked out, a ``disputed`` one (and ``OutputMismatch``) when one did not.
    Returns the files written, in the job's order.
    """
    root = dest.expanduser().resolve()
    targets = [_output_target(root, index, ref.path) for index, ref in enumerate(job.outputs)]
    written = []
    for ref, target in zip(job.outputs, targets, strict=True):
        data = client.download_output(job.job_id, ref.path)
        digest = sha256_hex(data)
        if digest != ref.sha256 or len(data) != ref.size:
            sign_for_outputs(client, job, ClientVerdict.DISPUTED)
            raise OutputMismatch(job.job_id, ref, len(data), digest)
        write_atomic(target, data)
        written.append(target)
    sign_for_outputs(client, job, ClientVerdict.ACCEPTED)
    return written


def sign_for_outputs(client: Client, job: JobDetail, verdict: ClientVerdict) -> bool:
    """Send the buyer's signed receipt for a finished job; False when the indexer
    refused it (the job is not finished, or already has another receipt)."""
    account = client.core.account
    if account is None or job.state not in {s.value for s in TERMINAL} or job.attempts < 1:
        return False
    receipt = client_receipt(account, job.job_id, job.attempts, job.outputs, verdict)
    try:
        client.send_receipt(job.job_id, receipt)
    except ApiError:
        return False
    return True


def _output_target(root: Path, index: int, path: str) -> Path:
    target = (root / path).resolve()
    if path.startswith("/") or "\\" in path or not target.is_relative_to(root) or target == root:
        raise ValidationError(
            f"outputs[{index}].path",
            path,
            f"would be written outside {root}; refused (a relative path like out/a.csv is "
            "expected)",
        )
    return target


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` is either its old self or complete, never partial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
