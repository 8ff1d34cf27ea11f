# pragma version ~=0.4.3
"""
@title gpunet vesting
@custom:contract-name Vesting
@license Apache-2.0
@notice Holds the vesting pools' tokens and pays each schedule's beneficiary what
        has unlocked. A schedule unlocks `tge_bps` of its total at the TGE, each
        step's share `step_times[i]` seconds after the TGE, and the linear
        remainder evenly over `linear_s` seconds once `cliff_s` seconds have
        passed (all of it at the cliff when `linear_s` is 0). These are the
        semantics of `gpunet.protocol.vesting` measured in seconds: with months of
        2_629_800 s the amounts agree with the protocol at every month and day start.
        Every amount rounds down; fixed parts are floored on their cumulative share
        and the linear part is what they leave, so a schedule ends at `total` exactly.
        Anyone may trigger a release; tokens only ever go to the beneficiary.
"""

from ethereum.ercs import IERC20
from snekmate.auth import access_control
from snekmate.utils import math

initializes: access_control

exports: access_control.__interface__

BPS: constant(uint256) = 10_000
MAX_STEPS: constant(uint256) = 8
MAX_IDS: constant(uint256) = 64


struct Schedule:
    beneficiary: address
    total: uint256
    released: uint256
    tge_bps: uint256
    cliff_s: uint256
    linear_s: uint256


event ScheduleAdded:
    id: indexed(uint256)
    beneficiary: indexed(address)
    total: uint256
    tge_bps: uint256
    cliff_s: uint256
    linear_s: uint256
    step_times: DynArray[uint256, MAX_STEPS]
    step_bps: DynArray[uint256, MAX_STEPS]


event Released:
    id: indexed(uint256)
    beneficiary: indexed(address)
    amount: uint256


token: public(immutable(address))
tge: public(immutable(uint256))
schedules: public(HashMap[uint256, Schedule])
schedule_count: public(uint256)
unreleased: public(uint256)
_step_times: HashMap[uint256, DynArray[uint256, MAX_STEPS]]
_step_bps: HashMap[uint256, DynArray[uint256, MAX_STEPS]]
_ids: HashMap[address, DynArray[uint256, MAX_IDS]]


@deploy
def __init__(token_: address, admin: address, tge_: uint256):
    """
    @dev Grants `admin` the DEFAULT_ADMIN_ROLE; the deployer keeps no role unless
         it is the admin.
    @param token_ The vested token (transferred here at genesis).
    @param admin The account that may add schedules.
    @param tge_ The token generation event, a unix time in seconds.
    """
    assert token_ != empty(address), "vesting: zero token"
    assert admin != empty(address), "vesting: zero admin"
    access_control.__init__()
    if admin != msg.sender:
        access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin)
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    token = token_
    tge = tge_


