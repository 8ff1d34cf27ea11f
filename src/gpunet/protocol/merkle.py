"""A binary SHA-256 Merkle tree over a list of leaf hashes, with inclusion proofs.

Leaves and inner nodes are hashed under different one-byte prefixes (``0x00`` and
``0x01``), so an inner node can never be passed off as a leaf. A level with an odd
number of nodes promotes its last node unchanged to the level above; the proof for a
promoted node simply has no sibling at that level, and ``verify_proof`` knows where
that happens from ``leaf_count``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from gpunet.errors import ValidationError

HASH_SIZE = 32
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf: ``sha256(0x00 || data)``."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def parent_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node: ``sha256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


class MerkleTree:
    """All levels of the tree, leaves first; ``root`` is the single node on top."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        if not leaf_hashes:
            raise ValidationError("leaf_hashes", [], "a Merkle tree needs at least one leaf")
        for index, leaf in enumerate(leaf_hashes):
            if len(leaf) != HASH_SIZE:
                raise ValidationError(
                    f"leaf_hashes[{index}]", leaf, f"a leaf hash must be {HASH_SIZE} bytes"
                )
        self._levels: list[list[bytes]] = [list(leaf_hashes)]
        while len(self._levels[-1]) > 1:
            self._levels.append(_next_level(self._levels[-1]))

    @property
    def root(self) -> bytes:
        """The root hash, which commits to every leaf and its position."""
        return self._levels[-1][0]

    def __len__(self) -> int:
        return len(self._levels[0])

    def proof(self, index: int) -> tuple[bytes, ...]:
        """The sibling hashes from leaf ``index`` up to the root (promoted levels skipped)."""
        if not 0 <= index < len(self):
            raise ValidationError(
                "index", index, f"leaf index must be in 0..{len(self) - 1} for this tree"
            )
        siblings: list[bytes] = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                siblings.append(level[sibling])
            index //= 2
        return tuple(siblings)


def _next_level(level: list[bytes]) -> list[bytes]:
    pairs = [parent_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        pairs.append(level[-1])
    return pairs


def verify_proof(
    root: bytes, leaf: bytes, index: int, leaf_count: int, proof: Sequence[bytes]
) -> bool:
    """True when ``proof`` shows leaf hash ``leaf`` at ``index`` of a ``leaf_count`` tree.

    Never raises on untrusted input: a wrong index, count, proof length or hash size
    simply gives False.
    """
    if not 0 <= index < leaf_count or len(leaf) != HASH_SIZE:
        return False
    node, used, width = leaf, 0, leaf_count
    while width > 1:
        promoted = index == width - 1 and width % 2 == 1
        if not promoted:
            if used >= len(proof) or len(proof[used]) != HASH_SIZE:
                return False
            sibling = proof[used]
            used += 1
            node = parent_hash(node, sibling) if index % 2 == 0 else parent_hash(sibling, node)
        index //= 2
        width = (width + 1) // 2
    return used == len(proof) and node == root
