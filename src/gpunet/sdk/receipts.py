"""Signing usage receipts: the node's when it finishes an attempt, the client's after.

The SDK signs for its account: ``Client.finish_job`` sends the node's receipt signed,
and ``sdk.jobs.download_outputs`` sends the buyer's once every output checked out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpunet.api.jobs import ClientReceiptIn, FileRef, FinishIn
from gpunet.protocol.receipts import (
    ClientVerdict,
    client_receipt_message,
    node_receipt_message,
    outputs_digest,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount


def signed_node_receipt(account: LocalAccount, job_id: str, receipt: FinishIn) -> FinishIn:
    """``receipt`` with the operator's own signature over it."""
    digest = outputs_digest((ref.path, ref.sha256) for ref in receipt.outputs)
    message = node_receipt_message(
        job_id, receipt.attempt, receipt.outcome, receipt.usage_s, digest
    )
    return receipt.model_copy(update={"signature": _sign(account, message)})


def client_receipt(
    account: LocalAccount,
    job_id: str,
    attempt: int,
    outputs: list[FileRef],
    verdict: ClientVerdict,
) -> ClientReceiptIn:
    """The buyer's signed word on the outputs it received for ``attempt``."""
    digest = outputs_digest((ref.path, ref.sha256) for ref in outputs)
    message = client_receipt_message(job_id, attempt, verdict, digest)
    return ClientReceiptIn(
        attempt=attempt,
        verdict=verdict.value,
        outputs_sha256=digest,
        signature=_sign(account, message),
    )


def _sign(account: LocalAccount, message: str) -> str:
    from eth_account.messages import encode_defunct  # half a second to load: only to sign

    signature: str = account.sign_message(encode_defunct(text=message)).signature.hex()
    return signature if signature.startswith("0x") else "0x" + signature
