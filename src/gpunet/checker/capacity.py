"""The capacity check: can the node compute as fast as it claims?

The checker draws a challenge (``protocol.challenge.new_challenge``) from fresh
``os.urandom`` entropy, sized by the node's claimed rate and the round trip the checker
measures itself, so that only a node with the claimed speed answers before the
deadline. Then::

    ping (round trip) ──> POST /v1/check/capacity (timed, send to answer)
        ──> commitment signed by the operator over (challenge_id, node_id, root)
        ──> pick_tiles from the root and fresh entropy ──> POST .../open
        ──> judge_capacity: in time, every opened tile proven and equal to the recomputed one

The tiles are picked only after the root is known, so a node cannot compute just the
tiles that will be opened. An answer that is late, unsigned, signed by another key, for
another challenge (a replayed commitment) or node, or whose openings do not match fails
the check, with the reason in the detail.

A node busy with another panel member's challenge (429) is asked again after a
jittered part of a deadline. Busy until the check is due, it gets no vote, unless it
stayed busy longer than a panel's challenges keep an honest node (``BUSY_PROOF_S``):
then it is refusing challenges, and fails.

A node that leaves the challenge unanswered and then answers no ping either is offline,
which is the liveness check's finding (penalized only during a paid lease): the
capacity check then casts no vote (``CheckNotRun``) rather than calling an offline node
slow. A node that still answers pings but not the challenge fails.
"""

from __future__ import annotations

import base64
import binascii
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

import httpx

from gpunet.api.checks import CheckTask
from gpunet.checker.errors import CheckNotRun
from gpunet.checker.liveness import MIN_TIMEOUT_S, new_ping_nonce, ping
from gpunet.checker.outcome import (
    CheckOutcome,
    failed,
    one_line,
    passed,
    recover_signer,
    same_address,
)
from gpunet.protocol import challenge, challenge_inputs
from gpunet.protocol.challenge import ChallengeSpec, DeadlinePolicy, Opening

CAPACITY_PATH = "/v1/check/capacity"
RTT_PINGS = 2  # the best of a few pings: one slow packet should not widen the deadline much
PING_TIMEOUT_S = 5.0
ANSWER_GRACE_S = 5.0  # waited past the deadline, so a late answer is seen as late
# A busy node (429) proves another panel member's challenge, which takes about a
# deadline: ask again after a jittered fraction of one.
BUSY_PAUSE = (0.25, 0.75)
BUSY_PAUSE_S = (0.05, 1.5)
# Longer than a panel's challenges keep an honest node busy: a node busy for longer is
# refusing them, and fails; busy for less until the check is due, it gets no vote.
BUSY_PROOF_S = 60.0
MAX_TEXT_CHARS = 160
ROOT_BYTES = 32


@dataclass
class CapacityContext:
    """What a capacity check needs besides the task: the client, clock and entropy.

    ``policy`` None sizes each challenge by the node's model (``policy_for``).
    ``timing`` is held while a challenge is timed and while tiles are recomputed, and
    shared by the checks one checker runs at once: recomputing tiles keeps a CPU busy,
    which would slow the reading of another node's answer and make it look late.
    """

    http: httpx.Client
    policy: DeadlinePolicy | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], object] = time.sleep
    entropy: Callable[[int], bytes] = os.urandom
    rng: random.Random = field(default_factory=random.Random)
    timing: threading.Lock = field(default_factory=threading.Lock)


