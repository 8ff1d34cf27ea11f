"""The liveness check: is the node there, and is it who it says it is?

The checker asks the node's check endpoint ``GET /v1/check/ping?nonce=HEX`` with a
fresh nonce on each attempt. A valid answer echoes the node id and the nonce and is
signed (EIP-191) by the node's operator over ``protocol.liveness.ping_message``; a
fresh nonce means an answer cannot be recorded once and replayed. Attempts follow
``ProbePolicy`` (3 tries, 5 s each, 2 s apart by default) and stop at the first valid
answer; the verdict is ``probe_verdict`` over the round trips. An answer that is late,
malformed, for another node, or signed by another key is a failed attempt.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx

from gpunet.api.checks import CheckTask
from gpunet.checker.errors import CheckNotRun
from gpunet.checker.outcome import (
    CheckOutcome,
    one_line,
    recover_signer,
    same_address,
)
from gpunet.protocol.liveness import ProbePolicy, ping_message, probe_verdict
from gpunet.protocol.vote import Verdict

PING_PATH = "/v1/check/ping"
MIN_TIMEOUT_S = 0.25
FIT_SHARE = 0.9
MAX_ERROR_CHARS = 160


def new_ping_nonce() -> str:
    """32 fresh random hex digits."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class PingAnswer:
    """One attempt: its round trip when the answer was valid, else why not."""

    rtt_s: float | None
    error: str | None = None
    busy: bool = False

    def evidence(self) -> dict[str, Any]:
        rtt_ms = None if self.rtt_s is None else round(self.rtt_s * 1000.0, 3)
        return {"rtt_ms": rtt_ms, "error": self.error}


def ping(
    http: httpx.Client,
    task: CheckTask,
    nonce: str,
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> PingAnswer:
    """One signed ping of ``task``'s node; never raises for what the node does."""
    if not task.check_url:
        return PingAnswer(None, "the node advertises no check_url")
    url = task.check_url.rstrip("/") + PING_PATH
    sent = clock()
    try:
        response = http.get(url, params={"nonce": nonce}, timeout=timeout_s)
    except httpx.TimeoutException:
        return PingAnswer(None, f"no answer within {timeout_s:.3g} s")
    except httpx.TransportError as exc:
        return PingAnswer(None, _short(f"no answer from {url}: {type(exc).__name__} {exc}"))
    rtt_s = max(0.0, clock() - sent)
    if rtt_s > timeout_s:
        return PingAnswer(None, f"answered in {rtt_s:.2f} s, after the {timeout_s:.3g} s timeout")
    problem, busy = _ping_problem(response, task, nonce)
    return PingAnswer(None, problem) if problem else PingAnswer(rtt_s, busy=busy)


def _ping_problem(response: httpx.Response, task: CheckTask, nonce: str) -> tuple[str | None, bool]:
    """Why the answer is not a valid ping of ``task``'s node (None if it is), and busy."""
    if response.status_code != 200:
        return _short(f"HTTP {response.status_code}: {response.text}"), False
    body = _json_object(response)
    if body is None:
        return "the answer is not a JSON object", False
    if body.get("node_id") != task.node_id:
        return _short(f"answered as node {body.get('node_id')!r}, not {task.node_id}"), False
    if body.get("nonce") != nonce:
        return "the answer does not echo the nonce sent (a replayed answer?)", False
    signer = recover_signer(ping_message(task.node_id, nonce), body.get("signature"))
    if signer is None:
        return "the answer's signature is missing or malformed", False
    if not same_address(signer, task.operator):
        return f"signed by {signer}, not by the node's operator {task.operator}", False
    return None, body.get("busy") is True


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def check_liveness(
    task: CheckTask,
    http: httpx.Client,
    *,
    policy: ProbePolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    nonce: Callable[[], str] = new_ping_nonce,
    budget_s: float | None = None,
) -> CheckOutcome:
    """Ping the node up to ``policy.attempts`` times; pass on the first valid answer.

    ``budget_s`` bounds the whole probe (the task's time left): the policy is shrunk to
    fit it (``fitted``), no attempt starts that could not end within it, and one attempt
    is always made. Failed attempts cut short by the budget are no proof of downtime:
    ``CheckNotRun``, no vote.
    """
    # Fitted to most of the budget: a timed-out request overruns its timeout a little.
    fit_s = None if budget_s is None else budget_s * FIT_SHARE
    policy = fitted(policy or ProbePolicy(), fit_s)
    started = clock()
    answers: list[PingAnswer] = []
    while len(answers) < policy.attempts:
        if answers:
            if not _time_for_another(policy, clock() - started, budget_s):
                break
            sleep(policy.spacing_s)
        answers.append(ping(http, task, nonce(), policy.timeout_s, clock))
        if answers[-1].rtt_s is not None:
            break
    return _outcome(answers, policy)


def fitted(policy: ProbePolicy, budget_s: float | None) -> ProbePolicy:
    """``policy``, its timeout and spacing shrunk alike when it cannot end within the budget.

    Epochs of seconds (a local network) leave less time than the default probe's worst
    case (19 s); shrinking every attempt keeps all of them, so a silent node is still
    probed enough to be called offline. The timeout never goes below MIN_TIMEOUT_S.
    """
    if budget_s is None or policy.duration_s <= budget_s:
        return policy
    scale = max(budget_s, 0.0) / policy.duration_s
    timeout_s = max(MIN_TIMEOUT_S, policy.timeout_s * scale)
    return replace(policy, timeout_s=timeout_s, spacing_s=policy.spacing_s * scale)


def _time_for_another(policy: ProbePolicy, spent_s: float, budget_s: float | None) -> bool:
    # The tolerance keeps a policy fitted exactly to the budget from losing its last try.
    next_end = spent_s + policy.spacing_s + policy.timeout_s
    return budget_s is None or next_end <= budget_s + 1e-6


def _outcome(answers: list[PingAnswer], policy: ProbePolicy) -> CheckOutcome:
    verdict = probe_verdict([answer.rtt_s for answer in answers], policy)
    evidence = {
        "attempts": [answer.evidence() for answer in answers],
        "timeout_s": policy.timeout_s,
    }
    last = answers[-1]
    if verdict is Verdict.INCONCLUSIVE:
        # Too few attempts prove no downtime; a vote must be about the node.
        raise CheckNotRun(
            f"only {len(answers)} of {policy.attempts} ping attempts fitted before the "
            f"check's deadline, all failed (last: {last.error}); no vote"
        )
    if verdict is Verdict.PASS and last.rtt_s is not None:
        busy = ", busy" if last.busy else ""
        detail = (
            f"answered in {last.rtt_s * 1000:.0f} ms "
            f"(attempt {len(answers)} of {policy.attempts}){busy}"
        )
        return CheckOutcome(Verdict.PASS, detail, {**evidence, "busy": last.busy})
    errors = "; ".join(f"{i}: {answer.error}" for i, answer in enumerate(answers, 1))
    detail = f"no valid answer in {len(answers)} attempt(s): {errors}"
    return CheckOutcome(Verdict.FAIL, detail, evidence)


def _short(text: str) -> str:
    return one_line(text, MAX_ERROR_CHARS)
