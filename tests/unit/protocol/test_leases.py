from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpunet.errors import ConflictError, ValidationError
from gpunet.protocol.leases import (
    ACTIVE,
    TERMINAL,
    WAITING,
    LeaseEvent,
    LeaseState,
    MoneyMove,
    Transition,
    allowed_events,
    created,
    expiry_cause,
    mermaid_diagram,
    money_move,
    next_state,
    transition,
    transitions_table,
)

S = LeaseState
E = LeaseEvent
DOC = Path(__file__).resolve().parents[3] / "docs" / "leases.md"

EXPECTED = {
    (S.QUEUED, E.MATCH): S.MATCHED,
    (S.REQUEUED, E.MATCH): S.MATCHED,
    (S.MATCHED, E.START): S.RUNNING,
    (S.RUNNING, E.SUCCEED): S.SUCCEEDED,
    (S.RUNNING, E.FAIL): S.FAILED,
    (S.MATCHED, E.NODE_LOST): S.REQUEUED,
    (S.RUNNING, E.NODE_LOST): S.REQUEUED,
    **{(s, E.EXPIRE): S.FAILED for s in (S.QUEUED, S.REQUEUED, S.MATCHED, S.RUNNING)},
    **{(s, E.CANCEL): S.CANCELLED for s in (S.QUEUED, S.REQUEUED, S.MATCHED, S.RUNNING)},
}
PAIRS = [(s, e) for s in LeaseState for e in LeaseEvent]


@pytest.mark.parametrize(("state", "event"), PAIRS)
def test_every_pair_moves_as_specified_or_conflicts(state: S, event: E) -> None:
    if (state, event) in EXPECTED:
        assert next_state(state, event) is EXPECTED[state, event]
    else:
        with pytest.raises(ConflictError, match=f"^cannot {event.value} a {state.value} job"):
            next_state(state, event)


def test_table_lists_exactly_the_possible_moves() -> None:
    table = transitions_table()
    assert {(s, e): t for s, e, t in table} == EXPECTED
    assert len(table) == len(EXPECTED)


def test_state_groups() -> None:
    assert frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED}) == TERMINAL
    assert frozenset({S.MATCHED, S.RUNNING}) == ACTIVE
    assert frozenset({S.QUEUED, S.REQUEUED}) == WAITING


def test_conflict_message_says_what_the_job_accepts() -> None:
    with pytest.raises(ConflictError, match="a queued job accepts: match, expire, cancel"):
        next_state(S.QUEUED, E.START)
    with pytest.raises(ConflictError, match="it has ended"):
        next_state(S.SUCCEEDED, E.CANCEL)


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_terminal_states_accept_nothing(state: S) -> None:
    assert allowed_events(state) == ()


@pytest.mark.parametrize("state", sorted(set(LeaseState) - TERMINAL))
def test_buyer_can_cancel_and_deadline_can_expire_any_open_job(state: S) -> None:
    assert next_state(state, E.CANCEL) is S.CANCELLED
    assert next_state(state, E.EXPIRE) is S.FAILED


def test_states_and_events_read_back_as_strings_are_accepted() -> None:
    assert next_state("running", "succeed") is S.SUCCEEDED  # type: ignore[arg-type]
    assert money_move("matched", "node_lost") is MoneyMove.RELEASE  # type: ignore[arg-type]


def test_unknown_state_or_event_names_the_value() -> None:
    with pytest.raises(ValidationError) as info:
        next_state("paused", E.START)  # type: ignore[arg-type]
    assert info.value.field == "state"
    with pytest.raises(ValidationError) as info:
        next_state(S.QUEUED, "pause")  # type: ignore[arg-type]
    assert info.value.field == "event"


@pytest.mark.parametrize(
    ("state", "event", "move"),
    [
        (S.QUEUED, E.MATCH, MoneyMove.HOLD),
        (S.REQUEUED, E.MATCH, MoneyMove.HOLD),
        (S.MATCHED, E.START, MoneyMove.NONE),
        (S.RUNNING, E.SUCCEED, MoneyMove.SETTLE),
        (S.RUNNING, E.FAIL, MoneyMove.SETTLE),
        (S.RUNNING, E.CANCEL, MoneyMove.SETTLE),
        (S.RUNNING, E.EXPIRE, MoneyMove.SETTLE),
        (S.RUNNING, E.NODE_LOST, MoneyMove.RELEASE),
        (S.MATCHED, E.NODE_LOST, MoneyMove.RELEASE),
        (S.MATCHED, E.CANCEL, MoneyMove.RELEASE),
        (S.MATCHED, E.EXPIRE, MoneyMove.RELEASE),
        (S.QUEUED, E.CANCEL, MoneyMove.NONE),
        (S.REQUEUED, E.EXPIRE, MoneyMove.NONE),
    ],
)
def test_money_moves(state: S, event: E, move: MoneyMove) -> None:
    assert money_move(state, event) is move


def test_money_move_refuses_impossible_moves() -> None:
    with pytest.raises(ConflictError):
        money_move(S.CANCELLED, E.MATCH)


