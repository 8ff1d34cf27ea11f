"""The one place where errors become HTTP answers.

Domain errors from ``gpunet.errors`` map to statuses here and nowhere else; routes
and services raise them and never build error responses. Every answer is an
``ErrorBody``::

    QuerySyntaxError                      400 query_syntax_error
    malformed JSON body                   400 invalid_json
    AuthError                             401 auth_<reason>
    PermissionDeniedError                 403 permission_denied
    NotFoundError                         404 not_found
    ConflictError                         409 conflict
    body over settings.max_body_bytes     413 body_too_large
    UnknownGpuModel                       422 unknown_gpu_model
    ValidationError, request validation   422 validation_error
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gpunet.api.models import ErrorBody
from gpunet.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    QuerySyntaxError,
    UnknownGpuModel,
    ValidationError,
)
from gpunet.indexer.signing import record_unwritten_nonce

log = logging.getLogger("gpunet.indexer")

MAX_VALUE_CHARS = 200
_REQUEST_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


def _printable(text: str, limit: int | None = None) -> str:
    # Lone surrogates from JSON (\ud800) cannot be encoded as UTF-8; escape them.
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return safe if limit is None or len(safe) <= limit else safe[:limit] + "..."


def error_response(
    status: int,
    error: str,
    message: str,
    *,
    field: str | None = None,
    value: object = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An ``ErrorBody`` answer; long or unencodable values are shortened and escaped."""
    body = ErrorBody(
        error=error,
        message=_printable(message, 2000),
        field=None if field is None else _printable(field, MAX_VALUE_CHARS),
        value=None if value is None else _printable(str(value), MAX_VALUE_CHARS),
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def body_too_large_response(declared: int | None, limit: int) -> JSONResponse:
    """413 for a body over ``limit`` bytes (``declared`` is its Content-Length, if sent)."""
    size = f"{declared} bytes" if declared is not None else "more than that"
    return error_response(
        413,
        "body_too_large",
        f"request body is {size}; the limit is {limit} bytes (GPUNET_MAX_BODY_BYTES)",
    )


def _validation_status(exc: ValidationError) -> tuple[int, str]:
    if isinstance(exc, QuerySyntaxError):
        return 400, "query_syntax_error"
    if isinstance(exc, UnknownGpuModel):
        return 422, "unknown_gpu_model"
    return 422, "validation_error"


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError)
    status, code = _validation_status(exc)
    return error_response(status, code, str(exc), field=exc.field, value=exc.value)


async def _auth_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    message = f"request not accepted ({exc.reason}): {exc.message}"
    return error_response(401, f"auth_{exc.reason}", message)


_SIMPLE: dict[type[Exception], tuple[int, str]] = {
    NotFoundError: (404, "not_found"),
    PermissionDeniedError: (403, "permission_denied"),
    ConflictError: (409, "conflict"),
}


async def _simple_error(_: Request, exc: Exception) -> JSONResponse:
    status, code = next(v for k, v in _SIMPLE.items() if isinstance(exc, k))
    return error_response(status, code, str(exc))


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc]
    if len(parts) > 1 and parts[0] in _REQUEST_LOCATIONS:
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    try:
        # A signed request refused here still uses up its nonce; a replay answers 401.
        await record_unwritten_nonce(request)
    except AuthError as replayed:
        return await _auth_error(request, replayed)
    errors = exc.errors()
    first: Mapping[str, Any] = errors[0] if errors else {"loc": ("body",), "msg": "invalid"}
    if first.get("type") == "json_invalid":
        reason = first.get("ctx", {}).get("error", "cannot be decoded")
        where = first["loc"][-1] if len(first["loc"]) > 1 else "?"
        message = f"body is not valid JSON: {reason} at character {where}"
        return error_response(400, "invalid_json", message, field="body")
    field = _field_path(tuple(first.get("loc", ())))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    message = f"{field}: {first.get('msg', 'invalid')}{more}"
    return error_response(422, "validation_error", message, field=field, value=first.get("input"))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "the indexer failed; the error is logged")


def install_error_handlers(app: FastAPI) -> None:
    """Register every error-to-HTTP mapping on ``app``."""
    app.add_exception_handler(ValidationError, _validation_error)
    app.add_exception_handler(AuthError, _auth_error)
    for error_type in _SIMPLE:
        app.add_exception_handler(error_type, _simple_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("Malformed JSON or an offer filter that does not parse"),
    404: _documented("No such record"),
    413: _documented("Request body over the size limit"),
    422: _documented("A value that breaks a rule; `field` and `value` name it"),
}
"""Error answers every route may give, for the OpenAPI schema."""

SIGNED_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _documented("Unsigned, malformed, stale, wrongly signed or replayed request"),
    403: _documented("The node belongs to another operator"),
    409: _documented("Conflicts with a concurrent change; retry"),
}
"""Further error answers of signed routes."""
