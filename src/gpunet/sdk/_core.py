"""The I/O-free half of the SDK, shared by ``Client`` and ``AsyncClient``.

``ApiCore`` turns each API operation into a ``Call``: a ready ``httpx.Request`` (URL,
query, body bytes, headers, signature, and for long polls a longer timeout) and the
function that reads its answer into an API model, raw bytes, or nothing, or raises. The
two clients only send the request and hand the response back, so the sync and async
code cannot drift apart.

Bodies are JSON (``application/json``) except files, checkpoints and outputs, which go
as raw bytes (``application/octet-stream``); both are signed over the exact bytes sent.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from gpunet import __version__
from gpunet.api.jobs import (
    JOB_ID_PATTERN,
    AccountView,
    AmountIn,
    AutoTopUpIn,
    CancelIn,
    ClientReceiptIn,
    EventPage,
    FileRef,
    FinishIn,
    JobDetail,
    JobList,
    JobSubmit,
    LogBatch,
    LogEntry,
    LogPage,
    QuoteIn,
    QuoteOut,
    SessionAccess,
    StartIn,
    UsageAck,
    UsageIn,
    WorkPoll,
)
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
from gpunet.errors import ApiError, ConfigError, ValidationError
from gpunet.protocol.offers import validate_node_id
from gpunet.sdk.errors import AccountRequired, IndexerUnreachable, InvalidResponse

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

DEFAULT_INDEXER_URL = "http://127.0.0.1:8700"
DEFAULT_TIMEOUT_S = 10.0
ORDERS = ("price", "-price", "tflops", "-tflops", "value", "-value")
USER_AGENT = f"gpunet-sdk/{__version__}"
JSON = "application/json"
OCTET_STREAM = "application/octet-stream"
MAX_WAIT_S = 30.0  # the indexer refuses longer polls

_JOB_ID = re.compile(JOB_ID_PATTERN)
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")

T = TypeVar("T")
M = TypeVar("M", bound=pydantic.BaseModel)
Parser = Callable[[httpx.Response], T]
Params = Mapping[str, str | int]


def new_nonce() -> str:
    """A fresh request nonce: 32 random hex digits."""
    return secrets.token_hex(16)


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as 64 lowercase hex digits: how blobs and outputs are named."""
    return hashlib.sha256(data).hexdigest()


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
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = new_nonce,
    ) -> None:
        self.base_url = _check_base_url(base_url)
        self.account = account
        self.timeout_s = timeout_s
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

    # -- buyers --

    def upload_blob(self, data: bytes) -> Call[str]:
        digest = sha256_hex(data)
        return self._signed("PUT", f"/v1/blobs/{digest}", data, _digest(digest), OCTET_STREAM)

    def submit_job(self, spec: Mapping[str, Any], inputs: list[FileRef]) -> Call[JobDetail]:
        body = _body(JobSubmit, spec=dict(spec), inputs=inputs)
        return self._signed("POST", "/v1/jobs", body, _model(JobDetail))

    def quote(self, spec: Mapping[str, Any]) -> Call[QuoteOut]:
        body = _body(QuoteIn, spec=dict(spec))
        return Call(self._request("POST", "/v1/jobs/quote", {}, body, JSON), _model(QuoteOut))

    def list_jobs(
        self, buyer: str | None, state: str | None, limit: int, offset: int
    ) -> Call[JobList]:
        params = _drop_none({"buyer": buyer, "state": state})
        return self._get("/v1/jobs", {**params, "limit": limit, "offset": offset}, _model(JobList))

    def get_job(self, job_id: str) -> Call[JobDetail]:
        return self._get(_job_path(job_id), {}, _model(JobDetail))

    def job_events(self, job_id: str, after: int, wait_s: float) -> Call[EventPage]:
        path = _job_path(job_id) + "/events"
        return self._long_poll(path, after, wait_s, _model(EventPage))

    def job_logs(self, job_id: str, after: int, wait_s: float) -> Call[LogPage]:
        return self._long_poll(_job_path(job_id) + "/logs", after, wait_s, _model(LogPage))

    def cancel_job(self, job_id: str, reason: str) -> Call[JobDetail]:
        body = _body(CancelIn, reason=reason)
        return self._signed("POST", _job_path(job_id) + "/cancel", body, _model(JobDetail))

    def download_output(self, job_id: str, path: str) -> Call[bytes]:
        target = _job_path(job_id) + "/outputs/" + _file_path("path", path)
        return self._signed_get(target, {}, _bytes)

    def send_receipt(self, job_id: str, receipt: ClientReceiptIn) -> Call[JobDetail]:
        body = receipt.model_dump_json().encode()
        return self._signed("POST", _job_path(job_id) + "/receipt", body, _model(JobDetail))

    def session_access(self, job_id: str) -> Call[SessionAccess]:
        return self._signed_get(_job_path(job_id) + "/session", {}, _model(SessionAccess))

    def deposit(self, amount_micros: int) -> Call[AccountView]:
        body = _body(AmountIn, amount_micros=amount_micros)
        return self._signed("POST", "/v1/accounts/deposit", body, _model(AccountView))

    def withdraw(self, amount_micros: int) -> Call[AccountView]:
        body = _body(AmountIn, amount_micros=amount_micros)
        return self._signed("POST", "/v1/accounts/withdraw", body, _model(AccountView))

    def set_auto_topup(
        self, amount_micros: int, threshold_micros: int, limit_micros: int
    ) -> Call[AccountView]:
        body = _body(
            AutoTopUpIn,
            amount_micros=amount_micros,
            threshold_micros=threshold_micros,
            limit_micros=limit_micros,
        )
        return self._signed("PUT", "/v1/accounts/auto-topup", body, _model(AccountView))

    def get_account(self, address: str) -> Call[AccountView]:
        if not _ADDRESS.fullmatch(address):
            raise ValidationError("address", address, "write an address as 0x and 40 hex digits")
        return self._get(f"/v1/accounts/{address}", {}, _model(AccountView))

    # -- nodes --

    def poll_work(self, node_id: str, wait_s: float) -> Call[WorkPoll]:
        call = self._signed_get(
            _node_path(node_id) + "/work", {"wait_s": _seconds(wait_s)}, _model(WorkPoll)
        )
        return self._waiting(call, wait_s)

    def start_job(self, job_id: str, attempt: int, endpoint: str | None) -> Call[UsageAck]:
        body = _body(StartIn, attempt=attempt, endpoint=endpoint)
        return self._signed("POST", _job_path(job_id) + "/start", body, _model(UsageAck))

    def append_logs(self, job_id: str, attempt: int, lines: list[LogEntry]) -> Call[None]:
        body = _body(LogBatch, attempt=attempt, lines=lines)
        return self._signed("POST", _job_path(job_id) + "/logs", body, _nothing)

    def report_usage(self, job_id: str, attempt: int, usage_s: float) -> Call[UsageAck]:
        body = _body(UsageIn, attempt=attempt, usage_s=usage_s)
        return self._signed("POST", _job_path(job_id) + "/usage", body, _model(UsageAck))

    def put_checkpoint(self, job_id: str, data: bytes) -> Call[str]:
        path = _job_path(job_id) + "/checkpoint"
        return self._signed("PUT", path, data, _digest(sha256_hex(data)), OCTET_STREAM)

    def get_checkpoint(self, job_id: str) -> Call[bytes]:
        return self._signed_get(_job_path(job_id) + "/checkpoint", {}, _bytes)

    def get_input(self, job_id: str, target: str) -> Call[bytes]:
        path = _job_path(job_id) + "/inputs/" + _file_path("target", target)
        return self._signed_get(path, {}, _bytes)

    def put_output(self, job_id: str, data: bytes) -> Call[str]:
        digest = sha256_hex(data)
        path = f"{_job_path(job_id)}/outputs/{digest}"
        return self._signed("PUT", path, data, _digest(digest), OCTET_STREAM)

    def finish_job(self, job_id: str, receipt: FinishIn) -> Call[UsageAck]:
        if self.account is not None and receipt.signature is None:
            from gpunet.sdk.receipts import signed_node_receipt

            receipt = signed_node_receipt(self.account, job_id, receipt)
        body = receipt.model_dump_json().encode()
        return self._signed("POST", _job_path(job_id) + "/finish", body, _model(UsageAck))

    def unreachable(self, request: httpx.Request, exc: httpx.TransportError) -> IndexerUnreachable:
        """The error to raise when ``request`` got no answer at all."""
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return IndexerUnreachable(self.base_url, f"{request.method} {request.url.path}: {reason}")

    def _get(self, path: str, params: Params, parse: Parser[T]) -> Call[T]:
        return Call(self._request("GET", path, params, b"", None), parse)

    def _long_poll(self, path: str, after: int, wait_s: float, parse: Parser[T]) -> Call[T]:
        if after < 0:
            raise ValidationError("after", after, "must be 0 or a next_after from a page")
        params: dict[str, str | int] = {"after": after, "wait_s": _seconds(wait_s)}
        return self._waiting(self._get(path, params, parse), wait_s)

    def _waiting(self, call: Call[T], wait_s: float) -> Call[T]:
        """``call`` with a timeout long enough for the indexer to hold it ``wait_s``."""
        if wait_s > 0:
            timeout = httpx.Timeout(self.timeout_s + wait_s)
            call.request.extensions = {**call.request.extensions, "timeout": timeout.as_dict()}
        return call

    def _signed_get(self, path: str, params: Params, parse: Parser[T]) -> Call[T]:
        return self._sign(self._request("GET", path, params, b"", None), parse)

    def _signed(
        self,
        method: str,
        path: str,
        body: bytes,
        parse: Parser[T],
        content_type: str = JSON,
    ) -> Call[T]:
        return self._sign(self._request(method, path, {}, body, content_type), parse)

    def _sign(self, request: httpx.Request, parse: Parser[T]) -> Call[T]:
        if self.account is None:
            raise AccountRequired(f"{request.method} {request.url.path}")
        # Imported here: eth-account takes half a second to load, and reads never sign.
        from gpunet.protocol.auth import sign_request

        # Sign the exact path and bytes that go on the wire, query string included.
        target = request.url.raw_path.decode("ascii")
        timestamp = int(self._clock())
        request.headers.update(
            sign_request(
                self.account, request.method, target, request.content, timestamp, self._nonce()
            )
        )
        return Call(request, parse)

    def _request(
        self, method: str, path: str, params: Params, body: bytes, content_type: str | None
    ) -> httpx.Request:
        headers = {"User-Agent": USER_AGENT, "Accept": JSON}
        if content_type is not None:
            headers["Content-Type"] = content_type
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


