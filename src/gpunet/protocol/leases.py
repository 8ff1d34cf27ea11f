"""The lease state machine: where a job stands between submission and its end.

A job is ``queued`` when submitted, ``matched`` once the indexer has chosen a node and
held the buyer's funds, ``running`` once the node has started the work, and ends
``succeeded``, ``failed`` or ``cancelled``. A node that goes offline, declines or breaks
sends the job back as ``requeued``, to be matched again; the buyer never pays for that
attempt. Every move is decided here, from the current state and an event, so the
indexer, the sweeper and the docs share one table; the indexer persists each move as a
``Transition`` with its time and cause.

Each move also says what happens to the buyer's money (``money_move``): a hold at match,
a settlement by metered usage when a running job ends, a release of the whole hold when
the node is lost or the job ends before it started. docs/leases.md explains the rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from gpunet.errors import ConflictError, ValidationError


class LeaseState(StrEnum):
    """Where a job stands."""

    QUEUED = "queued"
    MATCHED = "matched"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REQUEUED = "requeued"


class LeaseEvent(StrEnum):
    """What happened to a job."""

    MATCH = "match"
    START = "start"
    SUCCEED = "succeed"
    FAIL = "fail"
    NODE_LOST = "node_lost"
    EXPIRE = "expire"
    CANCEL = "cancel"


class MoneyMove(StrEnum):
    """What a transition does to the job's escrow (see ``gpunet.protocol.ledger``)."""

    NONE = "none"
    HOLD = "hold"
    SETTLE = "settle"
    RELEASE = "release"


TERMINAL: frozenset[LeaseState] = frozenset(
    {LeaseState.SUCCEEDED, LeaseState.FAILED, LeaseState.CANCELLED}
)
ACTIVE: frozenset[LeaseState] = frozenset({LeaseState.MATCHED, LeaseState.RUNNING})
WAITING: frozenset[LeaseState] = frozenset({LeaseState.QUEUED, LeaseState.REQUEUED})
INITIAL_STATE = LeaseState.QUEUED
MAX_CAUSE_CHARS = 500

_S = LeaseState
_E = LeaseEvent
_M = MoneyMove

# (from, event) -> (to, money). The order is the order of the docs and the diagram.
_TABLE: dict[tuple[LeaseState, LeaseEvent], tuple[LeaseState, MoneyMove]] = {
    (_S.QUEUED, _E.MATCH): (_S.MATCHED, _M.HOLD),
    (_S.REQUEUED, _E.MATCH): (_S.MATCHED, _M.HOLD),
    (_S.MATCHED, _E.START): (_S.RUNNING, _M.NONE),
    (_S.RUNNING, _E.SUCCEED): (_S.SUCCEEDED, _M.SETTLE),
    (_S.RUNNING, _E.FAIL): (_S.FAILED, _M.SETTLE),
    (_S.MATCHED, _E.NODE_LOST): (_S.REQUEUED, _M.RELEASE),
    (_S.RUNNING, _E.NODE_LOST): (_S.REQUEUED, _M.RELEASE),
    (_S.QUEUED, _E.EXPIRE): (_S.FAILED, _M.NONE),
    (_S.REQUEUED, _E.EXPIRE): (_S.FAILED, _M.NONE),
    (_S.MATCHED, _E.EXPIRE): (_S.FAILED, _M.RELEASE),
    # The deadline is the buyer's own limit, so it ends a run like a scheduled cancel.
    (_S.RUNNING, _E.EXPIRE): (_S.FAILED, _M.SETTLE),
    (_S.QUEUED, _E.CANCEL): (_S.CANCELLED, _M.NONE),
    (_S.REQUEUED, _E.CANCEL): (_S.CANCELLED, _M.NONE),
    (_S.MATCHED, _E.CANCEL): (_S.CANCELLED, _M.RELEASE),
    (_S.RUNNING, _E.CANCEL): (_S.CANCELLED, _M.SETTLE),
}


def allowed_events(state: LeaseState) -> tuple[LeaseEvent, ...]:
    """The events a job in ``state`` accepts, in declaration order (none when terminal)."""
    return tuple(event for event in LeaseEvent if (state, event) in _TABLE)


# The indexer reads states and events back from the database as plain strings.
def _state(value: str) -> LeaseState:
    try:
        return LeaseState(value)
    except ValueError:
        known = ", ".join(LeaseState)
        raise ValidationError("state", value, f"unknown lease state; known: {known}") from None


def _event(value: str) -> LeaseEvent:
    try:
        return LeaseEvent(value)
    except ValueError:
        known = ", ".join(LeaseEvent)
        raise ValidationError("event", value, f"unknown lease event; known: {known}") from None


