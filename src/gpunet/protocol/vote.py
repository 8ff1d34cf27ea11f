"""Panel votes: how 2N+1 checkers' results become one verdict, and who disagreed.

Each check has a panel of 2N+1 checkers (N=1 by default). Each panel member signs its
result (``result_message``) and the indexer tallies them: the verdict is the value that
at least N+1 of the 2N+1 seats voted for, otherwise the check is inconclusive. Up to N
colluding checkers cannot change a verdict on their own: the N+1 honest seats agree on
the truth and outnumber them.

A checker whose result went against the majority is a dissenter; two dissents within
any seven days bar the checker from rewards for thirty days from the second one
(``checker_standing``, DESIGN.md section 4).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from gpunet.errors import ValidationError

RESULT_SCHEME = "gpunet-check-result-v1"
DAY_S = 86_400.0
DEFAULT_DISSENT_WINDOW_S = 7 * DAY_S
DEFAULT_DISSENT_THRESHOLD = 2
DEFAULT_BAN_S = 30 * DAY_S
_TOKEN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class Verdict(StrEnum):
    """One checker's result, or a panel's."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


def panel_size(n: int) -> int:
    """Seats on a panel that tolerates ``n`` colluding checkers: 2n+1."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValidationError("n", n, "must be a whole number of tolerated checkers, 0 or more")
    return 2 * n + 1


@dataclass(frozen=True)
class Tally:
    """The outcome of one check's votes.

    ``votes_for`` counts votes for the node (PASS), ``votes_against`` votes against it
    (FAIL). ``majority`` voted as the verdict, ``dissenters`` against it (nobody
    dissents from an inconclusive check), ``missing`` did not vote. Names keep the
    panel's order.
    """

    verdict: Verdict
    votes_for: int
    votes_against: int
    majority: tuple[str, ...]
    dissenters: tuple[str, ...]
    missing: tuple[str, ...]


def tally(panel: Sequence[str], votes: Mapping[str, Verdict], *, seats: int | None = None) -> Tally:
    """Tally a panel's votes into a verdict.

    ``seats`` is the panel's full size 2N+1 when fewer checkers could be assigned than
    that; a verdict still needs a majority of the full size. A vote from outside the
    panel, or an inconclusive vote, is refused.
    """
    members = _checked_panel(panel, seats)
    cast = _checked_votes(members, votes)
    needed = max(len(members), seats or 0) // 2 + 1
    passes = [m for m in members if cast.get(m) is Verdict.PASS]
    fails = [m for m in members if cast.get(m) is Verdict.FAIL]
    missing = tuple(m for m in members if m not in cast)
    if len(passes) >= needed:
        verdict, majority, dissenters = Verdict.PASS, passes, fails
    elif len(fails) >= needed:
        verdict, majority, dissenters = Verdict.FAIL, fails, passes
    else:
        verdict, majority, dissenters = Verdict.INCONCLUSIVE, [], []
    return Tally(verdict, len(passes), len(fails), tuple(majority), tuple(dissenters), missing)


def _checked_panel(panel: Sequence[str], seats: int | None) -> tuple[str, ...]:
    members = tuple(panel)
    if len(set(members)) != len(members):
        raise ValidationError("panel", list(members), "names a checker twice; list each once")
    if seats is not None and seats < len(members):
        raise ValidationError(
            "seats", seats, f"is smaller than the {len(members)} checkers on the panel"
        )
    return members


def _checked_votes(members: tuple[str, ...], votes: Mapping[str, Verdict]) -> dict[str, Verdict]:
    seated = set(members)
    cast: dict[str, Verdict] = {}
    for checker, verdict in votes.items():
        if checker not in seated:
            raise ValidationError(
                "votes", checker, "is not on this check's panel; only panel members vote"
            )
        if verdict not in (Verdict.PASS, Verdict.FAIL):
            raise ValidationError(
                f"votes.{checker}", verdict, "a checker votes pass or fail; send nothing instead"
            )
        cast[checker] = Verdict(verdict)
    return cast


def _message_field(name: str, value: str) -> str:
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise ValidationError(
            name, value, "use 1-128 letters, digits, dots, dashes, colons or underscores"
        )
    return value


def result_message(
    check_id: str, node_id: str, kind: str, verdict: str, evidence_sha256: str
) -> str:
    """The exact text a checker signs (EIP-191) for one result, one field a line::

    gpunet-check-result-v1
    <check_id>
    <node_id>
    <kind>
    <verdict>
    <evidence_sha256>
    """
    if verdict not in (Verdict.PASS, Verdict.FAIL):
        raise ValidationError("verdict", verdict, "must be pass or fail")
    if not isinstance(evidence_sha256, str) or not _SHA256_HEX.fullmatch(evidence_sha256):
        raise ValidationError(
            "evidence_sha256", evidence_sha256, "must be 64 lowercase hex digits (evidence_digest)"
        )
    fields = (
        _message_field("check_id", check_id),
        _message_field("node_id", node_id),
        _message_field("kind", kind),
        str(verdict),
        evidence_sha256,
    )
    return "\n".join((RESULT_SCHEME, *fields))


def evidence_digest(evidence: Mapping[str, object]) -> str:
    """SHA-256 (hex) of the evidence as canonical JSON: sorted keys, no spaces, ASCII.

    JSON parsed back from the wire digests the same, so the indexer can check the
    signature over a body it re-reads.
    """
    try:
        text = json.dumps(
            evidence, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        )
    except (TypeError, ValueError) as error:
        raise ValidationError(
            "evidence", evidence, f"must be plain JSON (text keys, finite numbers): {error}"
        ) from None
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class CheckerStanding:
    """A checker's standing at one moment: barred from rewards until when, if at all."""

    banned_until: float | None
    dissents_in_window: int


def checker_standing(
    dissent_times: Sequence[float],
    now: float,
    *,
    window_s: float = DEFAULT_DISSENT_WINDOW_S,
    threshold: int = DEFAULT_DISSENT_THRESHOLD,
    ban_s: float = DEFAULT_BAN_S,
) -> CheckerStanding:
    """Where a checker stands at ``now`` given when its results went against the majority.

    ``threshold`` dissents less than ``window_s`` apart (first to last) bar the checker
    from rewards for ``ban_s`` from the last of them; a later such group extends the
    bar. Dissents after ``now`` are ignored, so a past standing can be recomputed.
    ``dissents_in_window`` counts dissents in the half-open window (now - window_s, now].
    """
    _check_standing_args(now, window_s, threshold, ban_s)
    times = sorted(_finite_time(t) for t in dissent_times if t <= now)
    banned_until: float | None = None
    for last in range(threshold - 1, len(times)):
        if times[last] - times[last - threshold + 1] < window_s:
            banned_until = times[last] + ban_s
    if banned_until is not None and banned_until <= now:
        banned_until = None
    in_window = sum(1 for t in times if t > now - window_s)
    return CheckerStanding(banned_until, in_window)


def _check_standing_args(now: float, window_s: float, threshold: int, ban_s: float) -> None:
    _finite_time(now)
    if not (math.isfinite(window_s) and window_s > 0):
        raise ValidationError("window_s", window_s, "must be a positive number of seconds")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ValidationError("threshold", threshold, "must be a whole number, 1 or more")
    if not (math.isfinite(ban_s) and ban_s >= 0):
        raise ValidationError("ban_s", ban_s, "must be 0 or a positive number of seconds")


def _finite_time(value: float) -> float:
    if not math.isfinite(value):
        raise ValidationError("time", value, "must be a finite unix time in seconds")
    return value
