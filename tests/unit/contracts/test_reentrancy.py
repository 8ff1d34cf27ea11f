"""Reentrancy: a hostile ERC-20 calls back into the contract that is paying it out.

``HOSTILE_TOKEN`` is a plain ERC-20 that, once armed, makes one call of its choice from
inside its own ``transfer``/``transferFrom`` and records whether that call went through
and what it reverted with. Because a payout is sent to the account being paid, the token
contract is also the account (it locks, deposits or owns the position) wherever the
re-entered function pays only ``msg.sender``; it acts through ``act``.

The inner call's failure is swallowed, so the outer payout completes and the tests can
check both that the reentrant call was refused and that nothing was paid twice.
Staking and Escrow refuse it with their ``@nonreentrant`` lock (a revert without a
reason). RewardDistributor has no lock: it writes its state before paying, so the same
calls fail on that state ("already claimed", "nothing releasable").
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import boa
import pytest

from gpunet.protocol.reward_tree import RewardLeaf, RewardTree
from gpunet.protocol.units import ONE_TOKEN

from .conftest import DAY_S, load, warp
from .staking_fixtures import MIN_LOCK_S, StakingSystem, build_system

pytestmark = pytest.mark.slow

HOSTILE_TOKEN = """
# pragma version ~=0.4.3

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
totalSupply: public(uint256)

target: public(address)
payload: public(Bytes[1024])
armed: public(bool)
strict: public(bool)
reentry_tried: public(bool)
reentry_ok: public(bool)
reentry_revert: public(Bytes[256])

@deploy
def __init__(holder: address, supply: uint256):
    self.balanceOf[holder] = supply
    self.totalSupply = supply

@external
def arm(target: address, payload: Bytes[1024], strict: bool):
    self.target = target
    self.payload = payload
    self.strict = strict
    self.armed = True

@external
def act(target: address, data: Bytes[1024]):
    raw_call(target, data)

@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True

@external
def transfer(to: address, amount: uint256) -> bool:
    self._move(msg.sender, to, amount)
    self._reenter()
    return True

@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    self.allowance[owner][msg.sender] -= amount
    self._move(owner, to, amount)
    self._reenter()
    return True

@internal
def _move(owner: address, to: address, amount: uint256):
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount

@internal
def _reenter():
    if not self.armed:
        return
    self.armed = False
    self.reentry_tried = True
    if self.strict:
        raw_call(self.target, self.payload)
        return
    ok: bool = False
    response: Bytes[256] = b""
    ok, response = raw_call(self.target, self.payload, max_outsize=256, revert_on_failure=False)
    self.reentry_ok = ok
    self.reentry_revert = response
"""

SUPPLY = 10**30
LOCKED = 1_000 * ONE_TOKEN
STREAM = 7 * DAY_S * 10**12
ERROR_SELECTOR = bytes.fromhex("08c379a0")


@cache
def _hostile_deployer() -> Any:
    return boa.loads_partial(HOSTILE_TOKEN, name="HostileToken")


def deploy_hostile(holder: str) -> Any:
    """A hostile token with its whole supply at ``holder``."""
    return _hostile_deployer().deploy(holder, SUPPLY)


def act(hostile: Any, contract: Any, function: str, *args: Any) -> None:
    """Call ``contract.function(*args)`` with the hostile token as the sender."""
    hostile.act(contract.address, getattr(contract, function).prepare_calldata(*args))


def arm(hostile: Any, contract: Any, function: str, *args: Any, strict: bool = False) -> None:
    """Make the token's next transfer call ``contract.function(*args)``; ``strict``: let
    that call's revert fail the transfer instead of recording it."""
    calldata = getattr(contract, function).prepare_calldata(*args)
    hostile.arm(contract.address, calldata, strict)


def assert_refused(hostile: Any, reason: str | None = None) -> None:
    """The armed call was made and reverted: by the lock (no reason) or with ``reason``."""
    assert hostile.reentry_tried()
    assert not hostile.reentry_ok()
    revert = hostile.reentry_revert()
    if reason is None:
        assert revert == b""
    else:
        assert revert.startswith(ERROR_SELECTOR)
        assert reason.encode() in revert