@external
def add_schedule(
    beneficiary: address,
    total: uint256,
    tge_bps: uint256,
    cliff_s: uint256,
    linear_s: uint256,
    step_times: DynArray[uint256, MAX_STEPS],
    step_bps: DynArray[uint256, MAX_STEPS],
) -> uint256:
    """
    @dev Adds a schedule over `total` of the tokens this contract holds and has not
         yet promised to another schedule. Only DEFAULT_ADMIN_ROLE.
    @param beneficiary Receives every release.
    @param total Base units vested by this schedule.
    @param tge_bps Share unlocked at the TGE, in basis points.
    @param cliff_s Seconds after the TGE before the linear part starts.
    @param linear_s Seconds over which the linear remainder unlocks.
    @param step_times Seconds after the TGE of each step, strictly increasing, > 0.
    @param step_bps Share unlocked at each step, in basis points.
    @return uint256 The new schedule's id (ids count from 0).
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert beneficiary != empty(address), "vesting: zero beneficiary"
    assert total != 0, "vesting: zero total"
    self._check_shares(tge_bps, step_times, step_bps)
    assert self._unallocated() >= total, "vesting: not enough unallocated tokens"
    assert len(self._ids[beneficiary]) < MAX_IDS, "vesting: too many schedules"

    id: uint256 = self.schedule_count
    self.schedule_count = id + 1
    self.schedules[id] = Schedule(
        beneficiary=beneficiary,
        total=total,
        released=0,
        tge_bps=tge_bps,
        cliff_s=cliff_s,
        linear_s=linear_s,
    )
    self._step_times[id] = step_times
    self._step_bps[id] = step_bps
    self._ids[beneficiary].append(id)
    self.unreleased += total
    log ScheduleAdded(
        id=id,
        beneficiary=beneficiary,
        total=total,
        tge_bps=tge_bps,
        cliff_s=cliff_s,
        linear_s=linear_s,
        step_times=step_times,
        step_bps=step_bps,
    )
    return id


@external
def release(id: uint256) -> uint256:
    """
    @dev Pays the schedule's beneficiary everything unlocked and not yet paid.
         Anyone may call it; the tokens only go to the beneficiary.
    @param id The schedule id.
    @return uint256 The base units paid.
    """
    amount: uint256 = self._releasable(id)
    assert amount != 0, "vesting: nothing releasable"
    beneficiary: address = self.schedules[id].beneficiary
    self.schedules[id].released += amount
    self.unreleased -= amount
    assert extcall IERC20(token).transfer(beneficiary, amount, default_return_value=True), (
        "vesting: transfer failed"
    )
    log Released(id=id, beneficiary=beneficiary, amount=amount)
    return amount


@external
@view
def vested(id: uint256, at: uint256) -> uint256:
    """
    @dev Base units of the schedule unlocked at unix time `at` (released or not).
    @param id The schedule id.
    @param at A unix time in seconds.
    @return uint256 The unlocked amount, from 0 up to the schedule's total.
    """
    self._check_id(id)
    return self._vested(id, at)


@external
@view
def releasable(id: uint256) -> uint256:
    """
    @dev Base units `release(id)` would pay now.
    @param id The schedule id.
    @return uint256 Unlocked minus already released.
    """
    return self._releasable(id)


@external
@view
def steps(id: uint256) -> (DynArray[uint256, MAX_STEPS], DynArray[uint256, MAX_STEPS]):
    """
    @dev The schedule's steps, which the `schedules` getter cannot return.
    @param id The schedule id.
    @return The step times (seconds after the TGE) and their shares (basis points).
    """
    self._check_id(id)
    return self._step_times[id], self._step_bps[id]


@external
@view
def ids_of(beneficiary: address) -> DynArray[uint256, MAX_IDS]:
    """
    @dev The ids of every schedule paying `beneficiary`, oldest first.
    @param beneficiary The account.
    @return DynArray The schedule ids.
    """
    return self._ids[beneficiary]


@external
@view
def unallocated() -> uint256:
    """
    @dev Tokens held here that no schedule has been promised: the room for new ones.
    @return uint256 Balance minus the unreleased totals of all schedules.
    """
    return self._unallocated()


@internal
@view
def _check_id(id: uint256):
    assert id < self.schedule_count, "vesting: unknown schedule"


@internal
@view
def _check_shares(
    tge_bps: uint256, step_times: DynArray[uint256, MAX_STEPS], step_bps: DynArray[uint256, MAX_STEPS]
):
    assert len(step_times) == len(step_bps), "vesting: steps and shares differ"
    shares: uint256 = tge_bps
    previous: uint256 = 0
    for i: uint256 in range(MAX_STEPS):
        if i >= len(step_times):
            break
        # A step at time 0 would be a second TGE share; tge_bps already says that.
        assert step_times[i] > previous, "vesting: steps out of order"
        assert step_bps[i] != 0, "vesting: zero step share"
        previous = step_times[i]
        shares += step_bps[i]
    assert shares <= BPS, "vesting: shares above 100%"


@internal
@view
def _unallocated() -> uint256:
    # Tokens sent here by mistake beyond the promised totals only add room.
    return staticcall IERC20(token).balanceOf(self) - self.unreleased


@internal
@view
def _releasable(id: uint256) -> uint256:
    self._check_id(id)
    return self._vested(id, block.timestamp) - self.schedules[id].released


@internal
@view
def _vested(id: uint256, at: uint256) -> uint256:
    if at < tge:
        return 0
    s: Schedule = self.schedules[id]
    since: uint256 = at - tge
    fixed_bps: uint256 = s.tge_bps
    reached_bps: uint256 = s.tge_bps
    times: DynArray[uint256, MAX_STEPS] = self._step_times[id]
    shares: DynArray[uint256, MAX_STEPS] = self._step_bps[id]
    for i: uint256 in range(MAX_STEPS):
        if i >= len(times):
            break
        fixed_bps += shares[i]
        if since >= times[i]:
            reached_bps += shares[i]
    fixed: uint256 = math._mul_div(s.total, reached_bps, BPS, False)
    remainder: uint256 = s.total - math._mul_div(s.total, fixed_bps, BPS, False)
    return fixed + self._linear(remainder, since, s.cliff_s, s.linear_s)


@internal
@pure
def _linear(remainder: uint256, since: uint256, cliff_s: uint256, linear_s: uint256) -> uint256:
    if since < cliff_s:
        return 0
    # A zero-length linear period is a plain cliff: everything once it has passed.
    if linear_s == 0:
        return remainder
    elapsed: uint256 = min(since - cliff_s, linear_s)
    return math._mul_div(remainder, elapsed, linear_s, False)
