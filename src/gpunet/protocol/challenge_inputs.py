"""The capacity challenge's workload: its spec, its inputs, its product and its tiles.

The node computes ``C = A @ B`` (A is n x k, B is k x n) for integer matrices derived
from a 32-byte seed. Each entry is one byte of a counter-based integer hash, reduced to
``{-2, -1, 0, 1, 2}``; any block of A or B can be generated on its own, so a checker
builds only the rows of A and columns of B behind the tiles it opens.

Derivation, for the matrix ``M`` = A (domain ``"A"``) or ``B^T`` (domain ``"B"``, so
``B[p, j] = B^T[j, p]``), both ``n x k``::

    keys      = four little-endian u32 of sha256("gpunet-capacity-inputs-v1" || domain || seed)
    mix(x)    = a 32-bit xorshift-multiply finaliser (bijective on u32)
    row(i)    = mix(mix(i ^ keys[0]) ^ keys[1])
    word(w)   = mix(mix(w ^ keys[2]) ^ keys[3])            # w = column // 4
    x         = row(i) ^ word(w);  x *= W0;  x ^= x >> 32;  x &= 2**32 - 1
                                   x *= W1;  x ^= x >> 32
    M[i, 4w + b] = (byte b of x, little-endian) % 5 - 2     for b in 0..3

Every step is int64 arithmetic with operands below 2**32 before each multiply and
multipliers below 2**31, so no intermediate reaches 2**63: NumPy and torch (CPU or
CUDA) give the same bits. The hash steps are written once, with operators only, and
the node's torch prover runs these same functions on device tensors.

The product is exact in int32 and in float32 (``|C[i, j]| <= 4k < 2**24``), so any
exact implementation gives the same bytes. C is cut into square ``tile x tile``
blocks in row-major order; tile bytes are its int32 values, little-endian, row-major.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gpunet.errors import ValidationError
from gpunet.protocol.merkle import MerkleTree, leaf_hash

Int8Matrix = npt.NDArray[np.int8]
Int32Matrix = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]

SEED_SIZE = 32
MIN_N = 32
MAX_N = 32_768  # the int32 product is at most 4 GiB
MAX_K = 4_194_304  # 4k < 2**24 keeps float32 exact
ALIGN = 8  # int8 tensor-core GEMMs want k and n in multiples of 8
MAX_TILE = 1_024
MAX_TILES = 65_536
MAX_OPENS = 256
MAX_DEADLINE_S = 600.0
MAX_ID_LENGTH = 128

ENTRIES_PER_WORD = 4
ENTRY_VALUES = 5
ENTRY_OFFSET = 2
MASK32 = 0xFFFFFFFF
_MIX_MULTIPLIERS = (0x7FEB352D, 0x2C1B3C6D)
WORD_MULTIPLIERS = (0x5851F42D, 0x4C957F2D)  # odd and < 2**31: x * m < 2**63 for x < 2**32
BLOCK_ENTRIES = 2**24  # entries generated at once, so temporaries stay near 100 MiB


@dataclass(frozen=True)
class ChallengeSpec:
    """One capacity challenge as sent to a node; the sizes are bounded on construction."""

    challenge_id: str
    node_id: str
    seed: bytes
    n: int
    k: int
    tile: int
    opens: int
    deadline_s: float

    def __post_init__(self) -> None:
        _check_text("challenge_id", self.challenge_id)
        _check_text("node_id", self.node_id)
        if not isinstance(self.seed, bytes) or len(self.seed) != SEED_SIZE:
            raise ValidationError("seed", self.seed, f"the seed must be {SEED_SIZE} bytes")
        _check_sizes(self.n, self.k, self.tile)
        if not 1 <= self.opens <= min(self.tile_count, MAX_OPENS):
            raise ValidationError(
                "opens",
                self.opens,
                f"open between 1 and {min(self.tile_count, MAX_OPENS)} tiles "
                f"(this product has {self.tile_count})",
            )
        if not math.isfinite(self.deadline_s) or not 0 < self.deadline_s <= MAX_DEADLINE_S:
            raise ValidationError(
                "deadline_s", self.deadline_s, f"the deadline must be in (0, {MAX_DEADLINE_S}] s"
            )

    @property
    def tiles_per_side(self) -> int:
        """How many tiles fit along one side of the n x n product."""
        return self.n // self.tile

    @property
    def tile_count(self) -> int:
        """How many tiles the product is cut into (the Merkle tree's leaf count)."""
        return self.tiles_per_side**2


def _check_text(field: str, value: str) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH:
        raise ValidationError(field, value, f"use 1 to {MAX_ID_LENGTH} characters")
    if not value.isprintable():
        raise ValidationError(field, value, "use printable characters only")


def _check_sizes(n: int, k: int, tile: int) -> None:
    _check_int("n", n, MIN_N, MAX_N)
    _check_int("k", k, ALIGN, MAX_K)
    _check_int("tile", tile, ALIGN, MAX_TILE)
    if n % tile:
        raise ValidationError("tile", tile, f"the tile size must divide n = {n}")
    if (n // tile) ** 2 > MAX_TILES:
        raise ValidationError(
            "tile", tile, f"at most {MAX_TILES} tiles; use a larger tile for n = {n}"
        )


def _check_int(field: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(field, value, f"must be an integer in {low}..{high}")
    if value % ALIGN:
        raise ValidationError(field, value, f"must be a multiple of {ALIGN}")


# --- the input hash: operators only, so NumPy arrays and torch tensors run it alike ---


def input_keys(seed: bytes, domain: str) -> tuple[int, int, int, int]:
    """The four 32-bit keys of one matrix (``domain`` "A" or "B") for this seed."""
    digest = hashlib.sha256(b"gpunet-capacity-inputs-v1" + domain.encode() + seed).digest()
    words = (int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
    a, b, c, d = words
    return a, b, c, d


def mix32(x: Any) -> Any:
    """A bijective 32-bit finaliser on int64 values below 2**32 (array or tensor)."""
    x = x ^ (x >> 16)
    x = (x * _MIX_MULTIPLIERS[0]) & MASK32
    x = x ^ (x >> 15)
    x = (x * _MIX_MULTIPLIERS[1]) & MASK32
    return x ^ (x >> 16)


def row_hashes(keys: Sequence[int], start: int, stop: int) -> Int64Array:
    """Per-row hashes of rows ``start..stop`` of a matrix with these keys."""
    rows = np.arange(start, stop, dtype=np.int64)
    hashed: Int64Array = mix32(mix32(rows ^ keys[0]) ^ keys[1])
    return hashed


def word_hashes(keys: Sequence[int], start: int, stop: int) -> Int64Array:
    """Per-word hashes of columns ``start..stop`` (both multiples of 4)."""
    words = np.arange(start // ENTRIES_PER_WORD, stop // ENTRIES_PER_WORD, dtype=np.int64)
    hashed: Int64Array = mix32(mix32(words ^ keys[2]) ^ keys[3])
    return hashed


def finalize_words(words: Any) -> Any:
    """Mix ``row ^ word`` values in place into the words whose bytes become entries."""
    words *= WORD_MULTIPLIERS[0]
    words ^= words >> 32
    words &= MASK32
    words *= WORD_MULTIPLIERS[1]
    words ^= words >> 32
    return words


def entries_from_words(words: Any, uint8: Any, int8: Any) -> Any:
    """Four entries per int64 word: its low bytes (little-endian) % 5 - 2, as int8.

    ``uint8`` and ``int8`` are the library's dtypes (``np.uint8`` or ``torch.uint8``).
    """
    rows, count = words.shape
    low_bytes = words.view(uint8).reshape(rows, count, 8)[:, :, :ENTRIES_PER_WORD]
    entries = (low_bytes % ENTRY_VALUES).reshape(rows, count * ENTRIES_PER_WORD).view(int8)
    entries -= ENTRY_OFFSET
    return entries


def matrix_block(seed: bytes, domain: str, rows: range, cols: range) -> Int8Matrix:
    """Rows ``rows`` and columns ``cols`` (step 1, multiples of 4) of A or B^T."""
    keys = input_keys(seed, domain)
    words = row_hashes(keys, rows.start, rows.stop)[:, None] ^ word_hashes(
        keys, cols.start, cols.stop
    )
    block: Int8Matrix = entries_from_words(finalize_words(words), np.uint8, np.int8)
    return block


def a_rows(spec: ChallengeSpec, start: int, stop: int) -> Int8Matrix:
    """Rows ``start..stop`` of A, all k columns: shape ``(stop - start, k)``."""
    _check_range("start/stop", start, stop, spec.n)
    return matrix_block(spec.seed, "A", range(start, stop), range(0, spec.k))


def b_cols(spec: ChallengeSpec, start: int, stop: int) -> Int8Matrix:
    """Columns ``start..stop`` of B, all k rows: shape ``(k, stop - start)``."""
    _check_range("start/stop", start, stop, spec.n)
    return matrix_block(spec.seed, "B", range(start, stop), range(0, spec.k)).T


def _check_range(field: str, start: int, stop: int, size: int) -> None:
    if not 0 <= start < stop <= size:
        raise ValidationError(field, (start, stop), f"need 0 <= start < stop <= {size}")


def k_chunks(k: int, rows: int, budget: int = BLOCK_ENTRIES) -> Iterator[range]:
    """Slices of the k axis, each at most ``budget`` entries for ``rows`` rows."""
    step = max(ALIGN, budget // max(rows, 1) // ALIGN * ALIGN)
    for start in range(0, k, step):
        yield range(start, min(start + step, k))


def compute_product(spec: ChallengeSpec) -> Int32Matrix:
    """The honest product ``A @ B`` with NumPy's float32 BLAS (exact), as int32.

    Works through k-slices of B and row blocks of A, so besides the int32 product it
    holds only about ``BLOCK_ENTRIES`` entries of inputs and partial sums at a time.
    """
    product = np.zeros((spec.n, spec.n), dtype=np.int32)
    block_rows = max(1, BLOCK_ENTRIES // spec.n)
    for chunk in k_chunks(spec.k, spec.n):
        bt = matrix_block(spec.seed, "B", range(0, spec.n), chunk).astype(np.float32)
        for start in range(0, spec.n, block_rows):
            rows = range(start, min(start + block_rows, spec.n))
            a = matrix_block(spec.seed, "A", rows, chunk).astype(np.float32)
            product[rows.start : rows.stop] += (a @ bt.T).astype(np.int32)
    return product


# --- tiles, leaves and openings ---


def tile_ranges(spec: ChallengeSpec, index: int) -> tuple[range, range]:
    """The rows and columns of the product that tile ``index`` covers."""
    if not 0 <= index < spec.tile_count:
        raise ValidationError("index", index, f"tile index must be in 0..{spec.tile_count - 1}")
    row, col = divmod(index, spec.tiles_per_side)
    return (
        range(row * spec.tile, (row + 1) * spec.tile),
        range(col * spec.tile, (col + 1) * spec.tile),
    )


def tile_product(spec: ChallengeSpec, index: int) -> Int32Matrix:
    """One tile of the product from its rows of A and columns of B only (the checker)."""
    rows, cols = tile_ranges(spec, index)
    tile = np.zeros((spec.tile, spec.tile), dtype=np.float32)
    for chunk in k_chunks(spec.k, 2 * spec.tile):
        a = matrix_block(spec.seed, "A", rows, chunk).astype(np.float32)
        bt = matrix_block(spec.seed, "B", cols, chunk).astype(np.float32)
        tile += a @ bt.T
    return tile.astype(np.int32)


def tile_bytes(spec: ChallengeSpec, product: Int32Matrix, index: int) -> bytes:
    """Tile ``index`` of ``product`` as little-endian int32, row-major."""
    if product.shape != (spec.n, spec.n):
        raise ValidationError("product", product.shape, f"the product must be {spec.n} x {spec.n}")
    rows, cols = tile_ranges(spec, index)
    block = product[rows.start : rows.stop, cols.start : cols.stop]
    return np.ascontiguousarray(block, dtype="<i4").tobytes()


def tile_leaf(spec: ChallengeSpec, index: int, data: bytes) -> bytes:
    """The Merkle leaf of one tile: ``leaf_hash(challenge_id || index (4 B, BE) || data)``."""
    return leaf_hash(spec.challenge_id.encode() + index.to_bytes(4, "big") + data)


def tile_leaves(spec: ChallengeSpec, product: Int32Matrix) -> list[bytes]:
    """The leaves of every tile, in tile order."""
    return [tile_leaf(spec, i, tile_bytes(spec, product, i)) for i in range(spec.tile_count)]


@dataclass(frozen=True)
class Opening:
    """One opened tile: its bytes and the Merkle proof that the root commits to them."""

    index: int
    data: bytes
    proof: tuple[bytes, ...]


def open_tiles(
    spec: ChallengeSpec,
    product: Int32Matrix,
    indices: Sequence[int],
    tree: MerkleTree | None = None,
) -> list[Opening]:
    """Openings of ``indices``; pass the committed ``tree`` to skip rebuilding it."""
    if tree is None:
        tree = MerkleTree(tile_leaves(spec, product))
    return [Opening(i, tile_bytes(spec, product, i), tree.proof(i)) for i in indices]
