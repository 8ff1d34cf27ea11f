"""The capacity challenge: size it from a claim, time it, pick tiles, judge the answer.

Protocol (docs/checks.md, "Capacity"): the checker sends a ``ChallengeSpec`` whose seed
it derived from fresh entropy; the node computes ``C = A @ B`` (challenge_inputs),
commits to its tiles with a Merkle root, and signs ``commitment_message``. If the root
came back before ``deadline_s``, the checker draws fresh entropy, asks for the tiles
``pick_tiles`` names, recomputes each from its rows of A and columns of B, and
``judge_capacity`` says pass or fail with a reason.

Deadline (``deadline_for``)::

    2 n^2 k / (efficiency * claimed)       the product at the lowest rate we accept
    + 2 n k / generation_rate              deriving A and B from the seed
    + n^2 / hashing_rate                   hashing the int32 product into leaves
    + network_floor_s + rtt_factor * min(rtt_s, max_rtt_s)

A node whose real product rate is ``claimed / 4`` finishes only a fraction f of the
tiles by then and passes only if every opened tile is among them: at most
``f ** opens`` (``overclaim_tile_fraction`` states the model, in the cheater's favour).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from gpunet.errors import ValidationError
from gpunet.protocol.catalogue import CPU_MODEL, gpu_model
from gpunet.protocol.challenge_inputs import (
    ALIGN,
    MAX_K,
    ChallengeSpec,
    Opening,
    a_rows,
    b_cols,
    compute_product,
    open_tiles,
    tile_bytes,
    tile_leaf,
    tile_leaves,
    tile_product,
)
from gpunet.protocol.merkle import HASH_SIZE, verify_proof

__all__ = [
    "CPU_POLICY",
    "GENERATION_OPS_PER_ENTRY",
    "GPU_GENERATION_PER_OP",
    "PRODUCTION_POLICY",
    "CapacityFinding",
    "ChallengeSpec",
    "DeadlinePolicy",
    "Opening",
    "a_rows",
    "b_cols",
    "challenge_sizes",
    "claimed_ops_per_s",
    "commitment_message",
    "compute_product",
    "deadline_for",
    "judge_capacity",
    "new_challenge",
    "open_tiles",
    "overclaim_pass_probability",
    "overclaim_tile_fraction",
    "pick_tiles",
    "policy_for",
    "prover_ops",
    "tile_bytes",
    "tile_leaves",
    "verifier_ops",
    "within_claim",
]

MIN_ENTROPY = 16
# Counted per input entry: 8 int64 operations per 4-entry word, then a remainder and
# a subtraction per entry. An estimate, used only to compare prover and verifier work.
GENERATION_OPS_PER_ENTRY = 4
# Volta has no int8 tensor cores: its best exact rate is the fp16 one.
_FP16_ONLY_MODELS = frozenset({"V100"})


@dataclass(frozen=True)
class DeadlinePolicy:
    """How challenges are sized and timed; rates are what an honest prover must reach."""

    efficiency: float  # share of the claimed product rate an honest node must reach
    network_floor_s: float  # allowance for jitter and request handling
    rtt_factor: float  # round trips allowed on top (request, answer, TCP setup)
    max_rtt_s: float  # a node cannot buy more time than this by answering pings slowly
    generation_rate: float  # input entries per second (A and B together)
    hashing_rate: float  # product elements (4 bytes each) hashed into leaves per second
    target_s: float  # the product's time at the claimed rate that sizes aim for
    min_n: int
    max_n: int
    min_k: int
    max_k: int
    tile: int
    opens: int

    def __post_init__(self) -> None:
        if not 0 < self.efficiency <= 1:
            raise ValidationError("efficiency", self.efficiency, "must be in (0, 1]")
        for field in ("network_floor_s", "rtt_factor", "max_rtt_s"):
            _check_finite(field, getattr(self, field), allow_zero=True)
        for field in ("generation_rate", "hashing_rate", "target_s"):
            _check_finite(field, getattr(self, field), allow_zero=False)
        # Specs at the policy's extremes must be valid; constructing them raises if not.
        for n, k in ((self.min_n, self.min_k), (self.max_n, self.max_k)):
            ChallengeSpec("policy", "policy", bytes(32), n, k, self.tile, self.opens, 1.0)
        if self.min_n > self.max_n or self.min_k > self.max_k:
            raise ValidationError("min_n", self.min_n, "minimum sizes must not exceed maximums")


def _check_finite(field: str, value: float, *, allow_zero: bool) -> None:
    low_ok = value >= 0 if allow_zero else value > 0
    if not math.isfinite(value) or not low_ok:
        bound = "at least 0" if allow_zero else "above 0"
        raise ValidationError(field, value, f"must be a finite number {bound}")


# GPU nodes, sized for an H100 (the reference): eager torch derives inputs at about
# 40 bytes of GPU memory traffic per entry, and catalogue GPUs claim 300-850 int8 ops
# per byte of bandwidth, so about 3e-5 entries per claimed op; half that is allowed.
# Hashing (SHA-256 on up to 8 host threads: 0.4 GB/s each without SHA-NI, 1.3 with)
# and the copy off the GPU are allowed 0.8 GB/s together.
GPU_GENERATION_PER_OP = 1.5e-5
PRODUCTION_POLICY = DeadlinePolicy(
    efficiency=0.5,
    network_floor_s=0.5,
    rtt_factor=2.0,
    max_rtt_s=0.5,
    generation_rate=GPU_GENERATION_PER_OP * 1.978e15,
    hashing_rate=2.0e8,
    target_s=2.0,
    min_n=4_096,
    max_n=32_768,
    min_k=8_192,
    max_k=MAX_K,
    tile=128,
    opens=64,
)
# CPU nodes, tests and the localnet: NumPy on a 2-core machine answers in well under
# a second for claims of 5-50 GFLOPS (generation is single-threaded, ~2.5e8 entries/s
# there; SHA-256 ~1.3 GB/s).
CPU_POLICY = DeadlinePolicy(
    efficiency=0.5,
    network_floor_s=0.05,
    rtt_factor=2.0,
    max_rtt_s=0.05,
    generation_rate=1.0e8,
    hashing_rate=5.0e7,
    target_s=0.3,
    min_n=256,
    max_n=1_024,
    min_k=256,
    max_k=65_536,
    tile=32,
    opens=20,
)


def policy_for(gpu_model_name: str) -> DeadlinePolicy:
    """The policy for a node of this model: CPU_POLICY for CPUs, else the GPU policy
    with the generation rate scaled to one GPU of that model (memory bandwidth tracks
    the int8 peak across the catalogue, within a factor of 3)."""
    if gpu_model_name.strip().upper() == CPU_MODEL:
        return CPU_POLICY
    per_gpu = claimed_ops_per_s(gpu_model_name, 1, 0.0)
    return replace(PRODUCTION_POLICY, generation_rate=GPU_GENERATION_PER_OP * per_gpu)


def claimed_ops_per_s(gpu_model_name: str, gpu_count: int, benchmark_gflops: float) -> float:
    """The product rate a node claims: int8 tensor peak for GPUs, its benchmark for CPUs.

    int8 dense throughput is twice the fp16 one on every tensor-core generation with
    int8 tensor cores (Turing onwards); Volta (V100) is held to its fp16 rate.
    """
    if gpu_model_name.strip().upper() == CPU_MODEL:
        _check_finite("benchmark_gflops", benchmark_gflops, allow_zero=False)
        return benchmark_gflops * 1e9
    if isinstance(gpu_count, bool) or not isinstance(gpu_count, int) or gpu_count < 1:
        raise ValidationError("gpu_count", gpu_count, "a GPU node has at least 1 GPU")
    model = gpu_model(gpu_model_name)
    per_fp16_flop = 1 if model.name in _FP16_ONLY_MODELS else 2
    return per_fp16_flop * model.fp16_tflops * 1e12 * gpu_count


def deadline_for(
    n: int, k: int, claimed_ops_per_s: float, rtt_s: float, policy: DeadlinePolicy
) -> float:
    """Seconds an honest node at ``policy.efficiency`` of its claim needs, plus network."""
    _check_finite("claimed_ops_per_s", claimed_ops_per_s, allow_zero=False)
    _check_finite("rtt_s", rtt_s, allow_zero=True)
    product = 2 * n * n * k / (policy.efficiency * claimed_ops_per_s)
    overhead = 2 * n * k / policy.generation_rate + n * n / policy.hashing_rate
    network = policy.network_floor_s + policy.rtt_factor * min(rtt_s, policy.max_rtt_s)
    return product + overhead + network


def challenge_sizes(claimed_ops_per_s: float, policy: DeadlinePolicy) -> tuple[int, int]:
    """(n, k) whose product takes ``target_s`` at the claim, within the policy's bounds.

    n minimises generation plus hashing for that work (``n**3 = ops * hashing_rate /
    (2 * generation_rate)``), but is raised until k fits under ``max_k``; k carries
    the rest.
    """
    _check_finite("claimed_ops_per_s", claimed_ops_per_s, allow_zero=False)
    ops = claimed_ops_per_s * policy.target_s
    best_n = (ops * policy.hashing_rate / (2 * policy.generation_rate)) ** (1 / 3)
    best_n = max(best_n, math.sqrt(ops / (2 * policy.max_k)))
    n = math.ceil(best_n / policy.tile) * policy.tile
    n = min(max(n, policy.min_n), policy.max_n)
    k = min(max(round(ops / (2 * n * n) / ALIGN) * ALIGN, policy.min_k), policy.max_k)
    return n, k


def new_challenge(
    challenge_id: str,
    node_id: str,
    claimed_ops_per_s: float,
    entropy: bytes,
    rtt_s: float,
    policy: DeadlinePolicy,
) -> ChallengeSpec:
    """A challenge for one node; its seed binds the entropy, the node and the challenge."""
    if len(entropy) < MIN_ENTROPY:
        raise ValidationError("entropy", entropy, f"pass at least {MIN_ENTROPY} fresh bytes")
    seed = hashlib.sha256(
        _framed(b"gpunet-capacity-seed-v1", entropy, node_id.encode(), challenge_id.encode())
    ).digest()
    n, k = challenge_sizes(claimed_ops_per_s, policy)
    deadline = deadline_for(n, k, claimed_ops_per_s, rtt_s, policy)
    return ChallengeSpec(challenge_id, node_id, seed, n, k, policy.tile, policy.opens, deadline)


def within_claim(spec: ChallengeSpec, claimed_ops_per_s: float, policy: DeadlinePolicy) -> bool:
    """Whether a node should accept ``spec``: within the policy's sizes, and no more
    than twice the product work ``new_challenge`` asks of this claim."""
    n, k = challenge_sizes(claimed_ops_per_s, policy)
    return (
        spec.n <= policy.max_n
        and spec.k <= policy.max_k
        and spec.n * spec.n * spec.k <= 2 * n * n * k
    )


def _framed(*parts: bytes) -> bytes:
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def commitment_message(challenge_id: str, node_id: str, root: bytes) -> str:
    """The text a node signs (EIP-191, operator key) to commit to its product's root."""
    _check_root(root)
    return (
        "gpunet-capacity-commitment-v1\n"
        f"challenge: {challenge_id}\nnode: {node_id}\nroot: {root.hex()}"
    )