class _Failed(Exception):
    """The node failed the check; carries the detail and the evidence so far."""

    def __init__(self, detail: str, *, unanswered: bool = False, **evidence: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.unanswered = unanswered  # no HTTP answer at all
        self.evidence = evidence


def check_capacity(
    task: CheckTask, context: CapacityContext, budget_s: float | None = None
) -> CheckOutcome:
    """Challenge the node, open tiles of its answer, and judge it against the deadline.

    ``budget_s`` bounds how long the checker keeps asking a busy node.
    """
    if not task.check_url:
        return failed("the node advertises no check_url", reason="no check_url")
    started = context.clock()
    measured = measure_rtt(task, context, budget_s)
    rtt_s = measured if measured is not None else (task.rtt_ms or 0.0) / 1000.0
    spec = new_spec(task, context, rtt_s)
    evidence: dict[str, Any] = {**spec_evidence(spec), "rtt_ms": round(rtt_s * 1000.0, 3)}
    try:
        root, elapsed_s, indices, openings = _challenge(
            task, spec, context, (started, budget_s), evidence
        )
    except _Failed as exc:
        return _failure(task, context, exc, measured, evidence)
    with context.timing:
        finding = challenge.judge_capacity(spec, root, elapsed_s, indices, openings)
    evidence["reason"] = finding.reason
    return (passed if finding.passed else failed)(finding.reason, **evidence)


def _challenge(
    task: CheckTask,
    spec: ChallengeSpec,
    context: CapacityContext,
    window: tuple[float, float | None],
    evidence: dict[str, Any],
) -> tuple[bytes, float, tuple[int, ...], list[Opening]]:
    """Commit, pick, open: the root, the time to it, the tiles and their openings."""
    root, elapsed_s = _commit(task, spec, context, *window)
    evidence["elapsed_s"] = round(elapsed_s, 6)
    indices = challenge.pick_tiles(spec, root, context.entropy(32))
    evidence["tiles"] = list(indices)
    return root, elapsed_s, indices, _open(task, spec, indices, context)


def _failure(
    task: CheckTask,
    context: CapacityContext,
    exc: _Failed,
    measured: float | None,
    evidence: dict[str, Any],
) -> CheckOutcome:
    """A fail vote, unless the node simply went offline (no vote: liveness reports it)."""
    if exc.unanswered and (measured is None or measure_rtt(task, context, 1.0) is None):
        raise CheckNotRun(
            f"node {task.node_id} stopped answering pings ({exc.detail}): offline, which "
            "the liveness check reports; no capacity vote"
        )
    return failed(exc.detail, **{**evidence, **exc.evidence, "reason": exc.detail})


def measure_rtt(
    task: CheckTask, context: CapacityContext, budget_s: float | None = None
) -> float | None:
    """The best round trip of a few signed pings; None if none got a valid answer.

    Measured here rather than taken from the node's heartbeats, which the node reports.
    Each ping may take a quarter of the budget at most.
    """
    timeout_s = PING_TIMEOUT_S if budget_s is None else min(PING_TIMEOUT_S, budget_s / 4)
    timeout_s = max(MIN_TIMEOUT_S, timeout_s)
    answers = [
        ping(context.http, task, new_ping_nonce(), timeout_s, context.clock)
        for _ in range(RTT_PINGS)
    ]
    rtts = [answer.rtt_s for answer in answers if answer.rtt_s is not None]
    return min(rtts) if rtts else None


def new_spec(task: CheckTask, context: CapacityContext, rtt_s: float) -> ChallengeSpec:
    """A fresh challenge: its id names the check and is unique to this checker's try."""
    challenge_id = f"{task.check_id}-{context.entropy(6).hex()}"
    policy = context.policy or challenge.policy_for(task.gpu_model)
    spec = challenge.new_challenge(
        challenge_id, task.node_id, task.claimed_ops_per_s, context.entropy(32), rtt_s, policy
    )
    if task.deadline_factor == 1.0:
        return spec
    # The network's own allowance for shared machines (a local network on one box).
    deadline = min(spec.deadline_s * task.deadline_factor, challenge_inputs.MAX_DEADLINE_S)
    return replace(spec, deadline_s=deadline)


def spec_evidence(spec: ChallengeSpec) -> dict[str, Any]:
    return {
        "challenge_id": spec.challenge_id,
        "n": spec.n,
        "k": spec.k,
        "tile": spec.tile,
        "opens": spec.opens,
        "deadline_s": spec.deadline_s,
    }


def challenge_body(spec: ChallengeSpec) -> dict[str, Any]:
    """``POST /v1/check/capacity``'s body for ``spec``."""
    return {**spec_evidence(spec), "node_id": spec.node_id, "seed": spec.seed.hex()}


def _commit(
    task: CheckTask,
    spec: ChallengeSpec,
    context: CapacityContext,
    started: float,
    budget_s: float | None,
) -> tuple[bytes, float]:
    """Send the challenge (again while the node is busy); the root and the time taken."""
    url = _url(task, CAPACITY_PATH)
    first_sent = context.clock()
    while True:
        timeout_s = _answer_timeout(spec, _left(context, started, budget_s))
        with context.timing:
            sent = context.clock()
            response = _post(context, url, challenge_body(spec), timeout_s, "the challenge")
            elapsed_s = max(0.0, context.clock() - sent)
        if response.status_code != 429:
            return _commitment_root(task, spec, response), elapsed_s
        pause = _busy_pause(spec, context.rng)
        left_s = _left(context, started, budget_s)
        if left_s is not None and pause + spec.deadline_s > left_s:
            _busy_until_due(task, context.clock() - first_sent)
        context.sleep(pause)


def _left(context: CapacityContext, started: float, budget_s: float | None) -> float | None:
    return None if budget_s is None else budget_s - (context.clock() - started)


def _answer_timeout(spec: ChallengeSpec, left_s: float | None) -> float:
    """Past the deadline, so a late answer is seen late; within the time left if any."""
    longest = spec.deadline_s + ANSWER_GRACE_S
    return longest if left_s is None else max(spec.deadline_s, min(longest, left_s))


def _busy_pause(spec: ChallengeSpec, rng: random.Random) -> float:
    low, high = BUSY_PAUSE_S
    return min(high, max(low, rng.uniform(*BUSY_PAUSE) * spec.deadline_s))


def _busy_until_due(task: CheckTask, busy_s: float) -> NoReturn:
    if busy_s >= BUSY_PROOF_S:
        raise _Failed(
            f"the node answered busy (HTTP 429) for {busy_s:.0f} s, until the check was due",
            busy_s=round(busy_s, 3),
        )
    raise CheckNotRun(
        f"node {task.node_id} was busy with other challenges (HTTP 429) for {busy_s:.1f} s, "
        "until the check was due; no vote"
    )


def _commitment_root(task: CheckTask, spec: ChallengeSpec, response: httpx.Response) -> bytes:
    body = _answer(response, "the challenge")
    if body.get("challenge_id") != spec.challenge_id:
        raise _Failed(
            _short(
                f"the answer is for challenge {body.get('challenge_id')!r}, not "
                f"{spec.challenge_id} (a replayed commitment?)"
            )
        )
    if body.get("node_id") != task.node_id:
        raise _Failed(
            _short(f"the answer is from node {body.get('node_id')!r}, not {task.node_id}")
        )
    root = _hex_bytes(body.get("root"), "root")
    if len(root) != ROOT_BYTES:
        raise _Failed(f"the root is {len(root)} bytes, not {ROOT_BYTES}")
    message = challenge.commitment_message(spec.challenge_id, task.node_id, root)
    signer = recover_signer(message, body.get("signature"))
    if signer is None:
        raise _Failed("the commitment's signature is missing or malformed")
    if not same_address(signer, task.operator):
        raise _Failed(f"the commitment is signed by {signer}, not the operator {task.operator}")
    return root


def _open(
    task: CheckTask, spec: ChallengeSpec, indices: tuple[int, ...], context: CapacityContext
) -> list[Opening]:
    url = _url(task, f"{CAPACITY_PATH}/{spec.challenge_id}/open")
    response = _post(context, url, {"tiles": list(indices)}, PING_TIMEOUT_S * 2, "the opening")
    body = _answer(response, "the opening")
    openings = body.get("openings")
    if not isinstance(openings, list):
        raise _Failed("the opening answer has no list of openings")
    return [_opening(item) for item in openings]


def _opening(item: object) -> Opening:
    if not isinstance(item, dict) or not isinstance(item.get("index"), int):
        raise _Failed("an opening is not an object with an integer index")
    proof = item.get("proof")
    if not isinstance(proof, list):
        raise _Failed(f"the opening of tile {item['index']} has no proof list")
    try:
        data = base64.b64decode(str(item.get("data")), validate=True)
    except binascii.Error:
        raise _Failed(f"the opening of tile {item['index']} has data that is not base64") from None
    steps = tuple(_hex_bytes(step, f"proof of tile {item['index']}") for step in proof)
    return Opening(index=item["index"], data=data, proof=steps)


def _post(
    context: CapacityContext, url: str, body: dict[str, Any], timeout_s: float, what: str
) -> httpx.Response:
    try:
        return context.http.post(url, json=body, timeout=timeout_s)
    except httpx.TimeoutException:
        raise _Failed(f"no answer to {what} within {timeout_s:.2f} s", unanswered=True) from None
    except httpx.TransportError as exc:
        detail = _short(f"no answer to {what}: {type(exc).__name__} {exc}")
        raise _Failed(detail, unanswered=True) from None


def _answer(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise _Failed(
            _short(f"the node refused {what}: HTTP {response.status_code} {response.text}")
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _Failed(f"the answer to {what} is not a JSON object")
    return body


def _hex_bytes(value: object, name: str) -> bytes:
    try:
        return bytes.fromhex(str(value))
    except ValueError:
        raise _Failed(_short(f"the {name} is not hex: {value!r}")) from None


def _url(task: CheckTask, path: str) -> str:
    if not task.check_url:
        raise CheckNotRun(f"check {task.check_id} has no check_url")
    return task.check_url.rstrip("/") + path


def _short(text: str) -> str:
    return one_line(text, MAX_TEXT_CHARS)
