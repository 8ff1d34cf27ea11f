"""Jobs and sessions in the store: submit, match, start, finish, cancel, requeue, bill.

Every change of a job's state goes through ``_move``: ``protocol.leases`` decides the
next state and what happens to the money (hold, settle, release), ``protocol.ledger``
builds the transfer, ``accounts.post`` writes it, and a ``job_events`` row records the
transition with its time and cause, all in the caller's transaction. So a job, its
escrow and its history can never disagree, even if the indexer dies mid-request.

Callers own the transaction: a signed request's write (``SignedWrite.apply``), the
matcher's pass or the sweeper's.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from gpunet.api.jobs import (
    AccountView,
    Assignment,
    FileRef,
    FinishIn,
    JobDetail,
    JobEvent,
    JobSubmit,
    JobSummary,
    LeaseHardware,
    LogEntry,
    LogLine,
    UsageAck,
)
from gpunet.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from gpunet.indexer import accounts, receipts
from gpunet.indexer.orm import (
    BlobRecord,
    JobEventRecord,
    JobFileRecord,
    JobLogRecord,
    JobRecord,
    LedgerEntryRecord,
    NodeRecord,
)
from gpunet.indexer.views import node_candidate
from gpunet.indexer.views import to_datetime as utc
from gpunet.protocol import ledger, matching
from gpunet.protocol.jobspec import JobSpec, billing_units, job_spec_from_dict, job_spec_to_dict
from gpunet.protocol.leases import (
    ACTIVE,
    TERMINAL,
    WAITING,
    LeaseEvent,
    LeaseState,
    MoneyMove,
    expiry_cause,
    money_move,
    next_state,
)
from gpunet.protocol.nodes import NodeState

MATCH_WINDOW_MIN = 500
MATCH_WINDOW_PER_NODE = 20

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


# -- reading --


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


def _money(session: Session, job_id: str) -> dict[str, int]:
    """Totals of the job's ledger entries: fees, holds placed, holds returned."""
    rows = session.execute(
        select(LedgerEntryRecord.kind, LedgerEntryRecord.account, LedgerEntryRecord.amount).where(
            LedgerEntryRecord.job_id == job_id
        )
    ).all()
    buyer_prefix = ledger.BUYER_PREFIX
    totals = {"fee": 0, "held": 0, "refunded": 0}
    for kind, account, amount in rows:
        if account == ledger.PROTOCOL_FEES:
            totals["fee"] += amount
        elif kind == "hold" and account.startswith(ledger.ESCROW_PREFIX):
            totals["held"] += amount
        elif kind in ("settle", "release") and account.startswith(buyer_prefix):
            totals["refunded"] += amount
    return totals


def detail(session: Session, record: JobRecord) -> JobDetail:
    money = _money(session, record.job_id)
    lease = None
    if record.node_id is not None and record.price_micros is not None:
        lease = LeaseHardware(
            node_id=record.node_id,
            operator=record.operator or "",
            gpu_model=record.gpu_model or "",
            gpu_count=record.gpu_count or 0,
            vram_mib=record.vram_mib or 0,
            price_micros=record.price_micros,
        )
    return JobDetail(
        job_id=record.job_id,
        name=record.name,
        kind="session" if record.kind == "session" else "job",
        buyer=record.buyer,
        state=record.state,
        attempts=record.attempts,
        created_at=utc(record.created_at),
        updated_at=utc(record.updated_at),
        started_at=utc(record.started_at) if record.started_at else None,
        finished_at=utc(record.finished_at) if record.finished_at else None,
        deadline_at=utc(record.deadline_at) if record.deadline_at else None,
        lease=lease,
        hold_micros=record.hold_micros,
        charged_micros=record.charged_micros,
        fee_micros=money["fee"],
        held_total_micros=money["held"],
        refunded_micros=money["refunded"],
        usage_s=record.usage_s,
        exit_code=record.exit_code,
        outcome=record.outcome,
        message=record.message,
        outputs=files_of(session, record.job_id, "output"),
        inputs=files_of(session, record.job_id, "input"),
        spec=json.loads(record.spec_json),
        group_id=record.group_id,
        replica=record.replica,
        low_funds_since=utc(record.low_funds_since) if record.low_funds_since else None,
        receipts=receipts.receipt_views(record),
    )


def summary(record: JobRecord) -> JobSummary:
    return JobSummary(
        job_id=record.job_id,
        name=record.name,
        kind=record.kind,
        buyer=record.buyer,
        state=record.state,
        node_id=record.node_id,
        price_micros=record.price_micros,
        charged_micros=record.charged_micros,
        created_at=utc(record.created_at),
        updated_at=utc(record.updated_at),
    )


def list_jobs(
    session: Session, *, buyer: str | None, state: str | None, limit: int, offset: int
) -> tuple[list[JobSummary], int]:
    conditions = []
    if buyer is not None:
        conditions.append(JobRecord.buyer == buyer.lower())
    if state is not None:
        conditions.append(JobRecord.state == state)
    total = session.scalar(select(func.count()).select_from(JobRecord).where(*conditions)) or 0
    query = (
        select(JobRecord)
        .where(*conditions)
        .order_by(JobRecord.created_at.desc(), JobRecord.job_id)
        .limit(limit)
        .offset(offset)
    )
    return [summary(r) for r in session.scalars(query)], total