def _check_root(root: bytes) -> None:
    if not isinstance(root, bytes) or len(root) != HASH_SIZE:
        raise ValidationError("root", root, f"a Merkle root is {HASH_SIZE} bytes")


def pick_tiles(spec: ChallengeSpec, root: bytes, entropy: bytes) -> tuple[int, ...]:
    """``spec.opens`` distinct tiles, sorted, drawn uniformly from entropy and the root.

    Draw the entropy after the root arrives: a node that knew it could compute only
    the tiles that will be opened.
    """
    _check_root(root)
    if len(entropy) < MIN_ENTROPY:
        raise ValidationError("entropy", entropy, f"pass at least {MIN_ENTROPY} fresh bytes")
    base = _framed(b"gpunet-capacity-pick-v1", entropy, spec.challenge_id.encode(), root)
    count = spec.tile_count
    limit = 2**64 - 2**64 % count  # rejecting draws above it keeps every tile equally likely
    chosen: set[int] = set()
    counter = 0
    while len(chosen) < spec.opens:
        block = hashlib.sha256(base + counter.to_bytes(8, "big")).digest()
        counter += 1
        for offset in range(0, HASH_SIZE, 8):
            draw = int.from_bytes(block[offset : offset + 8], "big")
            if draw < limit and len(chosen) < spec.opens:
                chosen.add(draw % count)
    return tuple(sorted(chosen))


