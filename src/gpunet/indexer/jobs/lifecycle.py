"""A job's lease as a state machine in the store, and the money each move makes.

Every change of a job's state goes through ``_move``: ``protocol.leases`` decides the
next state and what happens to the money (hold, settle, release), ``protocol.ledger``
builds the transfer, ``accounts.post`` writes it, and a ``job_events`` row records the
transition with its time and cause, all in the caller's transaction.
"""

from __future__ import annotations

import functools
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpunet.api.jobs import FileRef
from gpunet.errors import ConflictError, NotFoundError, PermissionDeniedError
from gpunet.indexer import accounts
from gpunet.indexer.orm import (
    JobEventRecord,
    JobFileRecord,
    JobRecord,
    NodeRecord,
)
from gpunet.protocol import ledger
from gpunet.protocol.jobspec import JobSpec, billing_units, job_spec_from_dict
from gpunet.protocol.leases import (
    ACTIVE,
    TERMINAL,
    LeaseEvent,
    LeaseState,
    MoneyMove,
    expiry_cause,
    money_move,
    next_state,
)
from gpunet.protocol.nodes import NodeState

LOW_FUNDS = "low_funds"
"""The event name of a low-funds notice (a job_events row with no state change)."""


# What a node-side outcome of a finished attempt means for the lease.
_SUCCESS_OUTCOMES = frozenset({"succeeded"})
_NODE_FAULT_OUTCOMES = frozenset({"sandbox_error", "node_error"})


@dataclass(frozen=True)
class JobRules:
    """The indexer's settings that jobs follow."""

    fee_bps: int = ledger.DEFAULT_FEE_BPS
    max_attempts: int = 3
    usage_slack_s: float = 5.0
    low_funds_grace_s: float = 120.0
    max_log_lines: int = 100_000


def new_job_id() -> str:
    return "j-" + secrets.token_hex(8)


def get_job(session: Session, job_id: str, *, for_update: bool = False) -> JobRecord:
    query = select(JobRecord).where(JobRecord.job_id == job_id)
    if for_update:
        query = query.with_for_update()
    record = session.scalars(query).one_or_none()
    if record is None:
        raise NotFoundError(f"job {job_id} does not exist: check the id with `gpunet jobs`")
    return record


def spec_of(record: JobRecord) -> JobSpec:
    return _parsed_spec(record.spec_json)


@functools.lru_cache(maxsize=20_000)
def _parsed_spec(spec_json: str) -> JobSpec:
    """A stored spec, parsed once: specs never change, and every matching pass reads
    the specs of all waiting jobs."""
    return job_spec_from_dict(json.loads(spec_json), source="stored job spec")


def files_of(session: Session, job_id: str, role: str) -> list[FileRef]:
    query = (
        select(JobFileRecord)
        .where(JobFileRecord.job_id == job_id, JobFileRecord.role == role)
        .order_by(JobFileRecord.path)
    )
    return [FileRef(path=f.path, sha256=f.sha256, size=f.size) for f in session.scalars(query)]


def _record_event(
    session: Session,
    record: JobRecord,
    *,
    from_state: str | None,
    to_state: str,
    event: str | None,
    cause: str,
    now: float,
) -> None:
    session.add(
        JobEventRecord(
            job_id=record.job_id,
            at=now,
            from_state=from_state,
            to_state=to_state,
            event=event,
            cause=cause[:500],
            node_id=record.node_id,
        )
    )


def _post(session: Session, record: JobRecord, transfer: ledger.Transfer, now: float) -> None:
    if not transfer.postings:
        return
    accounts.post(session, transfer, at=now, job_id=record.job_id)
    record.hold_micros += transfer.amount_for(ledger.escrow_account(record.job_id))


def _charge_for(record: JobRecord, usage_s: float) -> int:
    """What ``usage_s`` seconds of the current lease cost, capped by the hold."""
    if record.price_micros is None or usage_s <= 0:
        return 0
    units = record.gpu_count if record.gpu_count else 1
    charge = ledger.usage_charge(record.price_micros, units, usage_s)
    return min(charge, record.hold_micros)


def _settle(
    session: Session, record: JobRecord, usage_s: float, rules: JobRules, now: float
) -> None:
    """Pay the operator for usage not billed yet, and return the rest of the hold."""
    unbilled = max(0.0, usage_s - record.billed_usage_s)
    charge = _charge_for(record, unbilled)
    transfer = ledger.settle(
        record.job_id,
        record.buyer,
        record.operator or "",
        record.hold_micros,
        charge,
        rules.fee_bps,
    )
    _post(session, record, transfer, now)
    record.charged_micros += charge
    record.billed_usage_s = max(record.billed_usage_s, usage_s)
    record.usage_s = max(record.usage_s, usage_s)


