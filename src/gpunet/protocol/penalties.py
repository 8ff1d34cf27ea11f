"""Penalties: what a failed check costs a node, in token base units.

A provider stakes K times a staking coefficient for each node (DESIGN.md section 4),
where K is the value of its GPU class. A failed check costs:

- downtime during a paid lease (a liveness FAIL while a buyer's lease runs):
  1/3 K times the coefficient;
- malicious behaviour (a delivery FAIL: wrong canary or replica output):
  1 K times the coefficient;
- delivering far below the claimed spec (a capacity FAIL): 1 K times the coefficient;
- being offline while idle: nothing, but the node earns no rewards that epoch.

Amounts are integers (18 decimals), rounded down, so a penalty never exceeds K times
the coefficient, and the coefficient is at most 1 (10,000 bps), so never exceeds K.
Unpaid rewards are taken before stake (``charge_penalty``).

K-value assumption: the network has no market-evaluated K table yet, so K is tied to
the catalogue's capacity units, which already weigh a GPU class's share of rewards:
K = ``K_TOKENS_PER_CAPACITY_UNIT`` (100 tokens) x capacity units x GPUs. An H100
(100 units) has K = 10,000 tokens; an 8 x H100 node 80,000; a CPU node (1 unit) 100.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gpunet.errors import ValidationError
from gpunet.protocol.catalogue import CPU_MODEL
from gpunet.protocol.catalogue import gpu_model as catalogue_model
from gpunet.protocol.reputation import CheckKind, check_kind
from gpunet.protocol.units import ONE_TOKEN
from gpunet.protocol.vote import Verdict

BPS = 10_000
K_TOKENS_PER_CAPACITY_UNIT: int = 100 * ONE_TOKEN
MAX_REASON_CHARS = 500
MAX_GPUS = 64


class PenaltyKind(StrEnum):
    """Why a node is penalized."""

    DOWNTIME_DURING_LEASE = "downtime_during_lease"
    MALICIOUS = "malicious"
    BELOW_SPEC = "below_spec"


# The fraction of K each penalty costs, as (numerator, denominator).
_K_FRACTION: dict[PenaltyKind, tuple[int, int]] = {
    PenaltyKind.DOWNTIME_DURING_LEASE: (1, 3),
    PenaltyKind.MALICIOUS: (1, 1),
    PenaltyKind.BELOW_SPEC: (1, 1),
}


def k_value(gpu_model: str, gpu_count: int) -> int:
    """K of a node in token base units: capacity units x GPUs x the per-unit value.

    A CPU node (gpu_count 0) counts as one unit of the CPU class.
    """
    model = catalogue_model(gpu_model)
    is_cpu = model.name == CPU_MODEL
    low, high = (0, 0) if is_cpu else (1, MAX_GPUS)
    if isinstance(gpu_count, bool) or not isinstance(gpu_count, int):
        raise ValidationError("gpu_count", gpu_count, "must be a whole number of GPUs")
    if not low <= gpu_count <= high:
        expected = "0 for a CPU node" if is_cpu else f"from 1 to {MAX_GPUS}"
        raise ValidationError("gpu_count", gpu_count, f"must be {expected}")
    return model.capacity_units * max(gpu_count, 1) * K_TOKENS_PER_CAPACITY_UNIT


def penalty_amount(kind: PenaltyKind, k_value: int, coefficient_bps: int = BPS) -> int:
    """The penalty in base units: K x coefficient x the kind's fraction, rounded down."""
    try:
        numerator, denominator = _K_FRACTION[PenaltyKind(kind)]
    except ValueError:
        kinds = ", ".join(PenaltyKind)
        raise ValidationError("kind", kind, f"must be one of {kinds}") from None
    _whole("k_value", k_value, 0, None)
    _whole("coefficient_bps", coefficient_bps, 0, BPS)
    return k_value * coefficient_bps * numerator // (BPS * denominator)


def _whole(name: str, value: int, low: int, high: int | None) -> None:
    whole = isinstance(value, int) and not isinstance(value, bool)
    if not whole or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise ValidationError(name, value, f"must be a whole number {bounds}")


def penalty_for(
    kind: CheckKind, verdict: Verdict, *, paid_lease_running: bool, reason: str
) -> PenaltyKind | None:
    """Which penalty, if any, a panel's verdict on a check carries.

    Liveness FAIL during a paid lease -> downtime; offline while idle -> none; capacity
    FAIL -> below spec; delivery FAIL -> malicious; PASS and INCONCLUSIVE -> none.
    ``reason`` is the finding's text, kept with the penalty: a penalty must say why.
    """
    check = check_kind(kind)
    if verdict != Verdict.FAIL:
        return None
    penalty: PenaltyKind | None
    if check is CheckKind.LIVENESS:
        penalty = PenaltyKind.DOWNTIME_DURING_LEASE if paid_lease_running else None
    elif check is CheckKind.CAPACITY:
        penalty = PenaltyKind.BELOW_SPEC
    else:
        penalty = PenaltyKind.MALICIOUS
    if penalty is not None:
        _check_reason(reason)
    return penalty


def _check_reason(reason: str) -> None:
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("reason", reason, "a penalty must say why; pass the finding")
    if len(reason) > MAX_REASON_CHARS:
        raise ValidationError("reason", reason, f"must be at most {MAX_REASON_CHARS} characters")


@dataclass(frozen=True)
class PenaltyCharge:
    """How one penalty is paid: from unpaid rewards first, then stake; the rest unpaid."""

    from_rewards: int
    from_stake: int
    unpaid: int


def charge_penalty(amount: int, rewards_available: int, stake_available: int) -> PenaltyCharge:
    """Split ``amount`` over unpaid rewards, then stake; never takes more than either holds.

    ``from_rewards + from_stake + unpaid == amount`` always.
    """
    _whole("amount", amount, 0, None)
    _whole("rewards_available", rewards_available, 0, None)
    _whole("stake_available", stake_available, 0, None)
    from_rewards = min(amount, rewards_available)
    from_stake = min(amount - from_rewards, stake_available)
    return PenaltyCharge(from_rewards, from_stake, amount - from_rewards - from_stake)
