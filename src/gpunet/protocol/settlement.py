"""Epoch settlement: who earns what of an epoch's emission, in integer base units.

An epoch's budget (``gpunet.protocol.settlement_budget.epoch_budget``) plus the dust
carried from the previous epoch is paid in three parts, each split in proportion to a
weight per account:

- capacity: ``capacity_units * reputation_bps`` summed over the account's eligible
  nodes (online and passed their checks this epoch; an operator's nodes merge);
- delivery: verified GPU-seconds the account delivered;
- checkers: correct checks; a barred checker earns nothing.

Rounding: for a part with budget ``B`` and weights ``w_i`` summing to ``W``, account
``i`` earns ``B * w_i // W``, floored per account (not per node), so the part never pays
above ``B``; ``B`` minus what it paid is the part's dust. A part nobody earned
(``W == 0``) pays nothing and its whole budget is dust.

Penalties are charged to the account's reward of the same epoch first (capacity, then
delivery, then checkers); what they take is forfeited back to the pool, and what the
reward cannot cover becomes a ``StakeSlash`` for the chain. Client fees (already net of
the protocol fee) are passed through untouched as the leaf's ``fee``: they pay for work
done and are not emission.

Conservation, per part: ``paid + dust + forfeited == budget + carry``. Dust and
forfeits are ``Settlement.carry``, the next epoch's ``carry``, so the emission is
paid out on schedule give or take an epoch and never above it. Every result is the
same for any order of the inputs; leaves and slashes come sorted by account.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gpunet.errors import ValidationError
from gpunet.protocol.reward_tree import RewardLeaf, RewardTree, build_tree, normalize_account
from gpunet.protocol.settlement_budget import BPS, ZERO_BUDGET, EpochBudget

MAX_AMOUNT = 2**256 - 1
# No real weight comes near this; it only keeps products of hostile input bounded.
MAX_WEIGHT = 10**30
PARTS = ("capacity", "delivery", "checkers")


def _whole(field_name: str, value: object, high: int = MAX_AMOUNT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field_name, value, "must be an integer")
    if not 0 <= value <= high:
        raise ValidationError(field_name, value, f"must be between 0 and {high}")
    return value


def reputation_bps(weight: float) -> int:
    """A reputation reward weight in [0, 1] (``reputation.reward_weight``) as floored bps."""
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
        raise ValidationError("weight", weight, "must be a finite number")
    if not 0 <= weight <= 1:
        raise ValidationError("weight", weight, "must be between 0 and 1")
    return min(BPS, math.floor(weight * BPS))


@dataclass(frozen=True)
class NodeWork:
    """One node's epoch: its operator account, size, reputation and whether it earns."""

    account: str
    capacity_units: int
    reputation_bps: int
    eligible: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "account", normalize_account(self.account))
        _whole("capacity_units", self.capacity_units, MAX_WEIGHT)
        _whole("reputation_bps", self.reputation_bps, BPS)

    @property
    def weight(self) -> int:
        """Its capacity weight: ``capacity_units * reputation_bps``, or 0 if not eligible."""
        return self.capacity_units * self.reputation_bps if self.eligible else 0


@dataclass(frozen=True)
class CheckerWork:
    """One checker's epoch: its correct checks, and whether it is barred from rewards."""

    account: str
    correct_checks: int
    barred: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "account", normalize_account(self.account))
        _whole("correct_checks", self.correct_checks, MAX_WEIGHT)


@dataclass(frozen=True)
class StakeSlash:
    """What an account's penalties still owe after taking its epoch reward."""

    account: str
    amount: int


