"""The challenge's workload: spec bounds, seeded inputs by block, the exact product, tiles."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from gpunet.errors import ValidationError
from gpunet.protocol.challenge_inputs import (
    MAX_K,
    MAX_N,
    ChallengeSpec,
    a_rows,
    b_cols,
    compute_product,
    matrix_block,
    open_tiles,
    tile_bytes,
    tile_leaves,
    tile_product,
)
from gpunet.protocol.merkle import MerkleTree, verify_proof


def spec(**changes: Any) -> ChallengeSpec:
    base = ChallengeSpec("c-1", "node-1", bytes(range(32)), 64, 96, 16, 4, 1.0)
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("challenge_id", ""),
        ("challenge_id", "x" * 129),
        ("node_id", "line\nbreak"),
        ("seed", b"short"),
        ("n", 24),
        ("n", MAX_N + 8),
        ("n", 68),
        ("k", 0),
        ("k", MAX_K + 8),
        ("k", 100),
        ("tile", 12),
        ("tile", 24),
        ("opens", 0),
        ("opens", 17),
        ("deadline_s", 0.0),
        ("deadline_s", float("nan")),
        ("deadline_s", 601.0),
    ],
)
def test_bad_specs_name_the_field_and_value(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as raised:
        spec(**{field: value})

    assert raised.value.field == field
    assert raised.value.value is value


def test_too_many_tiles_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        spec(n=4096, tile=8)

    assert raised.value.field == "tile"
    assert "65536 tiles" in raised.value.message


def test_entries_are_small_balanced_integers() -> None:
    block = matrix_block(bytes(32), "A", range(0, 256), range(0, 1024))

    assert block.dtype == np.int8
    assert set(np.unique(block)) == {-2, -1, 0, 1, 2}
    shares = np.bincount(block.ravel() + 2) / block.size
    assert np.allclose(shares, 0.2, atol=0.01)


def test_any_block_equals_the_same_slice_of_the_whole_matrix() -> None:
    whole = matrix_block(bytes(32), "B", range(0, 64), range(0, 96))

    block = matrix_block(bytes(32), "B", range(16, 40), range(32, 72))

    assert np.array_equal(block, whole[16:40, 32:72])


def test_a_and_b_differ_and_depend_on_the_seed() -> None:
    a = matrix_block(bytes(32), "A", range(0, 32), range(0, 32))

    assert not np.array_equal(a, matrix_block(bytes(32), "B", range(0, 32), range(0, 32)))
    other_seed = b"\x01" + bytes(31)
    assert not np.array_equal(a, matrix_block(other_seed, "A", range(0, 32), range(0, 32)))
    assert np.array_equal(a, matrix_block(bytes(32), "A", range(0, 32), range(0, 32)))


def test_rows_of_a_and_columns_of_b_have_the_right_shapes() -> None:
    challenge = spec()

    assert a_rows(challenge, 16, 32).shape == (16, 96)
    assert b_cols(challenge, 0, 16).shape == (96, 16)
    with pytest.raises(ValidationError):
        a_rows(challenge, 32, 16)


def test_the_product_is_exact() -> None:
    challenge = spec(n=128, k=4096, tile=32)
    a = a_rows(challenge, 0, 128).astype(np.int64)
    b = b_cols(challenge, 0, 128).astype(np.int64)

    product = compute_product(challenge)

    assert product.dtype == np.int32
    assert np.array_equal(product, a @ b)


def test_a_tile_is_recomputed_from_its_rows_and_columns_alone() -> None:
    challenge = spec()
    product = compute_product(challenge)

    for index in (0, 5, challenge.tile_count - 1):
        expected = np.frombuffer(tile_bytes(challenge, product, index), dtype="<i4")
        assert np.array_equal(tile_product(challenge, index).ravel(), expected)


def test_tiles_are_row_major_little_endian_int32() -> None:
    challenge = spec()
    product = np.arange(64 * 64, dtype=np.int32).reshape(64, 64)

    data = tile_bytes(challenge, product, 1)  # row 0 of tiles, column 1

    assert data[:8] == (16).to_bytes(4, "little") + (17).to_bytes(4, "little")
    assert len(data) == 16 * 16 * 4
    with pytest.raises(ValidationError):
        tile_bytes(challenge, product[:32], 1)


def test_leaves_bind_the_challenge_id() -> None:
    product = compute_product(spec())

    first = tile_leaves(spec(), product)
    renamed = tile_leaves(spec(challenge_id="c-2"), product)

    assert len(first) == 16
    assert not set(first) & set(renamed)


def test_openings_prove_against_the_committed_root() -> None:
    challenge = spec()
    product = compute_product(challenge)
    tree = MerkleTree(tile_leaves(challenge, product))

    openings = open_tiles(challenge, product, [3, 9])

    leaves = tile_leaves(challenge, product)
    for opening in openings:
        assert opening.data == tile_bytes(challenge, product, opening.index)
        assert verify_proof(tree.root, leaves[opening.index], opening.index, 16, opening.proof)