# ---------------------------------------------------------------- staking
@pytest.fixture
def staking_hostile() -> tuple[StakingSystem, Any, int]:
    """Staking where the hostile token is a funded reward stream and is itself the only
    locker (its lock has ended and its whole stream has accrued); returns the lock id."""
    s = build_system(n_users=0)
    hostile = deploy_hostile(s.admin)
    s.staking.add_reward_token(hostile.address, sender=s.admin)
    hostile.approve(s.staking.address, STREAM, sender=s.admin)
    s.token.transfer(hostile.address, LOCKED, sender=s.admin)
    act(hostile, s.token, "approve", s.staking.address, LOCKED)
    act(hostile, s.staking, "lock", LOCKED, MIN_LOCK_S)
    s.staking.fund(hostile.address, STREAM, 7 * DAY_S, sender=s.admin)
    boa.env.time_travel(seconds=MIN_LOCK_S)
    return s, hostile, s.staking.lock_ids(hostile.address)[0]


INNER_STAKING_CALLS = ["claim_rewards", "claim_all", "unlock"]


def _inner_args(inner: str, hostile: Any, lock_id: int) -> tuple[Any, ...]:
    return {"claim_rewards": (hostile.address,), "claim_all": (), "unlock": (lock_id,)}[inner]


@pytest.mark.parametrize("outer", ["claim_rewards", "claim_all"])
@pytest.mark.parametrize("inner", INNER_STAKING_CALLS)
def test_staking_reward_payout_cannot_be_reentered(
    staking_hostile: tuple[StakingSystem, Any, int], outer: str, inner: str
) -> None:
    """The reward transfer re-enters a claim or the ended lock's unlock: the lock refuses
    it, the claim pays what was earned exactly once, and the lock stays as it was."""
    s, hostile, lock_id = staking_hostile
    owed = s.staking.earned(hostile.address, hostile.address)
    assert owed > 0
    held = hostile.balanceOf(s.staking.address)
    arm(hostile, s.staking, inner, *_inner_args(inner, hostile, lock_id))
    outer_args = (hostile.address,) if outer == "claim_rewards" else ()
    act(hostile, s.staking, outer, *outer_args)

    assert_refused(hostile)
    assert hostile.balanceOf(hostile.address) == owed
    assert hostile.balanceOf(s.staking.address) == held - owed
    assert s.staking.earned(hostile.address, hostile.address) == 0
    # The lock is untouched: the refused unlock returned nothing.
    assert s.staking.locks(lock_id).amount == LOCKED
    assert s.token.balanceOf(hostile.address) == 0
    assert s.staking.total_locked() == LOCKED


def test_staking_claim_reverts_whole_when_the_token_insists_on_reentering(
    staking_hostile: tuple[StakingSystem, Any, int],
) -> None:
    """A token that lets the refused inner call's revert through fails the outer claim,
    which then pays nothing; the rewards stay owed."""
    s, hostile, _ = staking_hostile
    owed = s.staking.earned(hostile.address, hostile.address)
    arm(hostile, s.staking, "claim_rewards", hostile.address, strict=True)
    with pytest.raises(boa.BoaError):
        act(hostile, s.staking, "claim_rewards", hostile.address)
    assert s.staking.earned(hostile.address, hostile.address) == owed
    assert hostile.balanceOf(hostile.address) == 0


# ---------------------------------------------------------------- reward distributor
def deploy_distributor_with_hostile_fees(reward_vest_s: int, fee_vest_s: int) -> dict[str, Any]:
    """A distributor whose fee token is hostile (the constructor takes any fee token);
    the admin is also settler and escrow and holds the hostile supply."""
    admin = str(boa.env.generate_address("admin"))
    token = load("Token", "gpunet", "GPU", [admin], [SUPPLY])
    hostile = deploy_hostile(admin)
    args = (reward_vest_s, fee_vest_s, 5_000, 90 * DAY_S)
    distributor = load("RewardDistributor", token.address, hostile.address, admin, 0, *args)
    with boa.env.prank(admin):
        token.transfer(distributor.address, 10**9 * ONE_TOKEN)
        distributor.grantRole(distributor.SETTLER_ROLE(), admin)
        distributor.set_escrow(admin)
        distributor.set_emission_caps(0, [10**9 * ONE_TOKEN])
    return {"admin": admin, "token": token, "hostile": hostile, "distributor": distributor}


def post_leaves(
    d: dict[str, Any], epoch: int, leaves: Sequence[tuple[str, int, int]]
) -> RewardTree:
    """Fund the leaves' fees in the hostile token and post the epoch."""
    tree = RewardTree(epoch, [RewardLeaf(a, r, f) for a, r, f in leaves])
    fees = sum(f for _, _, f in leaves)
    with boa.env.prank(d["admin"]):
        d["hostile"].transfer(d["distributor"].address, fees)
        d["distributor"].fund_fees(epoch, fees)
        d["distributor"].post_epoch(epoch, tree.root, sum(r for _, r, _ in leaves), fees)
    return tree


