"""Checks in the store: open an epoch's checks, take signed results, close by majority.

::

    open_epoch ──> checks (one per node and kind) with a panel of 2N+1 empty seats
    record_result ──> fills one seat (refused: not on the panel, twice, late, forged)
    close_check (all seats filled, or due) ──> verdict by majority (protocol.vote)
        ├─> seats marked with or against the majority; checkers' standing
        ├─> the node's reputation (protocol.reputation)
        └─> a penalty record when the verdict calls for one (protocol.penalties)

The caller owns the transaction, so a refused result leaves the store as it was.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence

from eth_account import Account
from eth_account.messages import encode_defunct
from sqlalchemy import select
from sqlalchemy.orm import Session

from gpunet.api.checks import (
    MAX_EVIDENCE_BYTES,
    CheckResultAck,
    CheckResultIn,
    CheckTask,
    DeliveryTask,
)
from gpunet.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from gpunet.indexer import checkers
from gpunet.indexer.orm import (
    CheckRecord,
    CheckVoteRecord,
    EpochRecord,
    JobRecord,
    NodeRecord,
    PenaltyRecord,
)
from gpunet.protocol.assignment import assign_panels
from gpunet.protocol.challenge import claimed_ops_per_s
from gpunet.protocol.leases import LeaseState
from gpunet.protocol.liveness import liveness_finding
from gpunet.protocol.nodes import NodeState
from gpunet.protocol.penalties import k_value, penalty_amount, penalty_for
from gpunet.protocol.reputation import CheckKind, Reputation, update_reputation
from gpunet.protocol.vote import Verdict, evidence_digest, panel_size, result_message, tally

_RUNNING = (LeaseState.MATCHED.value, LeaseState.RUNNING.value)


def new_check_id() -> str:
    return "c-" + secrets.token_hex(8)


# -- opening --


def online_nodes(session: Session, cutoff: float) -> list[NodeRecord]:
    """Online nodes that serve a check endpoint, in id order."""
    query = (
        select(NodeRecord)
        .where(
            NodeRecord.state != NodeState.OFFLINE.value,
            NodeRecord.last_heartbeat_at >= cutoff,
            NodeRecord.check_url.is_not(None),
        )
        .order_by(NodeRecord.node_id)
    )
    return list(session.scalars(query))


def open_epoch(
    session: Session,
    epoch: int,
    entropy: bytes,
    *,
    now: float,
    cutoff: float,
    checker_n: int,
    window_s: float,
    with_capacity: bool,
    seen_within_s: float,
    deadline_factor: float = 1.0,
) -> list[CheckRecord] | None:
    """Draw the epoch's panels and open its checks; None when the epoch is already open."""
    if session.get(EpochRecord, epoch) is not None:
        return None
    nodes = online_nodes(session, cutoff)
    active = checkers.active_checkers(session, now, seen_within_s)
    session.add(
        EpochRecord(
            epoch=epoch,
            opened_at=now,
            entropy=entropy.hex(),
            nodes=len(nodes),
            checkers=len(active),
        )
    )
    panels = assign_panels(
        [(n.node_id, n.operator) for n in nodes],
        [(c.address, c.operator or "") for c in active],
        entropy,
        panel_size(checker_n),
    )
    kinds = [CheckKind.LIVENESS] + ([CheckKind.CAPACITY] if with_capacity else [])
    opened = []
    for node in nodes:
        panel = panels.get(node.node_id, ())
        if not panel:
            continue
        for kind in kinds:
            opened.append(
                open_check(
                    session,
                    kind,
                    epoch,
                    node,
                    panel,
                    now,
                    now + window_s,
                    deadline_factor=deadline_factor,
                )
            )
    session.flush()
    return opened