def events_after(session: Session, job_id: str, after: int, limit: int = 500) -> list[JobEvent]:
    query = (
        select(JobEventRecord)
        .where(JobEventRecord.job_id == job_id, JobEventRecord.seq > after)
        .order_by(JobEventRecord.seq)
        .limit(limit)
    )
    return [
        JobEvent(
            seq=e.seq,
            at=utc(e.at),
            from_state=e.from_state,
            to_state=e.to_state,
            event=e.event,
            cause=e.cause,
            node_id=e.node_id,
        )
        for e in session.scalars(query)
    ]


def logs_after(session: Session, job_id: str, after: int, limit: int = 1000) -> list[LogLine]:
    query = (
        select(JobLogRecord)
        .where(JobLogRecord.job_id == job_id, JobLogRecord.seq > after)
        .order_by(JobLogRecord.seq)
        .limit(limit)
    )
    return [
        LogLine(seq=r.seq, at=utc(r.at), attempt=r.attempt, stream=r.stream, line=r.line)
        for r in session.scalars(query)
    ]


# -- the state machine, with its money --


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


# -- buyers --


def _hold_seconds(spec: JobSpec) -> int:
    return spec.session_hold_s if spec.kind == "session" else spec.max_duration_s


def budget_hold(spec: JobSpec) -> int:
    """The most one attempt can hold: the budget price for the whole hold duration."""
    return ledger.hold_amount(spec.max_price_micros, billing_units(spec), _hold_seconds(spec))


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


def _usd(micros: int) -> str:
    from gpunet.protocol.units import format_usd

    return format_usd(micros)


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


def _require_buyer(record: JobRecord, buyer: str) -> None:
    if record.buyer != buyer.lower():
        raise PermissionDeniedError(
            f"job {record.job_id} belongs to {record.buyer}, not {buyer.lower()}: "
            "sign with the buyer's key"
        )


def require_buyer(record: JobRecord, buyer: str) -> None:
    _require_buyer(record, buyer)


# -- matching --


def candidate(node: NodeRecord) -> matching.Candidate:
    return node_candidate(node)


def demand(record: JobRecord, spec: JobSpec, peers_nodes: frozenset[str]) -> matching.Demand:
    resources = spec.resources
    excluded = frozenset(filter(None, record.excluded_nodes.split(","))) | peers_nodes
    return matching.Demand(
        job_id=record.job_id,
        gpu_count=resources.gpu_count,
        gpu_model=resources.gpu_model,
        min_fp16_tflops=resources.min_fp16_tflops,
        min_vram_gib=resources.min_vram_gib,
        cpu_cores=resources.cpu_cores,
        memory_mib=resources.memory_mib,
        disk_gib=resources.disk_gib,
        max_price_micros=spec.max_price_micros,
        region=spec.region,
        max_latency_ms=spec.max_latency_ms,
        runtime=spec.runtime,
        needs_network=spec.network or spec.expose_port is not None,
        submitted_at=record.created_at,
        exclude_nodes=excluded,
    )


def idle_nodes(session: Session, cutoff: float) -> list[NodeRecord]:
    """Online idle nodes that take jobs and hold no lease."""
    busy = select(JobRecord.node_id).where(
        JobRecord.state.in_([s.value for s in ACTIVE]), JobRecord.node_id.is_not(None)
    )
    query = select(NodeRecord).where(
        NodeRecord.state == NodeState.IDLE.value,
        NodeRecord.last_heartbeat_at >= cutoff,
        NodeRecord.runtimes != "",
        NodeRecord.node_id.not_in(busy),
    )
    return list(session.scalars(query))


