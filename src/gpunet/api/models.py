"""Wire models of the indexer's HTTP API, shared by the indexer and the SDK.

Amounts are integers: prices in micro-dollars per GPU-hour, memory in MiB, disk in GiB.
Unknown fields are refused, so a typo in a request is an error rather than a silent
default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gpunet.protocol.nodes import NodeState
from gpunet.protocol.offers import HardwareClaim, Offer


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class HardwareClaimModel(_Strict):
    """What a node says it has; ``vram_mib`` is per GPU."""

    gpu_model: str = Field(max_length=32, examples=["H100"])
    gpu_count: int = Field(ge=0, le=64, examples=[8])
    vram_mib: int = Field(ge=0, le=1 << 24, examples=[81559])
    cpu_cores: int = Field(ge=1, le=4096)
    memory_mib: int = Field(ge=1, le=1 << 34)
    disk_gib: int = Field(ge=0, le=1 << 30)
    benchmark_gflops: float = Field(ge=0, le=1e9, allow_inf_nan=False)
    detection: Literal["nvml", "nvidia-smi", "cpu"] = "cpu"

    def to_protocol(self) -> HardwareClaim:
        return HardwareClaim(
            gpu_model=self.gpu_model,
            gpu_count=self.gpu_count,
            vram_mib=self.vram_mib,
            cpu_cores=self.cpu_cores,
            memory_mib=self.memory_mib,
            disk_gib=self.disk_gib,
            benchmark_gflops=self.benchmark_gflops,
        )


class OfferModel(_Strict):
    """What a node asks: micro-dollars per GPU-hour (per node-hour for CPU nodes)."""

    price_micros: int = Field(examples=[1_990_000])
    region: str = Field(max_length=64, examples=["eu-west"])

    def to_protocol(self) -> Offer:
        return Offer(price_micros=self.price_micros, region=self.region)


class NodeRegistration(_Strict):
    """Body of ``PUT /v1/nodes/{node_id}``: register or update a node."""

    hardware: HardwareClaimModel
    offer: OfferModel
    agent_version: str = Field(max_length=32, default="unknown")
    runtimes: list[Literal["bwrap", "docker"]] = Field(
        default_factory=list,
        max_length=4,
        description="job runtimes the node can run; a node with none takes no jobs",
    )
    allows_network: bool = Field(
        default=False, description="the operator lets jobs that ask for it use the network"
    )
    check_url: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^https?://[^\s/]+$",
        description="base URL of the node's check endpoint, where checkers probe it",
    )


class HeartbeatIn(_Strict):
    """Body of ``POST /v1/nodes/{node_id}/heartbeat``."""

    gpu_utilization: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)
    jobs_running: int = Field(default=0, ge=0, le=10_000)
    rtt_ms: float | None = Field(
        default=None,
        ge=0,
        le=60_000,
        allow_inf_nan=False,
        description="round trip of the node's previous heartbeat, its latency estimate",
    )


class HeartbeatAck(BaseModel):
    """The indexer's answer to a heartbeat: the node's state and when to beat next."""

    node_id: str
    state: NodeState
    next_heartbeat_s: float


class NodePublic(BaseModel):
    """A registered node as anyone may see it."""

    node_id: str
    operator: str
    hardware: HardwareClaimModel
    offer: OfferModel
    agent_version: str
    state: NodeState
    registered_at: datetime
    last_heartbeat_at: datetime
    heartbeats: int
    reputation: float = Field(
        default=0.5, description="0..1, from the node's checks (protocol.reputation)"
    )
    check_url: str | None = Field(default=None, description="where checkers probe the node")


class NodeList(BaseModel):
    nodes: list[NodePublic]
    total: int


class OfferPublic(BaseModel):
    """One online node's offer, flattened for filtering and listing."""

    node_id: str
    operator: str
    gpu: str
    gpu_count: int
    vram_mib: int
    price_micros: int
    region: str
    fp16_tflops: float
    cpu_cores: int
    memory_mib: int
    disk_gib: int
    state: NodeState
    benchmark_gflops: float = 0.0
    reputation: float = Field(default=0.5, description="0..1, from the node's checks")
    failure_rate: float = Field(default=0.0, description="share of the node's leases failed")
    value_per_dollar: float = Field(
        default=0.0,
        description="benchmark GFLOPS per USD-hour, discounted by the failure rate",
    )


class OfferList(BaseModel):
    """A page of offers and how many match on all pages.

    The indexer counts matches up to 10,000: ``total_is_exact`` is false when more
    match, and ``total`` is then a lower bound.
    """

    offers: list[OfferPublic]
    total: int = Field(
        description="matching offers on all pages; at least this many when not exact"
    )
    total_is_exact: bool = Field(
        default=True, description="false when more offers match than the indexer counts"
    )


class ErrorBody(BaseModel):
    """Every error answer: a stable code, a message for people, and the bad field."""

    error: str = Field(examples=["validation_error"])
    message: str
    field: str | None = None
    value: str | None = None


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    database: str
    nodes_online: int
