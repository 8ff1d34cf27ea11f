"""The capacity challenge end to end: honest and lying answers, deadlines, defaults."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np
import pytest

from gpunet.errors import UnknownGpuModel, ValidationError
from gpunet.protocol.catalogue import CATALOGUE, CPU_MODEL
from gpunet.protocol.challenge import (
    CPU_POLICY,
    PRODUCTION_POLICY,
    ChallengeSpec,
    DeadlinePolicy,
    Opening,
    claimed_ops_per_s,
    commitment_message,
    compute_product,
    deadline_for,
    judge_capacity,
    new_challenge,
    open_tiles,
    overclaim_pass_probability,
    overclaim_tile_fraction,
    pick_tiles,
    policy_for,
    prover_ops,
    tile_leaves,
    verifier_ops,
    within_claim,
)
from gpunet.protocol.challenge_inputs import Int32Matrix
from gpunet.protocol.merkle import MerkleTree

GPU_MODELS = [name for name in CATALOGUE if name != CPU_MODEL]
# Fixed small sizes (min = max), so these tests run in milliseconds.
TINY = dataclasses.replace(CPU_POLICY, min_n=64, max_n=64, min_k=96, max_k=96, tile=16, opens=4)


def challenge(challenge_id: str = "c-1", node_id: str = "node-1") -> ChallengeSpec:
    spec = new_challenge(challenge_id, node_id, 1e9, b"entropy-" * 4, 0.0, TINY)
    return dataclasses.replace(spec, deadline_s=1.0)


def commit(spec: ChallengeSpec, product: Int32Matrix) -> MerkleTree:
    return MerkleTree(tile_leaves(spec, product))


def answer(
    spec: ChallengeSpec, product: Int32Matrix, entropy: bytes = b"p" * 32
) -> tuple[bytes, tuple[int, ...], list[Opening]]:
    """What an honest prover of ``product`` sends: root, then the picked openings."""
    tree = commit(spec, product)
    indices = pick_tiles(spec, tree.root, entropy)
    return tree.root, indices, open_tiles(spec, product, indices, tree=tree)


def test_an_honest_answer_passes() -> None:
    spec = challenge()
    root, indices, openings = answer(spec, compute_product(spec))

    finding = judge_capacity(spec, root, 0.2, indices, openings)

    assert finding.passed
    assert finding.reason == "4 tiles correct; answered in 0.20 s, deadline 1.00 s"


def test_random_outputs_fail() -> None:
    spec = challenge()
    rng = np.random.default_rng(7)
    product = rng.integers(-384, 384, size=(64, 64), dtype=np.int32)
    root, indices, openings = answer(spec, product)

    finding = judge_capacity(spec, root, 0.2, indices, openings)

    assert not finding.passed
    assert finding.reason == f"tile {indices[0]} differs from the recomputed product"


def test_a_replayed_commitment_fails() -> None:
    first, second = challenge("c-1"), challenge("c-2")
    old_product = compute_product(first)
    old_tree = commit(first, old_product)
    indices = pick_tiles(second, old_tree.root, b"p" * 32)

    replayed = open_tiles(first, old_product, indices, tree=old_tree)
    honest_tiles = open_tiles(second, compute_product(second), indices)

    for openings in (replayed, honest_tiles):
        finding = judge_capacity(second, old_tree.root, 0.2, indices, openings)
        assert not finding.passed
        assert finding.reason == f"bad Merkle proof for tile {indices[0]}"


def test_openings_for_another_nodes_challenge_fail() -> None:
    mine, theirs = challenge(node_id="node-1"), challenge(node_id="node-2")
    assert mine.seed != theirs.seed
    root, indices, openings = answer(theirs, compute_product(theirs))

    finding = judge_capacity(mine, root, 0.2, indices, openings)

    assert not finding.passed
    assert "differs from the recomputed product" in finding.reason


def test_late_answers_fail_with_both_times() -> None:
    spec = dataclasses.replace(challenge(), deadline_s=1.2)
    root, indices, openings = answer(spec, compute_product(spec))

    late = judge_capacity(spec, root, 2.31, indices, openings)
    on_time = judge_capacity(spec, root, 1.2, indices, openings)

    assert not late.passed
    assert late.reason == "answered in 2.31 s, deadline 1.20 s"
    assert on_time.passed


def test_missing_openings_are_named() -> None:
    spec = challenge()
    root, indices, openings = answer(spec, compute_product(spec))

    finding = judge_capacity(spec, root, 0.2, indices, openings[1:3])

    assert not finding.passed
    assert finding.reason == f"missing openings for tiles {indices[0]}, {indices[3]}"


def test_a_bad_proof_names_the_tile() -> None:
    spec = challenge()
    root, indices, openings = answer(spec, compute_product(spec))
    bad = openings[2]
    openings[2] = dataclasses.replace(bad, proof=(bytes(32), *bad.proof[1:]))

    finding = judge_capacity(spec, root, 0.2, indices, openings)

    assert finding.reason == f"bad Merkle proof for tile {indices[2]}"


def test_a_short_tile_and_a_bad_root_are_refused() -> None:
    spec = challenge()
    root, indices, openings = answer(spec, compute_product(spec))
    openings[0] = dataclasses.replace(openings[0], data=openings[0].data[:-4])

    short = judge_capacity(spec, root, 0.2, indices, openings)
    rootless = judge_capacity(spec, b"\x00" * 31, 0.2, indices, openings)

    assert short.reason == f"tile {indices[0]} has 1020 bytes, expected 1024"
    assert rootless.reason == "the root is not a 32-byte hash"


def test_openings_not_asked_for_are_ignored() -> None:
    spec = challenge()
    product = compute_product(spec)
    root, indices, openings = answer(spec, product)
    others = [i for i in range(spec.tile_count) if i not in indices][:2]
    extra = open_tiles(spec, np.zeros_like(product), others)

    assert judge_capacity(spec, root, 0.2, indices, openings + extra).passed


def test_the_checker_must_ask_for_distinct_valid_tiles() -> None:
    spec = challenge()
    with pytest.raises(ValidationError):
        judge_capacity(spec, bytes(32), 0.1, [1, 1], [])
    with pytest.raises(ValidationError):
        judge_capacity(spec, bytes(32), 0.1, [spec.tile_count], [])


def test_an_overclaim_passes_about_f_to_the_opens() -> None:
    """A prover that computed only half the tiles passes when every opened tile is one."""
    spec = dataclasses.replace(challenge(), tile=8, opens=3)  # 64 tiles
    rng = np.random.default_rng(2024)
    computed = set(rng.choice(spec.tile_count, size=32, replace=False).tolist())
    product = compute_product(spec)
    for index in set(range(spec.tile_count)) - computed:
        row, col = divmod(index, spec.tiles_per_side)
        product[row * 8 : row * 8 + 8, col * 8 : col * 8 + 8] = rng.integers(-384, 384, (8, 8))
    tree = commit(spec, product)

    trials, passes = 1500, 0
    for _ in range(trials):
        indices = pick_tiles(spec, tree.root, rng.bytes(32))
        openings = open_tiles(spec, product, indices, tree=tree)
        passes += judge_capacity(spec, tree.root, 0.1, indices, openings).passed

    exact = math.comb(32, 3) / math.comb(64, 3)  # drawing without replacement: 0.119
    bound = 0.5**3  # f ** opens, the bound the security argument uses
    spread = 4 * math.sqrt(exact * (1 - exact) / trials)
    assert abs(passes / trials - exact) < spread
    assert passes / trials < bound + spread


def test_pick_tiles_is_deterministic_and_bound_to_root_and_entropy() -> None:
    spec = challenge()
    root = bytes(range(32))

    picked = pick_tiles(spec, root, b"e" * 32)

    assert picked == pick_tiles(spec, root, b"e" * 32)
    assert picked != pick_tiles(spec, bytes(reversed(root)), b"e" * 32)
    assert picked != pick_tiles(spec, root, b"f" * 32)
    assert list(picked) == sorted(set(picked))
    assert len(picked) == spec.opens
    assert all(0 <= i < spec.tile_count for i in picked)


def test_pick_tiles_covers_the_grid_evenly() -> None:
    spec = dataclasses.replace(challenge(), opens=1)
    counts = Counter(pick_tiles(spec, bytes(32), i.to_bytes(16, "big"))[0] for i in range(1600))

    assert set(counts) == set(range(16))
    assert all(60 <= count <= 150 for count in counts.values())  # 100 expected
    every = dataclasses.replace(spec, opens=16)
    assert pick_tiles(every, bytes(32), b"e" * 16) == tuple(range(16))
    with pytest.raises(ValidationError):
        pick_tiles(spec, bytes(32), b"short")


def test_the_deadline_adds_product_overheads_and_network() -> None:
    n, k, claimed = 1024, 4096, 20e9
    expected = (
        2 * n * n * k / (0.5 * claimed)
        + 2 * n * k / CPU_POLICY.generation_rate
        + n * n / CPU_POLICY.hashing_rate
        + 0.05
        + 2.0 * 0.01
    )

    assert deadline_for(n, k, claimed, 0.01, CPU_POLICY) == pytest.approx(expected)
    # A node cannot widen its deadline past max_rtt_s by answering pings slowly.
    capped = deadline_for(n, k, claimed, CPU_POLICY.max_rtt_s, CPU_POLICY)
    assert deadline_for(n, k, claimed, 5.0, CPU_POLICY) == capped
    with pytest.raises(ValidationError):
        deadline_for(n, k, 0.0, 0.0, CPU_POLICY)


def test_the_seed_binds_entropy_node_and_challenge() -> None:
    base = challenge()

    assert challenge().seed == base.seed
    assert challenge(challenge_id="c-2").seed != base.seed
    assert challenge(node_id="node-2").seed != base.seed
    other = new_challenge("c-1", "node-1", 1e9, b"other-entropy-16", 0.0, TINY)
    assert other.seed != base.seed
    with pytest.raises(ValidationError) as raised:
        new_challenge("c-1", "node-1", 1e9, b"short", 0.0, TINY)
    assert raised.value.field == "entropy"


@pytest.mark.parametrize("gflops", [5, 20, 50])
def test_cpu_challenges_are_small_and_quick(gflops: float) -> None:
    spec = new_challenge("c-1", "node-1", gflops * 1e9, b"e" * 32, 0.001, CPU_POLICY)

    assert 256 <= spec.n <= 1024
    assert spec.deadline_s < 1.0
    assert within_claim(spec, gflops * 1e9, CPU_POLICY)
    assert not within_claim(dataclasses.replace(spec, k=spec.k * 4), gflops * 1e9, CPU_POLICY)


def test_claimed_rates() -> None:
    assert claimed_ops_per_s("H100", 1, 0.0) == pytest.approx(1.978e15)
    assert claimed_ops_per_s("h100", 8, 0.0) == pytest.approx(8 * 1.978e15)
    assert claimed_ops_per_s("V100", 1, 0.0) == pytest.approx(125e12)  # no int8 tensor cores
    assert claimed_ops_per_s("CPU", 0, 42.5) == pytest.approx(42.5e9)
    with pytest.raises(UnknownGpuModel):
        claimed_ops_per_s("GTX 480", 1, 0.0)
    with pytest.raises(ValidationError) as raised:
        claimed_ops_per_s("H100", 0, 0.0)
    assert raised.value.field == "gpu_count"


@pytest.mark.parametrize("model", GPU_MODELS)
def test_production_verification_costs_under_one_percent(model: str) -> None:
    claimed = claimed_ops_per_s(model, 1, 0.0)
    spec = new_challenge("c-1", "node-1", claimed, b"e" * 32, 0.05, policy_for(model))

    assert verifier_ops(spec) / prover_ops(spec) <= 0.01


@pytest.mark.parametrize("model", GPU_MODELS)
def test_production_catches_a_4x_overclaim(model: str) -> None:
    """Cheater's generation and hashing at the policy's rates (docs/checks.md)."""
    claimed = claimed_ops_per_s(model, 1, 0.0)
    policy = policy_for(model)
    spec = new_challenge("c-1", "node-1", claimed, b"e" * 32, policy.max_rtt_s, policy)

    assert overclaim_pass_probability(spec, claimed, policy) < 0.01


@pytest.mark.parametrize("gflops", [5, 20, 50])
def test_cpu_policy_catches_a_4x_overclaim_even_with_free_overheads(gflops: float) -> None:
    spec = new_challenge("c-1", "node-1", gflops * 1e9, b"e" * 32, 0.05, CPU_POLICY)

    probability = overclaim_pass_probability(
        spec, gflops * 1e9, CPU_POLICY, overhead_speedup=math.inf
    )

    assert probability < 0.01


def test_an_honest_rate_finishes_every_tile() -> None:
    spec = new_challenge("c-1", "node-1", 20e9, b"e" * 32, 0.0, CPU_POLICY)
    fractions = [overclaim_tile_fraction(spec, 20e9, CPU_POLICY, factor=f) for f in (1, 2, 4, 8)]

    assert fractions[0] == 1.0
    assert fractions == sorted(fractions, reverse=True)
    assert fractions[-1] < 0.5


def test_commitment_message_names_challenge_node_and_root() -> None:
    text = commitment_message("c-1", "node-1", bytes(range(32)))

    assert text.startswith("gpunet-capacity-commitment-v1\n")
    assert "challenge: c-1" in text and "node: node-1" in text
    assert bytes(range(32)).hex() in text
    with pytest.raises(ValidationError):
        commitment_message("c-1", "node-1", b"short")


def test_policies_validate_and_fit_models() -> None:
    with pytest.raises(ValidationError) as raised:
        dataclasses.replace(CPU_POLICY, efficiency=1.5)
    assert raised.value.field == "efficiency"
    with pytest.raises(ValidationError) as opens:
        dataclasses.replace(CPU_POLICY, opens=1000)
    assert opens.value.field == "opens"

    assert policy_for("CPU") is CPU_POLICY
    assert policy_for("H100").generation_rate == pytest.approx(PRODUCTION_POLICY.generation_rate)
    assert policy_for("T4").generation_rate < policy_for("H100").generation_rate
    assert isinstance(policy_for("L4"), DeadlinePolicy)
