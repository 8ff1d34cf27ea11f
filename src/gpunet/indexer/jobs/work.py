"""What nodes report: assignments, start, logs, usage, the receipt at the end; and the
sweep that requeues or expires jobs whose node went silent or whose time ran out."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from gpunet.api.jobs import (
    Assignment,
    FinishIn,
    LogEntry,
    UsageAck,
)
from gpunet.errors import ConflictError, ValidationError
from gpunet.indexer import accounts, receipts
from gpunet.indexer.jobs.lifecycle import (
    _NODE_FAULT_OUTCOMES,
    _SUCCESS_OUTCOMES,
    JobRules,
    _charge_for,
    _leased_to,
    _move,
    _notice,
    _observed_usage,
    _post,
    _record_event,
    _requeue_or_expire,
    _require_attempt,
    _usd,
    files_of,
    spec_of,
)
from gpunet.indexer.orm import (
    BlobRecord,
    JobFileRecord,
    JobLogRecord,
    JobRecord,
    NodeRecord,
)
from gpunet.protocol import ledger
from gpunet.protocol.jobspec import JobSpec, billing_units
from gpunet.protocol.leases import (
    ACTIVE,
    TERMINAL,
    WAITING,
    LeaseEvent,
    LeaseState,
    expiry_cause,
)
from gpunet.protocol.nodes import NodeState


def assignments_for(session: Session, node_id: str) -> list[Assignment]:
    query = select(JobRecord).where(
        JobRecord.node_id == node_id, JobRecord.state == LeaseState.MATCHED.value
    )
    return [
        Assignment(
            job_id=r.job_id,
            attempt=r.attempts,
            spec=json.loads(r.spec_json),
            inputs=files_of(session, r.job_id, "input"),
            price_micros=r.price_micros or 0,
            checkpoint_sha256=r.checkpoint_sha256,
            session_token=r.session_token,
        )
        for r in session.scalars(query)
    ]


def cancellations_for(session: Session, node_id: str, since: float) -> list[str]:
    """Jobs this node still runs that ended without its receipt (cancelled, expired)."""
    query = select(JobRecord.job_id).where(
        JobRecord.node_id == node_id,
        JobRecord.state.in_([s.value for s in TERMINAL]),
        JobRecord.receipt_json.is_(None),
        JobRecord.finished_at >= since,
    )
    return list(session.scalars(query))


def start(
    session: Session,
    job_id: str,
    operator: str,
    attempt: int,
    endpoint: str | None,
    now: float,
    rules: JobRules,
) -> JobRecord:
    record = _leased_to(session, job_id, None, operator)
    _require_attempt(record, attempt)
    if record.state != LeaseState.MATCHED.value:
        raise ConflictError(f"job {job_id} is {record.state}, not matched: it cannot start")
    record.started_at = now
    record.session_endpoint = endpoint
    _move(session, record, LeaseEvent.START, f"started on node {record.node_id}", now, rules)
    return record


def append_logs(
    session: Session,
    job_id: str,
    operator: str,
    attempt: int,
    lines: Sequence[LogEntry],
    now: float,
    rules: JobRules,
) -> int:
    record = _leased_to(session, job_id, None, operator)
    _require_attempt(record, attempt)
    count = session.scalar(
        select(func.count()).select_from(JobLogRecord).where(JobLogRecord.job_id == job_id)
    )
    room = max(0, rules.max_log_lines - int(count or 0))
    for entry in lines[:room]:
        session.add(
            JobLogRecord(
                job_id=job_id, attempt=attempt, at=now, stream=entry.stream, line=entry.line
            )
        )
    return min(len(lines), room)


def finish(
    session: Session, job_id: str, operator: str, receipt: FinishIn, now: float, rules: JobRules
) -> JobRecord:
    """Close an attempt with the node's signed usage receipt.

    The usage billed is the receipt's, capped by what the indexer observed (start to
    now, plus a small slack) and by the spec's max duration: a node cannot bill time
    it did not hold the lease. A job already ended (cancelled by its buyer, expired)
    keeps its state and its bill; the receipt is stored and the answer shows the state.
    """
    record = _leased_to(session, job_id, None, operator)
    _require_attempt(record, receipt.attempt)
    receipts.require_node_signature(job_id, receipt, operator)
    if record.state in {s.value for s in TERMINAL}:
        if record.receipt_json is None:
            record.receipt_json = receipt.model_dump_json()
        return record
    if record.state != LeaseState.RUNNING.value:
        raise ConflictError(f"job {job_id} is {record.state}, not running: start it first")
    spec = spec_of(record)
    usage = min(receipt.usage_s, _observed_usage(record, now) + rules.usage_slack_s)
    if spec.kind == "job":
        usage = min(usage, float(spec.max_duration_s))
    for ref in receipt.outputs:
        if session.get(BlobRecord, ref.sha256) is None:
            raise ValidationError(
                f"outputs[{ref.path}]", ref.sha256, "upload each output before finishing"
            )
    session.execute(
        delete(JobFileRecord).where(JobFileRecord.job_id == job_id, JobFileRecord.role == "output")
    )
    for ref in receipt.outputs:
        session.add(
            JobFileRecord(
                job_id=job_id, role="output", path=ref.path, sha256=ref.sha256, size=ref.size
            )
        )
    record.receipt_json = receipt.model_dump_json()
    record.exit_code = receipt.exit_code
    record.outcome = receipt.outcome
    record.message = receipt.message
    if receipt.outcome in _NODE_FAULT_OUTCOMES:
        _requeue_or_expire(session, record, f"node error: {receipt.message}", now, rules)
        return record
    event = LeaseEvent.SUCCEED if receipt.outcome in _SUCCESS_OUTCOMES else LeaseEvent.FAIL
    cause = receipt.message or receipt.outcome
    _move(session, record, event, cause, now, rules, usage_s=usage)
    if event is LeaseEvent.SUCCEED:
        _compare_replicas(session, record, now)
    return record


def _compare_replicas(session: Session, record: JobRecord, now: float) -> None:
    """For redundancy 2: once both replicas succeed, record whether their outputs agree."""
    if record.group_id is None:
        return
    peers = list(
        session.scalars(
            select(JobRecord).where(
                JobRecord.group_id == record.group_id, JobRecord.job_id != record.job_id
            )
        )
    )
    done = [p for p in peers if p.state == LeaseState.SUCCEEDED.value]
    if len(done) != len(peers):
        return
    mine = {(f.path, f.sha256) for f in files_of(session, record.job_id, "output")}
    for peer in done:
        theirs = {(f.path, f.sha256) for f in files_of(session, peer.job_id, "output")}
        verdict = "outputs_match" if mine == theirs else "outputs_differ"
        for job in (record, peer):
            _record_event(
                session,
                job,
                from_state=job.state,
                to_state=job.state,
                event=verdict,
                cause=f"redundant runs {record.job_id} and {peer.job_id}: "
                + ("identical output hashes" if mine == theirs else "output hashes differ"),
                now=now,
            )


def report_usage(
    session: Session,
    job_id: str,
    operator: str,
    attempt: int,
    usage_s: float,
    now: float,
    rules: JobRules,
) -> UsageAck:
    """Bill a running session for its usage so far, per second, out of its hold.

    When the hold runs low it is topped up from the buyer's available funds (and auto
    top-up); when that fails, a low-funds notice starts a grace period, after which the
    session is closed.
    """
    record = _leased_to(session, job_id, None, operator)
    _require_attempt(record, attempt)
    if record.state != LeaseState.RUNNING.value:
        return _ack(record)
    spec = spec_of(record)
    usage = min(usage_s, _observed_usage(record, now) + rules.usage_slack_s)
    unbilled = max(0.0, usage - record.billed_usage_s)
    charge = _charge_for(record, unbilled)
    if charge > 0:
        transfer = ledger.pay_partial(
            record.job_id, record.operator or "", charge, record.hold_micros, rules.fee_bps
        )
        _post(session, record, transfer, now)
        record.charged_micros += charge
    record.billed_usage_s = max(record.billed_usage_s, usage)
    record.usage_s = max(record.usage_s, usage)
    _refill_session_hold(session, record, spec, now, rules)
    return _ack(record)


def _refill_session_hold(
    session: Session, record: JobRecord, spec: JobSpec, now: float, rules: JobRules
) -> None:
    if spec.kind != "session" or record.price_micros is None:
        return
    units = billing_units(spec)
    chunk = ledger.hold_amount(record.price_micros, units, spec.session_hold_s)
    if record.hold_micros * 2 >= chunk:
        return
    buyer = ledger.buyer_account(record.buyer)
    available = accounts.balance(session, buyer)
    if available < chunk:
        available += accounts.auto_top_up(session, record.buyer, chunk, at=now)
    amount = min(chunk, available)
    if amount > 0:
        _post(session, record, ledger.hold(record.buyer, record.job_id, amount, available), now)
    if amount < chunk and record.low_funds_since is None:
        record.low_funds_since = now
        _notice(
            session,
            record,
            f"low funds: {_usd(available - amount)} USD left after this hold; the session "
            f"closes {rules.low_funds_grace_s:.0f} s after its hold runs out unless you "
            "deposit more",
            now,
        )
    elif amount >= chunk and record.low_funds_since is not None:
        record.low_funds_since = None


def _ack(record: JobRecord) -> UsageAck:
    return UsageAck(
        state=record.state,
        hold_micros=record.hold_micros,
        charged_micros=record.charged_micros,
        low_funds=record.low_funds_since is not None,
    )


def ack(record: JobRecord) -> UsageAck:
    return _ack(record)


def requeue_jobs_of_node(
    session: Session, node_id: str, cause: str, now: float, rules: JobRules
) -> int:
    """Requeue every job leased to ``node_id`` (offline, restarted); return how many."""
    query = (
        select(JobRecord)
        .where(JobRecord.node_id == node_id, JobRecord.state.in_([s.value for s in ACTIVE]))
        .with_for_update()
    )
    moved = 0
    for record in session.scalars(query):
        _requeue_or_expire(session, record, cause, now, rules)
        moved += 1
    return moved


def sweep_jobs(
    session: Session, now: float, cutoff: float, rules: JobRules, limit: int | None = None
) -> int:
    """Requeue jobs of silent or offline nodes, expire overdue jobs, close broke sessions."""
    changed = 0
    lost = (
        select(JobRecord)
        .join(NodeRecord, NodeRecord.node_id == JobRecord.node_id)
        .where(
            JobRecord.state.in_([s.value for s in ACTIVE]),
            or_(NodeRecord.state == NodeState.OFFLINE.value, NodeRecord.last_heartbeat_at < cutoff),
        )
        .limit(limit)
        .with_for_update()
    )
    for record in session.scalars(lost):
        _requeue_or_expire(
            session, record, f"node {record.node_id} went silent (heartbeat timeout)", now, rules
        )
        changed += 1
    open_states = [s.value for s in LeaseState if s not in TERMINAL]
    overdue = (
        select(JobRecord)
        .where(
            JobRecord.state.in_(open_states),
            or_(
                and_(JobRecord.deadline_at.is_not(None), JobRecord.deadline_at < now),
                and_(
                    JobRecord.state.in_([s.value for s in WAITING]),
                    JobRecord.attempts >= rules.max_attempts,
                ),
            ),
        )
        .limit(limit)
        .with_for_update()
    )
    for record in session.scalars(overdue):
        why = expiry_cause(
            LeaseState(record.state), now, record.deadline_at, record.attempts, rules.max_attempts
        )
        if why is not None:
            _move(session, record, LeaseEvent.EXPIRE, why, now, rules)
            changed += 1
    broke = (
        select(JobRecord)
        .where(
            JobRecord.kind == "session",
            JobRecord.state == LeaseState.RUNNING.value,
            JobRecord.low_funds_since.is_not(None),
        )
        .limit(limit)
        .with_for_update()
    )
    for record in session.scalars(broke):
        if _session_out_of_funds(record, now, rules):
            _move(session, record, LeaseEvent.CANCEL, "closed: out of funds", now, rules)
            changed += 1
    return changed


def _session_out_of_funds(record: JobRecord, now: float, rules: JobRules) -> bool:
    """A session's hold covers the usage not billed yet, plus the grace period."""
    if record.low_funds_since is None or record.price_micros is None:
        return False
    since = record.low_funds_since
    used_since_billing = _observed_usage(record, now) - record.billed_usage_s
    owed = _charge_for(record, max(0.0, used_since_billing))
    exhausted = owed >= record.hold_micros
    return exhausted and now - since >= rules.low_funds_grace_s
