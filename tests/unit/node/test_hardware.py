"""Hardware detection: NVML, nvidia-smi and CPU-only fallbacks."""

from __future__ import annotations

import logging
import os
import stat
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from gpunet.node import hardware
from gpunet.node.hardware import (
    GpuInfo,
    GpuProbeError,
    detect_gpus,
    detect_hardware,
    parse_cpuinfo_model,
    parse_nvidia_smi,
    read_disk_free_gib,
    read_nvidia_smi,
    read_nvml,
)

H100_SMI = (
    "NVIDIA H100 80GB HBM3, 81559, GPU-0f3c9a8e-1b2c-4d5e-8f90-123456789abc, 550.54.15\n"
    "NVIDIA H100 80GB HBM3, 81559, GPU-aa3c9a8e-1b2c-4d5e-8f90-123456789abc, 550.54.15\n"
)


class FakeNvmlError(Exception):
    """Stands in for pynvml.NVMLError."""


@dataclass
class FakeMemory:
    total: int


def fake_pynvml(
    names: list[str | bytes], fail_init: bool = False
) -> tuple[types.ModuleType, list[str]]:
    """A pynvml stand-in with ``names`` as devices; also returns its call log."""
    calls: list[str] = []
    module = types.ModuleType("pynvml")

    def init() -> None:
        calls.append("init")
        if fail_init:
            raise FakeNvmlError("NVML Shared Library Not Found")

    module.NVMLError = FakeNvmlError  # type: ignore[attr-defined]
    module.nvmlInit = init  # type: ignore[attr-defined]
    module.nvmlShutdown = lambda: calls.append("shutdown")  # type: ignore[attr-defined]
    module.nvmlSystemGetDriverVersion = lambda: b"550.54.15"  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: len(names)  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    module.nvmlDeviceGetName = lambda h: names[h]  # type: ignore[attr-defined]
    module.nvmlDeviceGetMemoryInfo = lambda h: FakeMemory(80 * 1024**3)  # type: ignore[attr-defined]
    module.nvmlDeviceGetUUID = lambda h: f"GPU-{h}"  # type: ignore[attr-defined]
    return module, calls


def fake_executable(directory: Path, name: str, script: str) -> Path:
    """Write an executable shell script ``name`` into ``directory``."""
    path = directory / name
    path.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_nvml_reads_every_device_and_shuts_down(monkeypatch: pytest.MonkeyPatch) -> None:
    module, calls = fake_pynvml(["NVIDIA H100 80GB HBM3", b"NVIDIA A100-SXM4-40GB"])
    monkeypatch.setitem(sys.modules, "pynvml", module)

    gpus = read_nvml()

    assert gpus == (
        GpuInfo("NVIDIA H100 80GB HBM3", 81920, "GPU-0", "550.54.15"),
        GpuInfo("NVIDIA A100-SXM4-40GB", 81920, "GPU-1", "550.54.15"),
    )
    assert calls == ["init", "shutdown"]


def test_nvml_init_failure_is_a_probe_error(monkeypatch: pytest.MonkeyPatch) -> None:
    module, calls = fake_pynvml([], fail_init=True)
    monkeypatch.setitem(sys.modules, "pynvml", module)

    with pytest.raises(GpuProbeError, match="Library Not Found"):
        read_nvml()
    assert calls == ["init"]  # no shutdown after a failed init


def test_detect_prefers_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    module, _ = fake_pynvml(["NVIDIA GeForce RTX 4090"])
    monkeypatch.setitem(sys.modules, "pynvml", module)

    hw = detect_hardware()

    assert hw.source == "nvml"
    assert [gpu.name for gpu in hw.gpus] == ["NVIDIA GeForce RTX 4090"]


def test_parse_nvidia_smi_reads_each_gpu() -> None:
    gpus = parse_nvidia_smi(H100_SMI)

    assert len(gpus) == 2
    assert gpus[0] == GpuInfo(
        "NVIDIA H100 80GB HBM3", 81559, "GPU-0f3c9a8e-1b2c-4d5e-8f90-123456789abc", "550.54.15"
    )


def test_parse_nvidia_smi_maps_unreported_fields_to_none() -> None:
    text = "Tesla T4, 15360, [N/A], [Not Supported]\n\n"

    assert parse_nvidia_smi(text) == (GpuInfo("Tesla T4", 15360, None, None),)


def test_parse_nvidia_smi_keeps_commas_in_the_name() -> None:
    (gpu,) = parse_nvidia_smi("Odd, Name GPU, 1024, GPU-1, 1.0")

    assert gpu.name == "Odd, Name GPU"
    assert gpu.vram_mib == 1024


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("NVIDIA H100, 81559", "has 2 fields"),
        ("NVIDIA H100, 81559 MiB, GPU-1, 550", "'81559 MiB'"),
    ],
)
def test_parse_nvidia_smi_rejects_malformed_lines(text: str, message: str) -> None:
    with pytest.raises(GpuProbeError, match=message):
        parse_nvidia_smi(text)


