"""Fakes for testing checkers in process: a clock, an inline executor, and a fake node.

Capacity answers import ``protocol.challenge`` (and NumPy) only when first needed.

``FakeNode`` answers the node's check endpoint (``node.check_server``'s routes) as an
``httpx.MockTransport`` handler, honestly or with the lies in ``NodeLies``, so each
runner's verdict can be tested against each way a node can cheat::

    clock = FakeClock()
    node = FakeNode("n-0123456789ab", operator, clock, NodeLies(compute_s=9.0))
    http = httpx.Client(transport=httpx.MockTransport(node))
    outcome = check_capacity(task, CapacityContext(http, policy, clock, clock.sleep))
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import httpx
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from gpunet.api.checks import CheckKindName, CheckTask, DeliveryTask
from gpunet.protocol.liveness import ping_message

if TYPE_CHECKING:
    import numpy as np

    from gpunet.protocol.challenge import ChallengeSpec
    from gpunet.protocol.merkle import MerkleTree

T = TypeVar("T")


class FakeClock:
    """A clock that moves only by hand or by ``sleep``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class InlineExecutor(Executor):
    """Runs each submitted call at once, in the caller's thread."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # kept in the future, as a thread pool would
            future.set_exception(exc)
        return future


def sign_text(account: LocalAccount, text: str) -> str:
    """EIP-191 signature of ``text`` as 0x and 130 hex digits."""
    signature = account.sign_message(encode_defunct(text=text)).signature.hex()
    return signature if signature.startswith("0x") else "0x" + signature


def make_task(
    operator: str,
    kind: CheckKindName = "liveness",
    *,
    node_id: str = "n-0123456789ab",
    check_id: str = "c-0123456789abcdef",
    check_url: str | None = "http://node.test:9100",
    due_at: float = 1_764_072_060.0,
    claimed_ops_per_s: float = 2e9,
    gpu_model: str = "CPU",
    delivery: DeliveryTask | None = None,
) -> CheckTask:
    """A check task as the indexer sends it, for a node of ``operator``."""
    return CheckTask(
        check_id=check_id,
        kind=kind,
        epoch=4,
        node_id=node_id,
        operator=operator,
        check_url=check_url,
        gpu_model=gpu_model,
        gpu_count=0,
        claimed_ops_per_s=claimed_ops_per_s,
        rtt_ms=2.0,
        due_at=due_at,
        delivery=delivery,
    )


@dataclass
class NodeLies:
    """How a ``FakeNode`` cheats; the defaults are an honest node."""

    signer: LocalAccount | None = None  # signs with this key instead of the operator's
    node_id: str | None = None  # answers as this node
    stale_nonce: bool = False  # echoes a nonce other than the one sent
    ping_s: float = 0.001  # the clock moves this much per ping
    compute_s: float = 0.01  # ... and this much per challenge
    silent: bool = False  # never answers (the request times out)
    hang_challenge: bool = False  # answers pings, never a challenge
    busy_times: int = 0  # answers 429 to this many challenges first
    replay: bool = False  # answers every challenge with its first product and root
    stale_commitment: bool = False  # resends its first commitment verbatim
    bad_tile: bool = False  # opens tiles with one byte changed
    wrong_proof: bool = False  # opens tiles with another tile's proof


@dataclass
class _Proven:
    spec: ChallengeSpec
    product: np.ndarray[Any, Any]
    tree: MerkleTree


@dataclass
class FakeNode:
    """A node's check endpoint as an ``httpx.MockTransport`` handler."""

    node_id: str
    operator: LocalAccount
    clock: FakeClock = field(default_factory=FakeClock)
    lies: NodeLies = field(default_factory=NodeLies)
    pings: int = 0
    challenges: list[dict[str, Any]] = field(default_factory=list)
    _proven: dict[str, _Proven] = field(default_factory=dict)
    _first: _Proven | None = None
    _first_answer: dict[str, Any] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.lies.silent:
            self._wait_out(request)
        path = request.url.path
        if request.method == "GET" and path == "/v1/check/ping":
            return self._ping(request.url.params.get("nonce", ""))
        if request.method == "POST" and path == "/v1/check/capacity":
            if self.lies.hang_challenge:
                self._wait_out(request)
            return self._commit(json.loads(request.read()))
        if request.method == "POST" and path.endswith("/open"):
            challenge_id = path.removeprefix("/v1/check/capacity/").removesuffix("/open")
            return self._open(challenge_id, json.loads(request.read())["tiles"])
        return httpx.Response(404, json={"error": "not_found", "message": path})

    def _wait_out(self, request: httpx.Request) -> NoReturn:
        """No answer: the caller's clock moves by its read timeout, then it times out."""
        timeout = request.extensions.get("timeout", {}).get("read")
        self.clock.advance(timeout if timeout is not None else 5.0)
        raise httpx.ReadTimeout("no answer", request=request)

    @property
    def _signer(self) -> LocalAccount:
        return self.lies.signer or self.operator

    @property
    def _answer_id(self) -> str:
        return self.lies.node_id or self.node_id

    def _ping(self, nonce: str) -> httpx.Response:
        self.pings += 1
        self.clock.advance(self.lies.ping_s)
        echoed = "0" * 32 if self.lies.stale_nonce else nonce
        signature = sign_text(self._signer, ping_message(self._answer_id, echoed))
        body = {"node_id": self._answer_id, "nonce": echoed, "busy": False, "signature": signature}
        return httpx.Response(200, json=body)

    def _commit(self, body: dict[str, Any]) -> httpx.Response:
        from gpunet.protocol import challenge

        self.challenges.append(body)
        if self.lies.busy_times > 0:
            self.lies.busy_times -= 1
            return httpx.Response(429, json={"error": "busy", "message": "proving another"})
        if self.lies.stale_commitment and self._first_answer is not None:
            return httpx.Response(200, json=self._first_answer)
        spec = _spec(body)
        proven = self._prove(spec)
        self.clock.advance(self.lies.compute_s)
        self._proven[spec.challenge_id] = proven
        message = challenge.commitment_message(spec.challenge_id, self._answer_id, proven.tree.root)
        answer = {
            "challenge_id": spec.challenge_id,
            "node_id": self._answer_id,
            "root": proven.tree.root.hex(),
            "signature": sign_text(self._signer, message),
        }
        self._first_answer = self._first_answer or answer
        return httpx.Response(200, json=answer)

    def _prove(self, spec: ChallengeSpec) -> _Proven:
        from gpunet.protocol import challenge
        from gpunet.protocol.merkle import MerkleTree

        if self.lies.replay and self._first is not None:
            return self._first
        product = challenge.compute_product(spec)
        proven = _Proven(spec, product, MerkleTree(challenge.tile_leaves(spec, product)))
        self._first = self._first or proven
        return proven

    def _open(self, challenge_id: str, tiles: list[int]) -> httpx.Response:
        from gpunet.protocol import challenge

        proven = self._proven.pop(challenge_id, None)
        if proven is None:
            return httpx.Response(404, json={"error": "not_found", "message": challenge_id})
        openings = challenge.open_tiles(proven.spec, proven.product, tuple(tiles))
        items = [_opening_json(o.index, o.data, o.proof) for o in openings]
        if self.lies.bad_tile:
            data = bytearray(openings[0].data)
            data[0] ^= 0xFF
            items[0]["data"] = base64.b64encode(bytes(data)).decode("ascii")
        if self.lies.wrong_proof and len(items) > 1:
            items[0]["proof"] = items[1]["proof"]
        return httpx.Response(200, json={"openings": items})


def _spec(body: dict[str, Any]) -> ChallengeSpec:
    from gpunet.protocol.challenge import ChallengeSpec

    return ChallengeSpec(
        challenge_id=body["challenge_id"],
        node_id=body["node_id"],
        seed=bytes.fromhex(body["seed"]),
        n=body["n"],
        k=body["k"],
        tile=body["tile"],
        opens=body["opens"],
        deadline_s=body["deadline_s"],
    )


def _opening_json(index: int, data: bytes, proof: tuple[bytes, ...]) -> dict[str, Any]:
    return {
        "index": index,
        "data": base64.b64encode(data).decode("ascii"),
        "proof": [step.hex() for step in proof],
    }