def _job_path(job_id: str) -> str:
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise ValidationError(
            "job_id", job_id, "a job id is j- and 16 hex digits, like j-0123456789abcdef"
        )
    return f"/v1/jobs/{job_id}"


def _file_path(field: str, path: str) -> str:
    """A work-dir relative path for a URL: each segment quoted, the slashes kept.

    Refuses what could name another route or leave the job's folder, since URL
    normalization would resolve ``..`` before the indexer sees it.
    """
    segments = path.split("/")
    if "\0" in path or any(segment in ("", ".", "..") for segment in segments):
        raise ValidationError(
            field, path, "must be a relative path inside the job's work dir, like out/a.csv"
        )
    return "/".join(quote(segment, safe="") for segment in segments)


def _seconds(wait_s: float) -> str:
    if not math.isfinite(wait_s) or not 0 <= wait_s <= MAX_WAIT_S:
        raise ValidationError("wait_s", wait_s, f"must be between 0 and {MAX_WAIT_S:g} seconds")
    return f"{wait_s:g}"


def _body(model: type[pydantic.BaseModel], **fields: object) -> bytes:
    """``model`` built from ``fields`` as JSON bytes; a bad field is a ``ValidationError``."""
    try:
        return model(**fields).model_dump_json().encode()
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(map(str, first["loc"])) or model.__name__
        raise ValidationError(field, first.get("input"), first["msg"]) from None


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


def _bytes(response: httpx.Response) -> bytes:
    return _checked(response).content


def _nothing(response: httpx.Response) -> None:
    _checked(response)


def _digest(digest: str) -> Parser[str]:
    """For uploads: the answer only says stored or not; the name is the content's hash."""

    def parse(response: httpx.Response) -> str:
        _checked(response)
        return digest

    return parse
