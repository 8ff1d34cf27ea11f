"""Routes of buyers: blobs, quote, submit, list, show, follow, cancel, outputs, sessions.

Signed writes go through ``SignedWrite.apply`` (nonce and change in one transaction);
after the commit, ``Dispatcher`` wakes the matcher and anyone following the job.
Long-polls (``wait_s``) re-read the store when woken or every second.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy import Connection, select

from gpunet.api.jobs import (
    JOB_ID_PATTERN,
    SHA256_PATTERN,
    CancelIn,
    EventPage,
    JobDetail,
    JobEvent,
    JobList,
    JobSubmit,
    LogLine,
    LogPage,
    OfferCheck,
    QuoteIn,
    QuoteOut,
    SessionAccess,
)
from gpunet.errors import ValidationError
from gpunet.indexer import jobs
from gpunet.indexer.context import IndexerContext
from gpunet.indexer.database import session_on
from gpunet.indexer.deps import Context, ReadSession, Signed
from gpunet.indexer.error_handlers import ERROR_RESPONSES, SIGNED_ERROR_RESPONSES
from gpunet.indexer.orm import JobRecord, NodeRecord
from gpunet.indexer.rules import job_rules
from gpunet.indexer.signing import SIGNED_OPENAPI
from gpunet.protocol import matching, pricing
from gpunet.protocol.jobspec import billing_units, job_spec_from_dict
from gpunet.protocol.leases import TERMINAL

router = APIRouter(prefix="/v1", tags=["jobs"], responses=ERROR_RESPONSES)

T = TypeVar("T")
MAX_WAIT_S = 30.0
QUOTE_NODES = 5000


def job_id_path(job_id: str) -> str:
    import re

    if not re.fullmatch(JOB_ID_PATTERN, job_id):
        raise ValidationError("job_id", job_id, "job ids look like j-0123456789abcdef")
    return job_id


@router.put(
    "/blobs/{sha256}",
    summary="Upload a file by its SHA-256",
    description="Signed. The body is the file's bytes; the path names its SHA-256, "
    "which the indexer checks. Uploading a stored file again does nothing (200).",
    responses={**SIGNED_ERROR_RESPONSES, 201: {"description": "stored"}},
    openapi_extra=SIGNED_OPENAPI,
    status_code=status.HTTP_201_CREATED,
)
async def put_blob(
    sha256: str, request: Request, signed: Signed, context: Context, response: Response
) -> dict[str, str | int]:
    data = await request.body()
    _check_hash(sha256, data)
    now = context.clock()

    def change(connection: Connection) -> bool:
        with session_on(connection) as session:
            return jobs.put_blob(session, sha256, data, now)

    created = await signed.apply(change)
    if not created:
        response.status_code = status.HTTP_200_OK
    return {"sha256": sha256, "size": len(data)}


def _check_hash(sha256: str, data: bytes) -> None:
    import re

    if not re.fullmatch(SHA256_PATTERN, sha256):
        raise ValidationError("sha256", sha256, "name the file by 64 lowercase hex digits")
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ValidationError(
            "sha256", sha256, f"the body's SHA-256 is {actual}: upload the file the path names"
        )


@router.post(
    "/jobs/quote",
    summary="Price a job spec on the current market",
    description="Which online offers qualify for the spec and why the others do not, "
    "the best price, the estimated cost for the spec's max duration and the savings "
    "against a reference cloud price. Moves no money.",
    response_model=QuoteOut,
)
def quote(body: QuoteIn, session: ReadSession, context: Context) -> QuoteOut:
    spec = job_spec_from_dict(body.spec, source="spec")
    now = context.clock()
    cutoff = context.liveness_cutoff(now)
    nodes = session.scalars(
        select(NodeRecord)
        .where(NodeRecord.state != "offline", NodeRecord.last_heartbeat_at >= cutoff)
        .order_by(NodeRecord.price_micros)
        .limit(QUOTE_NODES)
    ).all()
    probe = JobRecord(job_id="j-0000000000000000", excluded_nodes="", created_at=now, group_id=None)
    wanted = jobs.demand(probe, spec, frozenset())
    weights = _weights(context)
    checks: list[tuple[float, OfferCheck]] = []
    for node in nodes:
        candidate = jobs.candidate(node)
        reason = matching.disqualification(wanted, replace(candidate, state="idle"))
        price = matching.unit_price_micros(wanted, candidate)
        if reason is None and not node.runtimes:
            reason = "takes no jobs (no runtime)"
        check = OfferCheck(
            node_id=node.node_id,
            gpu=node.gpu_model,
            gpu_count=node.gpu_count,
            price_micros=price,
            region=node.region,
            state=node.state,
            qualifies=reason is None,
            reason=reason,
            value_per_dollar=matching.reliability_adjusted_value(candidate),
        )
        rank = matching.score(wanted, candidate, weights) if reason is None else float("inf")
        checks.append((rank, check))
    checks.sort(key=lambda item: (item[0], item[1].price_micros))
    qualifying = [c for rank, c in checks if c.qualifies]
    units = billing_units(spec)
    duration = spec.session_hold_s if spec.kind == "session" else spec.max_duration_s
    best = qualifying[0] if qualifying else None
    estimate = None
    if best is not None:
        model = best.gpu if spec.resources.gpu_count else "CPU"
        q = pricing.quote(best.price_micros, model, units, duration)
        estimate = q
    advice = None if best else _advice(checks)
    return QuoteOut(
        qualifying=len(qualifying),
        checked=len(checks),
        best=best,
        price_micros=best.price_micros if best else None,
        units=units,
        duration_s=duration,
        estimated_micros=estimate.estimated_micros if estimate else None,
        hold_micros=jobs.budget_hold(spec) * spec.redundancy,
        reference_micros=estimate.reference_micros if estimate else None,
        reference_source=estimate.reference_source if estimate else None,
        savings_pct=estimate.savings_pct if estimate else None,
        offers=[c for _, c in checks[:20]],
        advice=advice,
    )


def _advice(checks: list[tuple[float, OfferCheck]]) -> str:
    if not checks:
        return "no node is online: start one with `gpunet node start`, or try later"
    reasons: dict[str, int] = {}
    for _, check in checks:
        if check.reason:
            key = check.reason.split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
    common = sorted(reasons.items(), key=lambda kv: -kv[1])[:3]
    listed = "; ".join(f"{reason} ({count} offers)" for reason, count in common)
    return f"no online offer qualifies; most common reasons: {listed}"


def _weights(context: IndexerContext) -> matching.Weights:
    s = context.settings
    return matching.Weights(
        price=s.match_weight_price,
        reputation=s.match_weight_reputation,
        latency=s.match_weight_latency,
    )


@router.post(
    "/jobs",
    summary="Submit a job or open a session",
    description="Signed by the buyer. The spec is validated, the inputs must have been "
    "uploaded, some online offer must qualify (busy or not), and the buyer's available "
    "funds must cover one hold at the budget price; otherwise nothing is written and the "
    "answer names the field to change. Funds are held when a node is matched.",
    response_model=JobDetail,
    status_code=status.HTTP_201_CREATED,
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def submit(body: JobSubmit, signed: Signed, context: Context) -> JobDetail:
    now = context.clock()
    rules = job_rules(context.settings)

    def change(connection: Connection) -> JobDetail:
        with session_on(connection) as session:
            cutoff = context.liveness_cutoff(now)
            records = jobs.submit(session, signed.address, body, now, rules, cutoff)
            return jobs.detail(session, records[0])

    detail = await signed.apply(change)
    context.dispatch.wake_matcher()
    return detail


@router.get(
    "/jobs",
    summary="List jobs",
    description="Newest first, filtered by buyer address and state.",
    response_model=JobList,
)
def list_jobs(
    session: ReadSession,
    buyer: Annotated[str | None, Query(pattern=r"^0x[0-9a-fA-F]{40}$")] = None,
    state: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> JobList:
    found, total = jobs.list_jobs(session, buyer=buyer, state=state, limit=limit, offset=offset)
    return JobList(jobs=found, total=total)


@router.get(
    "/jobs/{job_id}",
    summary="Show a job",
    description="State, the lease's exact hardware and price, money held and charged, "
    "inputs and outputs with their SHA-256.",
    response_model=JobDetail,
)
def get_job(job_id: str, session: ReadSession) -> JobDetail:
    return jobs.detail(session, jobs.get_job(session, job_id_path(job_id)))


async def _long_poll(
    context: IndexerContext, key: str, wait_s: float, read: Callable[[], tuple[list[T], str]]
) -> tuple[list[T], str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(max(wait_s, 0.0), MAX_WAIT_S)
    while True:
        items, state = await asyncio.to_thread(read)
        remaining = deadline - loop.time()
        if items or remaining <= 0 or state in {s.value for s in TERMINAL}:
            return items, state
        await context.dispatch.wait(key, remaining)


def _read_events(context: IndexerContext, job_id: str, after: int) -> tuple[list[JobEvent], str]:
    with context.database.reading() as session:
        record = jobs.get_job(session, job_id)
        return jobs.events_after(session, job_id, after), record.state


def _read_logs(context: IndexerContext, job_id: str, after: int) -> tuple[list[LogLine], str]:
    with context.database.reading() as session:
        record = jobs.get_job(session, job_id)
        return jobs.logs_after(session, job_id, after), record.state


@router.get(
    "/jobs/{job_id}/events",
    summary="Follow a job's lifecycle",
    description="Transitions after sequence number `after`, each with time and cause; "
    "with `wait_s`, waits up to that long (at most 30 s) for the next one.",
    response_model=EventPage,
)
async def job_events(
    job_id: str,
    context: Context,
    after: Annotated[int, Query(ge=0)] = 0,
    wait_s: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0.0,
) -> EventPage:
    job_id_path(job_id)
    events, state = await _long_poll(
        context, job_id, wait_s, partial(_read_events, context, job_id, after)
    )
    return EventPage(events=events, state=state, next_after=events[-1].seq if events else after)


@router.get(
    "/jobs/{job_id}/logs",
    summary="Follow a job's log",
    description="Log lines after sequence number `after`; with `wait_s`, waits for more.",
    response_model=LogPage,
)
async def job_logs(
    job_id: str,
    context: Context,
    after: Annotated[int, Query(ge=0)] = 0,
    wait_s: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0.0,
) -> LogPage:
    job_id_path(job_id)
    lines, state = await _long_poll(
        context, job_id, wait_s, partial(_read_logs, context, job_id, after)
    )
    return LogPage(lines=lines, state=state, next_after=lines[-1].seq if lines else after)


@router.post(
    "/jobs/{job_id}/cancel",
    summary="Cancel a job or close a session",
    description="Signed by the buyer. Before a node starts, the hold goes back in full; "
    "while running, usage up to now is paid and the rest of the hold goes back.",
    response_model=JobDetail,
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def cancel(job_id: str, body: CancelIn, signed: Signed, context: Context) -> JobDetail:
    now = context.clock()
    rules = job_rules(context.settings)
    job_id_path(job_id)

    def change(connection: Connection) -> tuple[JobDetail, str | None]:
        with session_on(connection) as session:
            record = jobs.cancel(session, job_id, signed.address, body.reason, now, rules)
            return jobs.detail(session, record), record.node_id

    detail, node_id = await signed.apply(change)
    context.dispatch.notify(job_id)
    if node_id:
        context.dispatch.notify(node_id)
    context.dispatch.wake_matcher()
    return detail


@router.get(
    "/jobs/{job_id}/outputs/{path:path}",
    summary="Download one output",
    description="Signed by the buyer. The bytes of the output file at `path`; their "
    "SHA-256 is in the job's `outputs`.",
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
    response_class=Response,
)
async def get_output(job_id: str, path: str, signed: Signed, context: Context) -> Response:
    job_id_path(job_id)
    await signed.burn()

    def read() -> bytes:
        with context.database.reading() as session:
            record = jobs.get_job(session, job_id)
            jobs.require_buyer(record, signed.address)
            ref = jobs.file_of(session, job_id, "output", path)
            return jobs.blob_bytes(session, ref.sha256)

    data = await asyncio.to_thread(read)
    return Response(content=data, media_type="application/octet-stream")


@router.get(
    "/jobs/{job_id}/session",
    summary="How to connect to a session",
    description="Signed by the buyer: the node's forwarder endpoint and the token it "
    "asks for. Only the buyer gets the token.",
    response_model=SessionAccess,
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def session_access(job_id: str, signed: Signed, context: Context) -> SessionAccess:
    job_id_path(job_id)
    await signed.burn()

    def read() -> SessionAccess:
        with context.database.reading() as session:
            record = jobs.get_job(session, job_id)
            jobs.require_buyer(record, signed.address)
            spec = jobs.spec_of(record)
            running = record.state == "running"
            return SessionAccess(
                job_id=job_id,
                state=record.state,
                endpoint=record.session_endpoint if running else None,
                token=record.session_token if running else None,
                port=spec.expose_port,
            )

    return await asyncio.to_thread(read)
