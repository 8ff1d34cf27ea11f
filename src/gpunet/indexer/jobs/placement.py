"""Placing waiting jobs on idle nodes: the matcher's pass and the lease it makes."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpunet.errors import ValidationError
from gpunet.indexer import accounts
from gpunet.indexer.jobs.lifecycle import (
    JobRules,
    _hold_seconds,
    _notice,
    _post,
    _record_event,
    _usd,
    spec_of,
)
from gpunet.indexer.orm import (
    JobRecord,
    NodeRecord,
)
from gpunet.indexer.views import node_candidate
from gpunet.protocol import ledger, matching
from gpunet.protocol.jobspec import JobSpec, billing_units
from gpunet.protocol.leases import (
    ACTIVE,
    WAITING,
    LeaseEvent,
    LeaseState,
    next_state,
)
from gpunet.protocol.nodes import NodeState

MATCH_WINDOW_MIN = 500


MATCH_WINDOW_PER_NODE = 20


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
