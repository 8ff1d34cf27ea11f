"""build_registration: detected hardware and a benchmark become a checked registration."""

from __future__ import annotations

import pytest

from gpunet.errors import UnknownGpuModel, ValidationError
from gpunet.node.benchmark import BenchmarkResult
from gpunet.node.hardware import GpuInfo, Hardware
from gpunet.node.registration import build_registration, gpu_claim

BENCH = BenchmarkResult("numpy", "cpu", "float32", 1024, 0.01, 214.7483)


def hardware(*gpus: GpuInfo) -> Hardware:
    return Hardware(
        gpus=gpus,
        cpu_model="Test CPU",
        cpu_cores=8,
        memory_mib=32768,
        disk_free_gib=200,
        source="nvml" if gpus else "cpu",
    )


def gpu(name: str, vram_mib: int) -> GpuInfo:
    return GpuInfo(name=name, vram_mib=vram_mib, uuid=None, driver="550.54")


def test_cpu_only_machine_registers_as_cpu_node() -> None:
    reg = build_registration(hardware(), BENCH, 450_000, "eu-west")

    assert (reg.hardware.gpu_model, reg.hardware.gpu_count, reg.hardware.vram_mib) == (
        "CPU",
        0,
        0,
    )
    assert reg.hardware.benchmark_gflops == 214.7
    assert reg.hardware.detection == "cpu"
    assert (reg.offer.price_micros, reg.offer.region) == (450_000, "eu-west")


def test_gpus_are_mapped_through_the_catalogue() -> None:
    h100 = gpu("NVIDIA H100 80GB HBM3", 81559)

    reg = build_registration(hardware(h100, h100), BENCH, 1_990_000, "us-east-1")

    assert (reg.hardware.gpu_model, reg.hardware.gpu_count, reg.hardware.vram_mib) == (
        "H100",
        2,
        81559,
    )
    assert reg.hardware.detection == "nvml"


def test_a100_size_comes_from_memory() -> None:
    assert gpu_claim([gpu("NVIDIA A100-SXM4", 40960)]) == ("A100-40GB", 1, 40960)


def test_unknown_gpu_fails_with_its_name() -> None:
    with pytest.raises(UnknownGpuModel, match=r"not in the catalogue.*got .Radeon Mystery 9000."):
        build_registration(hardware(gpu("Radeon Mystery 9000", 16384)), BENCH, 1, "eu")


def test_mixed_gpu_models_are_refused() -> None:
    with pytest.raises(ValidationError, match="one GPU model"):
        gpu_claim([gpu("NVIDIA H100 80GB HBM3", 81559), gpu("Tesla T4", 15360)])


@pytest.mark.parametrize(
    ("price", "region", "field"),
    [(0, "eu-west", "price_micros"), (450_000, "EU West", "region")],
)
def test_bad_offer_is_refused_before_any_request(price: int, region: str, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        build_registration(hardware(), BENCH, price, region)

    assert caught.value.field == field
