"""Usage receipts in the store: the node's, checked when it finishes; the client's, after.

Both are signed on their own (``protocol.receipts``), apart from the signed requests
that carry them, so that anyone can check them later from the job's detail: what the
node says it delivered and billed, and whether the buyer accepted it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from gpunet.api.jobs import ClientReceiptIn, FinishIn, ReceiptView
from gpunet.errors import ConflictError, ValidationError
from gpunet.indexer.orm import JobFileRecord, JobRecord
from gpunet.protocol.leases import TERMINAL
from gpunet.protocol.receipts import (
    client_receipt_message,
    node_receipt_message,
    outputs_digest,
    signer_of,
)


def node_digest(receipt: FinishIn) -> str:
    return outputs_digest((ref.path, ref.sha256) for ref in receipt.outputs)


def require_node_signature(job_id: str, receipt: FinishIn, operator: str) -> None:
    """A receipt's own signature, when it has one, must be the lease's operator's."""
    if receipt.signature is None:
        return
    message = node_receipt_message(
        job_id, receipt.attempt, receipt.outcome, receipt.usage_s, node_digest(receipt)
    )
    signer = signer_of(message, receipt.signature)
    if signer is None or signer.lower() != operator.lower():
        raise ValidationError(
            "signature",
            receipt.signature,
            f"recovers to {signer}, not to the operator {operator}: sign the receipt "
            "with the node's operator key over exactly this attempt, usage and outputs",
        )


def record_client_receipt(
    session: Session, record: JobRecord, buyer: str, body: ClientReceiptIn
) -> JobRecord:
    """Keep the buyer's signed receipt for the job's last attempt; the same one again is a
    no-op, a different one a conflict."""
    if record.state not in {s.value for s in TERMINAL} or record.receipt_json is None:
        raise ConflictError(
            f"job {record.job_id} is {record.state}: a client receipt follows the node's "
            "receipt of a finished job"
        )
    if body.attempt != record.attempts:
        raise ValidationError(
            "attempt", body.attempt, f"the job's last attempt is {record.attempts}"
        )
    if body.verdict == "accepted" and body.outputs_sha256 != _stored_digest(session, record):
        raise ValidationError(
            "outputs_sha256",
            body.outputs_sha256,
            "differs from the outputs the node delivered: accept only the outputs you "
            "downloaded and checked, or send verdict disputed",
        )
    message = client_receipt_message(record.job_id, body.attempt, body.verdict, body.outputs_sha256)
    signer = signer_of(message, body.signature)
    if signer is None or signer.lower() != buyer.lower():
        raise ValidationError(
            "signature", body.signature, f"recovers to {signer}, not to the buyer {buyer}"
        )
    stored = body.model_dump_json()
    if record.client_receipt_json not in (None, stored):
        raise ConflictError(f"job {record.job_id} already has a different client receipt")
    record.client_receipt_json = stored
    return record


def _stored_digest(session: Session, record: JobRecord) -> str:
    rows = session.query(JobFileRecord).filter_by(job_id=record.job_id, role="output")
    return outputs_digest((row.path, row.sha256) for row in rows)


def receipt_views(record: JobRecord) -> list[ReceiptView]:
    """The node's signed receipt (if it signed one) and the client's, if any."""
    views = []
    if record.receipt_json is not None:
        node = FinishIn.model_validate_json(record.receipt_json)
        if node.signature is not None and record.operator is not None:
            views.append(
                ReceiptView(
                    party="node",
                    signer=record.operator,
                    attempt=node.attempt,
                    verdict=node.outcome,
                    outputs_sha256=node_digest(node),
                    usage_s=node.usage_s,
                    signature=node.signature,
                )
            )
    if record.client_receipt_json is not None:
        client = ClientReceiptIn.model_validate_json(record.client_receipt_json)
        views.append(
            ReceiptView(
                party="client",
                signer=record.buyer,
                attempt=client.attempt,
                verdict=client.verdict,
                outputs_sha256=client.outputs_sha256,
                signature=client.signature,
            )
        )
    return views
