"""Signed requests: the signature check, and the nonce recorded with the request's write.

``verify_signed_request``, the dependency behind ``deps.Signed``, verifies the
signature over the exact bytes on the wire (method, raw path with query string, body)
with ``protocol.auth.verify_request``. That is pure CPU (about 0.13 ms) and runs on
the event loop; it does not touch the database.

The route then hands its change to ``SignedWrite.apply``, which runs ONE transaction
in the store's writer (``Database.run_write``): record the nonce, then apply the
change. A nonce the signer used before is refused as a replay (401, nothing written).
When the change is refused (403, 404, 409, 422) or fails, its transaction rolls back
and the nonce alone is committed in a small transaction of its own, so a refused
request cannot be replayed either; that second transaction exists on the error path
only. A request refused after the signature check but before its route runs (a body
that fails validation) has its nonce recorded by that refusal's error handler
(``record_unwritten_nonce``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy import Connection

from gpunet.errors import AuthError
from gpunet.indexer import store
from gpunet.indexer.context import indexer_context
from gpunet.indexer.database import Database
from gpunet.protocol import auth
from gpunet.protocol.auth import SignedRequest

T = TypeVar("T")

_DESCRIPTIONS = {
    auth.HEADER_ADDRESS: "signer's Ethereum address (0x and 40 hex digits)",
    auth.HEADER_TIMESTAMP: "unix seconds when the request was signed",
    auth.HEADER_NONCE: "a fresh random string of 16-64 URL-safe characters",
    auth.HEADER_SIGNATURE: "EIP-191 signature of the gpunet-request-v1 message",
}


def _documented_header(name: str) -> dict[str, Any]:
    description = _DESCRIPTIONS[name]
    return {
        "description": description,
        "in": "header",
        "name": name,
        "required": False,
        "schema": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": description,
            "title": name,
        },
    }


SIGNED_OPENAPI: dict[str, Any] = {
    "parameters": [_documented_header(name) for name in auth.SIGNED_HEADERS]
}
"""``openapi_extra`` of every signed route: its four headers, in the schema only.

The dependency reads the headers from the request itself; as FastAPI parameters
they would cost about 40 us a request for nothing but documentation.
"""


def signed_target(request: Request) -> str:
    """The request target as the client sent and signed it: raw path and query."""
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else request.url.path
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


@dataclass
class SignedWrite:
    """A request whose signature checked out; its nonce is recorded with its write.

    ``apply`` (or, for a request refused before its write, ``burn``) records the
    nonce exactly once.
    """

    signed: SignedRequest
    database: Database
    received_at: float
    recorded: bool = field(default=False, init=False)

    @property
    def address(self) -> str:
        """The signer's address, checksummed."""
        return self.signed.address

    async def apply(self, change: Callable[[Connection], T]) -> T:
        """Record the nonce and run ``change`` in one transaction; return its result.

        Raises ``AuthError`` (replayed) when the nonce was used before, and whatever
        ``change`` raises, after committing the nonce on its own.
        """
        if self.recorded:
            raise RuntimeError("a signed request records its nonce once: apply it once")
        self.recorded = True
        try:
            return await self.database.run_write(partial(self._record_then, change))
        except _Replayed:
            raise self._replayed() from None
        except Exception as refused:
            # The change rolled back with the nonce: keep the nonce used all the same.
            if not await self.database.run_write(self._record):
                raise self._replayed() from refused
            raise

    async def burn(self) -> None:
        """Record the nonce without a change, unless done; ``AuthError`` if replayed."""
        if self.recorded:
            return
        self.recorded = True
        if not await self.database.run_write(self._record):
            raise self._replayed()

    def _record(self, connection: Connection) -> bool:
        signed = self.signed
        return store.record_nonce(connection, signed.address, signed.nonce, self.received_at)

    def _record_then(self, change: Callable[[Connection], T], connection: Connection) -> T:
        if not self._record(connection):
            raise _Replayed
        return change(connection)

    def _replayed(self) -> AuthError:
        return AuthError(
            "replayed",
            f"nonce {self.signed.nonce} was already used by {self.signed.address}: "
            "sign every request with a new nonce",
        )


class _Replayed(Exception):
    """The nonce was recorded before: nothing was written."""


_SCOPE_KEY = "gpunet.signed_write"


async def verify_signed_request(request: Request) -> SignedWrite:
    """Who signed this request; raises ``AuthError`` (401) if it cannot be accepted.

    The request is kept in the ASGI scope until its nonce is recorded, so that a
    refusal before the route runs can still record it (``record_unwritten_nonce``).
    """
    context = indexer_context(request)
    body = await request.body()
    now = context.clock()
    signed = auth.verify_request(
        request.headers,
        request.method,
        signed_target(request),
        body,
        now=now,
        max_skew_s=context.settings.max_skew_s,
    )
    write = SignedWrite(signed, context.database, now)
    request.scope[_SCOPE_KEY] = write
    return write


async def record_unwritten_nonce(request: Request) -> None:
    """Record the nonce of a signed request refused before its route wrote anything.

    Called by the error handlers of such refusals (a body that fails validation);
    raises ``AuthError`` (replayed) when the nonce was used before, so that a replay
    answers 401 whatever else is wrong with it. Does nothing for other requests.
    """
    write = request.scope.get(_SCOPE_KEY)
    if isinstance(write, SignedWrite):
        await write.burn()
