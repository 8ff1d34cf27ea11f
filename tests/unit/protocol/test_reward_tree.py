from __future__ import annotations

import math
import random
from typing import Any

import boa
import pytest
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from gpunet.errors import ValidationError
from gpunet.protocol.reward_tree import (
    MAX_UINT256,
    RewardLeaf,
    RewardTree,
    build_tree,
    encode_leaf,
    leaf_hash,
    normalize_account,
    pair_hash,
    verify_proof,
)

# The contract's leaf and snekmate's verification, compiled and run in the EVM.
CHECKER_SOURCE = """# pragma version ~=0.4.3
from snekmate.utils import merkle_proof_verification as mpv

@external
@pure
def leaf(epoch: uint256, account: address, reward: uint256, fee: uint256) -> bytes32:
    return keccak256(keccak256(abi_encode(epoch, account, reward, fee)))

@external
@pure
def verify(proof: DynArray[bytes32, 32], root: bytes32, leaf: bytes32) -> bool:
    return mpv._verify(proof, root, leaf)
"""

addresses = st.binary(min_size=20, max_size=20).map(lambda raw: "0x" + raw.hex())
uint256s = st.integers(0, MAX_UINT256)


def account(index: int) -> str:
    return "0x" + index.to_bytes(20, "big").hex()


def leaves_for(count: int, seed: int = 0) -> list[RewardLeaf]:
    rng = random.Random(seed)
    return [
        RewardLeaf(account(i + 1), rng.randrange(10**24), rng.choice((0, rng.randrange(10**20))))
        for i in range(count)
    ]


def reference_root(hashes: list[bytes]) -> bytes:
    """The same tree built the slow, obvious way: pair up, promote the odd one, repeat."""
    level = sorted(hashes)
    while len(level) > 1:
        pairs = [level[i : i + 2] for i in range(0, len(level), 2)]
        level = [keccak(b"".join(sorted(p))) if len(p) == 2 else p[0] for p in pairs]
    return level[0]


@pytest.fixture(scope="module")
def evm() -> Any:
    return boa.loads(CHECKER_SOURCE)


@settings(max_examples=200)
@given(epoch=uint256s, address=addresses, reward=uint256s, fee=uint256s)
def test_encoding_is_abi_encode_of_the_four_fields(
    epoch: int, address: str, reward: int, fee: int
) -> None:
    expected = abi_encode(
        ["uint256", "address", "uint256", "uint256"], [epoch, address, reward, fee]
    )
    assert encode_leaf(epoch, address, reward, fee) == expected
    assert leaf_hash(epoch, address, reward, fee) == keccak(keccak(expected))


def test_leaf_hash_matches_the_contract(evm: Any) -> None:
    cases = [(0, account(1), 0, 0), (7, account(2**159), 10**24, 5), (2**64, account(3), 1, 2)]
    for epoch, address, reward, fee in cases:
        checksummed = to_checksum_address(address)
        assert leaf_hash(epoch, address, reward, fee) == evm.leaf(epoch, checksummed, reward, fee)


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 13])
def test_every_proof_verifies_in_snekmate(evm: Any, count: int) -> None:
    tree = RewardTree(9, leaves_for(count, seed=count))
    for leaf in tree.leaves:
        proof = tree.proof(leaf.account)
        assert evm.verify(proof, tree.root, tree.leaf_hash(leaf.account))
    if count > 1:
        first, second = tree.leaves[:2]
        assert not evm.verify(tree.proof(first.account), tree.root, tree.leaf_hash(second.account))


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6, 7, 9, 16, 17, 33, 100])
def test_every_proof_verifies_and_is_logarithmic(count: int) -> None:
    tree = RewardTree(3, leaves_for(count))
    hashes = [leaf_hash(3, x.account, x.reward, x.fee) for x in leaves_for(count)]
    assert tree.root == reference_root(hashes)
    for leaf in leaves_for(count):
        proof = tree.proof(leaf.account)
        assert len(proof) <= math.ceil(math.log2(count))
        assert verify_proof(tree.root, leaf_hash(3, leaf.account, leaf.reward, leaf.fee), proof)


def test_a_single_leaf_is_the_root_with_an_empty_proof() -> None:
    (leaf,) = leaves_for(1)
    tree = RewardTree(1, [leaf])
    assert tree.root == leaf_hash(1, leaf.account, leaf.reward, leaf.fee)
    assert tree.proof(leaf.account) == []


def test_a_changed_amount_epoch_or_proof_does_not_verify() -> None:
    leaves = leaves_for(10)
    tree = RewardTree(5, leaves)
    target = leaves[4]
    proof = tree.proof(target.account)
    assert verify_proof(tree.root, leaf_hash(5, target.account, target.reward, target.fee), proof)
    assert not verify_proof(
        tree.root, leaf_hash(5, target.account, target.reward + 1, target.fee), proof
    )
    assert not verify_proof(
        tree.root, leaf_hash(6, target.account, target.reward, target.fee), proof
    )
    tampered = [bytes(32), *proof[1:]]
    assert not verify_proof(tree.root, tree.leaf_hash(target.account), tampered)


@settings(max_examples=30)
@given(count=st.integers(1, 40), data=st.data())
def test_root_does_not_depend_on_input_order(count: int, data: st.DataObject) -> None:
    leaves = leaves_for(count, seed=count)
    shuffled = data.draw(st.permutations(leaves))
    assert RewardTree(2, shuffled).root == RewardTree(2, leaves).root


def test_accounts_ignore_case_and_are_kept_in_lower_case() -> None:
    address = to_checksum_address(account(0xABCDEF))
    leaf = RewardLeaf(address, 1, 2)
    assert leaf.account == address.lower()
    tree = RewardTree(1, [leaf])
    assert address in tree
    assert address.upper().replace("0X", "0x") in tree
    assert tree.leaf(address.lower()) == leaf
    assert leaf_hash(1, address, 1, 2) == leaf_hash(1, address.lower(), 1, 2)


def test_an_account_twice_is_an_error_naming_it() -> None:
    address = to_checksum_address(account(0xABCDEF))
    with pytest.raises(ValidationError, match=address.lower()):
        RewardTree(1, [RewardLeaf(address, 1, 0), RewardLeaf(address.lower(), 2, 0)])


def test_an_account_without_a_leaf_is_an_error() -> None:
    tree = RewardTree(1, leaves_for(3))
    with pytest.raises(ValidationError, match="no leaf in epoch 1"):
        tree.proof(account(99))


@pytest.mark.parametrize("bad", ["", "0x12", "12" * 20, "0x" + "g" * 40, "0x" + "1" * 41])
def test_malformed_accounts_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="account"):
        normalize_account(bad)


@pytest.mark.parametrize(
    ("reward", "fee"), [(-1, 0), (0, -1), (MAX_UINT256 + 1, 0), (True, 0), (1.5, 0)]
)
def test_amounts_must_fit_uint256(reward: Any, fee: Any) -> None:
    with pytest.raises(ValidationError):
        RewardLeaf(account(1), reward, fee)


def test_an_empty_epoch_has_no_tree() -> None:
    assert build_tree(4, []) is None
    with pytest.raises(ValidationError, match="at least one leaf"):
        RewardTree(4, [])
    tree = build_tree(4, leaves_for(2))
    assert tree is not None and len(tree) == 2


def test_pairs_are_hashed_smaller_first() -> None:
    low, high = bytes(32), b"\xff" * 32
    assert pair_hash(low, high) == pair_hash(high, low) == keccak(low + high)