def _release(session: Session, record: JobRecord, now: float) -> None:
    if record.hold_micros > 0:
        _post(session, record, ledger.release(record.job_id, record.buyer, record.hold_micros), now)


def _observed_usage(record: JobRecord, now: float) -> float:
    """Seconds the indexer has seen the current attempt run."""
    if record.started_at is None:
        return 0.0
    return max(0.0, now - record.started_at)


def _free_node(session: Session, record: JobRecord, *, failed: bool) -> None:
    if record.node_id is None:
        return
    node = session.get(NodeRecord, record.node_id)
    if node is None:
        return
    if node.state == NodeState.BUSY.value:
        node.state = NodeState.IDLE.value
    if failed:
        node.leases_failed += 1


def _move(
    session: Session,
    record: JobRecord,
    event: LeaseEvent,
    cause: str,
    now: float,
    rules: JobRules,
    *,
    usage_s: float | None = None,
) -> LeaseState:
    """Apply ``event`` to the job: state, money and history together."""
    state = LeaseState(record.state)
    new_state = next_state(state, event)
    move = money_move(state, event)
    if move is MoneyMove.SETTLE:
        used = _observed_usage(record, now) if usage_s is None else usage_s
        _settle(session, record, used, rules, now)
    elif move is MoneyMove.RELEASE:
        _release(session, record, now)
    # MoneyMove.HOLD is done by ``assign``, which knows the price.
    _record_event(
        session,
        record,
        from_state=state.value,
        to_state=new_state.value,
        event=event.value,
        cause=cause,
        now=now,
    )
    if state in ACTIVE and new_state not in ACTIVE:
        _free_node(session, record, failed=event in (LeaseEvent.NODE_LOST, LeaseEvent.FAIL))
    record.state = new_state.value
    record.updated_at = now
    if new_state in TERMINAL:
        record.finished_at = now
    if new_state is LeaseState.REQUEUED:
        _clear_lease(record)
    return new_state


def _clear_lease(record: JobRecord) -> None:
    if record.node_id:
        excluded = set(filter(None, record.excluded_nodes.split(",")))
        excluded.add(record.node_id)
        record.excluded_nodes = ",".join(sorted(excluded))
    record.node_id = None
    record.operator = None
    record.gpu_model = None
    record.gpu_count = None
    record.vram_mib = None
    record.price_micros = None
    record.started_at = None
    record.session_endpoint = None
    record.session_token = None
    record.billed_usage_s = 0.0


def _hold_seconds(spec: JobSpec) -> int:
    return spec.session_hold_s if spec.kind == "session" else spec.max_duration_s


def budget_hold(spec: JobSpec) -> int:
    """The most one attempt can hold: the budget price for the whole hold duration."""
    return ledger.hold_amount(spec.max_price_micros, billing_units(spec), _hold_seconds(spec))


def _usd(micros: int) -> str:
    from gpunet.protocol.units import format_usd

    return format_usd(micros)


def _require_buyer(record: JobRecord, buyer: str) -> None:
    if record.buyer != buyer.lower():
        raise PermissionDeniedError(
            f"job {record.job_id} belongs to {record.buyer}, not {buyer.lower()}: "
            "sign with the buyer's key"
        )


def require_buyer(record: JobRecord, buyer: str) -> None:
    _require_buyer(record, buyer)


def _notice(session: Session, record: JobRecord, cause: str, now: float) -> None:
    _record_event(
        session,
        record,
        from_state=record.state,
        to_state=record.state,
        event=LOW_FUNDS,
        cause=cause,
        now=now,
    )


def _leased_to(session: Session, job_id: str, node_id: str | None, operator: str) -> JobRecord:
    record = get_job(session, job_id, for_update=True)
    if record.operator != operator.lower() or (node_id is not None and record.node_id != node_id):
        raise PermissionDeniedError(
            f"job {job_id} is not leased to a node of operator {operator.lower()}"
        )
    return record


def _require_attempt(record: JobRecord, attempt: int) -> None:
    if attempt != record.attempts:
        raise ConflictError(
            f"attempt {attempt} of job {record.job_id} is over (the current attempt is "
            f"{record.attempts}): drop it"
        )


def _requeue_or_expire(
    session: Session, record: JobRecord, cause: str, now: float, rules: JobRules
) -> None:
    _move(session, record, LeaseEvent.NODE_LOST, cause, now, rules)
    why = expiry_cause(
        LeaseState(record.state), now, record.deadline_at, record.attempts, rules.max_attempts
    )
    if why is not None:
        _move(session, record, LeaseEvent.EXPIRE, why, now, rules)
