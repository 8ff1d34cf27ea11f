"""The node's side of the capacity challenge: compute the product, commit, open tiles.

Backends: torch on every CUDA device when torch imports and sees one (int8
``torch._int_mm`` on Turing and later, exact fp16 in short k-slices on Volta), else
NumPy's float32 BLAS. Inputs are derived on the device with the protocol's own hash
functions, so every backend gives the same bytes; the product comes back as an int32
NumPy array. torch is imported only when a prover is built, never at module import,
so an idle agent stays small.

Memory: the int32 product (n * n * 4 bytes) on the host and, split by rows, on the
devices, plus one k-slice of inputs at a time; the inputs are never whole.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gpunet.errors import ConfigError
from gpunet.protocol.challenge_inputs import (
    ALIGN,
    BLOCK_ENTRIES,
    ChallengeSpec,
    Int32Matrix,
    Opening,
    compute_product,
    entries_from_words,
    finalize_words,
    input_keys,
    row_hashes,
    tile_bytes,
    tile_leaf,
    word_hashes,
)
from gpunet.protocol.merkle import MerkleTree

log = logging.getLogger("gpunet.node")

BackendChoice = Literal["auto", "numpy", "torch"]
Matmul = Literal["auto", "int8", "float16", "float32"]

FP16_EXACT_K = 512  # |partial sum| <= 4 * 512 = 2048: every such integer is exact in fp16
MIN_SLAB_ROWS = 32  # torch._int_mm wants more than 16 rows
# Entries of A and B held per k-slice, and derived per batch of hash kernels: large on
# a GPU so each GEMM and each elementwise kernel has plenty of work per launch.
DEVICE_CHUNK_ENTRIES = {"cuda": 2**30, "cpu": BLOCK_ENTRIES}
DEVICE_BLOCK_ENTRIES = {"cuda": 2**26, "cpu": BLOCK_ENTRIES}


@dataclass(frozen=True, eq=False)
class ProvenChallenge:
    """A computed challenge: the product, its tile tree and the root the node signs."""

    root: bytes
    tree: MerkleTree
    product: Int32Matrix


class CapacityProver:
    """Answers capacity challenges with the fastest exact backend on this machine."""

    def __init__(
        self,
        backend: BackendChoice = "auto",
        *,
        devices: Sequence[str] | None = None,
        matmul: Matmul = "auto",
        hash_workers: int | None = None,
    ) -> None:
        self._torch, self.devices = _resolve(backend, devices)
        self.backend = "numpy" if self._torch is None else "torch"
        self.matmul: Matmul = matmul
        self.hash_workers = hash_workers or min(8, os.cpu_count() or 1)
        log.debug("capacity prover: %s on %s", self.backend, self.devices or ("cpu",))

    def prove(self, spec: ChallengeSpec) -> ProvenChallenge:
        """Compute ``A @ B`` for ``spec``, hash its tiles and build the Merkle tree."""
        if self.backend == "torch":
            product = _torch_product(self._torch, spec, self.devices, self.matmul)
        else:
            product = compute_product(spec)
        tree = MerkleTree(_leaves(spec, product, self.hash_workers))
        return ProvenChallenge(root=tree.root, tree=tree, product=product)

    def open(self, proven: ProvenChallenge, indices: Sequence[int]) -> list[Opening]:
        """The tiles ``indices`` of a proven challenge, with their Merkle proofs.

        The tile size follows from the tree (one leaf per tile) and the product's side.
        """
        side = math.isqrt(len(proven.tree))
        tile = proven.product.shape[0] // side
        openings = []
        for index in indices:
            proof = proven.tree.proof(index)  # raises ValidationError for a bad index
            row, col = divmod(index, side)
            block = proven.product[row * tile : (row + 1) * tile, col * tile : (col + 1) * tile]
            data = np.ascontiguousarray(block, dtype="<i4").tobytes()
            openings.append(Opening(index=index, data=data, proof=proof))
        return openings


def _resolve(choice: BackendChoice, devices: Sequence[str] | None) -> tuple[Any, tuple[str, ...]]:
    """(torch module or None for NumPy, devices torch runs on)."""
    if choice == "numpy":
        return None, ()
    torch = _import_torch(required=choice == "torch")
    if torch is None:
        return None, ()
    if devices:
        return torch, tuple(devices)
    found = _cuda_devices(torch)
    if not found and choice == "auto":
        log.debug("torch sees no CUDA device; the capacity prover uses NumPy")
        return None, ()
    return torch, found or ("cpu",)


def _import_torch(*, required: bool) -> Any:
    try:
        import torch
    except (ImportError, OSError) as exc:  # OSError: a torch wheel with broken CUDA libs
        if required:
            raise ConfigError(
                f"capacity backend 'torch' needs PyTorch, which does not import ({exc}); "
                "install the gpu extra or choose backend 'numpy'"
            ) from exc
        log.debug("torch not usable (%s); the capacity prover uses NumPy", exc)
        return None
    return torch


def _cuda_devices(torch: Any) -> tuple[str, ...]:
    if not torch.cuda.is_available():
        return ()
    return tuple(f"cuda:{i}" for i in range(torch.cuda.device_count()))


def _leaves(spec: ChallengeSpec, product: Int32Matrix, workers: int) -> list[bytes]:
    """Tile leaves in tile order; SHA-256 releases the GIL, so threads hash in parallel."""
    side = spec.tiles_per_side

    def row_of_leaves(row: int) -> list[bytes]:
        indices = range(row * side, (row + 1) * side)
        return [tile_leaf(spec, i, tile_bytes(spec, product, i)) for i in indices]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(row_of_leaves, range(side)))
    return [leaf for row in rows for leaf in row]


# --- torch: each device computes a slab of rows, one k-slice at a time ---


def _torch_product(
    torch: Any, spec: ChallengeSpec, devices: Sequence[str], matmul: Matmul
) -> Int32Matrix:
    used = devices[: max(1, min(len(devices), spec.n // MIN_SLAB_ROWS))]
    bounds = np.linspace(0, spec.n, len(used) + 1).astype(int) // ALIGN * ALIGN
    slabs = [
        _DeviceSlab(torch, spec, device, range(int(bounds[i]), int(bounds[i + 1])), matmul)
        for i, device in enumerate(used)
    ]
    budget = DEVICE_CHUNK_ENTRIES[_kind(used[0])]
    step = max(ALIGN, min(spec.k, budget // (max(len(s.rows) for s in slabs) + spec.n)))
    step = step // ALIGN * ALIGN
    for start in range(0, spec.k, step):
        # Kernels launch asynchronously: one host thread keeps every device busy.
        for slab in slabs:
            slab.accumulate(range(start, min(start + step, spec.k)))
    if len(slabs) == 1:
        return slabs[0].result()  # no second host copy of the product
    product = np.empty((spec.n, spec.n), dtype=np.int32)
    for slab in slabs:
        product[slab.rows.start : slab.rows.stop] = slab.result()
    return product


def _kind(device: str) -> str:
    return "cuda" if device.startswith("cuda") else "cpu"


class _DeviceSlab:
    """Rows ``rows`` of the product on one device, accumulated over k-slices."""

    def __init__(
        self, torch: Any, spec: ChallengeSpec, device: str, rows: range, matmul: Matmul
    ) -> None:
        self.torch, self.device, self.rows = torch, device, rows
        self.matmul = _matmul_for(torch, device, matmul, len(rows))
        keys_a, keys_b = input_keys(spec.seed, "A"), input_keys(spec.seed, "B")
        # Per-row and per-word hashes are small (n and k / 4 values): made once, on the host.
        self.a_hashes = self._put(row_hashes(keys_a, rows.start, rows.stop), keys_a, spec.k)
        self.b_hashes = self._put(row_hashes(keys_b, 0, spec.n), keys_b, spec.k)
        self.total = torch.zeros((len(rows), spec.n), dtype=torch.int32, device=device)

    def _put(self, rows: np.ndarray[Any, Any], keys: tuple[int, ...], k: int) -> tuple[Any, Any]:
        words = word_hashes(keys, 0, k)
        return (
            self.torch.from_numpy(rows).to(self.device),
            self.torch.from_numpy(words).to(self.device),
        )

    def accumulate(self, cols: range) -> None:
        a = self._inputs(self.a_hashes, cols)
        bt = self._inputs(self.b_hashes, cols)
        self.total += _multiply(self.torch, a, bt, self.matmul)

    def _inputs(self, hashes: tuple[Any, Any], cols: range) -> Any:
        row_hash, word_hash = hashes
        rows = row_hash.shape[0]
        words = word_hash[cols.start // 4 : cols.stop // 4]
        out = self.torch.empty((rows, len(cols)), dtype=self.torch.int8, device=self.device)
        step = max(1, DEVICE_BLOCK_ENTRIES[_kind(self.device)] // len(cols))
        for start in range(0, rows, step):
            block = row_hash[start : start + step, None] ^ words[None, :]
            entries = entries_from_words(finalize_words(block), self.torch.uint8, self.torch.int8)
            out[start : start + step] = entries
        return out

    def result(self) -> Int32Matrix:
        values: Int32Matrix = self.total.cpu().numpy()
        return values


def _matmul_for(torch: Any, device: str, requested: Matmul, rows: int) -> Matmul:
    if requested != "auto":
        return requested
    if not device.startswith("cuda"):
        return "float32"  # _int_mm on CPU has no fast kernel; MKL's float32 is exact here
    if rows <= 16:
        return "float32"
    capability = tuple(torch.cuda.get_device_capability(device))
    return "int8" if capability >= (7, 5) else "float16"


def _multiply(torch: Any, a: Any, bt: Any, matmul: Matmul) -> Any:
    """``a @ bt.T`` as int32, exactly: int8 tensor cores, or floats within exact range."""
    if matmul == "int8":
        return torch._int_mm(a, bt.t())
    if matmul == "float32":
        return (a.float() @ bt.float().t()).to(torch.int32)
    total = torch.zeros((a.shape[0], bt.shape[0]), dtype=torch.int32, device=a.device)
    for start in range(0, a.shape[1], FP16_EXACT_K):
        piece = slice(start, start + FP16_EXACT_K)
        total += (a[:, piece].half() @ bt[:, piece].half().t()).to(torch.int32)
    return total
