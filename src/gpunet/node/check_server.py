"""The node's check endpoint: where the checkers' panels probe this node (issue 4).

A small Starlette app, served by uvicorn in a thread of the agent process, at the
``check_url`` the node registers. JSON over HTTP and unauthenticated: what matters in
an answer is signed with the operator key (EIP-191), so nobody on the way can forge it::

    GET  /v1/check/ping?nonce=HEX                -> {node_id, nonce, busy, signature}
    POST /v1/check/capacity                      -> {challenge_id, node_id, root, signature}
    POST /v1/check/capacity/{challenge_id}/open  -> {openings: [{index, data, proof}]}

Limits: one capacity challenge is proven at a time (429 while one is); a challenge
larger than the node's own claim can need is refused (413, naming the field); bad JSON
or fields are refused (422, naming the field). Proving runs in a worker thread, so pings
keep answering meanwhile. At most ``KEEP_PROVEN`` proven challenges stay in memory,
each until it is opened or ``KEEP_S`` seconds have passed. Errors are ``ErrorBody``.

``--misbehave`` modes (demos and checker tests only, see ``misbehave``) change the
answers here: random-outputs, replay, impersonate and offline-idle.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import anyio
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as ModelError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gpunet.api.models import ErrorBody, HardwareClaimModel
from gpunet.errors import GpunetError, ValidationError
from gpunet.node.capacity import CapacityProver, ProvenChallenge
from gpunet.node.misbehave import HONEST, Misbehaviour, random_commitment
from gpunet.protocol import challenge
from gpunet.protocol.challenge import (
    CPU_POLICY,
    ChallengeSpec,
    DeadlinePolicy,
    Opening,
    within_claim,
)
from gpunet.protocol.liveness import ping_message

KEEP_PROVEN = 2
KEEP_S = 120.0
SILENT_HOLD_S = 60.0  # longer than any checker waits for an answer
MAX_BODY_BYTES = 64 * 1024


class CheckRefused(GpunetError):
    """A check request this node will not serve; ``status`` is its HTTP status."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status, self.code, self.message, self.field = status, code, message, field
        super().__init__(message)


# -- wire shapes --


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


BodyT = TypeVar("BodyT", bound=_Body)


class CapacityChallengeIn(_Body):
    """Body of ``POST /v1/check/capacity``: the challenge, as ``ChallengeSpec`` holds it."""

    challenge_id: str = Field(min_length=1, max_length=128)
    node_id: str = Field(min_length=1, max_length=128)
    seed: str = Field(pattern=r"^[0-9a-fA-F]{64}$", description="32 bytes, hex")
    n: int
    k: int
    tile: int
    opens: int
    deadline_s: float = Field(allow_inf_nan=False)


class OpenIn(_Body):
    """Body of ``POST /v1/check/capacity/{challenge_id}/open``: the tiles to open."""

    tiles: list[int] = Field(min_length=1, max_length=1024)


class PingAnswer(_Body):
    node_id: str
    nonce: str
    busy: bool = Field(description="proving a challenge or running a job right now")
    signature: str = Field(description="EIP-191 by the operator over liveness.ping_message")


class CommitmentAnswer(_Body):
    challenge_id: str
    node_id: str
    root: str = Field(description="Merkle root of the product's tiles, hex")
    signature: str = Field(description="EIP-191 over challenge.commitment_message")


class OpeningOut(_Body):
    index: int
    data: str = Field(description="the tile's int32 little-endian bytes, base64")
    proof: list[str] = Field(description="Merkle path from the leaf to the root, hex")


class OpeningsAnswer(_Body):
    openings: list[OpeningOut]


# -- the service --


@dataclass(frozen=True)
class ChallengeLimits:
    """The challenges this node proves: none beyond twice what its claim implies under
    a deadline policy a checker may use for it (``challenge.within_claim``).
    """

    claimed_ops_per_s: float
    policies: tuple[DeadlinePolicy, ...]

    def oversize_field(self, spec: ChallengeSpec) -> str | None:
        """None when ``spec`` is within the claim, else the field to blame (n or k)."""
        if any(within_claim(spec, self.claimed_ops_per_s, p) for p in self.policies):
            return None
        return "n" if spec.n > max(p.max_n for p in self.policies) else "k"


def limits_for_claim(claim: HardwareClaimModel) -> ChallengeLimits:
    """Limits for a registered claim, under the policy checkers use for its model
    (``challenge.policy_for``); GPU nodes also take the small CPU-policy challenges.
    """
    ops = challenge.claimed_ops_per_s(claim.gpu_model, claim.gpu_count, claim.benchmark_gflops)
    own = challenge.policy_for(claim.gpu_model)
    return ChallengeLimits(ops, (own,) if own == CPU_POLICY else (own, CPU_POLICY))


