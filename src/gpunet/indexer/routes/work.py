"""Routes of nodes doing work: long-poll for assignments, start, logs, usage, files, finish.

Every route is signed by the operator of the node the job is leased to. The work
long-poll answers at once when a node has work (or jobs to stop) and otherwise waits
up to ``wait_s`` for the matcher to wake it.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy import Connection

from gpunet.api.jobs import SHA256_PATTERN, FinishIn, LogBatch, StartIn, UsageAck, UsageIn, WorkPoll
from gpunet.errors import NotFoundError, ValidationError
from gpunet.indexer import jobs, registry
from gpunet.indexer.context import IndexerContext
from gpunet.indexer.database import session_on
from gpunet.indexer.deps import Context, Signed
from gpunet.indexer.error_handlers import ERROR_RESPONSES, SIGNED_ERROR_RESPONSES
from gpunet.indexer.orm import JobRecord
from gpunet.indexer.rules import job_rules
from gpunet.indexer.signing import SIGNED_OPENAPI
from gpunet.protocol.offers import validate_node_id

router = APIRouter(prefix="/v1", tags=["work"], responses=ERROR_RESPONSES)

MAX_WAIT_S = 30.0
CANCEL_MEMORY_S = 3600.0


def _read_work(context: IndexerContext, node_id: str, operator: str) -> WorkPoll:
    now = context.clock()
    with context.database.reading() as session:
        registry.owned_node(session, node_id, operator)
        return WorkPoll(
            assignments=jobs.assignments_for(session, node_id),
            cancel=jobs.cancellations_for(session, node_id, now - CANCEL_MEMORY_S),
        )


@router.get(
    "/nodes/{node_id}/work",
    summary="Wait for work",
    description="Signed by the node's operator. Assignments (jobs matched to this node "
    "and not started) and job ids to stop now; with `wait_s`, waits up to that long "
    "(at most 30 s) when there is nothing.",
    response_model=WorkPoll,
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def poll_work(
    node_id: str,
    signed: Signed,
    context: Context,
    wait_s: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 20.0,
) -> WorkPoll:
    validate_node_id(node_id)
    await signed.burn()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        work = await asyncio.to_thread(_read_work, context, node_id, signed.address)
        remaining = deadline - loop.time()
        if work.assignments or work.cancel or remaining <= 0:
            return work
        await context.dispatch.wait(node_id, remaining)


def _job_path(job_id: str) -> str:
    if not re.fullmatch(r"^j-[0-9a-f]{16}$", job_id):
        raise ValidationError("job_id", job_id, "job ids look like j-0123456789abcdef")
    return job_id


@router.post(
    "/jobs/{job_id}/start",
    summary="Start an attempt",
    description="Signed by the leased node's operator: the node began running the job.",
    response_model=UsageAck,
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def start(job_id: str, body: StartIn, signed: Signed, context: Context) -> UsageAck:
    _job_path(job_id)
    now, rules = context.clock(), job_rules(context.settings)

    def change(connection: Connection) -> UsageAck:
        with session_on(connection) as session:
            record = jobs.start(
                session, job_id, signed.address, body.attempt, body.endpoint, now, rules
            )
            return jobs.ack(record)

    ack = await signed.apply(change)
    context.dispatch.notify(job_id)
    return ack


@router.post(
    "/jobs/{job_id}/logs",
    summary="Append log lines",
    description="Signed by the leased node's operator. Lines beyond the indexer's per-job "
    "cap are dropped (the answer counts those kept).",
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def append_logs(
    job_id: str, body: LogBatch, signed: Signed, context: Context
) -> dict[str, int]:
    _job_path(job_id)
    now, rules = context.clock(), job_rules(context.settings)

    def change(connection: Connection) -> int:
        with session_on(connection) as session:
            return jobs.append_logs(
                session, job_id, signed.address, body.attempt, body.lines, now, rules
            )

    kept = await signed.apply(change)
    context.dispatch.notify(job_id)
    return {"kept": kept}


@router.post(
    "/jobs/{job_id}/usage",
    summary="Report a session's usage",
    description="Signed by the leased node's operator: seconds used so far. The indexer "
    "bills the new seconds, refills the hold, and says whether the session goes on.",
    response_model=UsageAck,
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def report_usage(job_id: str, body: UsageIn, signed: Signed, context: Context) -> UsageAck:
    _job_path(job_id)
    now, rules = context.clock(), job_rules(context.settings)

    def change(connection: Connection) -> UsageAck:
        with session_on(connection) as session:
            return jobs.report_usage(
                session, job_id, signed.address, body.attempt, body.usage_s, now, rules
            )

    ack = await signed.apply(change)
    context.dispatch.notify(job_id)
    return ack


def _check_hash(data: bytes, sha256: str | None = None) -> str:
    actual = hashlib.sha256(data).hexdigest()
    if sha256 is not None and actual != sha256:
        raise ValidationError("sha256", sha256, f"the body's SHA-256 is {actual}")
    return actual


@router.put(
    "/jobs/{job_id}/outputs/{sha256}",
    summary="Upload one output",
    description="Signed by the leased node's operator; the body is the file's bytes.",
    responses={**SIGNED_ERROR_RESPONSES, 201: {"description": "stored"}},
    openapi_extra=SIGNED_OPENAPI,
    status_code=status.HTTP_201_CREATED,
)
async def put_output(
    job_id: str, sha256: str, request: Request, signed: Signed, context: Context
) -> dict[str, str | int]:
    _job_path(job_id)
    if not re.fullmatch(SHA256_PATTERN, sha256):
        raise ValidationError("sha256", sha256, "name the file by 64 lowercase hex digits")
    data = await request.body()
    _check_hash(data, sha256)
    now = context.clock()

    def change(connection: Connection) -> None:
        with session_on(connection) as session:
            jobs.leased_record(session, job_id, signed.address)
            jobs.put_blob(session, sha256, data, now)

    await signed.apply(change)
    return {"sha256": sha256, "size": len(data)}


@router.put(
    "/jobs/{job_id}/checkpoint",
    summary="Upload a checkpoint",
    description="Signed by the leased node's operator; the body is a tar.gz of the job's "
    "checkpoint folder. A requeued attempt starts from the last one.",
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def put_checkpoint(
    job_id: str, request: Request, signed: Signed, context: Context
) -> dict[str, str | int]:
    _job_path(job_id)
    data = await request.body()
    sha256 = _check_hash(data)
    now = context.clock()

    def change(connection: Connection) -> None:
        with session_on(connection) as session:
            jobs.put_blob(session, sha256, data, now)
            jobs.set_checkpoint(session, job_id, signed.address, sha256, now)

    await signed.apply(change)
    return {"sha256": sha256, "size": len(data)}


async def _leased_bytes(
    context: IndexerContext, job_id: str, operator: str, role: str, path: str | None
) -> bytes:
    def read() -> bytes:
        with context.database.reading() as session:
            record: JobRecord = jobs.leased_record(session, job_id, operator)
            if path is None:
                if record.checkpoint_sha256 is None:
                    raise NotFoundError(f"job {job_id} has no checkpoint yet")
                return jobs.blob_bytes(session, record.checkpoint_sha256)
            return jobs.blob_bytes(session, jobs.file_of(session, job_id, role, path).sha256)

    return await asyncio.to_thread(read)


@router.get(
    "/jobs/{job_id}/checkpoint",
    summary="Download the last checkpoint",
    description="Signed by the leased node's operator.",
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
    response_class=Response,
)
async def get_checkpoint(job_id: str, signed: Signed, context: Context) -> Response:
    _job_path(job_id)
    await signed.burn()
    data = await _leased_bytes(context, job_id, signed.address, "checkpoint", None)
    return Response(content=data, media_type="application/octet-stream")


@router.get(
    "/jobs/{job_id}/inputs/{target:path}",
    summary="Download one input",
    description="Signed by the leased node's operator.",
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
    response_class=Response,
)
async def get_input(job_id: str, target: str, signed: Signed, context: Context) -> Response:
    _job_path(job_id)
    await signed.burn()
    data = await _leased_bytes(context, job_id, signed.address, "input", target)
    return Response(content=data, media_type="application/octet-stream")


@router.post(
    "/jobs/{job_id}/finish",
    summary="Finish an attempt with a usage receipt",
    description="Signed by the leased node's operator: outcome, exit code, seconds used "
    "and the outputs' SHA-256. The indexer bills the usage (capped by what it observed), "
    "pays the operator less the protocol fee and returns the rest of the hold. A job "
    "that already ended (cancelled) answers 409 with the receipt stored.",
    response_model=UsageAck,
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def finish(job_id: str, body: FinishIn, signed: Signed, context: Context) -> UsageAck:
    _job_path(job_id)
    now, rules = context.clock(), job_rules(context.settings)

    def change(connection: Connection) -> UsageAck:
        with session_on(connection) as session:
            return jobs.ack(jobs.finish(session, job_id, signed.address, body, now, rules))

    ack = await signed.apply(change)
    context.dispatch.notify(job_id)
    context.dispatch.wake_matcher()
    return ack
