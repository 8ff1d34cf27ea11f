"""Signed requests: every state-changing call carries an Ethereum signature.

The signer signs, with EIP-191 ``personal_sign`` (as wallets do), a message made of
the HTTP method, the path with its query string, the SHA-256 of the body, a unix
timestamp and a fresh nonce::

    gpunet-request-v1
    POST
    /v1/nodes/n-3fa2c1/heartbeat
    9f86d081884c7d65...
    1764072000
    4b1d0c5e2f...

The same key that stakes on chain speaks to the indexer. This module recovers and
checks the signer; refusing a nonce seen before is the store's job, since only it
remembers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from gpunet.errors import AuthError

SCHEME = "gpunet-request-v1"
HEADER_ADDRESS = "X-Gpunet-Address"
HEADER_TIMESTAMP = "X-Gpunet-Timestamp"
HEADER_NONCE = "X-Gpunet-Nonce"
HEADER_SIGNATURE = "X-Gpunet-Signature"
SIGNED_HEADERS = (HEADER_ADDRESS, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)
DEFAULT_MAX_SKEW_S = 60
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")


@dataclass(frozen=True)
class SignedRequest:
    """What a verified request proves: who signed it, when, with which nonce."""

    address: str
    timestamp: int
    nonce: str


def body_digest(body: bytes) -> str:
    """SHA-256 of the raw body, as lowercase hex."""
    return hashlib.sha256(body).hexdigest()


def signing_message(method: str, path: str, body: bytes, timestamp: int, nonce: str) -> str:
    """The exact text a client signs for one request."""
    return "\n".join((SCHEME, method.upper(), path, body_digest(body), str(timestamp), nonce))


def sign_request(
    account: LocalAccount, method: str, path: str, body: bytes, timestamp: int, nonce: str
) -> dict[str, str]:
    """Headers that authenticate one request as ``account``."""
    message = encode_defunct(text=signing_message(method, path, body, timestamp, nonce))
    signature = account.sign_message(message).signature.hex()
    return {
        HEADER_ADDRESS: account.address,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: signature if signature.startswith("0x") else "0x" + signature,
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name) or headers.get(name.lower())
    if not value:
        raise AuthError(
            "unsigned", f"missing header {name}: sign the request with your key (the SDK does)"
        )
    return value


def verify_request(
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    now: float,
    max_skew_s: float = DEFAULT_MAX_SKEW_S,
) -> SignedRequest:
    """Check a request's signature and freshness; return who signed it.

    Raises ``AuthError`` with reason ``unsigned``, ``malformed``, ``stale`` or
    ``bad_signature``. The caller must still refuse a nonce it has seen before.
    """
    address, timestamp_text, nonce, signature = (_header(headers, h) for h in SIGNED_HEADERS)
    if not _ADDRESS.fullmatch(address):
        raise AuthError("malformed", f"{HEADER_ADDRESS} {address!r} is not a 0x address")
    if not _NONCE.fullmatch(nonce):
        raise AuthError("malformed", f"{HEADER_NONCE} {nonce!r} must be 16-64 URL-safe chars")
    if not _SIGNATURE.fullmatch(signature):
        raise AuthError("malformed", f"{HEADER_SIGNATURE} must be 0x and 130 hex digits")
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        raise AuthError(
            "malformed", f"{HEADER_TIMESTAMP} {timestamp_text!r} is not unix seconds"
        ) from None
    if abs(now - timestamp) > max_skew_s:
        raise AuthError(
            "stale",
            f"request timestamp {timestamp} is {now - timestamp:+.0f}s from the server's clock "
            f"(limit {max_skew_s:g}s): check your clock and sign the request again",
        )
    message = encode_defunct(text=signing_message(method, path, body, timestamp, nonce))
    try:
        signer = Account.recover_message(message, signature=signature)
    except Exception:
        raise AuthError("bad_signature", "signature cannot be recovered to an address") from None
    if signer.lower() != address.lower():
        raise AuthError(
            "bad_signature", f"signature was made by {signer}, not by {address}: wrong key"
        )
    return SignedRequest(address=signer, timestamp=timestamp, nonce=nonce)
