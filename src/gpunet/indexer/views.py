"""Stored records as the API shows them.

Times leave the store as unix seconds and reach clients as UTC datetimes. A node's
state is shown as the liveness rule sees it now, so a silent node reads offline
before the sweeper has marked it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gpunet.api.models import HardwareClaimModel, NodePublic, OfferModel, OfferPublic
from gpunet.indexer.orm import NodeRecord
from gpunet.protocol.matching import Candidate, reliability_adjusted_value
from gpunet.protocol.nodes import NodeState, state_after_sweep
from gpunet.protocol.reputation import Reputation


def to_datetime(unix_seconds: float) -> datetime:
    """A timezone-aware UTC datetime for unix seconds."""
    return datetime.fromtimestamp(unix_seconds, tz=UTC)


def effective_state(record: NodeRecord, now: float, timeout_s: float) -> NodeState:
    """The node's state under the liveness rule at ``now``."""
    return state_after_sweep(NodeState(record.state), record.last_heartbeat_at, now, timeout_s)


def _hardware(record: NodeRecord) -> HardwareClaimModel:
    return HardwareClaimModel.model_validate(
        {
            "gpu_model": record.gpu_model,
            "gpu_count": record.gpu_count,
            "vram_mib": record.vram_mib,
            "cpu_cores": record.cpu_cores,
            "memory_mib": record.memory_mib,
            "disk_gib": record.disk_gib,
            "benchmark_gflops": record.benchmark_gflops,
            "detection": record.detection,
        }
    )


def node_public(record: NodeRecord, now: float, timeout_s: float) -> NodePublic:
    """The public view of a node at ``now``."""
    return NodePublic(
        node_id=record.node_id,
        operator=record.operator,
        hardware=_hardware(record),
        offer=OfferModel(price_micros=record.price_micros, region=record.region),
        agent_version=record.agent_version,
        state=effective_state(record, now, timeout_s),
        registered_at=to_datetime(record.registered_at),
        last_heartbeat_at=to_datetime(record.last_heartbeat_at),
        heartbeats=record.heartbeats,
        reputation=round(
            Reputation(record.rep_capacity, record.rep_liveness, record.rep_delivery).score, 4
        ),
        check_url=record.check_url,
    )


def offer_public(record: NodeRecord) -> OfferPublic:
    """The offer of an online node, flattened for listing."""
    candidate = node_candidate(record)
    return OfferPublic(
        node_id=record.node_id,
        operator=record.operator,
        gpu=record.gpu_model,
        gpu_count=record.gpu_count,
        vram_mib=record.vram_mib,
        price_micros=record.price_micros,
        region=record.region,
        fp16_tflops=record.fp16_tflops,
        cpu_cores=record.cpu_cores,
        memory_mib=record.memory_mib,
        disk_gib=record.disk_gib,
        state=NodeState(record.state),
        benchmark_gflops=record.benchmark_gflops,
        reputation=candidate.reputation,
        failure_rate=candidate.failure_rate,
        value_per_dollar=round(reliability_adjusted_value(candidate), 3),
    )


def node_candidate(node: NodeRecord) -> Candidate:
    """A node as the matcher sees it, with the reputation its checks gave it."""
    total = node.leases_total
    failure_rate = node.leases_failed / total if total else 0.0
    reputation = Reputation(node.rep_capacity, node.rep_liveness, node.rep_delivery).score
    return Candidate(
        node_id=node.node_id,
        gpu_model=node.gpu_model,
        gpu_count=node.gpu_count,
        vram_gib=node.vram_gib,
        fp16_tflops=node.fp16_tflops / node.gpu_count if node.gpu_count else 0.0,
        cpu_cores=node.cpu_cores,
        memory_mib=node.memory_mib,
        disk_gib=node.disk_gib,
        price_micros=node.price_micros,
        region=node.region,
        runtimes=frozenset(filter(None, node.runtimes.split(","))),
        allows_network=node.allows_network,
        latency_ms=node.latency_ms,
        reputation=reputation,
        failure_rate=failure_rate,
        benchmark_gflops=node.benchmark_gflops,
        state=node.state,
    )