class Prover(Protocol):
    """What proves challenges: ``node.capacity.CapacityProver``, or a test's stand-in."""

    def prove(self, spec: ChallengeSpec) -> ProvenChallenge: ...

    def open(self, proven: ProvenChallenge, indices: Sequence[int]) -> list[Opening]: ...


@dataclass(frozen=True)
class _Kept:
    spec: ChallengeSpec  # as the checker sent it
    proven: ProvenChallenge  # what the node committed to (a liar's may not fit the spec)
    at: float


class CheckService:
    """What the endpoint answers, apart from HTTP; proving blocks, so call it in a thread."""

    def __init__(
        self,
        node_id: str,
        operator: LocalAccount,
        limits: ChallengeLimits,
        *,
        prover: Prover | None = None,
        running_job: Callable[[], bool] = lambda: False,
        misbehaviour: Misbehaviour = HONEST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node_id = node_id
        self.limits = limits
        self.misbehaviour = misbehaviour
        # impersonate: a fresh key the indexer has never seen signs every answer.
        self._signer = Account.create() if misbehaviour.impersonate else operator
        self._prover = prover or CapacityProver("numpy")
        self._running_job, self._clock = running_job, clock
        self._proving = threading.Lock()
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._first: ProvenChallenge | None = None  # replay: the commitment reused

    @property
    def busy(self) -> bool:
        return self._proving.locked() or self._running_job()

    def silent(self) -> bool:
        """offline-idle: the endpoint says nothing while no job runs."""
        return self.misbehaviour.offline_idle and not self._running_job()

    def ping(self, nonce: str) -> PingAnswer:
        message = ping_message(self.node_id, nonce)
        return PingAnswer(
            node_id=self.node_id, nonce=nonce, busy=self.busy, signature=self._sign(message)
        )

    def check_challenge(self, body: CapacityChallengeIn) -> ChallengeSpec:
        """The challenge as a spec; refused (422, 413) before any work is done."""
        if body.node_id != self.node_id:
            raise ValidationError(
                "node_id", body.node_id, f"this is node {self.node_id}; ask the node you meant"
            )
        spec = ChallengeSpec(
            challenge_id=body.challenge_id,
            node_id=body.node_id,
            seed=bytes.fromhex(body.seed),
            n=body.n,
            k=body.k,
            tile=body.tile,
            opens=body.opens,
            deadline_s=body.deadline_s,
        )
        field = self.limits.oversize_field(spec)
        if field is not None:
            raise CheckRefused(
                413,
                "challenge_too_large",
                f"a challenge with n={spec.n}, k={spec.k} is more work than this node's claim "
                f"({self.limits.claimed_ops_per_s / 1e9:,.0f} GFLOPS) needs; size it with "
                "challenge.new_challenge",
                field,
            )
        return spec

    def commit(self, spec: ChallengeSpec) -> CommitmentAnswer:
        """Prove ``spec`` and sign the root; CheckRefused(429) while another is proven."""
        if not self._proving.acquire(blocking=False):
            raise CheckRefused(
                429, "busy", "this node is proving another challenge; try again in a few seconds"
            )
        try:
            proven = self._prove(spec)
        finally:
            self._proving.release()
        with self._lock:
            self._drop_expired()
            self._kept[spec.challenge_id] = _Kept(spec, proven, self._clock())
            while len(self._kept) > KEEP_PROVEN:
                self._kept.popitem(last=False)
        message = challenge.commitment_message(spec.challenge_id, self.node_id, proven.root)
        return CommitmentAnswer(
            challenge_id=spec.challenge_id,
            node_id=self.node_id,
            root=proven.root.hex(),
            signature=self._sign(message),
        )

    def open(self, challenge_id: str, body: OpenIn) -> OpeningsAnswer:
        """The tiles asked for, with their proofs; the challenge is forgotten afterwards."""
        with self._lock:
            self._drop_expired()
            kept = self._kept.get(challenge_id)
            if kept is not None:
                _check_tiles(kept.spec, body.tiles)  # a refused request leaves it openable
                del self._kept[challenge_id]
        if kept is None:
            raise CheckRefused(
                404,
                "not_found",
                f"no proven challenge {challenge_id!r} here: it was never proven, already "
                f"opened, or older than {KEEP_S:g} s; send the challenge again",
            )
        # A replayed commitment may have fewer tiles than this challenge asks about.
        indices = [index for index in body.tiles if index < len(kept.proven.tree)]
        openings = self._prover.open(kept.proven, indices)
        return OpeningsAnswer(openings=[_opening_out(opening) for opening in openings])

    def _prove(self, spec: ChallengeSpec) -> ProvenChallenge:
        lies = self.misbehaviour
        if lies.replay and self._first is not None:
            return self._first
        proven = random_commitment(spec) if lies.random_outputs else self._prover.prove(spec)
        if lies.replay:
            self._first = proven
        return proven

    def _drop_expired(self) -> None:
        now = self._clock()
        for challenge_id in [c for c, kept in self._kept.items() if now - kept.at > KEEP_S]:
            del self._kept[challenge_id]

    def _sign(self, text: str) -> str:
        signature = self._signer.sign_message(encode_defunct(text=text)).signature.hex()
        return signature if signature.startswith("0x") else "0x" + signature


def _check_tiles(spec: ChallengeSpec, tiles: Sequence[int]) -> None:
    if len(tiles) > spec.opens:
        raise CheckRefused(
            413,
            "too_many_tiles",
            f"{len(tiles)} tiles asked for; the challenge opens {spec.opens}",
            "tiles",
        )
    for position, index in enumerate(tiles):
        if not 0 <= index < spec.tile_count:
            raise ValidationError(
                f"tiles[{position}]", index, f"tiles are numbered 0 to {spec.tile_count - 1}"
            )


def _opening_out(opening: Opening) -> OpeningOut:
    return OpeningOut(
        index=opening.index,
        data=base64.b64encode(opening.data).decode("ascii"),
        proof=[step.hex() for step in opening.proof],
    )


# -- HTTP --

_REFUSALS = (CheckRefused, ValidationError, HTTPException)


def check_app(service: CheckService, *, silent_hold_s: float = SILENT_HOLD_S) -> ASGIApp:
    """The endpoint as an ASGI app; offline-idle wraps it in a silence."""

    async def ping(request: Request) -> Response:
        answer = service.ping(request.query_params.get("nonce", ""))
        return JSONResponse(answer.model_dump())

    async def capacity(request: Request) -> Response:
        body = _parse(CapacityChallengeIn, await _body(request))
        spec = service.check_challenge(body)
        answer = await run_in_threadpool(service.commit, spec)
        return JSONResponse(answer.model_dump())

    async def open_tiles(request: Request) -> Response:
        body = _parse(OpenIn, await _body(request))
        answer = await run_in_threadpool(service.open, request.path_params["challenge_id"], body)
        return JSONResponse(answer.model_dump())

    app = Starlette(
        routes=[
            Route("/v1/check/ping", ping, methods=["GET"]),
            Route("/v1/check/capacity", capacity, methods=["POST"]),
            Route("/v1/check/capacity/{challenge_id}/open", open_tiles, methods=["POST"]),
        ],
        exception_handlers={error: _error_answer for error in _REFUSALS},
    )
    return _SilentWhenIdle(app, service.silent, silent_hold_s)


async def _body(request: Request) -> bytes:
    """The request body, refused (413) as soon as it grows past ``MAX_BODY_BYTES``."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise CheckRefused(413, "body_too_large", f"bodies are at most {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(model: type[BodyT], raw: bytes) -> BodyT:
    try:
        return model.model_validate_json(raw)
    except ModelError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        value = first.get("input")
        shown = value if isinstance(value, str | int | float) else None  # not a whole body
        raise ValidationError(field, shown, first["msg"]) from None


async def _error_answer(request: Request, exc: Exception) -> Response:
    """Every refusal as an ``ErrorBody``, like the indexer's."""
    status, code, message, field, value = 500, "internal_error", str(exc), None, None
    if isinstance(exc, CheckRefused):
        status, code, field = exc.status, exc.code, exc.field
    elif isinstance(exc, ValidationError):
        status, code, field, value = 422, "validation_error", exc.field, exc.value
    elif isinstance(exc, HTTPException):
        status, code, message = exc.status_code, "http_error", str(exc.detail)
    shown = None if value is None else str(value)[:200]
    body = ErrorBody(error=code, message=message, field=field, value=shown)
    return JSONResponse(body.model_dump(), status_code=status)


class _SilentWhenIdle:
    """offline-idle: while ``silent()``, a request gets no answer, as from a node that is off.

    The request is held until the client gives up (or ``hold_s`` passes, long after
    every checker has), so a probe times out exactly as it would against a dead node.
    """

    def __init__(self, app: ASGIApp, silent: Callable[[], bool], hold_s: float) -> None:
        self._app, self._silent, self._hold_s = app, silent, hold_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._silent():
            await self._app(scope, receive, send)
            return
        with anyio.move_on_after(self._hold_s):
            while (await receive())["type"] != "http.disconnect":
                pass
            return  # the client gave up; nobody to answer
        await Response(status_code=503)(scope, receive, send)
