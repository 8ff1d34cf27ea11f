"""Routes of checkers and checks: register, long-poll tasks, report results, read.

Checkers sign every call. A result carries a second signature of its own, over the
check, the node, the verdict and the evidence (``protocol.vote.result_message``), so
anyone can verify a vote later from ``GET /v1/checks/{id}``; the request signature
only proves who sent it, once.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import Connection

from gpunet.api.checks import (
    ADDRESS_PATTERN,
    CHECK_ID_PATTERN,
    CheckerList,
    CheckerPublic,
    CheckerRegistration,
    CheckPublic,
    CheckResultAck,
    CheckResultIn,
    NodeChecks,
    TaskBatch,
)
from gpunet.api.jobs import SHA256_PATTERN
from gpunet.errors import NotFoundError
from gpunet.indexer import check_views, checkers, checks, jobs
from gpunet.indexer.check_loop import checker_key, current_epoch
from gpunet.indexer.context import IndexerContext
from gpunet.indexer.database import session_on
from gpunet.indexer.deps import Context, ReadSession, Signed
from gpunet.indexer.error_handlers import ERROR_RESPONSES, SIGNED_ERROR_RESPONSES
from gpunet.indexer.signing import SIGNED_OPENAPI
from gpunet.protocol.offers import validate_node_id
from gpunet.protocol.vote import panel_size

router = APIRouter(prefix="/v1", tags=["checks"], responses=ERROR_RESPONSES)

MAX_WAIT_S = 30.0
CheckId = Annotated[str, Path(pattern=CHECK_ID_PATTERN)]
Address = Annotated[str, Path(pattern=ADDRESS_PATTERN)]


@router.post(
    "/checkers",
    summary="Register as a checker",
    description="Signed by the checker's key. Registers the signer, or refreshes its "
    "version and the operator whose nodes it must never check.",
    response_model=CheckerPublic,
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def register(body: CheckerRegistration, signed: Signed, context: Context) -> CheckerPublic:
    now = context.clock()

    def change(connection: Connection) -> CheckerPublic:
        with session_on(connection) as session:
            record = checkers.register_checker(session, signed.address, body, now)
            return checkers.checker_public(session, record, now)

    return await signed.apply(change)


def _read_tasks(context: IndexerContext, address: str) -> TaskBatch:
    now = context.clock()
    settings = context.settings
    with context.database.writing() as session:
        record = checkers.get_checker(session, address)
        checkers.touch(record, now)
        return TaskBatch(
            epoch=current_epoch(now, settings.epoch_s),
            epoch_s=settings.epoch_s,
            tasks=checks.tasks_for(session, address, now),
        )


@router.get(
    "/checkers/me/tasks",
    summary="Wait for check tasks",
    description="Signed by a registered checker. The open checks on which it has a seat "
    "it has not filled; with `wait_s`, waits up to that long (at most 30 s) when there "
    "are none. Polling keeps the checker active: only active checkers sit on panels.",
    response_model=TaskBatch,
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def poll_tasks(
    signed: Signed,
    context: Context,
    wait_s: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 20.0,
) -> TaskBatch:
    await signed.burn()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        batch = await asyncio.to_thread(_read_tasks, context, signed.address)
        remaining = deadline - loop.time()
        if batch.tasks or remaining <= 0:
            return batch
        await context.dispatch.wait(checker_key(signed.address), remaining)


@router.post(
    "/checks/{check_id}/results",
    summary="Report a check result",
    description="Signed by a checker on the check's panel, before the check is due. The "
    "body's `signature` must recover to the same checker over "
    "`protocol.vote.result_message`. Refused: not on the panel (403), a second result "
    "or a closed or overdue check (409), a signature by another key or over other "
    "content (422).",
    response_model=CheckResultAck,
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def report(
    check_id: CheckId, body: CheckResultIn, signed: Signed, context: Context
) -> CheckResultAck:
    now = context.clock()

    def change(connection: Connection) -> CheckResultAck:
        with session_on(connection) as session:
            seats = panel_size(context.settings.checker_n)
            _check, ack = checks.record_result(session, check_id, signed.address, body, now, seats)
            return ack

    return await signed.apply(change)


@router.get(
    "/checks/{check_id}/outputs/{sha256}",
    summary="Download an output a delivery check verifies",
    description="Signed by a checker on the check's panel: the bytes of one output the "
    "node reported for the job under check.",
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def delivery_output(
    check_id: CheckId,
    sha256: Annotated[str, Path(pattern=SHA256_PATTERN)],
    signed: Signed,
    context: Context,
) -> Response:
    await signed.burn()

    def read() -> bytes:
        with context.database.reading() as session:
            check = checks.get_check(session, check_id)
            checks.require_panel_member(session, check, signed.address)
            if check.job_id is None or not any(
                ref.sha256 == sha256 for ref in jobs.files_of(session, check.job_id, "output")
            ):
                raise NotFoundError(f"check {check_id} has no output with sha256 {sha256}")
            return jobs.blob_bytes(session, sha256)

    data = await asyncio.to_thread(read)
    return Response(content=data, media_type="application/octet-stream")


@router.get(
    "/checks/{check_id}",
    summary="One check and its votes",
    description="The check's panel, its verdict once closed, and each vote with the "
    "checker's own signature, which anyone can verify with `protocol.vote.result_message`.",
    response_model=CheckPublic,
)
def get_check(check_id: CheckId, session: ReadSession) -> CheckPublic:
    return check_views.check_public(session, checks.get_check(session, check_id))


@router.get(
    "/nodes/{node_id}/checks",
    summary="A node's checks, reputation and penalties",
    description="Newest checks first, each with its panel's signed votes.",
    response_model=NodeChecks,
)
def node_checks(
    node_id: str,
    session: ReadSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> NodeChecks:
    return check_views.node_checks(session, validate_node_id(node_id), limit)


@router.get(
    "/checkers",
    summary="Every checker and its standing",
    description="Results reported, results against the majority (all time and this "
    "week) and whether the checker is barred from rewards.",
    response_model=CheckerList,
)
def list_checkers(session: ReadSession, context: Context) -> CheckerList:
    return CheckerList(checkers=checkers.list_checkers(session, context.clock()))


@router.get(
    "/checkers/{address}",
    summary="One checker",
    description="A checker's record and standing; 404 for an address never registered.",
    response_model=CheckerPublic,
)
def get_checker(address: Address, session: ReadSession, context: Context) -> CheckerPublic:
    record = checkers.get_checker(session, address)
    return checkers.checker_public(session, record, context.clock())