def test_distributor_fee_payout_cannot_claim_the_same_leaf_again(alice: str, bob: str) -> None:
    """Paid directly (nothing vests), the fee transfer re-enters ``claim`` with alice's
    leaf: the claimed bit is already set, so bob's share of the epoch stays his."""
    d = deploy_distributor_with_hostile_fees(0, 0)
    distributor, token, hostile = d["distributor"], d["token"], d["hostile"]
    reward, fee = 5 * ONE_TOKEN, 7_000
    tree = post_leaves(d, 1, [(alice, reward, fee), (bob, reward, fee)])
    pool = distributor.pool_balance()
    arm(hostile, distributor, "claim", 1, alice, reward, fee, tree.proof(alice))
    assert distributor.claim(1, alice, reward, fee, tree.proof(alice)) == 0

    assert_refused(hostile, "distributor: already claimed")
    assert (token.balanceOf(alice), hostile.balanceOf(alice)) == (reward, fee)
    assert distributor.reward_liabilities() == reward
    assert distributor.pool_balance() == pool
    distributor.claim(1, bob, reward, fee, tree.proof(bob))
    assert (token.balanceOf(bob), hostile.balanceOf(bob)) == (reward, fee)
    assert hostile.balanceOf(distributor.address) == 0


@pytest.mark.parametrize(
    ("inner", "reason"),
    [("release", "distributor: nothing releasable"), ("release_early", None)],
)
def test_distributor_fee_release_cannot_pay_a_position_twice(
    inner: str, reason: str | None
) -> None:
    """The position's owner is the hostile token; its fee (unlocked after 7 days) is
    paid by ``release`` after the vested reward, and the transfer re-enters the
    position. ``release`` finds nothing left; ``release_early`` (not locked out: the
    distributor has no reentrancy lock) pays only the still-locked rest, less the
    penalty, so the position never pays more than its reward and fee."""
    d = deploy_distributor_with_hostile_fees(30 * DAY_S, 7 * DAY_S)
    distributor, token, hostile = d["distributor"], d["token"], d["hostile"]
    reward, fee = 30 * ONE_TOKEN, 9_000
    tree = post_leaves(d, 1, [(hostile.address, reward, fee), (d["admin"], 1, 0)])
    position = distributor.claim(1, hostile.address, reward, fee, tree.proof(hostile.address))
    start = distributor.positions(position).start
    warp(start + 10 * DAY_S)
    arm(hostile, distributor, inner, position)
    act(hostile, distributor, "release", position)

    vested = reward // 3
    fee_paid = hostile.balanceOf(hostile.address)
    assert fee_paid == fee
    if reason is not None:
        assert_refused(hostile, reason)
        assert token.balanceOf(hostile.address) == vested
        assert distributor.positions(position).reward_released == vested
        return
    assert hostile.reentry_ok()
    penalty = (reward - vested) * 5_000 // 10_000
    assert token.balanceOf(hostile.address) == reward - penalty
    assert distributor.recycled() == penalty
    assert distributor.position_ids(hostile.address) == []


# ---------------------------------------------------------------- escrow
def test_escrow_withdraw_cannot_be_reentered(alice: str, admin: str, treasury: str) -> None:
    """The hostile payment token is also a client; withdrawing half its balance
    re-enters ``withdraw`` for the other half, which the lock refuses."""
    hostile = deploy_hostile(admin)
    distributor = str(boa.env.generate_address("distributor"))
    escrow = load("Escrow", hostile.address, admin, treasury, distributor, 1_000)
    deposit = 1_000
    with boa.env.prank(admin):
        hostile.transfer(hostile.address, deposit)
        hostile.transfer(alice, deposit)
    act(hostile, hostile, "approve", escrow.address, deposit)
    act(hostile, escrow, "deposit", deposit)
    with boa.env.prank(alice):
        hostile.approve(escrow.address, deposit)
        escrow.deposit(deposit)
    arm(hostile, escrow, "withdraw", deposit // 2)
    act(hostile, escrow, "withdraw", deposit // 2)

    assert_refused(hostile)
    assert hostile.balanceOf(hostile.address) == deposit // 2
    assert escrow.balance_of(hostile.address) == deposit // 2
    assert escrow.total_deposits() == deposit + deposit // 2
    assert hostile.balanceOf(escrow.address) == escrow.total_deposits()