@dataclass(frozen=True)
class EpochWork:
    """Everything settlement needs about one epoch; amounts in base units.

    ``delivery_gpu_seconds``, ``fees`` and ``penalties`` map accounts to amounts;
    accounts are compared case-insensitively and may appear once in each.
    """

    epoch: int
    budget: EpochBudget
    carry: EpochBudget = ZERO_BUDGET
    nodes: Sequence[NodeWork] = ()
    delivery_gpu_seconds: Mapping[str, int] = field(default_factory=dict)
    checkers: Sequence[CheckerWork] = ()
    fees: Mapping[str, int] = field(default_factory=dict)
    penalties: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Settlement:
    """An epoch's outcome: the leaves to post, the slashes to send, and what carries on."""

    epoch: int
    leaves: tuple[RewardLeaf, ...]
    paid: EpochBudget
    dust: EpochBudget
    forfeited: EpochBudget
    slashes: tuple[StakeSlash, ...]

    @property
    def reward_total(self) -> int:
        """The sum of the leaves' rewards: ``post_epoch``'s ``reward_total``."""
        return self.paid.total

    @property
    def fee_total(self) -> int:
        """The sum of the leaves' fees: ``post_epoch``'s ``fee_total``."""
        return sum(leaf.fee for leaf in self.leaves)

    @property
    def carry(self) -> EpochBudget:
        """Dust plus forfeits: the next epoch's ``carry``."""
        return self.dust + self.forfeited

    def tree(self) -> RewardTree | None:
        """The epoch's reward tree; None when there is nothing to post."""
        return build_tree(self.epoch, self.leaves)


def _by_account(field_name: str, amounts: Mapping[str, int]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for account, amount in amounts.items():
        key = normalize_account(account)
        if key in merged:
            raise ValidationError(field_name, account, "appears twice (accounts ignore case)")
        merged[key] = _whole(f"{field_name}[{account}]", amount)
    return merged


def _capacity_weights(nodes: Iterable[NodeWork]) -> dict[str, int]:
    weights: dict[str, int] = {}
    for node in nodes:
        if node.eligible:
            weight = node.capacity_units * node.reputation_bps
            weights[node.account] = weights.get(node.account, 0) + weight
    return weights


def _checker_weights(checkers: Iterable[CheckerWork]) -> dict[str, int]:
    weights: dict[str, int] = {}
    for checker in checkers:
        if checker.account in weights:
            raise ValidationError("checkers", checker.account, "appears twice")
        weights[checker.account] = 0 if checker.barred else checker.correct_checks
    return weights


def split_budget(budget: int, weights: Mapping[str, int]) -> tuple[dict[str, int], int]:
    """Shares ``budget * w // W`` per account with a non-zero weight, and the dust left."""
    total = sum(weights.values())
    if total == 0:
        return {}, budget
    shares = {account: budget * w // total for account, w in weights.items() if w}
    return shares, budget - sum(shares.values())


def _charge(
    parts: list[dict[str, int]], penalties: Mapping[str, int]
) -> tuple[list[int], list[StakeSlash]]:
    """Take each penalty from the account's shares in part order; return forfeits, slashes."""
    forfeited = [0] * len(parts)
    slashes = []
    for account in sorted(penalties):
        owed = penalties[account]
        for index, shares in enumerate(parts):
            taken = min(owed, shares.get(account, 0))
            if taken:
                shares[account] -= taken
                forfeited[index] += taken
                owed -= taken
        if owed:
            slashes.append(StakeSlash(account, owed))
    return forfeited, slashes


def _leaves(parts: list[dict[str, int]], fees: Mapping[str, int]) -> tuple[RewardLeaf, ...]:
    capacity, delivery, checkers = parts
    leaves = []
    for account in sorted(set(fees).union(*parts)):
        reward = capacity.get(account, 0) + delivery.get(account, 0) + checkers.get(account, 0)
        fee = fees.get(account, 0)
        if reward or fee:
            leaves.append(RewardLeaf(account, reward, fee))
    return tuple(leaves)


def settle_epoch(work: EpochWork) -> Settlement:
    """Split the epoch's budget plus carry, charge penalties, and list the leaves."""
    _whole("epoch", work.epoch)
    available = work.budget + work.carry
    weights = (
        _capacity_weights(work.nodes),
        _by_account("delivery_gpu_seconds", work.delivery_gpu_seconds),
        _checker_weights(work.checkers),
    )
    parts: list[dict[str, int]] = []
    dust: list[int] = []
    for name, part_weights in zip(PARTS, weights, strict=True):
        shares, left = split_budget(getattr(available, name), part_weights)
        parts.append(shares)
        dust.append(left)
    forfeited, slashes = _charge(parts, _by_account("penalties", work.penalties))
    paid = [sum(shares.values()) for shares in parts]
    return Settlement(
        epoch=work.epoch,
        leaves=_leaves(parts, _by_account("fees", work.fees)),
        paid=EpochBudget(*paid),
        dust=EpochBudget(*dust),
        forfeited=EpochBudget(*forfeited),
        slashes=tuple(slashes),
    )