def open_check(
    session: Session,
    kind: CheckKind,
    epoch: int,
    node: NodeRecord,
    panel: Sequence[str],
    now: float,
    due_at: float,
    delivery: DeliveryTask | None = None,
    *,
    deadline_factor: float = 1.0,
) -> CheckRecord:
    """One check of ``node`` with an empty seat for each panel member."""
    check_id = new_check_id()
    task = CheckTask(
        check_id=check_id,
        kind=kind.value,
        epoch=epoch,
        node_id=node.node_id,
        operator=node.operator,
        check_url=node.check_url,
        gpu_model=node.gpu_model,
        gpu_count=node.gpu_count,
        claimed_ops_per_s=claimed_ops_per_s(node.gpu_model, node.gpu_count, node.benchmark_gflops),
        rtt_ms=node.latency_ms,
        due_at=due_at,
        deadline_factor=deadline_factor,
        delivery=delivery,
    )
    record = CheckRecord(
        check_id=check_id,
        kind=kind.value,
        epoch=epoch,
        node_id=node.node_id,
        operator=node.operator,
        panel=",".join(panel),
        created_at=now,
        due_at=due_at,
        lease_job_id=_paid_lease(session, node.node_id),
        job_id=delivery.job_id if delivery else None,
        task_json=task.model_dump_json(),
    )
    session.add(record)
    for checker in panel:
        session.add(CheckVoteRecord(check_id=check_id, checker=checker))
    return record


def _paid_lease(session: Session, node_id: str) -> str | None:
    query = select(JobRecord.job_id).where(
        JobRecord.node_id == node_id,
        JobRecord.state.in_(_RUNNING),
        JobRecord.price_micros > 0,
    )
    return session.scalars(query.limit(1)).first()


# -- tasks and results --


def tasks_for(session: Session, checker: str, now: float) -> list[CheckTask]:
    """The open checks on which ``checker`` has a seat it has not filled yet."""
    query = (
        select(CheckRecord.task_json)
        .join(CheckVoteRecord, CheckVoteRecord.check_id == CheckRecord.check_id)
        .where(
            CheckVoteRecord.checker == checker.lower(),
            CheckVoteRecord.verdict.is_(None),
            CheckRecord.closed_at.is_(None),
            CheckRecord.due_at > now,
        )
        .order_by(CheckRecord.due_at)
        .limit(500)
    )
    return [CheckTask.model_validate_json(text) for text in session.scalars(query)]


def get_check(session: Session, check_id: str) -> CheckRecord:
    record = session.get(CheckRecord, check_id)
    if record is None:
        raise NotFoundError(f"no check {check_id}; check ids come from a checker's tasks")
    return record


def record_result(
    session: Session,
    check_id: str,
    checker: str,
    body: CheckResultIn,
    now: float,
    seats: int,
) -> tuple[CheckRecord, CheckResultAck]:
    """Fill ``checker``'s seat on the check with its signed result; close when full."""
    check = get_check(session, check_id)
    seat = session.get(CheckVoteRecord, (check_id, checker.lower()))
    _require_open_seat(check, seat, checker, now)
    assert seat is not None
    evidence_json = json.dumps(body.evidence, sort_keys=True, separators=(",", ":"))
    if len(evidence_json) > MAX_EVIDENCE_BYTES:
        raise ValidationError(
            "evidence",
            f"{len(evidence_json)} bytes",
            f"keep evidence under {MAX_EVIDENCE_BYTES} bytes",
        )
    _require_signature(check, checker, body)
    seat.verdict = body.verdict
    seat.detail = body.detail
    seat.evidence_json = evidence_json
    seat.signature = body.signature
    seat.reported_at = now
    session.flush()
    if all(s.verdict is not None for s in _seats(session, check_id)) and (
        len(check.panel.split(",")) >= seats
    ):
        close_check(session, check, now, seats)
    state = "closed" if check.closed_at is not None else "open"
    return check, CheckResultAck(
        check_id=check_id, accepted=True, state=state, verdict=check.verdict
    )


def _require_open_seat(
    check: CheckRecord, seat: CheckVoteRecord | None, checker: str, now: float
) -> None:
    if seat is None:
        raise PermissionDeniedError(
            f"checker {checker} is not on the panel of check {check.check_id}; "
            "report only the checks your tasks list"
        )
    if check.closed_at is not None:
        raise ConflictError(
            f"check {check.check_id} closed with verdict {check.verdict}; "
            "results after the close are refused"
        )
    if seat.verdict is not None:
        raise ConflictError(
            f"checker {checker} already reported {seat.verdict} on check {check.check_id}; "
            "a result cannot be replayed or changed"
        )
    if now > check.due_at:
        raise ConflictError(
            f"check {check.check_id} was due {now - check.due_at:.0f} s ago; "
            "results after the due time are refused"
        )


