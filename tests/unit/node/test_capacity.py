"""The node's capacity prover: backend choice, exact products on every backend, openings."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import types
from typing import Any

import numpy as np
import pytest

from gpunet.errors import ConfigError, ValidationError
from gpunet.node.capacity import CapacityProver, _matmul_for
from gpunet.protocol.challenge import (
    CPU_POLICY,
    ChallengeSpec,
    compute_product,
    judge_capacity,
    new_challenge,
    pick_tiles,
    tile_leaves,
)
from gpunet.protocol.merkle import MerkleTree


def small_spec(n: int = 128, k: int = 1032, tile: int = 16) -> ChallengeSpec:
    spec = new_challenge("c-1", "node-1", 5e9, b"e" * 32, 0.0, CPU_POLICY)
    return dataclasses.replace(spec, n=n, k=k, tile=tile, opens=8, deadline_s=5.0)


def block_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import torch`` fail, as on a node without the gpu extra."""
    monkeypatch.setitem(sys.modules, "torch", None)


def fake_cuda_torch(devices: int) -> types.ModuleType:
    module = types.ModuleType("torch")
    module.cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        is_available=lambda: devices > 0,
        device_count=lambda: devices,
        get_device_capability=lambda device: (8, 0) if device == "cuda:0" else (7, 0),
    )
    return module


def test_numpy_prover_commits_to_the_honest_product() -> None:
    spec = small_spec()

    proven = CapacityProver("numpy").prove(spec)

    product = compute_product(spec)
    assert np.array_equal(proven.product, product)
    assert proven.root == MerkleTree(tile_leaves(spec, product)).root
    assert proven.tree.root == proven.root


def test_openings_of_a_proof_pass_the_judge() -> None:
    spec = small_spec()
    prover = CapacityProver("numpy", hash_workers=3)
    proven = prover.prove(spec)
    indices = pick_tiles(spec, proven.root, b"x" * 32)

    openings = prover.open(proven, indices)

    assert [o.index for o in openings] == list(indices)
    assert judge_capacity(spec, proven.root, 0.1, indices, openings).passed


def test_opening_a_missing_tile_names_it() -> None:
    spec = small_spec()
    prover = CapacityProver("numpy")
    proven = prover.prove(spec)

    with pytest.raises(ValidationError) as raised:
        prover.open(proven, [spec.tile_count])

    assert (raised.value.field, raised.value.value) == ("index", spec.tile_count)


def test_auto_uses_numpy_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    block_torch(monkeypatch)

    prover = CapacityProver()

    assert (prover.backend, prover.devices) == ("numpy", ())


def test_forcing_torch_without_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    block_torch(monkeypatch)

    with pytest.raises(ConfigError, match="install the gpu extra"):
        CapacityProver("torch")


def test_auto_uses_every_cuda_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", fake_cuda_torch(2))

    prover = CapacityProver()

    assert (prover.backend, prover.devices) == ("torch", ("cuda:0", "cuda:1"))


def test_auto_without_a_gpu_stays_on_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", fake_cuda_torch(0))

    assert CapacityProver().backend == "numpy"
    assert CapacityProver("torch").devices == ("cpu",)


def test_int8_tensor_cores_from_turing_on() -> None:
    torch = fake_cuda_torch(2)

    assert _matmul_for(torch, "cuda:0", "auto", 1024) == "int8"
    assert _matmul_for(torch, "cuda:1", "auto", 1024) == "float16"  # Volta
    assert _matmul_for(torch, "cuda:0", "auto", 16) == "float32"  # _int_mm wants > 16 rows
    assert _matmul_for(torch, "cpu", "auto", 1024) == "float32"
    assert _matmul_for(torch, "cuda:0", "float32", 1024) == "float32"


def test_importing_the_prover_does_not_import_torch() -> None:
    code = "import sys, gpunet.node.capacity; print('torch' in sys.modules)"

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("matmul", "devices"),
    [
        ("float32", ["cpu"]),
        ("int8", ["cpu"]),
        ("float16", ["cpu"]),
        ("auto", ["cpu", "cpu"]),  # rows split across two devices
    ],
)
def test_torch_gives_the_numpy_bytes(matmul: Any, devices: list[str]) -> None:
    pytest.importorskip("torch", reason="PyTorch is not installed (the gpu or inference extra)")
    # k spans several fp16 slices and is not a multiple of 512; n splits unevenly.
    spec = small_spec(n=200, k=1288, tile=8)

    proven = CapacityProver("torch", devices=devices, matmul=matmul).prove(spec)

    reference = CapacityProver("numpy").prove(spec)
    assert proven.product.dtype == np.int32
    assert proven.product.tobytes() == reference.product.tobytes()
    assert proven.root == reference.root


def test_torch_streams_k_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch", reason="PyTorch is not installed (the gpu or inference extra)")
    from gpunet.node import capacity

    monkeypatch.setitem(capacity.DEVICE_CHUNK_ENTRIES, "cpu", 64 * 1024)
    spec = small_spec(n=128, k=2048)

    proven = CapacityProver("torch", devices=["cpu"]).prove(spec)

    assert np.array_equal(proven.product, compute_product(spec))
