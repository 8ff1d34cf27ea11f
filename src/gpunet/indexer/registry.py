"""The node registry's rules applied to the store: register, heartbeat, leave, sweep.

Each function validates everything before it writes, so a refused request leaves the
store as it was. The caller owns the transaction: a signed request's write
(``signing.SignedWrite``) or ``Database.writing``. Registration and leave use the ORM;
the heartbeat, by far the most frequent write, is a single Core UPDATE.
"""

from __future__ import annotations

import re
from contextlib import closing

from sqlalchemy import Connection, Float, bindparam, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gpunet.api.models import HeartbeatIn, NodeRegistration
from gpunet.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from gpunet.indexer import store
from gpunet.indexer.database import DriverStatement
from gpunet.indexer.orm import NodeRecord
from gpunet.indexer.store import NODES
from gpunet.protocol.catalogue import GpuModel
from gpunet.protocol.nodes import NodeState, state_after_heartbeat, state_after_sweep
from gpunet.protocol.offers import (
    nominal_vram_gib,
    validate_claim,
    validate_node_id,
    validate_offer,
)

_AGENT_VERSION = re.compile(r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$")


def _validated(registration: NodeRegistration) -> GpuModel:
    model = validate_claim(registration.hardware.to_protocol())
    validate_offer(registration.offer.to_protocol())
    if not _AGENT_VERSION.fullmatch(registration.agent_version):
        raise ValidationError(
            "agent_version",
            registration.agent_version,
            "use printable ASCII without surrounding spaces, like 0.1.0",
        )
    return model


def _apply_registration(
    record: NodeRecord, registration: NodeRegistration, model: GpuModel
) -> None:
    claim, offer = registration.hardware, registration.offer
    record.gpu_model = model.name
    record.gpu_count = claim.gpu_count
    record.vram_mib = claim.vram_mib
    record.vram_gib = nominal_vram_gib(claim.vram_mib)
    record.cpu_cores = claim.cpu_cores
    record.memory_mib = claim.memory_mib
    record.disk_gib = claim.disk_gib
    record.benchmark_gflops = claim.benchmark_gflops
    record.detection = claim.detection
    record.fp16_tflops = claim.gpu_count * model.fp16_tflops
    record.price_micros = offer.price_micros
    record.region = offer.region
    record.agent_version = registration.agent_version
    record.runtimes = ",".join(sorted(set(registration.runtimes)))
    record.allows_network = registration.allows_network
    record.check_url = registration.check_url


def _require_operator(node_id: str, owner: str, operator: str) -> None:
    if owner != operator.lower():
        raise PermissionDeniedError(
            f"node {node_id} belongs to operator {owner}, "
            f"not {operator.lower()}: sign with the operator's key or pick another node id"
        )


def _not_registered(node_id: str) -> NotFoundError:
    return NotFoundError(f"node {node_id} is not registered: register it with PUT first")


def _owned_node(session: Session, node_id: str, operator: str) -> NodeRecord:
    validate_node_id(node_id)
    record = store.get_node(session, node_id, for_update=True)
    if record is None:
        raise _not_registered(node_id)
    _require_operator(node_id, record.operator, operator)
    return record


def owned_node(session: Session, node_id: str, operator: str) -> NodeRecord:
    """The node ``node_id`` if ``operator`` runs it; 404 or 403 otherwise."""
    return _owned_node(session, node_id, operator)


def register_node(
    session: Session, node_id: str, operator: str, registration: NodeRegistration, now: float
) -> tuple[NodeRecord, bool]:
    """Create or update a node for ``operator``; True when it was created.

    A registration counts as a heartbeat: the node comes back online if it was not.
    """
    validate_node_id(node_id)
    model = _validated(registration)
    record = store.get_node(session, node_id, for_update=True)
    if record is None:
        return _create(session, node_id, operator, registration, model, now), True
    _require_operator(node_id, record.operator, operator)
    _apply_registration(record, registration, model)
    record.state = state_after_heartbeat(NodeState(record.state)).value
    record.last_heartbeat_at = now
    return record, False


def _create(
    session: Session,
    node_id: str,
    operator: str,
    registration: NodeRegistration,
    model: GpuModel,
    now: float,
) -> NodeRecord:
    record = NodeRecord(
        node_id=node_id,
        operator=operator.lower(),
        state=NodeState.IDLE.value,
        registered_at=now,
        last_heartbeat_at=now,
        heartbeats=0,
        jobs_running=0,
        leases_total=0,
        leases_failed=0,
    )
    _apply_registration(record, registration, model)
    session.add(record)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(
            f"node {node_id} was registered by another request at the same moment: retry"
        ) from None
    return record


# A heartbeat as one statement: the state moves as ``state_after_heartbeat`` says,
# spelled out per state, and only a row of this node and operator changes.
_HEARTBEAT = DriverStatement(
    update(NODES)
    .where(NODES.c.node_id == bindparam("b_node_id"), NODES.c.operator == bindparam("b_operator"))
    .values(
        state=case(
            {state.value: state_after_heartbeat(state).value for state in NodeState},
            value=NODES.c.state,
            else_=NODES.c.state,
        ),
        last_heartbeat_at=bindparam("b_now"),
        heartbeats=NODES.c.heartbeats + 1,
        gpu_utilization=bindparam("b_gpu_utilization"),
        jobs_running=bindparam("b_jobs_running"),
        latency_ms=func.coalesce(bindparam("b_rtt_ms", type_=Float()), NODES.c.latency_ms),
    )
    .returning(NODES.c.state)
)


def record_heartbeat(
    connection: Connection, node_id: str, operator: str, beat: HeartbeatIn, now: float
) -> NodeState:
    """Note that the node is alive and return its state; an offline node comes back idle.

    One UPDATE does the work; only when it matches no row does a lookup tell an
    unknown node (404) from another operator's (403). Nothing is written then.
    """
    validate_node_id(node_id)
    parameters = {
        "b_node_id": node_id,
        "b_operator": operator.lower(),
        "b_now": now,
        "b_gpu_utilization": beat.gpu_utilization,
        "b_jobs_running": beat.jobs_running,
        "b_rtt_ms": beat.rtt_ms,
    }
    with closing(_HEARTBEAT.execute(connection, parameters)) as cursor:
        row = cursor.fetchone()
    if row is None:
        owner = connection.scalar(select(NODES.c.operator).where(NODES.c.node_id == node_id))
        if owner is None:
            raise _not_registered(node_id)
        _require_operator(node_id, owner, operator)
        raise ConflictError(f"node {node_id} was registered at the same moment: retry")
    return NodeState(row[0])


def leave(session: Session, node_id: str, operator: str) -> NodeRecord:
    """Take the node offline at its operator's request (a clean agent shutdown)."""
    record = _owned_node(session, node_id, operator)
    record.state = NodeState.OFFLINE.value
    return record


def sweep(session: Session, now: float, timeout_s: float, limit: int | None = None) -> int:
    """Mark silent nodes offline, looking at ``limit`` of them at most; return how many."""
    changed = 0
    for record in store.stale_online_nodes(session, now - timeout_s, limit):
        new_state = state_after_sweep(
            NodeState(record.state), record.last_heartbeat_at, now, timeout_s
        )
        if new_state.value != record.state:
            record.state = new_state.value
            changed += 1
    return changed
