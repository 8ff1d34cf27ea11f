"""Reputation: a moving score per node from its check verdicts.

A node has three components in [0, 1], one per kind of check: capacity, liveness and
delivery. Each verdict moves its component toward 1 (PASS) or 0 (FAIL) by an
exponentially weighted moving average::

    x' = x + a * (target - x)        target = 1 on PASS, 0 on FAIL
    a  = alpha[kind]                 on PASS
    a  = min(1, alpha[kind] * fail_multiplier)   on FAIL

so a failure moves the score several times as far as a pass, and an INCONCLUSIVE
verdict changes nothing. The score is the weighted geometric mean of the components::

    score = capacity ** w_c * liveness ** w_l * delivery ** w_d     (w_c + w_l + w_d = 1)

A geometric mean, unlike an average, cannot be carried by two good components when the
third is near zero: a node that fails every delivery check scores near zero however
well it answers pings. ``reward_weight`` is the score, or 0 below ``reward_floor``.

Defaults (``DEFAULT_PARAMS``): alpha capacity 0.10, liveness 0.05 (checked every epoch,
so each check weighs less), delivery 0.10; fail_multiplier 4; weights capacity 0.4,
liveness 0.3, delivery 0.3; reward_floor 0.2. A new node starts at ``PRIOR``, 0.5 in
every component (score 0.5). From there 14 liveness passes take liveness to 0.756, and
one failure then drops it to 0.605; 10 capacity passes take capacity to 0.826, and one
failure to 0.495.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from enum import StrEnum

from gpunet.errors import ValidationError
from gpunet.protocol.vote import Verdict


class CheckKind(StrEnum):
    """What a check tests."""

    LIVENESS = "liveness"
    CAPACITY = "capacity"
    DELIVERY = "delivery"


def check_kind(kind: str) -> CheckKind:
    """``kind`` as a CheckKind; a ValidationError for anything else."""
    try:
        return CheckKind(kind)
    except ValueError:
        raise ValidationError("kind", kind, "must be liveness, capacity or delivery") from None


def _unit(name: str, value: float, low_open: bool = False) -> None:
    low_ok = value > 0 if low_open else value >= 0
    ok = math.isfinite(value) and low_ok and value <= 1
    if not ok:
        bounds = "above 0 and at most 1" if low_open else "from 0 to 1"
        raise ValidationError(name, value, f"must be a number {bounds}")


@dataclass(frozen=True)
class ReputationParams:
    """How fast each component moves and how the score weighs them."""

    alpha_capacity: float = 0.10
    alpha_liveness: float = 0.05
    alpha_delivery: float = 0.10
    fail_multiplier: float = 4.0
    weight_capacity: float = 0.4
    weight_liveness: float = 0.3
    weight_delivery: float = 0.3
    reward_floor: float = 0.2

    def __post_init__(self) -> None:
        for name in ("alpha_capacity", "alpha_liveness", "alpha_delivery"):
            _unit(name, getattr(self, name), low_open=True)
        if not (math.isfinite(self.fail_multiplier) and self.fail_multiplier >= 1):
            raise ValidationError(
                "fail_multiplier", self.fail_multiplier, "must be 1 or more: a failure weighs more"
            )
        weights = (self.weight_capacity, self.weight_liveness, self.weight_delivery)
        for name in ("weight_capacity", "weight_liveness", "weight_delivery"):
            weight = getattr(self, name)
            if not (math.isfinite(weight) and weight >= 0):
                raise ValidationError(name, weight, "must be a number, 0 or more")
        if sum(weights) <= 0:
            raise ValidationError("weights", weights, "at least one weight must be above 0")
        _unit("reward_floor", self.reward_floor)

    def alpha(self, kind: CheckKind, verdict: Verdict) -> float:
        """The step a verdict of this kind takes toward its target."""
        base = {
            CheckKind.CAPACITY: self.alpha_capacity,
            CheckKind.LIVENESS: self.alpha_liveness,
            CheckKind.DELIVERY: self.alpha_delivery,
        }[check_kind(kind)]
        return min(1.0, base * self.fail_multiplier) if verdict == Verdict.FAIL else base


DEFAULT_PARAMS = ReputationParams()


@dataclass(frozen=True)
class Reputation:
    """A node's three reputation components, each in [0, 1]."""

    capacity: float
    liveness: float
    delivery: float

    def __post_init__(self) -> None:
        for item in fields(self):
            _unit(item.name, getattr(self, item.name))

    @property
    def score(self) -> float:
        """The weighted geometric mean of the components with the default weights."""
        return reputation_score(self, DEFAULT_PARAMS)


PRIOR = Reputation(capacity=0.5, liveness=0.5, delivery=0.5)


def reputation_score(rep: Reputation, params: ReputationParams = DEFAULT_PARAMS) -> float:
    """The weighted geometric mean of the components, in [0, 1]."""
    total = params.weight_capacity + params.weight_liveness + params.weight_delivery
    score = (
        math.pow(rep.capacity, params.weight_capacity / total)
        * math.pow(rep.liveness, params.weight_liveness / total)
        * math.pow(rep.delivery, params.weight_delivery / total)
    )
    return min(1.0, max(0.0, score))


def update_reputation(
    rep: Reputation,
    kind: CheckKind,
    verdict: Verdict,
    params: ReputationParams = DEFAULT_PARAMS,
) -> Reputation:
    """The reputation after one panel verdict; INCONCLUSIVE leaves it as it was."""
    if verdict == Verdict.INCONCLUSIVE:
        return rep
    if verdict not in (Verdict.PASS, Verdict.FAIL):
        raise ValidationError("verdict", verdict, "must be pass, fail or inconclusive")
    check = check_kind(kind)
    target = 1.0 if verdict == Verdict.PASS else 0.0
    current: float = getattr(rep, check.value)
    moved = current + params.alpha(check, verdict) * (target - current)
    return replace(rep, **{check.value: min(1.0, max(0.0, moved))})


def reward_weight(rep: Reputation, params: ReputationParams = DEFAULT_PARAMS) -> float:
    """What a node's epoch rewards are multiplied by: its score, or 0 below the floor."""
    score = reputation_score(rep, params)
    return score if score >= params.reward_floor else 0.0
