"""How an agent retries the indexer: backoff, which answers are worth retrying, and its link.

Node agents, their job workers and checker agents all talk to the indexer in a loop
and must tell an outage (no answer, a 5xx, "not now") from a refusal that retrying
cannot change. ``IndexerLink`` keeps the record a health check shows (failures in a
row, the last success, the last error) and decides what each failure calls for.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from gpunet.errors import ApiError
from gpunet.sdk.errors import IndexerUnreachable, InvalidResponse

# Statuses that say "not now" rather than "never": retry them like an outage.
RETRYABLE_STATUSES = frozenset({408, 425, 429})

IndexerFailure = ApiError | IndexerUnreachable | InvalidResponse


def retryable(error: ApiError) -> bool:
    """True for answers worth retrying: 5xx and the "not now" statuses."""
    return error.status_code >= 500 or error.status_code in RETRYABLE_STATUSES


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``base_s * factor**(failures - 1)``, capped, then jittered."""

    base_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 30.0
    jitter: float = 0.2

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1-based)."""
        exponent = min(max(failures - 1, 0), 64)  # 2.0**1100 would overflow
        raw = min(self.cap_s, self.base_s * self.factor**exponent)
        return min(self.cap_s, raw * rng.uniform(1 - self.jitter, 1 + self.jitter))


class Next(StrEnum):
    """What a failed call to the indexer calls for."""

    REGISTER_AGAIN = "register_again"  # 404 once registered: the indexer forgot us
    REFUSED = "refused"  # another 4xx: a misconfiguration, retrying won't help
    RETRY = "retry"  # an outage: wait the backoff's delay and try again


class IndexerLink:
    """An agent's record of its calls to the indexer, and its retry decisions."""

    def __init__(self, backoff: Backoff, rng: random.Random, clock: Callable[[], float]) -> None:
        self.failures = 0
        self.last_ok: float | None = None
        self.last_error: str | None = None
        self._backoff = backoff
        self._rng = rng
        self._clock = clock

    def succeeded(self) -> None:
        self.failures = 0
        self.last_ok = self._clock()
        self.last_error = None

    def seconds_since_ok(self) -> float | None:
        return None if self.last_ok is None else self._clock() - self.last_ok

    def failed(self, exc: IndexerFailure, *, registered: bool) -> tuple[Next, float]:
        """What to do after ``exc``, and the seconds to wait first."""
        self.last_error = str(exc)
        if isinstance(exc, ApiError) and exc.status_code == 404 and registered:
            return Next.REGISTER_AGAIN, 0.0
        if isinstance(exc, ApiError) and not retryable(exc):
            return Next.REFUSED, 0.0
        self.failures += 1
        return Next.RETRY, self._backoff.delay(self.failures, self._rng)
