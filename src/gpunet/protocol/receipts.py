"""Usage receipts: what the node and the client each sign about one attempt of a job.

The node signs, with its operator key, the attempt's outcome, the seconds it billed and
the digest of the outputs it delivered; the client signs, with the buyer's key, whether
the outputs it downloaded and checked are those (``accepted``) or not (``disputed``).
Both messages are EIP-191 texts, one field a line, like ``protocol.auth``'s::

    gpunet-node-receipt-v1          gpunet-client-receipt-v1
    <job_id>                        <job_id>
    <attempt>                       <attempt>
    <outcome>                       accepted | disputed
    <usage in whole milliseconds>   <outputs digest>
    <outputs digest>

The outputs digest is the SHA-256 of the sorted ``path NUL sha256 LF`` lines, so the
order the outputs are listed in does not matter.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from enum import StrEnum

from gpunet.errors import ValidationError

NODE_SCHEME = "gpunet-node-receipt-v1"
CLIENT_SCHEME = "gpunet-client-receipt-v1"
_TOKEN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ClientVerdict(StrEnum):
    """What the client says about the outputs it received."""

    ACCEPTED = "accepted"
    DISPUTED = "disputed"


def outputs_digest(outputs: Iterable[tuple[str, str]]) -> str:
    """SHA-256 (hex) over the (path, sha256) pairs, in sorted order."""
    lines = sorted(f"{path}\0{digest}\n" for path, digest in outputs)
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def usage_ms(usage_s: float) -> int:
    """Billed seconds as the whole milliseconds a receipt states."""
    return round(usage_s * 1000)


def node_receipt_message(
    job_id: str, attempt: int, outcome: str, usage_s: float, digest: str
) -> str:
    """The text a node signs for one attempt it finished."""
    fields = (_token("job_id", job_id), str(_attempt(attempt)), _token("outcome", outcome))
    return "\n".join((NODE_SCHEME, *fields, str(usage_ms(usage_s)), _digest(digest)))


def client_receipt_message(
    job_id: str, attempt: int, verdict: ClientVerdict | str, digest: str
) -> str:
    """The text a client signs about the outputs of one attempt."""
    try:
        said = ClientVerdict(verdict)
    except ValueError:
        raise ValidationError("verdict", verdict, "must be accepted or disputed") from None
    fields = (_token("job_id", job_id), str(_attempt(attempt)), said.value, _digest(digest))
    return "\n".join((CLIENT_SCHEME, *fields))


def signer_of(message: str, signature: str) -> str | None:
    """The address that signed ``message``, or None when the signature is unreadable."""
    # Imported here: eth-account takes half a second to load, and most callers never sign.
    from eth_account import Account
    from eth_account.messages import encode_defunct

    try:
        address: str = Account.recover_message(encode_defunct(text=message), signature=signature)
    except Exception:
        return None
    return address


def _token(name: str, value: str) -> str:
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise ValidationError(name, value, "use 1-64 letters, digits, dots, dashes or colons")
    return value


def _attempt(attempt: int) -> int:
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValidationError("attempt", attempt, "attempts count from 1")
    return attempt


def _digest(digest: str) -> str:
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise ValidationError("outputs_sha256", digest, "must be 64 lowercase hex digits")
    return digest
