"""FastAPI dependencies as ``Annotated`` aliases, so routes declare what they use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from gpunet.indexer.context import IndexerContext, indexer_context
from gpunet.indexer.signing import SignedWrite, verify_signed_request


def _read_session(request: Request) -> Iterator[Session]:
    with indexer_context(request).database.reading() as session:
        yield session


async def _context(request: Request) -> IndexerContext:
    # Async, so that FastAPI calls it on the event loop instead of in the thread pool.
    return indexer_context(request)


Context = Annotated[IndexerContext, Depends(_context)]
"""The serving app's settings, clock, database and metrics."""

ReadSession = Annotated[Session, Depends(_read_session)]
"""A session for queries, closed after the request."""

Signed = Annotated[SignedWrite, Depends(verify_signed_request)]
"""Who signed the request (its check answers 401 before the route runs) and how to
write: ``await signed.apply(change)`` records the nonce and the change together."""
