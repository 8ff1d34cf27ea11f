"""The GPU catalogue: what each GPU model can do and what the clouds charge for it.

Throughput figures are the vendor's dense (no sparsity) peak numbers; capacity units
weigh a model's share of capacity rewards (H100 = 100). Reference prices are on-demand
cloud prices per GPU-hour in micro-dollars, used by savings reports; ``None`` where no
public on-demand price exists for a single GPU of that model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpunet.errors import UnknownGpuModel

CPU_MODEL = "CPU"


@dataclass(frozen=True)
class GpuModel:
    """One GPU model as the network prices and weighs it."""

    name: str
    fp16_tflops: float
    fp32_tflops: float
    vram_gib: int
    capacity_units: int
    reference_price_micros: int | None
    reference_source: str


CATALOGUE: dict[str, GpuModel] = {
    m.name: m
    for m in (
        GpuModel("H200", 989.0, 67.0, 141, 110, None, "no single-GPU on-demand price"),
        GpuModel("H100", 989.0, 67.0, 80, 100, 6_880_000, "AWS p5.48xlarge / 8, June 2025"),
        GpuModel("A100-80GB", 312.0, 19.5, 80, 40, 2_740_000, "AWS p4d.24xlarge / 8, June 2025"),
        GpuModel("A100-40GB", 312.0, 19.5, 40, 35, 2_740_000, "AWS p4d.24xlarge / 8, June 2025"),
        GpuModel("L40S", 362.0, 91.6, 48, 35, 1_861_000, "AWS g6e.xlarge"),
        GpuModel("RTX4090", 165.0, 82.6, 24, 20, 600_000, "marketplace mid-range 0.35-0.90"),
        GpuModel("RTX3090", 71.0, 35.6, 24, 10, None, "no reference price"),
        GpuModel("L4", 121.0, 30.3, 24, 12, 805_000, "AWS g6.xlarge"),
        GpuModel("A10G", 70.0, 31.2, 24, 12, 1_006_000, "AWS g5.xlarge"),
        GpuModel("V100", 125.0, 15.7, 32, 12, 3_060_000, "AWS p3.2xlarge"),
        GpuModel("T4", 65.0, 8.1, 16, 6, 526_000, "AWS g4dn.xlarge"),
        GpuModel(CPU_MODEL, 0.0, 0.0, 0, 1, None, "CPU-only node, for tests and demos"),
    )
}

# Order matters: more specific patterns first (L40S before L4, A10G before A10).
_NAME_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"H200", "H200"),
    (r"H100", "H100"),
    (r"A100.*80", "A100-80GB"),
    (r"A100", "A100-40GB"),
    (r"L40S", "L40S"),
    (r"RTX\s*4090", "RTX4090"),
    (r"RTX\s*3090", "RTX3090"),
    (r"\bL4\b", "L4"),
    (r"A10G?\b", "A10G"),
    (r"V100", "V100"),
    (r"\bT4\b", "T4"),
)


def gpu_model(name: str) -> GpuModel:
    """Look up a catalogue model by name, case-insensitively (``"h100"`` -> H100)."""
    key = name.strip().upper().replace(" ", "")
    for model in CATALOGUE.values():
        if model.name.upper() == key:
            return model
    known = ", ".join(CATALOGUE)
    raise UnknownGpuModel("gpu_model", name, f"unknown GPU model; known models: {known}")


def identify_gpu(device_name: str, vram_mib: int) -> GpuModel | None:
    """Map a driver's device name (``"NVIDIA H100 80GB HBM3"``) to a catalogue model.

    A100s are told apart by memory, since some drivers omit the size from the name.
    """
    text = device_name.upper()
    for pattern, model_name in _NAME_PATTERNS:
        if re.search(pattern, text):
            if model_name.startswith("A100"):
                return CATALOGUE["A100-80GB" if vram_mib >= 60_000 else "A100-40GB"]
            return CATALOGUE[model_name]
    return None
