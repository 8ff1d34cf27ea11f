"""The SHA-256 Merkle tree: round trips, odd levels, and every kind of tampering."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpunet.errors import ValidationError
from gpunet.protocol.merkle import MerkleTree, leaf_hash, parent_hash, verify_proof


def leaves(count: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(count)]


def flip(data: bytes, position: int = 0) -> bytes:
    return data[:position] + bytes([data[position] ^ 1]) + data[position + 1 :]


@settings(max_examples=200, deadline=None)
@given(count=st.integers(1, 200), data=st.data())
def test_every_leaf_proves_against_the_root(count: int, data: st.DataObject) -> None:
    tree = MerkleTree(leaves(count))
    index = data.draw(st.integers(0, count - 1))

    proof = tree.proof(index)

    assert len(tree) == count
    assert verify_proof(tree.root, leaves(count)[index], index, count, proof)


@settings(max_examples=100, deadline=None)
@given(count=st.integers(2, 200), data=st.data())
def test_a_proof_does_not_fit_another_leaf_or_position(count: int, data: st.DataObject) -> None:
    tree = MerkleTree(leaves(count))
    index = data.draw(st.integers(0, count - 1))
    other = data.draw(st.integers(0, count - 1).filter(lambda i: i != index))
    proof = tree.proof(index)
    leaf = leaves(count)[index]

    assert not verify_proof(tree.root, leaves(count)[other], index, count, proof)
    assert not verify_proof(tree.root, leaf, other, count, proof)
    assert not verify_proof(tree.root, flip(leaf), index, count, proof)


@pytest.mark.parametrize("count", [2, 3, 5, 8, 13, 100])
def test_tampered_proofs_are_rejected(count: int) -> None:
    tree = MerkleTree(leaves(count))
    leaf = leaves(count)[count - 1]
    proof = tree.proof(count - 1)

    for position in range(len(proof)):
        bad = list(proof)
        bad[position] = flip(bad[position], 31)
        assert not verify_proof(tree.root, leaf, count - 1, count, bad)
    assert not verify_proof(tree.root, leaf, count - 1, count, [*proof, proof[0]])
    assert not verify_proof(tree.root, leaf, count - 1, count, proof[:-1])
    assert not verify_proof(flip(tree.root), leaf, count - 1, count, proof)


def test_wrong_leaf_count_is_rejected() -> None:
    tree = MerkleTree(leaves(5))
    proof = tree.proof(4)

    assert verify_proof(tree.root, leaves(5)[4], 4, 5, proof)
    assert not verify_proof(tree.root, leaves(5)[4], 4, 6, proof)
    assert not verify_proof(tree.root, leaves(5)[4], 4, 4, proof)


def test_an_odd_node_is_promoted_unchanged() -> None:
    l0, l1, l2 = leaves(3)

    tree = MerkleTree([l0, l1, l2])

    assert tree.root == parent_hash(parent_hash(l0, l1), l2)
    assert tree.proof(2) == (parent_hash(l0, l1),)


def test_a_single_leaf_is_its_own_root() -> None:
    (leaf,) = leaves(1)
    tree = MerkleTree([leaf])

    assert tree.root == leaf
    assert tree.proof(0) == ()
    assert verify_proof(leaf, leaf, 0, 1, ())


def test_leaves_and_nodes_are_hashed_under_different_prefixes() -> None:
    l0, l1, l2, l3 = leaves(4)
    tree = MerkleTree([l0, l1, l2, l3])
    p01, p23 = parent_hash(l0, l1), parent_hash(l2, l3)

    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert p01 == hashlib.sha256(b"\x01" + l0 + l1).digest()
    # The same root reads as a 2-leaf tree over (p01, p23); data l0 || l1 would pose as
    # its first leaf if leaves and inner nodes were hashed alike.
    assert MerkleTree([p01, p23]).root == tree.root
    assert not verify_proof(tree.root, leaf_hash(l0 + l1), 0, 2, (p23,))


def test_junk_never_raises_in_verification() -> None:
    tree = MerkleTree(leaves(4))

    assert not verify_proof(tree.root, b"short", 0, 4, tree.proof(0))
    assert not verify_proof(tree.root, leaves(4)[0], -1, 4, tree.proof(0))
    assert not verify_proof(tree.root, leaves(4)[0], 0, 0, ())
    assert not verify_proof(tree.root, leaves(4)[0], 0, 4, [b"short", b"x" * 32])


def test_bad_trees_and_indices_name_the_problem() -> None:
    with pytest.raises(ValidationError) as empty:
        MerkleTree([])
    with pytest.raises(ValidationError) as short:
        MerkleTree([b"x" * 32, b"short"])
    with pytest.raises(ValidationError) as index:
        MerkleTree(leaves(3)).proof(3)

    assert empty.value.field == "leaf_hashes"
    assert short.value.field == "leaf_hashes[1]"
    assert (index.value.field, index.value.value) == ("index", 3)