def _require_signature(check: CheckRecord, checker: str, body: CheckResultIn) -> None:
    """The result's own signature must be the checker's, over this check and verdict."""
    message = result_message(
        check.check_id, check.node_id, check.kind, body.verdict, evidence_digest(body.evidence)
    )
    try:
        signer = Account.recover_message(encode_defunct(text=message), signature=body.signature)
    except Exception:
        raise ValidationError(
            "signature", body.signature, "cannot be recovered to an address"
        ) from None
    if signer.lower() != checker.lower():
        raise ValidationError(
            "signature",
            body.signature,
            f"recovers to {signer}, not to the reporting checker {checker}: the result "
            "was signed by another key or over another check, verdict or evidence",
        )


def require_panel_member(session: Session, check: CheckRecord, checker: str) -> None:
    if session.get(CheckVoteRecord, (check.check_id, checker.lower())) is None:
        raise PermissionDeniedError(
            f"checker {checker} is not on the panel of check {check.check_id}"
        )


def _seats(session: Session, check_id: str) -> list[CheckVoteRecord]:
    query = select(CheckVoteRecord).where(CheckVoteRecord.check_id == check_id)
    return list(session.scalars(query))


# -- closing --


def close_overdue(session: Session, now: float, seats: int) -> list[CheckRecord]:
    """Close every open check past its due time with the results it has."""
    query = select(CheckRecord).where(CheckRecord.closed_at.is_(None), CheckRecord.due_at < now)
    overdue = list(session.scalars(query.limit(5000)))
    for check in overdue:
        close_check(session, check, now, seats)
    return overdue


def close_check(session: Session, check: CheckRecord, now: float, full_panel: int) -> None:
    """Tally the panel, then apply the verdict to checkers, reputation and penalties.

    A verdict needs a majority of ``full_panel`` (2N+1) even when fewer checkers could
    be seated, so a lone checker never decides alone.
    """
    seats = _seats(session, check.check_id)
    votes = {s.checker: Verdict(s.verdict) for s in seats if s.verdict is not None}
    panel = check.panel.split(",")
    result = tally(panel, votes, seats=max(full_panel, len(panel)))
    check.verdict = result.verdict.value
    check.closed_at = now
    for seat in seats:
        if seat.verdict is not None and result.verdict is not Verdict.INCONCLUSIVE:
            seat.with_majority = seat.verdict == result.verdict.value
    session.flush()
    checkers.record_outcomes(session, sorted(votes), list(result.dissenters), now)
    node = session.get(NodeRecord, check.node_id)
    if node is None:
        return
    kind = CheckKind(check.kind)
    paid_lease = check.lease_job_id is not None or _paid_lease(session, node.node_id) is not None
    check.finding = _finding(check, kind, result.verdict, paid_lease, seats)
    _update_reputation(node, kind, result.verdict)
    _penalize(session, check, node, kind, result.verdict, paid_lease, now)


def _finding(
    check: CheckRecord,
    kind: CheckKind,
    verdict: Verdict,
    paid_lease: bool,
    seats: Sequence[CheckVoteRecord],
) -> str | None:
    if kind is CheckKind.LIVENESS:
        finding = liveness_finding(verdict, paid_lease)
        return finding.value if finding is not None else None
    if verdict is Verdict.FAIL:
        details = [s.detail for s in seats if s.verdict == Verdict.FAIL.value and s.detail]
        return (details[0] if details else "failed")[:200]
    return None


def _update_reputation(node: NodeRecord, kind: CheckKind, verdict: Verdict) -> None:
    before = Reputation(node.rep_capacity, node.rep_liveness, node.rep_delivery)
    after = update_reputation(before, kind, verdict)
    node.rep_capacity, node.rep_liveness, node.rep_delivery = (
        after.capacity,
        after.liveness,
        after.delivery,
    )


def _penalize(
    session: Session,
    check: CheckRecord,
    node: NodeRecord,
    kind: CheckKind,
    verdict: Verdict,
    paid_lease: bool,
    now: float,
) -> None:
    reason = check.finding or verdict.value
    penalty = penalty_for(kind, verdict, paid_lease_running=paid_lease, reason=reason)
    if penalty is None:
        return
    amount = penalty_amount(penalty, k_value(node.gpu_model, node.gpu_count))
    session.add(
        PenaltyRecord(
            node_id=node.node_id,
            operator=node.operator,
            kind=penalty.value,
            amount=str(amount),
            check_id=check.check_id,
            job_id=check.job_id or check.lease_job_id,
            epoch=check.epoch,
            created_at=now,
            reason=f"{kind.value} check {check.check_id}: {reason}",
        )
    )
