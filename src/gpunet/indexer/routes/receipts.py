"""The buyer's usage receipt: its signed word on the outputs of a finished job.

The node's receipt comes with ``POST /v1/jobs/{id}/finish`` (``routes/work.py``); the
rules of both live in ``indexer.receipts`` and ``protocol.receipts``.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import Connection

from gpunet.api.jobs import ClientReceiptIn, JobDetail
from gpunet.indexer import jobs, receipts
from gpunet.indexer.database import session_on
from gpunet.indexer.deps import Context, Signed
from gpunet.indexer.error_handlers import ERROR_RESPONSES, SIGNED_ERROR_RESPONSES
from gpunet.indexer.routes.jobs import job_id_path
from gpunet.indexer.signing import SIGNED_OPENAPI

router = APIRouter(prefix="/v1", tags=["jobs"], responses=ERROR_RESPONSES)


@router.post(
    "/jobs/{job_id}/receipt",
    summary="Sign for the outputs of a finished job",
    description="Signed by the buyer, after the node's receipt: `accepted` with the "
    "digest of the outputs it downloaded and checked, or `disputed`. The body's own "
    "signature (over `protocol.receipts.client_receipt_message`) is kept with the job. "
    "Sending the same receipt again changes nothing; a different one is a conflict.",
    response_model=JobDetail,
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def client_receipt(
    job_id: str, body: ClientReceiptIn, signed: Signed, context: Context
) -> JobDetail:
    job_id_path(job_id)

    def change(connection: Connection) -> JobDetail:
        with session_on(connection) as session:
            record = jobs.get_job(session, job_id, for_update=True)
            jobs.require_buyer(record, signed.address)
            receipts.record_client_receipt(session, record, signed.address, body)
            return jobs.detail(session, record)

    return await signed.apply(change)