@dataclass(frozen=True)
class CapacityFinding:
    """The checker's view of one answer: pass or fail, and why."""

    passed: bool
    reason: str


def judge_capacity(
    spec: ChallengeSpec,
    root: bytes,
    elapsed_s: float,
    indices: Sequence[int],
    openings: Sequence[Opening],
) -> CapacityFinding:
    """Pass when the root came in time and every opened tile is proven and correct.

    ``indices`` are the tiles the checker asked for (``pick_tiles``); openings for
    other tiles are ignored. Cheap checks run first; recomputing tiles runs last.
    """
    _check_indices(spec, indices)
    if not isinstance(root, bytes) or len(root) != HASH_SIZE:
        return CapacityFinding(False, f"the root is not a {HASH_SIZE}-byte hash")
    if not elapsed_s <= spec.deadline_s:
        late = f"answered in {elapsed_s:.2f} s, deadline {spec.deadline_s:.2f} s"
        return CapacityFinding(False, late)
    by_index = {opening.index: opening for opening in openings}
    missing = [i for i in indices if i not in by_index]
    if missing:
        listed = ", ".join(str(i) for i in missing)
        return CapacityFinding(False, f"missing openings for tiles {listed}")
    for index in indices:
        reason = _proof_problem(spec, root, by_index[index])
        if reason:
            return CapacityFinding(False, reason)
    for index in indices:
        if by_index[index].data != tile_product(spec, index).astype("<i4").tobytes():
            return CapacityFinding(False, f"tile {index} differs from the recomputed product")
    passed = f"{len(indices)} tiles correct; answered in {elapsed_s:.2f} s"
    return CapacityFinding(True, f"{passed}, deadline {spec.deadline_s:.2f} s")