@given(st.lists(st.sampled_from(list(LeaseEvent)), max_size=40))
def test_a_hold_is_open_exactly_while_a_node_holds_the_job(events: list[E]) -> None:
    state, hold_open = S.QUEUED, False
    for event in events:
        if event not in allowed_events(state):
            continue
        move = money_move(state, event)
        assert (move is MoneyMove.HOLD) == (not hold_open and event is E.MATCH)
        if move in (MoneyMove.SETTLE, MoneyMove.RELEASE):
            assert hold_open
            hold_open = False
        hold_open = hold_open or move is MoneyMove.HOLD
        state = next_state(state, event)
        assert hold_open == (state in ACTIVE)
    assert (state in TERMINAL) <= (not hold_open)


def _reachable(start: S) -> set[S]:
    seen, frontier = {start}, [start]
    while frontier:
        state = frontier.pop()
        for event in allowed_events(state):
            to = next_state(state, event)
            if to not in seen:
                seen.add(to)
                frontier.append(to)
    return seen


def test_every_state_is_reachable_and_every_open_state_can_end() -> None:
    assert _reachable(S.QUEUED) == set(LeaseState)
    for state in set(LeaseState) - TERMINAL:
        assert _reachable(state) & TERMINAL == TERMINAL


def test_transition_records_a_checked_move() -> None:
    record = transition(S.RUNNING, E.NODE_LOST, 12.5, "node n-abc missed heartbeats")
    assert record == Transition(
        S.RUNNING, S.REQUEUED, E.NODE_LOST, 12.5, "node n-abc missed heartbeats"
    )
    first = created(10.0)
    assert (first.from_state, first.to_state, first.event, first.cause) == (
        None,
        S.QUEUED,
        None,
        "submitted",
    )


def test_transition_refuses_a_move_the_table_does_not_allow() -> None:
    with pytest.raises(ValidationError, match="moves a running job to succeeded"):
        Transition(S.RUNNING, S.FAILED, E.SUCCEED, 1.0, "exit code 0")
    with pytest.raises(ConflictError):
        transition(S.SUCCEEDED, E.FAIL, 1.0, "late failure")


@pytest.mark.parametrize(
    ("from_state", "to_state", "event"),
    [(None, S.RUNNING, None), (S.QUEUED, S.MATCHED, None), (None, S.MATCHED, E.MATCH)],
)
def test_transition_creation_must_be_into_queued_with_no_event(
    from_state: S | None, to_state: S, event: E | None
) -> None:
    with pytest.raises(ValidationError):
        Transition(from_state, to_state, event, 1.0, "submitted")


@pytest.mark.parametrize(("at", "cause"), [(float("nan"), "x"), (-1.0, "x"), (1.0, "  ")])
def test_transition_needs_a_time_and_a_cause(at: float, cause: str) -> None:
    with pytest.raises(ValidationError):
        created(at, cause)


def test_transition_stores_enums_when_given_strings() -> None:
    record = Transition("matched", "running", "start", 3.0, "node started")  # type: ignore[arg-type]
    assert record.from_state is S.MATCHED
    assert record.to_state is S.RUNNING
    assert record.event is E.START


def test_expiry_cause() -> None:
    assert expiry_cause(S.RUNNING, 100.0, 90.0, 1, 3) == "deadline passed (10s ago)"
    assert expiry_cause(S.REQUEUED, 100.0, None, 3, 3) == "attempts exhausted (3 of 3)"
    # A node holds the job: its last attempt runs to the end.
    assert expiry_cause(S.RUNNING, 100.0, None, 3, 3) is None
    assert expiry_cause(S.QUEUED, 100.0, 100.0, 0, 3) is None
    assert expiry_cause(S.SUCCEEDED, 100.0, 10.0, 9, 3) is None
    with pytest.raises(ValidationError):
        expiry_cause(S.QUEUED, 1.0, None, 0, 0)


def test_diagram_draws_every_move_once() -> None:
    diagram = mermaid_diagram()
    assert diagram.startswith("stateDiagram-v2\n    [*] --> queued\n")
    edges = re.findall(r"^    (\w+) --> (\w+): (.+)$", diagram, flags=re.MULTILINE)
    drawn = {(a, ev, b) for a, b, labels in edges for ev in labels.split(", ")}
    assert drawn == {(s.value, e.value, t.value) for s, e, t in transitions_table()}
    for state in TERMINAL:
        assert f"    {state.value} --> [*]\n" in diagram


def test_docs_show_the_current_diagram() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert f"```mermaid\n{mermaid_diagram()}```" in doc, (
        "docs/leases.md is out of date: paste gpunet.protocol.leases.mermaid_diagram()"
    )


def test_docs_table_lists_every_move_with_its_money() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for state, event, to in transitions_table():
        row = f"| {state.value} | {event.value} | {to.value} | {money_move(state, event).value} |"
        assert row in doc, f"docs/leases.md lacks the row {row}"
