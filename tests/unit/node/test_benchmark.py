"""The matrix-multiply benchmark: NumPy on CPU, torch and CuPy on GPU."""

from __future__ import annotations

import sys
import time
import types
from typing import Any

import numpy as np
import pytest

from gpunet.errors import ValidationError
from gpunet.node.benchmark import best_time, gflops_for, run_benchmark


def fake_torch(cuda: bool) -> tuple[types.ModuleType, list[str]]:
    """A torch stand-in whose tensors are NumPy arrays; also returns its call log."""
    calls: list[str] = []
    module = types.ModuleType("torch")

    def randn(*shape: int, device: str, dtype: Any) -> np.ndarray[Any, Any]:
        calls.append(f"randn {device} {dtype}")
        return np.ones(shape, dtype=np.float16)

    def matmul(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        calls.append("matmul")
        product: np.ndarray[Any, Any] = a @ b
        return product

    module.float16 = "float16"  # type: ignore[attr-defined]
    module.randn = randn  # type: ignore[attr-defined]
    module.matmul = matmul  # type: ignore[attr-defined]
    module.cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        is_available=lambda: cuda,
        get_device_name=lambda index: "NVIDIA H100 80GB HBM3",
        synchronize=lambda: calls.append("sync"),
    )
    return module, calls


def no_gpu_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import torch`` and ``import cupy`` fail, as on a machine without them."""
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "cupy", None)


def test_numpy_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    no_gpu_modules(monkeypatch)

    result = run_benchmark(size=256, repeats=2)

    assert result.backend == "numpy"
    assert result.dtype == "float32"
    assert result.size == 256
    assert result.seconds > 0
    assert result.gflops == pytest.approx(2 * 256**3 / result.seconds / 1e9)
    assert result.gflops > 0


def test_default_size_is_quick_on_cpu() -> None:
    start = time.perf_counter()
    result = run_benchmark(prefer_gpu=False)
    elapsed = time.perf_counter() - start

    assert result.backend == "numpy"
    assert result.size == 1024
    assert elapsed < 2.0


@pytest.mark.parametrize("size", [15, 0, -4, 32769])
def test_bad_size_names_the_value(size: int) -> None:
    with pytest.raises(ValidationError, match=rf"size: .*between 16 and 32768.*got {size}\)"):
        run_benchmark(size=size)


def test_zero_repeats_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"repeats: .*got 0\)"):
        run_benchmark(size=16, repeats=0)


def test_torch_cuda_path_with_a_fake_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    module, calls = fake_torch(cuda=True)
    monkeypatch.setitem(sys.modules, "torch", module)

    result = run_benchmark(size=32, repeats=2)

    assert result.backend == "torch-cuda"
    assert result.device == "NVIDIA H100 80GB HBM3"
    assert result.dtype == "float16"
    assert result.gflops > 0
    # one warm-up plus two timed runs, each followed by a device sync
    assert calls.count("matmul") == 3
    assert calls.count("sync") == 3
    assert calls[0] == "randn cuda float16"


def test_torch_without_cuda_falls_back_to_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    module, calls = fake_torch(cuda=False)
    monkeypatch.setitem(sys.modules, "torch", module)
    monkeypatch.setitem(sys.modules, "cupy", None)

    result = run_benchmark(size=32, repeats=1)

    assert result.backend == "numpy"
    assert calls == []


def test_prefer_gpu_false_ignores_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    module, calls = fake_torch(cuda=True)
    monkeypatch.setitem(sys.modules, "torch", module)

    result = run_benchmark(size=32, repeats=1, prefer_gpu=False)

    assert result.backend == "numpy"
    assert calls == []


def test_best_time_returns_the_fastest_run() -> None:
    delays = iter([0.0, 0.05, 0.0, 0.05])  # the first call is the untimed warm-up

    seconds = best_time(lambda: time.sleep(next(delays)), repeats=3)

    assert seconds < 0.04


def test_gflops_counts_two_n_cubed() -> None:
    assert gflops_for(1000, 2.0) == pytest.approx(1.0)


def _gpu_backend_missing() -> str | None:
    """Why the real GPU benchmark cannot run here, or None when it can."""
    try:
        import torch
    except (ImportError, OSError):  # OSError: a wheel with broken CUDA libraries
        torch = None
    if torch is not None and torch.cuda.is_available():
        return None
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return None
    except Exception:  # any import or driver failure means no usable CuPy device
        pass
    return "no CUDA device usable from torch or cupy (install the gpu extra on a GPU host)"


@pytest.mark.gpu
def test_real_gpu_benchmark() -> None:
    reason = _gpu_backend_missing()
    if reason is not None:
        pytest.skip(reason)

    result = run_benchmark(size=2048, repeats=3)

    assert result.backend in ("torch-cuda", "cupy")
    assert result.dtype == "float16"
    assert result.device
    assert result.gflops > 0
