"""Hardware claims and offers: what a node says it has and what it asks for it.

A claim is checked against the catalogue (a node cannot claim more VRAM than its model
has); an offer's price is bounded so that a typo cannot list a GPU at a million dollars.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from gpunet.errors import ValidationError
from gpunet.protocol.catalogue import CPU_MODEL, GpuModel, gpu_model
from gpunet.protocol.units import MICROS_PER_USD

MAX_GPUS_PER_NODE = 16
MAX_PRICE_MICROS = 500 * MICROS_PER_USD
MAX_CPU_CORES = 1024
MAX_MEMORY_MIB = 16 * 1024 * 1024
MAX_DISK_GIB = 1_000_000
MAX_BENCHMARK_GFLOPS = 10_000_000.0
# Drivers report slightly more or less than the marketing size; allow 10% over.
VRAM_TOLERANCE = 1.10

NODE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{2,63}$")
REGION_PATTERN = re.compile(r"^[a-z]{2,12}(-[a-z0-9]{1,16}){0,3}$")


@dataclass(frozen=True)
class HardwareClaim:
    """What a node says it has; ``vram_mib`` is per GPU."""

    gpu_model: str
    gpu_count: int
    vram_mib: int
    cpu_cores: int
    memory_mib: int
    disk_gib: int
    benchmark_gflops: float


@dataclass(frozen=True)
class Offer:
    """What a node asks: a price per GPU-hour (per node-hour for CPU nodes) in a region."""

    price_micros: int
    region: str


def _require_range(field: str, value: int | float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValidationError(field, value, f"must be between {low:g} and {high:g}")


def validate_node_id(node_id: str) -> str:
    """Return ``node_id`` if it is 3-64 lowercase letters, digits and dashes."""
    if not NODE_ID_PATTERN.fullmatch(node_id):
        raise ValidationError(
            "node_id", node_id, "use 3-64 lowercase letters, digits and dashes, like n-3fa2c1"
        )
    return node_id


def validate_claim(claim: HardwareClaim) -> GpuModel:
    """Check a hardware claim against the catalogue and return its GPU model."""
    model = gpu_model(claim.gpu_model)
    if model.name == CPU_MODEL:
        if claim.gpu_count != 0 or claim.vram_mib != 0:
            raise ValidationError("gpu_count", claim.gpu_count, "a CPU node has 0 GPUs and 0 VRAM")
    else:
        _require_range("gpu_count", claim.gpu_count, 1, MAX_GPUS_PER_NODE)
        max_vram = int(model.vram_gib * 1024 * VRAM_TOLERANCE)
        _require_range("vram_mib", claim.vram_mib, 1, max_vram)
    _require_range("cpu_cores", claim.cpu_cores, 1, MAX_CPU_CORES)
    _require_range("memory_mib", claim.memory_mib, 1, MAX_MEMORY_MIB)
    _require_range("disk_gib", claim.disk_gib, 0, MAX_DISK_GIB)
    if not math.isfinite(claim.benchmark_gflops):
        raise ValidationError("benchmark_gflops", claim.benchmark_gflops, "must be finite")
    _require_range("benchmark_gflops", claim.benchmark_gflops, 0.0, MAX_BENCHMARK_GFLOPS)
    return model


def validate_offer(offer: Offer) -> Offer:
    """Check an offer's price and region; return it unchanged when valid."""
    if offer.price_micros <= 0:
        raise ValidationError("price_micros", offer.price_micros, "must be above zero")
    if offer.price_micros > MAX_PRICE_MICROS:
        raise ValidationError(
            "price_micros",
            offer.price_micros,
            f"is above the limit of {MAX_PRICE_MICROS // MICROS_PER_USD} USD per GPU-hour",
        )
    if not REGION_PATTERN.fullmatch(offer.region):
        raise ValidationError(
            "region",
            offer.region,
            "use lowercase words joined by dashes, like eu-west or us-east-1",
        )
    return offer


def nominal_vram_gib(vram_mib: int) -> int:
    """VRAM as people name it: drivers report an 80 GB H100 as 81,559 MiB (79.6 GiB)."""
    return round(vram_mib / 1024)


def region_matches(region: str, wanted: str) -> bool:
    """A region matches itself and its subregions: ``eu`` matches ``eu-west-1``."""
    return region == wanted or region.startswith(wanted + "-")