def _entry(state: LeaseState, event: LeaseEvent) -> tuple[LeaseState, MoneyMove]:
    state, event = _state(state), _event(event)
    entry = _TABLE.get((state, event))
    if entry is not None:
        return entry
    message = f"cannot {event.value} a {state.value} job"
    if state in TERMINAL:
        raise ConflictError(f"{message}; it has ended, submit a new job instead")
    options = ", ".join(e.value for e in allowed_events(state))
    raise ConflictError(f"{message}; a {state.value} job accepts: {options}")


def next_state(state: LeaseState, event: LeaseEvent) -> LeaseState:
    """The state a job in ``state`` moves to on ``event``; ConflictError if it cannot."""
    return _entry(state, event)[0]


def money_move(state: LeaseState, event: LeaseEvent) -> MoneyMove:
    """What the move from ``state`` on ``event`` does to the job's escrow.

    ``HOLD``: hold the charge for the whole allowed duration. ``SETTLE``: charge the
    metered usage (capped at the hold), return the rest. ``RELEASE``: return the whole
    remaining hold, charging nothing. ConflictError if the move is impossible.
    """
    return _entry(state, event)[1]


def transitions_table() -> list[tuple[LeaseState, LeaseEvent, LeaseState]]:
    """Every possible move as ``(from, event, to)``."""
    return [(state, event, to) for (state, event), (to, _) in _TABLE.items()]


def expiry_cause(
    state: LeaseState, now: float, deadline: float | None, attempts: int, max_attempts: int
) -> str | None:
    """Why a job must expire now (the cause to record), or None if it need not.

    A passed deadline expires any open job. A job waiting for a node expires once it has
    had ``attempts`` matches out of ``max_attempts``; a job that a node holds keeps its
    current attempt, and only the deadline stops it.
    """
    if max_attempts < 1:
        raise ValidationError("max_attempts", max_attempts, "must be at least 1")
    if attempts < 0:
        raise ValidationError("attempts", attempts, "must not be negative")
    if state in TERMINAL:
        return None
    if deadline is not None and now > deadline:
        return f"deadline passed ({now - deadline:.0f}s ago)"
    if state in WAITING and attempts >= max_attempts:
        return f"attempts exhausted ({attempts} of {max_attempts})"
    return None


@dataclass(frozen=True)
class Transition:
    """One recorded move; ``from_state`` and ``event`` are None for the job's creation.

    Construction checks the move against the table, so a stored transition is always one
    the machine allows. ``at`` is unix seconds from the caller's clock; ``cause`` says
    why in a few words ("node n-3fa2c1 missed heartbeats", "exit code 1").
    """

    from_state: LeaseState | None
    to_state: LeaseState
    event: LeaseEvent | None
    at: float
    cause: str

    def __post_init__(self) -> None:
        # Rows read back from a database hold plain strings; store the enums.
        object.__setattr__(self, "to_state", _state(self.to_state))
        if self.from_state is not None:
            object.__setattr__(self, "from_state", _state(self.from_state))
        if self.event is not None:
            object.__setattr__(self, "event", _event(self.event))
        if not math.isfinite(self.at) or self.at < 0:
            raise ValidationError("at", self.at, "must be unix seconds, finite and not negative")
        if not self.cause.strip() or len(self.cause) > MAX_CAUSE_CHARS:
            raise ValidationError(
                "cause", self.cause, f"say why the job moved in 1-{MAX_CAUSE_CHARS} characters"
            )
        if self.from_state is None or self.event is None:
            self._check_creation()
        elif next_state(self.from_state, self.event) != self.to_state:
            raise ValidationError(
                "to_state",
                self.to_state,
                f"{self.event.value} moves a {self.from_state.value} job to "
                f"{next_state(self.from_state, self.event).value}",
            )

    def _check_creation(self) -> None:
        if self.from_state is not None or self.event is not None:
            raise ValidationError(
                "event",
                (self.from_state, self.event),
                "give both from_state and event, or neither for a job's creation",
            )
        if self.to_state is not INITIAL_STATE:
            raise ValidationError(
                "to_state", self.to_state, f"a new job starts {INITIAL_STATE.value}"
            )


def created(at: float, cause: str = "submitted") -> Transition:
    """The first transition of a job: into ``queued``."""
    return Transition(None, INITIAL_STATE, None, at, cause)


def transition(state: LeaseState, event: LeaseEvent, at: float, cause: str) -> Transition:
    """The transition from ``state`` on ``event``; ConflictError if it is impossible."""
    return Transition(state, next_state(state, event), event, at, cause)


def mermaid_diagram() -> str:
    """The machine as a Mermaid ``stateDiagram-v2``; events on one edge are joined."""
    edges: dict[tuple[LeaseState, LeaseState], list[str]] = {}
    for state, event, to in transitions_table():
        edges.setdefault((state, to), []).append(event.value)
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL_STATE.value}"]
    lines += [f"    {a.value} --> {b.value}: {', '.join(ev)}" for (a, b), ev in edges.items()]
    lines += [f"    {state.value} --> [*]" for state in LeaseState if state in TERMINAL]
    return "\n".join(lines) + "\n"
