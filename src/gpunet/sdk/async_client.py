"""The asynchronous client: sends what ``ApiCore`` builds over an ``httpx.AsyncClient``."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import httpx

from gpunet.api.models import (
    Health,
    HeartbeatAck,
    HeartbeatIn,
    NodeList,
    NodePublic,
    NodeRegistration,
    OfferList,
)
from gpunet.sdk._core import DEFAULT_INDEXER_URL, DEFAULT_TIMEOUT_S, ApiCore, Call

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

T = TypeVar("T")


class AsyncClient:
    """``Client``'s async twin: the same methods and errors, awaited.

    ``transport`` replaces the network (``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_INDEXER_URL,
        account: LocalAccount | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.core = ApiCore(base_url, account)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    @property
    def base_url(self) -> str:
        return self.core.base_url

    async def health(self) -> Health:
        return await self._send(self.core.health())

    async def metrics_text(self) -> str:
        return await self._send(self.core.metrics_text())

    async def register_node(self, node_id: str, registration: NodeRegistration) -> NodePublic:
        return await self._send(self.core.register_node(node_id, registration))

    async def heartbeat(self, node_id: str, beat: HeartbeatIn | None = None) -> HeartbeatAck:
        return await self._send(self.core.heartbeat(node_id, beat or HeartbeatIn()))

    async def leave(self, node_id: str) -> NodePublic:
        return await self._send(self.core.leave(node_id))

    async def list_nodes(
        self,
        state: str | None = None,
        operator: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> NodeList:
        return await self._send(self.core.list_nodes(state, operator, limit, offset))

    async def get_node(self, node_id: str) -> NodePublic:
        return await self._send(self.core.get_node(node_id))

    async def list_offers(
        self, where: str = "", order: str = "price", limit: int = 100
    ) -> OfferList:
        return await self._send(self.core.list_offers(where, order, limit))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _send(self, call: Call[T]) -> T:
        try:
            response = await self._http.send(call.request)
        except httpx.TransportError as exc:
            raise self.core.unreachable(call.request, exc) from exc
        return call.parse(response)
