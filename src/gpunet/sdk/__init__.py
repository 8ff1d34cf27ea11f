"""Python SDK for the gpunet indexer: ``Client`` (sync) and ``AsyncClient`` (async).

Both share one core (``gpunet.sdk._core.ApiCore``) that builds and signs requests and
reads answers into ``gpunet.api.models`` and ``gpunet.api.jobs``; they differ only in
how they send. ``gpunet.sdk.jobs`` adds the buyer's workflows on top of ``Client``:
submit a spec file with its inputs, follow a job's events and logs, download and check
its outputs.

    from gpunet.keys import load_key
    from gpunet.sdk import Client

    with Client("http://127.0.0.1:8700", account=load_key("operator", password)) as api:
        print(api.list_offers(where="gpu=H100 price<2.5", order="price").offers)
"""

from __future__ import annotations

from gpunet.errors import ApiError
from gpunet.sdk._core import DEFAULT_INDEXER_URL, DEFAULT_TIMEOUT_S, ORDERS
from gpunet.sdk.async_client import AsyncClient
from gpunet.sdk.client import Client
from gpunet.sdk.errors import AccountRequired, IndexerUnreachable, InvalidResponse

__all__ = [
    "DEFAULT_INDEXER_URL",
    "DEFAULT_TIMEOUT_S",
    "ORDERS",
    "AccountRequired",
    "ApiError",
    "AsyncClient",
    "Client",
    "IndexerUnreachable",
    "InvalidResponse",
]