def waiting_jobs(session: Session, limit: int = 10_000) -> list[JobRecord]:
    query = (
        select(JobRecord)
        .where(JobRecord.state.in_([s.value for s in WAITING]))
        .order_by(JobRecord.created_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def _peer_nodes(session: Session, record: JobRecord) -> frozenset[str]:
    if record.group_id is None:
        return frozenset()
    query = select(JobRecord.node_id, JobRecord.excluded_nodes).where(
        JobRecord.group_id == record.group_id, JobRecord.job_id != record.job_id
    )
    nodes: set[str] = set()
    for node_id, _excluded in session.execute(query):
        if node_id:
            nodes.add(node_id)
    return frozenset(nodes)


def match_pass(
    session: Session,
    now: float,
    cutoff: float,
    rules: JobRules,
    weights: matching.Weights,
    seed: int,
) -> list[tuple[str, str]]:
    """Place waiting jobs on idle nodes; return the (node id, job id) pairs placed.

    With no job waiting (the usual case) a pass is one indexed query; with every node
    busy (a full queue), two. The oldest waiting jobs are considered, ``MATCH_WINDOW_PER_NODE`` per
    idle node and at least ``MATCH_WINDOW_MIN``, so a pass stays cheap however long
    the queue, and the matcher's own order (age and size first) applies within it.
    """
    if not waiting_jobs(session, limit=1):
        return []
    nodes = {node.node_id: node for node in idle_nodes(session, cutoff)}
    if not nodes:
        return []
    window = max(MATCH_WINDOW_MIN, MATCH_WINDOW_PER_NODE * len(nodes))
    waiting = waiting_jobs(session, limit=window)
    if not waiting:
        return []
    records = {r.job_id: r for r in waiting}
    demands = []
    for record in waiting:
        try:
            demands.append(demand(record, spec_of(record), _peer_nodes(session, record)))
        except ValidationError:
            continue
    placed = matching.match(
        demands, [node_candidate(n) for n in nodes.values()], weights=weights, now=now, seed=seed
    )
    given: list[tuple[str, str]] = []
    for assignment in placed:
        record = records[assignment.job_id]
        node = nodes[assignment.node_id]
        if assign(session, record, node, assignment.price_micros, now, rules):
            given.append((node.node_id, record.job_id))
    return given


def assign(
    session: Session,
    record: JobRecord,
    node: NodeRecord,
    price_micros: int,
    now: float,
    rules: JobRules,
) -> bool:
    """Lease ``node`` to the job: hold the funds, name the hardware, mark the node busy.

    Returns False (and leaves the job waiting, with a low-funds notice) when the buyer
    cannot cover the hold even after an auto top-up.
    """
    spec = spec_of(record)
    units = billing_units(spec)
    amount = ledger.hold_amount(price_micros, units, _hold_seconds(spec))
    buyer_account = ledger.buyer_account(record.buyer)
    available = accounts.balance(session, buyer_account)
    if available < amount:
        available += accounts.auto_top_up(session, record.buyer, amount, at=now)
    if available < amount:
        if record.low_funds_since is None:
            record.low_funds_since = now
            _notice(session, record, f"waiting for funds: the hold needs {_usd(amount)} USD", now)
        return False
    state = LeaseState(record.state)
    new_state = next_state(state, LeaseEvent.MATCH)
    record.node_id = node.node_id
    record.operator = node.operator
    record.gpu_model = node.gpu_model
    record.gpu_count = node.gpu_count if spec.resources.gpu_count else 0
    record.vram_mib = node.vram_mib
    record.price_micros = price_micros
    record.attempts += 1
    record.low_funds_since = None
    record.billed_usage_s = 0.0
    if spec.kind == "session":
        record.session_token = secrets.token_hex(24)
    _post(session, record, ledger.hold(record.buyer, record.job_id, amount, available), now)
    hardware = f"{node.gpu_count}x {node.gpu_model}" if spec.resources.gpu_count else node.gpu_model
    _record_event(
        session,
        record,
        from_state=state.value,
        to_state=new_state.value,
        event=LeaseEvent.MATCH.value,
        cause=f"matched to node {node.node_id} ({hardware}) at {_usd(price_micros)} USD/h, "
        f"attempt {record.attempts}",
        now=now,
    )
    record.state = new_state.value
    record.updated_at = now
    node.state = NodeState.BUSY.value
    node.leases_total += 1
    return True


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


# -- nodes --


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


def _requeue_or_expire(
    session: Session, record: JobRecord, cause: str, now: float, rules: JobRules
) -> None:
    _move(session, record, LeaseEvent.NODE_LOST, cause, now, rules)
    why = expiry_cause(
        LeaseState(record.state), now, record.deadline_at, record.attempts, rules.max_attempts
    )
    if why is not None:
        _move(session, record, LeaseEvent.EXPIRE, why, now, rules)


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


# -- blobs --


def put_blob(session: Session, sha256: str, data: bytes, now: float) -> bool:
    """Store ``data`` under its hash; False when it was there already."""
    if session.get(BlobRecord, sha256) is not None:
        return False
    session.add(BlobRecord(sha256=sha256, size=len(data), created_at=now, data=data))
    session.flush()
    return True


def blob_bytes(session: Session, sha256: str) -> bytes:
    record = session.get(BlobRecord, sha256)
    if record is None:
        raise NotFoundError(f"blob {sha256} is not stored")
    return bytes(record.data)


def file_of(session: Session, job_id: str, role: str, path: str) -> FileRef:
    record = session.get(JobFileRecord, (job_id, role, path))
    if record is None:
        raise NotFoundError(f"job {job_id} has no {role} named {path}")
    return FileRef(path=record.path, sha256=record.sha256, size=record.size)


def set_checkpoint(
    session: Session, job_id: str, operator: str, sha256: str, now: float
) -> JobRecord:
    record = _leased_to(session, job_id, None, operator)
    if record.state != LeaseState.RUNNING.value:
        raise ConflictError(f"job {job_id} is {record.state}: checkpoints come from running jobs")
    record.checkpoint_sha256 = sha256
    record.updated_at = now
    return record


def leased_record(session: Session, job_id: str, operator: str) -> JobRecord:
    return _leased_to(session, job_id, None, operator)


def account(session: Session, address: str) -> AccountView:
    return accounts.account_view(session, address)
