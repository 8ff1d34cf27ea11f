"""ASGI middleware: request metrics and the request body size limit.

Both are plain ASGI (no ``BaseHTTPMiddleware``), so they neither buffer responses nor
break streaming.
"""

from __future__ import annotations

import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpunet.indexer.error_handlers import body_too_large_response
from gpunet.indexer.metrics import UNMATCHED_ROUTE, IndexerMetrics

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Counts requests by method, route template and status, and times them."""

    def __init__(self, app: ASGIApp, metrics: IndexerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self.metrics.observe(
                _method(scope), _route(scope), status, time.perf_counter() - started
            )


def _method(scope: Scope) -> str:
    method = str(scope.get("method", ""))
    # Keep label values bounded: an invented method must not mint a new series.
    return method if method in _METHODS else "OTHER"


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class BodyLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with 413, by Content-Length or by counting.

    The body is read here, at most ``max_bytes`` of it, and replayed to the app, so
    a client cannot make the indexer hold more than that in memory.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, *, max_file_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_file_bytes = max_file_bytes or max_bytes

    def _limit(self, scope: Scope) -> int:
        """File uploads (``PUT`` of blobs, outputs, checkpoints) may be larger."""
        if scope.get("method") == "PUT" and _is_file_upload(scope.get("path", "")):
            return self.max_file_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await body_too_large_response(declared, limit)(scope, receive, send)
            return
        body = await self._read_body(receive, limit)
        if body is None:
            await body_too_large_response(None, limit)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive, limit: int) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


_FILE_UPLOAD = re.compile(
    r"^/v1/(blobs/[0-9a-f]{64}|jobs/[^/]+/(outputs/[0-9a-f]{64}|checkpoint))$"
)


def _is_file_upload(path: str) -> bool:
    return _FILE_UPLOAD.fullmatch(path) is not None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
