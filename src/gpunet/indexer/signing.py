"""The signed-request check that guards every state-changing route.

It verifies the signature over the exact bytes on the wire (method, raw path with
query string, body) with ``protocol.auth.verify_request``, then records the nonce;
a nonce the signer used before is refused as a replay. The nonce is committed on
its own, before the route runs, so even a refused request cannot be replayed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Request
from starlette.concurrency import run_in_threadpool

from gpunet.errors import AuthError
from gpunet.indexer import store
from gpunet.indexer.context import IndexerContext, indexer_context
from gpunet.protocol import auth
from gpunet.protocol.auth import SignedRequest

_DESCRIPTIONS = {
    auth.HEADER_ADDRESS: "signer's Ethereum address (0x and 40 hex digits)",
    auth.HEADER_TIMESTAMP: "unix seconds when the request was signed",
    auth.HEADER_NONCE: "a fresh random string of 16-64 URL-safe characters",
    auth.HEADER_SIGNATURE: "EIP-191 signature of the gpunet-request-v1 message",
}


def _signed_header(name: str) -> object:
    return Header(alias=name, description=_DESCRIPTIONS[name])


def signed_target(request: Request) -> str:
    """The request target as the client sent and signed it: raw path and query."""
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else request.url.path
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def _verify(context: IndexerContext, request: Request, target: str, body: bytes) -> SignedRequest:
    now = context.clock()
    signed = auth.verify_request(
        request.headers,
        request.method,
        target,
        body,
        now=now,
        max_skew_s=context.settings.max_skew_s,
    )
    with context.database.writing() as session:
        fresh = store.remember_nonce(session, signed.address, signed.nonce, now)
    if not fresh:
        raise AuthError(
            "replayed",
            f"nonce {signed.nonce} was already used by {signed.address}: "
            "sign every request with a new nonce",
        )
    return signed


async def verify_signed_request(
    request: Request,
    _address: Annotated[str | None, _signed_header(auth.HEADER_ADDRESS)] = None,
    _timestamp: Annotated[str | None, _signed_header(auth.HEADER_TIMESTAMP)] = None,
    _nonce: Annotated[str | None, _signed_header(auth.HEADER_NONCE)] = None,
    _signature: Annotated[str | None, _signed_header(auth.HEADER_SIGNATURE)] = None,
) -> SignedRequest:
    """Who signed this request; raises ``AuthError`` (401) if it cannot be accepted.

    The header parameters only document the headers in the OpenAPI schema; the
    check reads them from the request itself.
    """
    context = indexer_context(request)
    body = await request.body()
    target = signed_target(request)
    return await run_in_threadpool(_verify, context, request, target, body)
