"""The I/O-free half of the SDK, shared by ``Client`` and ``AsyncClient``.

``ApiCore`` turns each API operation into a ``Call``: a ready ``httpx.Request`` (URL,
query, body bytes, headers, signature) and the function that reads its answer into an
API model or raises. The two clients only send the request and hand the response back,
so the sync and async code cannot drift apart.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import httpx
import pydantic

from gpunet import __version__
from gpunet.api.models import (
    ErrorBody,
    Health,
    HeartbeatAck,
    HeartbeatIn,
    NodeList,
    NodePublic,
    NodeRegistration,
    OfferList,
)
from gpunet.errors import ApiError, ConfigError
from gpunet.protocol.offers import validate_node_id
from gpunet.sdk.errors import AccountRequired, IndexerUnreachable, InvalidResponse

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

DEFAULT_INDEXER_URL = "http://127.0.0.1:8700"
DEFAULT_TIMEOUT_S = 10.0
ORDERS = ("price", "-price", "tflops", "-tflops")
USER_AGENT = f"gpunet-sdk/{__version__}"

T = TypeVar("T")
M = TypeVar("M", bound=pydantic.BaseModel)
Parser = Callable[[httpx.Response], T]
Params = Mapping[str, str | int]


def new_nonce() -> str:
    """A fresh request nonce: 32 random hex digits."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API operation: the request to send and how to read its answer."""

    request: httpx.Request
    parse: Parser[T]


class ApiCore:
    """Builds signed requests for the indexer's API and parses its answers."""

    def __init__(
        self,
        base_url: str,
        account: LocalAccount | None = None,
        *,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = new_nonce,
    ) -> None:
        self.base_url = _check_base_url(base_url)
        self.account = account
        self._clock = clock
        self._nonce = nonce

    def health(self) -> Call[Health]:
        return self._get("/v1/health", {}, _model(Health))

    def metrics_text(self) -> Call[str]:
        return self._get("/metrics", {}, _text)

    def register_node(self, node_id: str, registration: NodeRegistration) -> Call[NodePublic]:
        body = registration.model_dump_json().encode()
        return self._signed("PUT", _node_path(node_id), body, _model(NodePublic))

    def heartbeat(self, node_id: str, beat: HeartbeatIn) -> Call[HeartbeatAck]:
        body = beat.model_dump_json().encode()
        path = _node_path(node_id) + "/heartbeat"
        return self._signed("POST", path, body, _model(HeartbeatAck))

    def leave(self, node_id: str) -> Call[NodePublic]:
        return self._signed("POST", _node_path(node_id) + "/leave", b"{}", _model(NodePublic))

    def list_nodes(
        self, state: str | None, operator: str | None, limit: int, offset: int
    ) -> Call[NodeList]:
        params = _drop_none({"state": state, "operator": operator})
        return self._get(
            "/v1/nodes", {**params, "limit": limit, "offset": offset}, _model(NodeList)
        )

    def get_node(self, node_id: str) -> Call[NodePublic]:
        return self._get(_node_path(node_id), {}, _model(NodePublic))

    def list_offers(self, where: str, order: str, limit: int) -> Call[OfferList]:
        if order not in ORDERS:
            raise ConfigError(f"offer order {order!r} is not one of {', '.join(ORDERS)}")
        params: dict[str, str | int] = {"order": order, "limit": limit}
        if where.strip():
            params["where"] = where
        return self._get("/v1/offers", params, _model(OfferList))

    def unreachable(self, request: httpx.Request, exc: httpx.TransportError) -> IndexerUnreachable:
        """The error to raise when ``request`` got no answer at all."""
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return IndexerUnreachable(self.base_url, f"{request.method} {request.url.path}: {reason}")

    def _get(self, path: str, params: Params, parse: Parser[T]) -> Call[T]:
        return Call(self._request("GET", path, params, b""), parse)

    def _signed(self, method: str, path: str, body: bytes, parse: Parser[T]) -> Call[T]:
        if self.account is None:
            raise AccountRequired(f"{method} {path}")
        # Imported here: eth-account takes half a second to load, and reads never sign.
        from gpunet.protocol.auth import sign_request

        request = self._request(method, path, {}, body)
        # Sign the exact path and bytes that go on the wire, query string included.
        target = request.url.raw_path.decode("ascii")
        timestamp = int(self._clock())
        request.headers.update(
            sign_request(self.account, method, target, body, timestamp, self._nonce())
        )
        return Call(request, parse)

    def _request(self, method: str, path: str, params: Params, body: bytes) -> httpx.Request:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if body:
            headers["Content-Type"] = "application/json"
        return httpx.Request(
            method, self.base_url + path, params=dict(params), content=body, headers=headers
        )


def _check_base_url(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"indexer URL {base_url!r} is not a URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(
            f"indexer URL {base_url!r} must start with http:// or https:// and name a host, "
            f"like {DEFAULT_INDEXER_URL}"
        )
    return url


def _node_path(node_id: str) -> str:
    return f"/v1/nodes/{validate_node_id(node_id)}"


def _drop_none(params: Mapping[str, str | None]) -> dict[str, str | int]:
    return {key: value for key, value in params.items() if value is not None}


def api_error(response: httpx.Response) -> ApiError:
    """The ``ApiError`` an error answer stands for, read from its ``ErrorBody``."""
    try:
        body = ErrorBody.model_validate_json(response.content)
    except pydantic.ValidationError:
        # Not our error format: a proxy page, or a crash before the error handler ran.
        snippet = " ".join(response.text.split())[:200] or response.reason_phrase
        code = f"http_{response.status_code}"
        where = f"{response.request.method} {response.request.url.path}"
        return ApiError(response.status_code, code, f"{where} failed: {snippet}")
    return ApiError(response.status_code, body.error, body.message)


def _checked(response: httpx.Response) -> httpx.Response:
    if not response.is_success:
        raise api_error(response)
    return response


def _model(model: type[M]) -> Parser[M]:
    def parse(response: httpx.Response) -> M:
        try:
            return model.model_validate_json(_checked(response).content)
        except pydantic.ValidationError as exc:
            detail = f"not a {model.__name__}: {exc.error_count()} field error(s), first: "
            first = exc.errors()[0]
            detail += f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}"
            raise InvalidResponse(str(response.url), response.status_code, detail) from exc

    return parse


def _text(response: httpx.Response) -> str:
    return _checked(response).text
