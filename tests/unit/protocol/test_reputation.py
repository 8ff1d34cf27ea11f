from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpunet.errors import ValidationError
from gpunet.protocol.reputation import (
    DEFAULT_PARAMS,
    PRIOR,
    CheckKind,
    Reputation,
    ReputationParams,
    reputation_score,
    reward_weight,
    update_reputation,
)
from gpunet.protocol.vote import Verdict

PASS, FAIL, INCONCLUSIVE = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE
unit = st.floats(0.0, 1.0)
reputations = st.builds(Reputation, unit, unit, unit)
kinds = st.sampled_from(list(CheckKind))
verdicts = st.sampled_from([PASS, FAIL, INCONCLUSIVE])


def test_a_new_node_starts_at_a_moderate_score() -> None:
    assert Reputation(0.5, 0.5, 0.5) == PRIOR
    assert PRIOR.score == pytest.approx(0.5)


def test_the_documented_examples_hold() -> None:
    rep = PRIOR
    for _ in range(14):
        rep = update_reputation(rep, CheckKind.LIVENESS, PASS)
    assert rep.liveness == pytest.approx(0.756, abs=5e-4)
    assert update_reputation(rep, CheckKind.LIVENESS, FAIL).liveness == pytest.approx(
        0.605, abs=5e-4
    )
    rep = PRIOR
    for _ in range(10):
        rep = update_reputation(rep, CheckKind.CAPACITY, PASS)
    assert rep.capacity == pytest.approx(0.826, abs=5e-4)
    assert update_reputation(rep, CheckKind.CAPACITY, FAIL).capacity == pytest.approx(
        0.495, abs=5e-4
    )


@given(reputations, kinds)
def test_a_pass_moves_only_its_component_toward_one(rep: Reputation, kind: CheckKind) -> None:
    after = update_reputation(rep, kind, PASS)
    before_value, after_value = getattr(rep, kind.value), getattr(after, kind.value)
    assert before_value <= after_value <= 1.0
    if before_value < 0.999:
        assert after_value > before_value
    for other in set(CheckKind) - {kind}:
        assert getattr(after, other.value) == getattr(rep, other.value)


@given(st.floats(0.01, 0.99), kinds)
def test_a_failure_moves_further_than_a_pass(value: float, kind: CheckKind) -> None:
    rep = Reputation(value, value, value)
    gain = getattr(update_reputation(rep, kind, PASS), kind.value) - value
    loss = value - getattr(update_reputation(rep, kind, FAIL), kind.value)
    # Measured against the distance left to its target, a failure's step is 4x a pass's.
    assert loss / value == pytest.approx(4 * gain / (1 - value))
    if value >= 0.25:  # 4 x value > 1 - value: a failure is also the larger step
        assert loss > gain


def test_one_failure_undoes_several_passes() -> None:
    rep = Reputation(0.9, 0.9, 0.9)
    dropped = update_reputation(rep, CheckKind.DELIVERY, FAIL)
    recovered = dropped
    for _ in range(5):
        recovered = update_reputation(recovered, CheckKind.DELIVERY, PASS)
    assert recovered.delivery < rep.delivery


@given(reputations, st.lists(st.tuples(kinds, verdicts), max_size=60))
def test_reputation_stays_between_zero_and_one(
    rep: Reputation, history: list[tuple[CheckKind, Verdict]]
) -> None:
    for kind, verdict in history:
        rep = update_reputation(rep, kind, verdict)
        for value in (rep.capacity, rep.liveness, rep.delivery, rep.score, reward_weight(rep)):
            assert 0.0 <= value <= 1.0


@given(reputations, kinds)
def test_inconclusive_changes_nothing(rep: Reputation, kind: CheckKind) -> None:
    assert update_reputation(rep, kind, INCONCLUSIVE) == rep


def test_the_score_is_a_weighted_geometric_mean() -> None:
    rep = Reputation(capacity=0.8, liveness=0.5, delivery=0.9)
    assert rep.score == pytest.approx(0.8**0.4 * 0.5**0.3 * 0.9**0.3)
    assert Reputation(1.0, 1.0, 0.0).score == 0.0
    assert Reputation(1.0, 1.0, 1.0).score == 1.0


def test_weights_are_normalized() -> None:
    params = ReputationParams(weight_capacity=2, weight_liveness=0, weight_delivery=2)
    assert reputation_score(Reputation(0.25, 0.0, 1.0), params) == pytest.approx(0.5)


def test_reward_weight_is_the_score_above_the_floor() -> None:
    assert reward_weight(PRIOR) == pytest.approx(0.5)
    low = Reputation(0.1, 0.1, 0.1)
    assert low.score < DEFAULT_PARAMS.reward_floor
    assert reward_weight(low) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"alpha_liveness": 0.0},
        {"alpha_capacity": 1.5},
        {"fail_multiplier": 0.5},
        {"weight_delivery": -1.0},
        {"weight_capacity": 0.0, "weight_liveness": 0.0, "weight_delivery": 0.0},
        {"reward_floor": 2.0},
    ],
)
def test_params_refuse_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        ReputationParams(**kwargs)


@pytest.mark.parametrize("value", [-0.1, 1.1, float("nan")])
def test_components_must_be_between_zero_and_one(value: float) -> None:
    with pytest.raises(ValidationError):
        Reputation(value, 0.5, 0.5)


def test_an_unknown_kind_or_verdict_is_refused() -> None:
    with pytest.raises(ValidationError, match="liveness, capacity or delivery"):
        update_reputation(PRIOR, "uptime", PASS)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        update_reputation(PRIOR, CheckKind.LIVENESS, "maybe")  # type: ignore[arg-type]


def test_kinds_and_verdicts_given_as_text_work() -> None:
    after = update_reputation(PRIOR, "delivery", "fail")  # type: ignore[arg-type]
    assert after.delivery == pytest.approx(0.3)
