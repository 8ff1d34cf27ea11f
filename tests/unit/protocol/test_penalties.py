from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpunet.errors import UnknownGpuModel, ValidationError
from gpunet.protocol.penalties import (
    K_TOKENS_PER_CAPACITY_UNIT,
    PenaltyCharge,
    PenaltyKind,
    charge_penalty,
    k_value,
    penalty_amount,
    penalty_for,
)
from gpunet.protocol.reputation import CheckKind
from gpunet.protocol.units import ONE_TOKEN
from gpunet.protocol.vote import Verdict

PASS, FAIL, INCONCLUSIVE = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE
H100_K = 10_000 * ONE_TOKEN
FRACTIONS = {
    PenaltyKind.DOWNTIME_DURING_LEASE: Fraction(1, 3),
    PenaltyKind.MALICIOUS: Fraction(1),
    PenaltyKind.BELOW_SPEC: Fraction(1),
}


def test_k_is_capacity_units_times_gpus_times_the_unit_value() -> None:
    assert K_TOKENS_PER_CAPACITY_UNIT == 100 * ONE_TOKEN
    assert k_value("H100", 1) == H100_K
    assert k_value("h100", 8) == 8 * H100_K
    assert k_value("RTX4090", 2) == 2 * 20 * 100 * ONE_TOKEN
    assert k_value("CPU", 0) == 100 * ONE_TOKEN


@pytest.mark.parametrize(
    ("model", "count"), [("CPU", 1), ("H100", 0), ("H100", 65), ("H100", True)]
)
def test_k_value_refuses_a_gpu_count_that_does_not_fit_the_model(model: str, count: int) -> None:
    with pytest.raises(ValidationError, match="gpu_count"):
        k_value(model, count)


def test_k_value_refuses_an_unknown_model() -> None:
    with pytest.raises(UnknownGpuModel):
        k_value("Voodoo2", 1)


def test_penalty_amounts_are_exact_for_an_h100() -> None:
    third = 3_333 * ONE_TOKEN + 333_333_333_333_333_333
    assert penalty_amount(PenaltyKind.DOWNTIME_DURING_LEASE, H100_K) == third
    assert penalty_amount(PenaltyKind.MALICIOUS, H100_K) == H100_K
    assert penalty_amount(PenaltyKind.BELOW_SPEC, H100_K) == H100_K
    assert penalty_amount(PenaltyKind.MALICIOUS, H100_K, coefficient_bps=2_500) == H100_K // 4
    assert penalty_amount("downtime_during_lease", 3, 10_000) == 1  # type: ignore[arg-type]


@given(
    kind=st.sampled_from(list(PenaltyKind)),
    k=st.integers(0, 10**30),
    coefficient=st.integers(0, 10_000),
)
def test_penalty_is_the_exact_fraction_rounded_down_and_never_above_k(
    kind: PenaltyKind, k: int, coefficient: int
) -> None:
    amount = penalty_amount(kind, k, coefficient)
    assert isinstance(amount, int)
    exact = k * Fraction(coefficient, 10_000) * FRACTIONS[kind]
    assert amount == int(exact) and exact - 1 < amount <= exact
    assert 0 <= amount <= k


@pytest.mark.parametrize(
    ("kind", "k", "coefficient"),
    [
        ("rude", 10, 10_000),
        (PenaltyKind.MALICIOUS, -1, 10_000),
        (PenaltyKind.MALICIOUS, 1.5, 10_000),
        (PenaltyKind.MALICIOUS, 10, 10_001),
        (PenaltyKind.MALICIOUS, 10, -1),
    ],
)
def test_penalty_amount_refuses_bad_input(kind: PenaltyKind, k: int, coefficient: int) -> None:
    with pytest.raises(ValidationError):
        penalty_amount(kind, k, coefficient)


@pytest.mark.parametrize(
    ("kind", "verdict", "lease", "penalty"),
    [
        (CheckKind.LIVENESS, FAIL, True, PenaltyKind.DOWNTIME_DURING_LEASE),
        (CheckKind.LIVENESS, FAIL, False, None),
        (CheckKind.CAPACITY, FAIL, False, PenaltyKind.BELOW_SPEC),
        (CheckKind.CAPACITY, FAIL, True, PenaltyKind.BELOW_SPEC),
        (CheckKind.DELIVERY, FAIL, False, PenaltyKind.MALICIOUS),
        (CheckKind.DELIVERY, FAIL, True, PenaltyKind.MALICIOUS),
        *[
            (k, v, lease, None)
            for k in CheckKind
            for v in (PASS, INCONCLUSIVE)
            for lease in (True, False)
        ],
    ],
)
def test_penalty_for_each_verdict(
    kind: CheckKind, verdict: Verdict, lease: bool, penalty: PenaltyKind | None
) -> None:
    assert penalty_for(kind, verdict, paid_lease_running=lease, reason="finding") == penalty


def test_a_penalty_must_say_why() -> None:
    with pytest.raises(ValidationError, match="say why"):
        penalty_for(CheckKind.DELIVERY, FAIL, paid_lease_running=False, reason="  ")
    with pytest.raises(ValidationError, match="500"):
        penalty_for(CheckKind.DELIVERY, FAIL, paid_lease_running=False, reason="x" * 501)
    # No penalty, nothing to explain.
    assert penalty_for(CheckKind.LIVENESS, FAIL, paid_lease_running=False, reason="") is None


def test_penalty_for_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValidationError, match="kind"):
        penalty_for("uptime", FAIL, paid_lease_running=True, reason="x")  # type: ignore[arg-type]


def test_rewards_are_taken_before_stake() -> None:
    assert charge_penalty(100, 30, 1000) == PenaltyCharge(30, 70, 0)
    assert charge_penalty(100, 300, 1000) == PenaltyCharge(100, 0, 0)
    assert charge_penalty(100, 30, 50) == PenaltyCharge(30, 50, 20)


@given(st.integers(0, 10**30), st.integers(0, 10**30), st.integers(0, 10**30))
def test_a_charge_adds_up_and_takes_no_more_than_is_there(
    amount: int, rewards: int, stake: int
) -> None:
    charge = charge_penalty(amount, rewards, stake)
    assert charge.from_rewards + charge.from_stake + charge.unpaid == amount
    assert 0 <= charge.from_rewards <= rewards
    assert 0 <= charge.from_stake <= stake
    assert charge.unpaid >= 0
    assert charge.unpaid == 0 or (charge.from_rewards, charge.from_stake) == (rewards, stake)


def test_a_charge_refuses_negative_amounts() -> None:
    with pytest.raises(ValidationError):
        charge_penalty(-1, 0, 0)
