"""Liveness probes: is the node answering, and does it matter that it is not?

A checker pings the node's check endpoint ``attempts`` times, ``spacing_s`` apart, each
with a ``timeout_s`` limit, and reports PASS when any attempt got a correctly signed
answer in time, FAIL when every attempt timed out or failed. One slow or lost packet
does not fail a node: all attempts of a majority of the panel must fail. With attempts
failing independently with probability q, one checker reports a false FAIL with
probability q**attempts and a panel of 2N+1 reaches a false FAIL verdict with the
probability that N+1 or more checkers do (``false_fail_probability``).

A FAIL verdict means different things by what the node was doing: offline while idle
costs no stake (the node just earns no rewards that epoch); offline while a paid lease
runs is downtime that a buyer paid for, and is penalized (``penalties``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from gpunet.errors import ValidationError
from gpunet.protocol.vote import Verdict

PING_SCHEME = "gpunet-check-ping-v1"
_NONCE = re.compile(r"^[0-9a-fA-F]{16,128}$")
_NODE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class ProbePolicy:
    """How a checker probes one node: attempts, the timeout of each, the pause between."""

    attempts: int = 3
    timeout_s: float = 5.0
    spacing_s: float = 2.0

    def __post_init__(self) -> None:
        whole = isinstance(self.attempts, int) and not isinstance(self.attempts, bool)
        if not whole or not 1 <= self.attempts <= 20:
            raise ValidationError("attempts", self.attempts, "must be a whole number from 1 to 20")
        if not (math.isfinite(self.timeout_s) and 0 < self.timeout_s <= 120):
            raise ValidationError("timeout_s", self.timeout_s, "must be above 0 and at most 120 s")
        if not (math.isfinite(self.spacing_s) and 0 <= self.spacing_s <= 600):
            raise ValidationError("spacing_s", self.spacing_s, "must be from 0 to 600 s")

    @property
    def duration_s(self) -> float:
        """The longest a full probe takes: every attempt timing out, with the pauses."""
        return self.attempts * self.timeout_s + (self.attempts - 1) * self.spacing_s


DEFAULT_PROBE_POLICY = ProbePolicy()


def probe_verdict(
    rtts: Sequence[float | None], policy: ProbePolicy = DEFAULT_PROBE_POLICY
) -> Verdict:
    """One checker's result from its attempts' round-trip times (None: no valid answer).

    PASS when any attempt answered within the timeout; FAIL when at least
    ``policy.attempts`` attempts were made and none did; INCONCLUSIVE when the checker
    stopped early, since fewer attempts than the policy asks are no proof of downtime.
    """
    answered = False
    for index, rtt in enumerate(rtts):
        if rtt is None:
            continue
        if not (math.isfinite(rtt) and rtt >= 0):
            raise ValidationError(f"rtts[{index}]", rtt, "must be a time in seconds, 0 or more")
        answered = answered or rtt <= policy.timeout_s
    if answered:
        return Verdict.PASS
    return Verdict.FAIL if len(rtts) >= policy.attempts else Verdict.INCONCLUSIVE


class LivenessFinding(StrEnum):
    """What a liveness verdict says about the node, given what it was doing."""

    ONLINE = "online"
    OFFLINE_IDLE = "offline_idle"
    OFFLINE_DURING_LEASE = "offline_during_lease"


def liveness_finding(verdict: Verdict, paid_lease_running: bool) -> LivenessFinding | None:
    """The finding for a panel's liveness verdict; None when the verdict is inconclusive.

    ``paid_lease_running`` is whether a buyer's paid lease was open on the node when the
    check ran, from the indexer's lease records.
    """
    if verdict == Verdict.PASS:
        return LivenessFinding.ONLINE
    if verdict == Verdict.FAIL:
        if paid_lease_running:
            return LivenessFinding.OFFLINE_DURING_LEASE
        return LivenessFinding.OFFLINE_IDLE
    return None


def ping_message(node_id: str, nonce: str) -> str:
    """The exact text a node signs (EIP-191, operator key) to answer one ping::

    gpunet-check-ping-v1
    <node_id>
    <nonce>
    """
    if not isinstance(node_id, str) or not _NODE_ID.fullmatch(node_id):
        raise ValidationError(
            "node_id", node_id, "use 1-128 letters, digits, dots, dashes, colons or underscores"
        )
    if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
        raise ValidationError(
            "nonce", nonce, "must be 16-128 hex digits, like secrets.token_hex(16)"
        )
    return "\n".join((PING_SCHEME, node_id, nonce))


def false_fail_probability(
    attempt_failure: float, policy: ProbePolicy = DEFAULT_PROBE_POLICY, panel: int = 3
) -> float:
    """Probability that a panel fails a node that is up, when each attempt fails
    independently with probability ``attempt_failure`` (loss, or later than the timeout).
    """
    if not (math.isfinite(attempt_failure) and 0 <= attempt_failure <= 1):
        raise ValidationError("attempt_failure", attempt_failure, "must be a probability, 0 to 1")
    if isinstance(panel, bool) or not isinstance(panel, int) or panel < 1:
        raise ValidationError("panel", panel, "must be a whole number of seats, 1 or more")
    one = attempt_failure**policy.attempts
    needed = panel // 2 + 1
    return sum(
        math.comb(panel, k) * one**k * (1 - one) ** (panel - k) for k in range(needed, panel + 1)
    )
