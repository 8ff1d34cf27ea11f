from __future__ import annotations

import pytest

from gpunet.errors import UnknownGpuModel
from gpunet.protocol.catalogue import CATALOGUE, gpu_model, identify_gpu


def test_lookup_is_case_and_space_insensitive() -> None:
    assert gpu_model("h100").name == "H100"
    assert gpu_model(" rtx 4090 ").name == "RTX4090"


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(UnknownGpuModel) as info:
        gpu_model("H900")
    assert "H900" in str(info.value)
    assert "H100" in str(info.value)


@pytest.mark.parametrize(
    ("device_name", "vram_mib", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", 81559, "H100"),
        ("NVIDIA H200", 143771, "H200"),
        ("NVIDIA A100-SXM4-80GB", 81920, "A100-80GB"),
        ("NVIDIA A100-SXM4-40GB", 40960, "A100-40GB"),
        ("NVIDIA A100 PCIe", 81920, "A100-80GB"),
        ("NVIDIA L40S", 46068, "L40S"),
        ("NVIDIA L4", 23034, "L4"),
        ("NVIDIA A10G", 23028, "A10G"),
        ("NVIDIA GeForce RTX 4090", 24564, "RTX4090"),
        ("Tesla T4", 15360, "T4"),
        ("Tesla V100-SXM2-32GB", 32768, "V100"),
    ],
)
def test_driver_names_map_to_catalogue_models(
    device_name: str, vram_mib: int, expected: str
) -> None:
    model = identify_gpu(device_name, vram_mib)
    assert model is not None and model.name == expected


def test_unrecognized_device_is_none() -> None:
    assert identify_gpu("Matrox G200", 16) is None


def test_catalogue_invariants() -> None:
    h100 = CATALOGUE["H100"]
    assert h100.capacity_units == 100
    for model in CATALOGUE.values():
        assert model.capacity_units >= 1
        assert model.reference_price_micros is None or model.reference_price_micros > 0
        assert model.fp16_tflops >= model.fp32_tflops or model.name == "CPU"
