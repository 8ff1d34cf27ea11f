"""Detect the GPUs, CPU, memory and disk of the machine a node agent runs on.

GPUs are read from NVML first, then from ``nvidia-smi``; when neither answers the node
is reported as CPU-only. Each fallback logs, on the ``gpunet.node`` logger, why the
source before it gave nothing. Parsing is kept apart from I/O so it can be tested on
sample text.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psutil

from gpunet.errors import GpunetError

log = logging.getLogger("gpunet.node")

HardwareSource = Literal["nvml", "nvidia-smi", "cpu"]

NVIDIA_SMI_QUERY = (
    "--query-gpu=name,memory.total,uuid,driver_version",
    "--format=csv,noheader,nounits",
)
NVIDIA_SMI_TIMEOUT_S = 10.0
_MIB = 1024**2
_GIB = 1024**3
# nvidia-smi prints these instead of a value a GPU does not report.
_NOT_REPORTED = frozenset({"", "[n/a]", "n/a", "[not supported]", "[unknown error]"})


class GpuProbeError(GpunetError):
    """A GPU source (NVML or nvidia-smi) that could not be read or parsed."""


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as the driver reports it; ``vram_mib`` is total memory in MiB."""

    name: str
    vram_mib: int
    uuid: str | None
    driver: str | None


@dataclass(frozen=True)
class Hardware:
    """What a node has to offer, and which source the GPU list came from."""

    gpus: tuple[GpuInfo, ...]
    cpu_model: str
    cpu_cores: int
    memory_mib: int
    disk_free_gib: int
    source: HardwareSource


def detect_hardware(data_dir: Path | None = None) -> Hardware:
    """Describe this machine; never fails for lack of a GPU.

    ``data_dir`` is where the agent keeps its work; its free space is reported (the
    home directory when None, the nearest existing parent when it does not exist yet).
    """
    gpus, source = detect_gpus()
    return Hardware(
        gpus=gpus,
        cpu_model=read_cpu_model(),
        cpu_cores=read_cpu_cores(),
        memory_mib=int(psutil.virtual_memory().total) // _MIB,
        disk_free_gib=read_disk_free_gib(data_dir or Path.home()),
        source=source,
    )


def detect_gpus() -> tuple[tuple[GpuInfo, ...], HardwareSource]:
    """Return the GPUs and their source: NVML, else nvidia-smi, else none ("cpu")."""
    try:
        return _nonempty(read_nvml(), "NVML"), "nvml"
    except GpuProbeError as exc:
        log.info("NVML gave no GPU (%s); trying nvidia-smi", exc)
    try:
        return _nonempty(read_nvidia_smi(), "nvidia-smi"), "nvidia-smi"
    except GpuProbeError as exc:
        log.info("nvidia-smi gave no GPU (%s); reporting a CPU-only node", exc)
    return (), "cpu"


def _nonempty(gpus: tuple[GpuInfo, ...], source: str) -> tuple[GpuInfo, ...]:
    # A driver that loads but lists no device is as useless as a missing one.
    if not gpus:
        raise GpuProbeError(f"{source} answered but listed 0 GPUs")
    return gpus


def read_nvml() -> tuple[GpuInfo, ...]:
    """Read every GPU through NVML (package nvidia-ml-py); GpuProbeError if unavailable."""
    try:
        import pynvml
    except ImportError as exc:
        raise GpuProbeError(f"pynvml is not importable ({exc}); install nvidia-ml-py") from exc
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise GpuProbeError(f"nvmlInit failed: {exc}") from exc
    try:
        return _read_nvml_devices(pynvml)
    except pynvml.NVMLError as exc:
        raise GpuProbeError(f"NVML query failed: {exc}") from exc
    finally:
        pynvml.nvmlShutdown()


def _read_nvml_devices(nvml: Any) -> tuple[GpuInfo, ...]:
    driver = _text(nvml.nvmlSystemGetDriverVersion())
    gpus = []
    for index in range(int(nvml.nvmlDeviceGetCount())):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        gpus.append(
            GpuInfo(
                name=_text(nvml.nvmlDeviceGetName(handle)),
                vram_mib=int(nvml.nvmlDeviceGetMemoryInfo(handle).total) // _MIB,
                uuid=_text(nvml.nvmlDeviceGetUUID(handle)) or None,
                driver=driver or None,
            )
        )
    return tuple(gpus)


def _text(value: str | bytes) -> str:
    # Older nvidia-ml-py releases return bytes where newer ones return str.
    return value.decode() if isinstance(value, bytes) else value


def read_nvidia_smi(
    executable: str = "nvidia-smi", timeout_s: float = NVIDIA_SMI_TIMEOUT_S
) -> tuple[GpuInfo, ...]:
    """Run nvidia-smi's CSV query and parse it; GpuProbeError if it cannot be run."""
    try:
        done = subprocess.run(
            [executable, *NVIDIA_SMI_QUERY],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise GpuProbeError(f"could not run {executable!r}: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()[:200]
        raise GpuProbeError(f"{executable!r} exited with status {done.returncode}: {detail}")
    return parse_nvidia_smi(done.stdout)


def parse_nvidia_smi(text: str) -> tuple[GpuInfo, ...]:
    """Parse ``name,memory.total,uuid,driver_version`` CSV lines (noheader, nounits)."""
    return tuple(_parse_smi_line(line) for line in text.splitlines() if line.strip())


def _parse_smi_line(line: str) -> GpuInfo:
    # Split from the right: the name is the only field that could contain a comma.
    fields = [field.strip() for field in line.rsplit(",", 3)]
    if len(fields) != 4:
        raise GpuProbeError(
            f"nvidia-smi line {line!r} has {len(fields)} fields, expected 4 "
            "(name, memory.total, uuid, driver_version); check the query arguments"
        )
    name, memory, uuid, driver = fields
    try:
        vram_mib = int(float(memory))
    except ValueError as exc:
        raise GpuProbeError(
            f"nvidia-smi memory.total {memory!r} in line {line!r} is not a number of MiB; "
            "the query must use --format=csv,noheader,nounits"
        ) from exc
    return GpuInfo(name=name, vram_mib=vram_mib, uuid=_reported(uuid), driver=_reported(driver))


def _reported(field: str) -> str | None:
    return None if field.lower() in _NOT_REPORTED else field


def read_cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """Return the CPU's marketing name, or the architecture when none is published."""
    try:
        model = parse_cpuinfo_model(cpuinfo.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        model = None  # not Linux, or /proc hidden: fall through to platform
    return model or platform.processor() or platform.machine() or "unknown"


def parse_cpuinfo_model(text: str) -> str | None:
    """Return the first CPU model name in /proc/cpuinfo text, or None if absent."""
    # x86 uses "model name"; some ARM and POWER kernels use "Model", "Hardware" or "cpu".
    keys = ("model name", "model", "hardware", "cpu")
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key in keys and value.strip() and key not in found:
            found[key] = value.strip()
    for key in keys:
        # x86 "model" is a bare family number, not a name.
        if key in found and not found[key].isdigit():
            return found[key]
    return None


def read_cpu_cores() -> int:
    """Return the logical CPUs this process may use (at least 1)."""
    # Affinity reflects container and taskset limits; the raw count does not.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, psutil.cpu_count(logical=True) or os.cpu_count() or 1)


def read_disk_free_gib(path: Path) -> int:
    """Return free GiB on the filesystem holding ``path`` or its nearest existing parent."""
    probe = path.expanduser().absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free // _GIB