def _check_indices(spec: ChallengeSpec, indices: Sequence[int]) -> None:
    if not indices or len(set(indices)) != len(indices):
        raise ValidationError("indices", indices, "ask for at least one tile, each once")
    if any(not 0 <= i < spec.tile_count for i in indices):
        raise ValidationError("indices", indices, f"tiles are 0..{spec.tile_count - 1}")


def _proof_problem(spec: ChallengeSpec, root: bytes, opening: Opening) -> str:
    size = spec.tile * spec.tile * 4
    if len(opening.data) != size:
        return f"tile {opening.index} has {len(opening.data)} bytes, expected {size}"
    leaf = tile_leaf(spec, opening.index, opening.data)
    if not verify_proof(root, leaf, opening.index, spec.tile_count, opening.proof):
        return f"bad Merkle proof for tile {opening.index}"
    return ""


def prover_ops(spec: ChallengeSpec) -> int:
    """The node's work: the product's multiply-adds (2 ops each) plus input generation."""
    return 2 * spec.n * spec.n * spec.k + GENERATION_OPS_PER_ENTRY * 2 * spec.n * spec.k


def verifier_ops(spec: ChallengeSpec) -> int:
    """The checker's work: each opened tile's multiply-adds plus its rows and columns."""
    per_tile = 2 * spec.tile * spec.tile * spec.k
    per_tile += GENERATION_OPS_PER_ENTRY * 2 * spec.tile * spec.k
    return spec.opens * per_tile


def overclaim_tile_fraction(
    spec: ChallengeSpec,
    claimed_ops_per_s: float,
    policy: DeadlinePolicy,
    *,
    factor: float = 4.0,
    overhead_speedup: float = 1.0,
) -> float:
    """The largest share of tiles a node with ``claimed / factor`` of real rate finishes.

    In the cheater's favour: it runs the product at 100% of its real peak, spends the
    whole deadline computing (network time free), computes a square block of the tile
    grid (so it derives only sqrt(f) of A's rows and B's columns), and hashes only the
    tiles it computed (random leaves elsewhere). It generates and hashes at
    ``overhead_speedup`` times the policy's rates; ``math.inf`` makes both free.
    """
    _check_finite("factor", factor, allow_zero=False)
    compute = 2 * spec.n * spec.n * spec.k * factor / claimed_ops_per_s
    generation = 2 * spec.n * spec.k / (policy.generation_rate * overhead_speedup)
    hashing = spec.n * spec.n / (policy.hashing_rate * overhead_speedup)
    # time(f) = (compute + hashing) * f + generation * sqrt(f); solve time(f) = deadline.
    linear = compute + hashing
    root = (-generation + math.sqrt(generation**2 + 4 * linear * spec.deadline_s)) / (2 * linear)
    return min(1.0, root**2)


def overclaim_pass_probability(
    spec: ChallengeSpec,
    claimed_ops_per_s: float,
    policy: DeadlinePolicy,
    *,
    factor: float = 4.0,
    overhead_speedup: float = 1.0,
) -> float:
    """Upper bound on an over-claiming node's pass chance: ``f ** opens``."""
    fraction = overclaim_tile_fraction(
        spec, claimed_ops_per_s, policy, factor=factor, overhead_speedup=overhead_speedup
    )
    return float(fraction**spec.opens)
