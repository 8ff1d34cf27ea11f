"""FastAPI dependencies as ``Annotated`` aliases, so routes declare what they use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from gpunet.indexer.context import IndexerContext, indexer_context
from gpunet.indexer.signing import verify_signed_request
from gpunet.protocol.auth import SignedRequest


def _read_session(request: Request) -> Iterator[Session]:
    with indexer_context(request).database.reading() as session:
        yield session


Context = Annotated[IndexerContext, Depends(indexer_context)]
"""The serving app's settings, clock, database and metrics."""

ReadSession = Annotated[Session, Depends(_read_session)]
"""A session for queries, closed after the request."""

Signer = Annotated[SignedRequest, Depends(verify_signed_request)]
"""Who signed the request; its check answers 401 before the route runs."""
