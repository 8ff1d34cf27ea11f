"""A short matrix-multiply benchmark a node runs before it registers.

The fastest available backend is used: PyTorch on CUDA in fp16, else CuPy on a CUDA
device in fp16, else NumPy float32 on the CPU. The result is the best of a few timed
runs after one untimed warm-up, so one-off costs (kernel selection, allocation) do not
count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gpunet.errors import ValidationError
from gpunet.node.hardware import read_cpu_model

log = logging.getLogger("gpunet.node")

BenchmarkBackend = Literal["numpy", "torch-cuda", "cupy"]

MIN_SIZE = 16
MAX_SIZE = 32768
_MIN_SECONDS = 1e-9  # a timer tick of 0 would make GFLOPS infinite


@dataclass(frozen=True)
class BenchmarkResult:
    """The best time for one ``size`` x ``size`` matrix product, and its throughput."""

    backend: BenchmarkBackend
    device: str
    dtype: str
    size: int
    seconds: float
    gflops: float


def run_benchmark(size: int = 1024, repeats: int = 3, prefer_gpu: bool = True) -> BenchmarkResult:
    """Time ``size`` x ``size`` matrix products; GPU first unless ``prefer_gpu`` is False.

    GFLOPS counts 2 * size**3 operations per product. The default size finishes well
    under a second on a two-core CPU.
    """
    _check_arguments(size, repeats)
    if prefer_gpu:
        for attempt in (_try_torch_cuda, _try_cupy):
            result = attempt(size, repeats)
            if result is not None:
                return result
    return _numpy_benchmark(size, repeats)


def _check_arguments(size: int, repeats: int) -> None:
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValidationError(
            "size", size, f"matrix size must be between {MIN_SIZE} and {MAX_SIZE}; pick one"
        )
    if repeats < 1:
        raise ValidationError("repeats", repeats, "at least 1 timed run is needed")


def gflops_for(size: int, seconds: float) -> float:
    """Throughput of one ``size`` x ``size`` product that took ``seconds``."""
    return 2 * size**3 / max(seconds, _MIN_SECONDS) / 1e9


def best_time(run: Callable[[], object], repeats: int) -> float:
    """Run once untimed, then ``repeats`` times; return the fastest run in seconds."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def _result(
    backend: BenchmarkBackend, device: str, dtype: str, size: int, seconds: float
) -> BenchmarkResult:
    return BenchmarkResult(
        backend=backend,
        device=device,
        dtype=dtype,
        size=size,
        seconds=seconds,
        gflops=gflops_for(size, seconds),
    )


def _numpy_benchmark(size: int, repeats: int) -> BenchmarkResult:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    seconds = best_time(lambda: a @ b, repeats)
    return _result("numpy", read_cpu_model(), "float32", size, seconds)


def _try_torch_cuda(size: int, repeats: int) -> BenchmarkResult | None:
    try:
        import torch
    except (ImportError, OSError) as exc:  # OSError: a torch wheel with broken CUDA libs
        log.debug("torch not usable (%s); skipping the torch-cuda benchmark", exc)
        return None
    if not torch.cuda.is_available():
        log.debug("torch has no CUDA device; skipping the torch-cuda benchmark")
        return None
    return _torch_benchmark(torch, size, repeats)


def _torch_benchmark(torch: Any, size: int, repeats: int) -> BenchmarkResult:
    a = torch.randn(size, size, device="cuda", dtype=torch.float16)
    b = torch.randn(size, size, device="cuda", dtype=torch.float16)

    def product() -> None:
        torch.matmul(a, b)
        # Kernels launch asynchronously; without a sync we would time only the launch.
        torch.cuda.synchronize()

    seconds = best_time(product, repeats)
    return _result("torch-cuda", str(torch.cuda.get_device_name(0)), "float16", size, seconds)


def _try_cupy(size: int, repeats: int) -> BenchmarkResult | None:
    try:
        import cupy
    except (ImportError, OSError) as exc:
        log.debug("cupy not usable (%s); skipping the cupy benchmark", exc)
        return None
    try:
        devices = int(cupy.cuda.runtime.getDeviceCount())
    except cupy.cuda.runtime.CUDARuntimeError as exc:
        log.debug("cupy finds no CUDA runtime (%s); skipping the cupy benchmark", exc)
        return None
    if devices == 0:
        log.debug("cupy sees 0 CUDA devices; skipping the cupy benchmark")
        return None
    return _cupy_benchmark(cupy, size, repeats)


def _cupy_benchmark(cupy: Any, size: int, repeats: int) -> BenchmarkResult:
    # CuPy's generator makes only float32/float64; cast to match the torch path.
    a = cupy.random.standard_normal((size, size), dtype=cupy.float32).astype(cupy.float16)
    b = cupy.random.standard_normal((size, size), dtype=cupy.float32).astype(cupy.float16)

    def product() -> None:
        cupy.matmul(a, b)
        cupy.cuda.runtime.deviceSynchronize()

    seconds = best_time(product, repeats)
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    device = name.decode() if isinstance(name, bytes) else str(name)
    return _result("cupy", device, "float16", size, seconds)
