"""The vocabulary of matching: offers, demands, weights and placements.

A module of its own so that the rules (``matching``) and the fast path that applies
them (``matching_index``, ``matching_greedy``, ``matching_trades``) share one set of
types without importing each other. ``tie_break_key`` lives here too: the index
breaks ties with it, exactly as ``rank_key`` does.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from gpunet.errors import ValidationError
from gpunet.protocol.offers import MAX_PRICE_MICROS

# The latency term of a demand that sets no bound: halfway, so latency neither helps
# nor hurts any node.
NEUTRAL_LATENCY = 0.5
# ``reliability_adjusted_value`` treats a free offer as costing this much, so that it
# ranks first without dividing by zero.
MIN_VALUE_PRICE_MICROS = 1
DEFAULT_MAX_WAIT_S = 600.0


@dataclass(frozen=True)
class Candidate:
    """One node's offer as the matcher sees it; ``vram_gib`` and TFLOPS are per GPU.

    ``price_micros`` is per GPU-hour, per node-hour for CPU nodes (``gpu_count`` 0).
    """

    node_id: str
    gpu_model: str
    gpu_count: int
    vram_gib: int
    fp16_tflops: float
    cpu_cores: int
    memory_mib: int
    disk_gib: int
    price_micros: int
    region: str
    runtimes: frozenset[str]
    allows_network: bool = False
    latency_ms: float | None = None
    reputation: float = 0.5
    failure_rate: float = 0.0
    benchmark_gflops: float = 0.0
    state: str = "idle"


@dataclass(frozen=True)
class Demand:
    """One pending job or session.

    ``max_price_micros`` is per GPU-hour (per node-hour for CPU work, ``gpu_count`` 0);
    the default accepts any valid offer. ``exclude_nodes`` lists nodes that already
    failed this job, or the peer of a redundant run.
    """

    job_id: str
    gpu_count: int
    gpu_model: str | None = None
    min_fp16_tflops: float = 0.0
    min_vram_gib: int = 0
    cpu_cores: int = 1
    memory_mib: int = 512
    disk_gib: int = 0
    max_price_micros: int = MAX_PRICE_MICROS
    region: str | None = None
    max_latency_ms: float | None = None
    runtime: str = "bwrap"
    needs_network: bool = False
    submitted_at: float = 0.0
    exclude_nodes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for field in ("gpu_count", "min_vram_gib", "cpu_cores", "memory_mib", "disk_gib"):
            if getattr(self, field) < 0:
                raise ValidationError(field, getattr(self, field), "must not be negative")
        if not self.max_price_micros > 0:
            raise ValidationError(
                "max_price_micros", self.max_price_micros, "set a budget above zero"
            )
        if not (math.isfinite(self.min_fp16_tflops) and self.min_fp16_tflops >= 0):
            raise ValidationError(
                "min_fp16_tflops", self.min_fp16_tflops, "must be a finite number, 0 or more"
            )
        bound = self.max_latency_ms
        if bound is not None and not (math.isfinite(bound) and bound > 0):
            raise ValidationError(
                "max_latency_ms", bound, "set a positive bound in ms, or none for batch work"
            )
        if self.gpu_count == 0 and (self.gpu_model or self.min_fp16_tflops or self.min_vram_gib):
            raise ValidationError(
                "gpu_count", 0, "CPU-only work names no GPU model, TFLOPS or VRAM; ask for GPUs"
            )


@dataclass(frozen=True)
class Weights:
    """How much price, reputation and latency count in ``score``."""

    price: float = 0.5
    reputation: float = 0.3
    latency: float = 0.2

    def __post_init__(self) -> None:
        for field in ("price", "reputation", "latency"):
            value = getattr(self, field)
            if not (math.isfinite(value) and value >= 0):
                raise ValidationError(field, value, "a weight must be finite and 0 or more")


@dataclass(frozen=True)
class Assignment:
    """A demand placed on a node, at the node's price in the demand's unit."""

    job_id: str
    node_id: str
    price_micros: int


def tie_break_key(seed: int, job_id: str, node_id: str) -> int:
    """A 64-bit hash of (seed, job, node): among equal scores the smallest key wins."""
    text = f"{seed}\x00{job_id}\x00{node_id}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")
