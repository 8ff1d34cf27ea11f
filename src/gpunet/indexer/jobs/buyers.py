"""What buyers do: submit a job (refused before anything is written when it cannot
run or cannot be paid for) and cancel one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpunet.api.jobs import (
    FileRef,
    JobSubmit,
)
from gpunet.errors import ConflictError, ValidationError
from gpunet.indexer import accounts
from gpunet.indexer.jobs.lifecycle import (
    JobRules,
    _hold_seconds,
    _move,
    _record_event,
    _require_buyer,
    _usd,
    budget_hold,
    get_job,
    new_job_id,
)
from gpunet.indexer.jobs.placement import demand
from gpunet.indexer.orm import (
    BlobRecord,
    JobFileRecord,
    JobRecord,
    NodeRecord,
)
from gpunet.indexer.views import node_candidate
from gpunet.protocol import ledger, matching
from gpunet.protocol.jobspec import JobSpec, job_spec_from_dict, job_spec_to_dict
from gpunet.protocol.leases import (
    TERMINAL,
    LeaseEvent,
    LeaseState,
)
from gpunet.protocol.nodes import NodeState


def submit(
    session: Session,
    buyer: str,
    body: JobSubmit,
    now: float,
    rules: JobRules,
    cutoff: float,
) -> list[JobRecord]:
    """Accept a job (two rows for redundancy 2); nothing moves money yet.

    Refuses, before writing anything: a bad spec, inputs that do not match the spec
    or were not uploaded, a spec that no online offer could run (busy or not), and a
    buyer whose available funds cannot cover one hold at the budget price (after any
    auto top-up).
    """
    spec = job_spec_from_dict(body.spec, source="spec")
    _check_inputs(session, spec, body.inputs)
    _require_an_offer(session, spec, now, cutoff)
    copies = spec.redundancy
    need = budget_hold(spec) * copies
    available = accounts.balance(session, ledger.buyer_account(buyer))
    if available < need:
        available += accounts.auto_top_up(session, buyer, need, at=now)
    if available < need:
        raise ValidationError(
            "deposit",
            available,
            f"this job can hold up to {_usd(need)} USD ({_hold_seconds(spec)} s at the "
            f"max price, x{copies}) but {_usd(available)} USD is available: deposit at "
            f"least {_usd(need - available)} USD more with `gpunet deposit`",
        )
    canonical = json.dumps(job_spec_to_dict(spec), sort_keys=True)
    group_id = new_job_id() if copies > 1 else None
    records = []
    for replica in range(copies):
        record = JobRecord(
            job_id=new_job_id(),
            buyer=buyer.lower(),
            name=spec.name,
            kind=spec.kind,
            spec_json=canonical,
            state=LeaseState.QUEUED.value,
            attempts=0,
            created_at=now,
            updated_at=now,
            deadline_at=now + spec.deadline_s if spec.deadline_s else None,
            hold_micros=0,
            charged_micros=0,
            usage_s=0.0,
            billed_usage_s=0.0,
            excluded_nodes="",
            group_id=group_id,
            replica=replica,
        )
        session.add(record)
        for ref in body.inputs:
            session.add(
                JobFileRecord(
                    job_id=record.job_id,
                    role="input",
                    path=ref.path,
                    sha256=ref.sha256,
                    size=ref.size,
                )
            )
        _record_event(
            session,
            record,
            from_state=None,
            to_state=LeaseState.QUEUED.value,
            event=None,
            cause="submitted" + (f" (replica {replica + 1} of {copies})" if copies > 1 else ""),
            now=now,
        )
        records.append(record)
    session.flush()
    return records


QUALIFY_SCAN = 5000


def _require_an_offer(session: Session, spec: JobSpec, now: float, cutoff: float) -> None:
    """Refuse a spec that no online node could run, saying what stands in the way.

    Busy nodes count: the job waits for them. The reason most offers give decides the
    field named (``max_price`` when the budget is the obstacle).
    """
    probe = JobRecord(job_id="j-0000000000000000", excluded_nodes="", created_at=now)
    wanted = demand(probe, spec, frozenset())
    online = session.scalars(
        select(NodeRecord)
        .where(NodeRecord.state != NodeState.OFFLINE.value, NodeRecord.last_heartbeat_at >= cutoff)
        .order_by(NodeRecord.price_micros)
        .limit(QUALIFY_SCAN)
    ).all()
    reasons: dict[str, int] = {}
    cheapest_above_budget: int | None = None
    for node in online:
        candidate = replace(node_candidate(node), state=NodeState.IDLE.value)
        if not node.runtimes:
            reason: str | None = "takes no jobs"
        else:
            reason = matching.disqualification(wanted, candidate)
        if reason is None:
            return
        key = reason.split(":")[0].split(" (")[0]
        reasons[key] = reasons.get(key, 0) + 1
        if "budget" in reason:
            price = matching.unit_price_micros(wanted, candidate)
            if cheapest_above_budget is None or price < cheapest_above_budget:
                cheapest_above_budget = price
    if not online:
        raise ValidationError(
            "resources", None, "no node is online to run this job: try again when one is"
        )
    common = sorted(reasons.items(), key=lambda kv: -kv[1])[:3]
    listed = "; ".join(f"{reason} ({count} of {len(online)} offers)" for reason, count in common)
    if cheapest_above_budget is not None and common[0][0].find("budget") >= 0:
        raise ValidationError(
            "max_price",
            _usd(spec.max_price_micros),
            f"no online offer qualifies ({listed}); the cheapest otherwise qualifying "
            f"offer asks {_usd(cheapest_above_budget)} USD/h: raise max_price to at "
            "least that",
        )
    raise ValidationError(
        "resources",
        None,
        f"no online offer qualifies ({listed}): ask for less, or see `gpunet quote`",
    )


def _check_inputs(session: Session, spec: JobSpec, refs: Sequence[FileRef]) -> None:
    wanted = {item.target for item in spec.inputs}
    given = {ref.path for ref in refs}
    if len(given) != len(refs):
        raise ValidationError("inputs", sorted(given), "each input path may appear once")
    if wanted != given:
        missing, extra = sorted(wanted - given), sorted(given - wanted)
        raise ValidationError(
            "inputs",
            {"missing": missing, "unexpected": extra},
            "the uploaded inputs must be exactly the spec's inputs (by target path)",
        )
    for ref in refs:
        blob = session.get(BlobRecord, ref.sha256)
        if blob is None or blob.size != ref.size:
            raise ValidationError(
                f"inputs[{ref.path}]",
                ref.sha256,
                "this file was not uploaded (or has another size): upload it with "
                "PUT /v1/blobs/{sha256} before submitting",
            )


def cancel(
    session: Session, job_id: str, buyer: str, reason: str, now: float, rules: JobRules
) -> JobRecord:
    record = get_job(session, job_id, for_update=True)
    _require_buyer(record, buyer)
    if record.state in {s.value for s in TERMINAL}:
        raise ConflictError(f"job {job_id} has already ended ({record.state}); nothing to cancel")
    _move(session, record, LeaseEvent.CANCEL, reason, now, rules)
    return record
