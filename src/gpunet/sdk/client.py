"""The synchronous client: sends what ``ApiCore`` builds over an ``httpx.Client``."""

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


class Client:
    """Talks to one indexer; signs state-changing calls with ``account``.

    ``transport`` replaces the network (``httpx.MockTransport`` in tests). Errors:
    ``ApiError`` for an error answer, ``IndexerUnreachable`` for no answer,
    ``AccountRequired`` for a signed call without an account.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_INDEXER_URL,
        account: LocalAccount | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.core = ApiCore(base_url, account)
        self._http = httpx.Client(timeout=timeout, transport=transport)

    @property
    def base_url(self) -> str:
        return self.core.base_url

    def health(self) -> Health:
        return self._send(self.core.health())

    def metrics_text(self) -> str:
        return self._send(self.core.metrics_text())

    def register_node(self, node_id: str, registration: NodeRegistration) -> NodePublic:
        return self._send(self.core.register_node(node_id, registration))

    def heartbeat(self, node_id: str, beat: HeartbeatIn | None = None) -> HeartbeatAck:
        return self._send(self.core.heartbeat(node_id, beat or HeartbeatIn()))

    def leave(self, node_id: str) -> NodePublic:
        return self._send(self.core.leave(node_id))

    def list_nodes(
        self,
        state: str | None = None,
        operator: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> NodeList:
        return self._send(self.core.list_nodes(state, operator, limit, offset))

    def get_node(self, node_id: str) -> NodePublic:
        return self._send(self.core.get_node(node_id))

    def list_offers(self, where: str = "", order: str = "price", limit: int = 100) -> OfferList:
        return self._send(self.core.list_offers(where, order, limit))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, call: Call[T]) -> T:
        try:
            response = self._http.send(call.request)
        except httpx.TransportError as exc:
            raise self.core.unreachable(call.request, exc) from exc
        return call.parse(response)