def test_parse_nvidia_smi_of_empty_output_is_empty() -> None:
    assert parse_nvidia_smi("") == ()


@pytest.mark.skipif(os.name != "posix", reason="fake nvidia-smi is a POSIX shell script")
def test_read_nvidia_smi_runs_the_query(tmp_path: Path) -> None:
    smi = fake_executable(tmp_path, "nvidia-smi", f"cat <<'EOF'\n{H100_SMI}EOF\n")

    assert read_nvidia_smi(str(smi)) == parse_nvidia_smi(H100_SMI)


@pytest.mark.skipif(os.name != "posix", reason="fake nvidia-smi is a POSIX shell script")
def test_read_nvidia_smi_reports_a_failing_driver(tmp_path: Path) -> None:
    smi = fake_executable(tmp_path, "nvidia-smi", "echo 'NVIDIA-SMI has failed' >&2\nexit 9\n")

    with pytest.raises(GpuProbeError, match=r"status 9: NVIDIA-SMI has failed"):
        read_nvidia_smi(str(smi))


@pytest.mark.skipif(os.name != "posix", reason="fake nvidia-smi is a POSIX shell script")
def test_read_nvidia_smi_times_out(tmp_path: Path) -> None:
    smi = fake_executable(tmp_path, "nvidia-smi", "exec sleep 5\n")

    with pytest.raises(GpuProbeError, match="timed out"):
        read_nvidia_smi(str(smi), timeout_s=0.2)


def test_read_nvidia_smi_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(GpuProbeError, match="could not run"):
        read_nvidia_smi(str(tmp_path / "no-such-nvidia-smi"))


@pytest.mark.skipif(os.name != "posix", reason="fake nvidia-smi is a POSIX shell script")
def test_falls_back_to_nvidia_smi_when_nvml_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    module, _ = fake_pynvml([], fail_init=True)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    fake_executable(tmp_path, "nvidia-smi", f"cat <<'EOF'\n{H100_SMI}EOF\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")

    with caplog.at_level(logging.INFO, logger="gpunet.node"):
        gpus, source = detect_gpus()

    assert source == "nvidia-smi"
    assert len(gpus) == 2
    assert "Library Not Found" in caplog.text


@pytest.mark.skipif(os.name != "posix", reason="fake nvidia-smi is a POSIX shell script")
def test_falls_back_to_cpu_when_nvml_and_nvidia_smi_fail(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    module, _ = fake_pynvml([], fail_init=True)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    fake_executable(tmp_path, "nvidia-smi", "echo 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")

    with caplog.at_level(logging.INFO, logger="gpunet.node"):
        hw = detect_hardware(tmp_path)

    assert hw.source == "cpu"
    assert hw.gpus == ()
    assert "Library Not Found" in caplog.text
    assert "NVIDIA-SMI has failed" in caplog.text


def test_nvml_listing_no_device_falls_through(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    module, _ = fake_pynvml([])
    monkeypatch.setitem(sys.modules, "pynvml", module)
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi anywhere

    with caplog.at_level(logging.INFO, logger="gpunet.node"):
        gpus, source = detect_gpus()

    assert (gpus, source) == ((), "cpu")
    assert "listed 0 GPUs" in caplog.text


def test_real_detection_gives_sane_values(tmp_path: Path) -> None:
    hw = detect_hardware(tmp_path)

    assert hw.cpu_cores >= 1
    assert hw.memory_mib > 0
    assert hw.disk_free_gib >= 0
    assert hw.cpu_model
    assert hw.source in ("nvml", "nvidia-smi", "cpu")
    assert (hw.source == "cpu") == (hw.gpus == ())
    assert all(gpu.vram_mib > 0 for gpu in hw.gpus)


def test_disk_free_of_a_missing_dir_uses_its_parent(tmp_path: Path) -> None:
    assert read_disk_free_gib(tmp_path / "not" / "yet") == read_disk_free_gib(tmp_path)


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        ("processor\t: 0\nmodel\t\t: 17\nmodel name\t: AMD EPYC 7R13\n", "AMD EPYC 7R13"),
        ("processor\t: 0\nBogoMIPS\t: 50.00\nHardware\t: BCM2835\n", "BCM2835"),
        (
            "processor\t: 0\ncpu\t\t: POWER9 (raw), altivec supported\n",
            "POWER9 (raw), altivec supported",
        ),
        ("processor\t: 0\nmodel\t\t: 85\n", None),
        ("", None),
    ],
)
def test_parse_cpuinfo_model(cpuinfo: str, expected: str | None) -> None:
    assert parse_cpuinfo_model(cpuinfo) == expected


def test_cpu_model_without_proc_falls_back_to_platform(tmp_path: Path) -> None:
    assert hardware.read_cpu_model(tmp_path / "missing-cpuinfo")
