# pragma version ~=0.4.3
"""
@title gpunet staking
@custom:contract-name Staking
@license Apache-2.0
@notice Node collateral and holder locks of the gpunet token, and any number (up
        to 8) of reward streams shared pro rata to lock weight.

        Collateral is what a node operator stakes for its GPU class; it carries no
        reward weight and leaves through a delayed unstake (180 days by default) so
        that a slash can still reach it. Holder locks carry a weight of
        `amount * multiplier_bps(duration) // 10000`, from 1x at `min_lock_s` up to
        `max_multiplier_bps` at `max_lock_s`.

        Rewards follow Synthetix StakingRewards with one accumulator per reward
        token: `per_weight_stored` grows by `elapsed * rate * 1e36 // total_weight`
        and each account keeps the accumulator value it was last paid at. Time that
        passes while `total_weight == 0`, and the remainder of `amount // duration`,
        is kept as `idle_rewards` and rolls into the next `fund` of that token.
        Rounding only ever favours the contract: each accumulator update floors
        away less than `total_weight / 1e36` base units and each account settlement
        less than one, so what is never paid is below the sum of those terms (the
        dust bound in docs/contracts.md).

        Slashing takes first from the account's unreleased rewards in the reward
        distributor, then from collateral, then from the pending unstake, then from
        the account's locks oldest first, and sends everything to `slash_sink`.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC165
from snekmate.auth import access_control
from snekmate.auth.interfaces import IAccessControl

implements: IERC165
implements: IAccessControl

initializes: access_control

exports: access_control.__interface__


interface IRewardDistributor:
    def slash_pending(account: address, amount: uint256) -> uint256: nonpayable


struct Lock:
    owner: address
    amount: uint256
    weight: uint256
    end: uint256


# A lock in two slots instead of four: `head` = owner << 96 | end, `size` = amount << 128
# | weight. It saves two fresh storage writes (about 44,000 gas) on every lock.
struct PackedLock:
    head: uint256
    size: uint256


struct RewardData:
    rate: uint256
    period_end: uint256
    per_weight_stored: uint256
    updated_at: uint256


struct PendingUnstake:
    amount: uint256
    ready_at: uint256


event RequirementSet:
    gpu_class: indexed(bytes32)
    amount: uint256

event CollateralStaked:
    account: indexed(address)
    amount: uint256

event UnstakeRequested:
    account: indexed(address)
    amount: uint256
    pending: uint256
    ready_at: uint256

event UnstakeWithdrawn:
    account: indexed(address)
    amount: uint256

event Locked:
    account: indexed(address)
    lock_id: indexed(uint256)
    amount: uint256
    weight: uint256
    end: uint256

event Unlocked:
    account: indexed(address)
    lock_id: indexed(uint256)
    amount: uint256

event RewardTokenAdded:
    token: indexed(address)

event Funded:
    token: indexed(address)
    funder: indexed(address)
    amount: uint256
    rate: uint256
    period_end: uint256

event RewardPaid:
    account: indexed(address)
    token: indexed(address)
    amount: uint256

event LockSlashed:
    account: indexed(address)
    lock_id: indexed(uint256)
    amount: uint256

event Slashed:
    account: indexed(address)
    requested: uint256
    from_rewards: uint256
    from_stake: uint256
    reason: String[64]


SLASHER_ROLE: public(constant(bytes32)) = keccak256("SLASHER_ROLE")
BPS: constant(uint256) = 10_000
# 1e36 rather than Synthetix's 1e18: a 6-decimal partner token streamed to a weight
# of 1e29 would otherwise floor to nothing between two updates.
PRECISION: constant(uint256) = 10**36
MAX_REWARD_TOKENS: constant(uint256) = 8
MAX_LOCKS: constant(uint256) = 128
MAX_LOCK_END: constant(uint256) = 2**96 - 1

token: public(immutable(IERC20))
distributor: public(immutable(IRewardDistributor))
slash_sink: public(immutable(address))
unstake_delay_s: public(immutable(uint256))
min_lock_s: public(immutable(uint256))
max_lock_s: public(immutable(uint256))
max_multiplier_bps: public(immutable(uint256))

required_collateral: public(HashMap[bytes32, uint256])
collateral_of: public(HashMap[address, uint256])
pending_unstake: public(HashMap[address, PendingUnstake])

next_lock_id: public(uint256)
weight_of: public(HashMap[address, uint256])
total_weight: public(uint256)

total_collateral: public(uint256)
total_pending_unstake: public(uint256)
total_locked: public(uint256)

reward_data: public(HashMap[address, RewardData])
idle_rewards: public(HashMap[address, uint256])
is_reward_token: public(HashMap[address, bool])

_locks: HashMap[uint256, PackedLock]
_lock_ids: HashMap[address, DynArray[uint256, MAX_LOCKS]]
_reward_tokens: DynArray[address, MAX_REWARD_TOKENS]
_paid_per_weight: HashMap[address, HashMap[address, uint256]]
_owed: HashMap[address, HashMap[address, uint256]]


@deploy
def __init__(
    token_: address,
    admin: address,
    distributor_: address,
    slash_sink_: address,
    unstake_delay_s_: uint256,
    min_lock_s_: uint256,
    max_lock_s_: uint256,
    max_multiplier_bps_: uint256,
):
    """
    @dev Grants DEFAULT_ADMIN_ROLE to `admin` only (the deployer keeps no role).
    @param token_ The staked token (also allowed as a reward token).
    @param admin The account that sets requirements, reward tokens and roles.
    @param distributor_ The RewardDistributor asked first on a slash; the zero
           address means there are no distributor rewards to slash.
    @param slash_sink_ Receives every slashed token (treasury or 0x...dEaD).
    @param unstake_delay_s_ Seconds between request_unstake and withdraw_unstaked.
    @param min_lock_s_ Shortest lock (multiplier 1x).
    @param max_lock_s_ Longest lock (multiplier max_multiplier_bps_).
    @param max_multiplier_bps_ The multiplier of a max-length lock, at least 10000.
    """
    assert token_ != empty(address), "staking: zero address"
    assert admin != empty(address), "staking: zero address"
    assert slash_sink_ != empty(address), "staking: zero address"
    assert max_lock_s_ > min_lock_s_, "staking: invalid lock range"
    assert max_lock_s_ <= 2**64, "staking: invalid lock range"
    assert max_multiplier_bps_ >= BPS, "staking: multiplier below 1x"
    access_control.__init__()
    access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin)
    if admin != msg.sender:
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    token = IERC20(token_)
    distributor = IRewardDistributor(distributor_)
    slash_sink = slash_sink_
    unstake_delay_s = unstake_delay_s_
    min_lock_s = min_lock_s_
    max_lock_s = max_lock_s_
    max_multiplier_bps = max_multiplier_bps_


# Node collateral


@external
def set_requirement(gpu_class: bytes32, amount: uint256):
    """
    @dev Sets the collateral a node of `gpu_class` must hold (DEFAULT_ADMIN_ROLE).
    @param gpu_class keccak256 of the GPU model name as in the catalogue.
    @param amount Base units; 0 means the class is not accepted.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self.required_collateral[gpu_class] = amount
    log RequirementSet(gpu_class=gpu_class, amount=amount)


@external
@view
def is_collateralized(account: address, gpu_class: bytes32) -> bool:
    """
    @dev True when the class has a requirement and the account's collateral meets it;
         a class without a requirement fails closed.
    """
    required: uint256 = self.required_collateral[gpu_class]
    return required > 0 and self.collateral_of[account] >= required


@external
@nonreentrant
def stake_collateral(amount: uint256):
    """
    @dev Adds `amount` (transferFrom the caller) to the caller's collateral.
    """
    assert amount > 0, "staking: zero amount"
    self._pull(amount)
    self.collateral_of[msg.sender] += amount
    self.total_collateral += amount
    log CollateralStaked(account=msg.sender, amount=amount)


@external
def request_unstake(amount: uint256):
    """
    @dev Moves `amount` of collateral to the pending unstake. A second request adds
         to the pending amount and restarts the delay for all of it, so collateral
         always stays slashable for `unstake_delay_s` after its last request.
    """
    assert amount > 0, "staking: zero amount"
    assert self.collateral_of[msg.sender] >= amount, "staking: not enough collateral"
    self.collateral_of[msg.sender] -= amount
    self.total_collateral -= amount
    pending: PendingUnstake = self.pending_unstake[msg.sender]
    pending.amount += amount
    pending.ready_at = block.timestamp + unstake_delay_s
    self.pending_unstake[msg.sender] = pending
    self.total_pending_unstake += amount
    log UnstakeRequested(
        account=msg.sender, amount=amount, pending=pending.amount, ready_at=pending.ready_at
    )


@external
@nonreentrant
def withdraw_unstaked() -> uint256:
    """
    @dev Pays the caller's whole pending unstake once its delay has passed.
    @return uint256 The amount paid.
    """
    pending: PendingUnstake = self.pending_unstake[msg.sender]
    assert pending.amount > 0, "staking: nothing to withdraw"
    assert block.timestamp >= pending.ready_at, "staking: unstake not ready"
    self.pending_unstake[msg.sender] = empty(PendingUnstake)
    self.total_pending_unstake -= pending.amount
    self._push(token.address, msg.sender, pending.amount)
    log UnstakeWithdrawn(account=msg.sender, amount=pending.amount)
    return pending.amount


# Holder locks


@external
@view
def multiplier_bps(duration_s: uint256) -> uint256:
    """
    @dev The weight multiplier of a lock of `duration_s`, linear from 1x to the max.
    """
    return self._multiplier_bps(duration_s)


@external
@nonreentrant
def lock(amount: uint256, duration_s: uint256) -> uint256:
    """
    @dev Locks `amount` (transferFrom the caller) for `duration_s` seconds.
    @return uint256 The new lock id (ids count from 0).
    """
    assert amount > 0, "staking: zero amount"
    weight: uint256 = amount * self._multiplier_bps(duration_s) // BPS
    assert weight <= convert(max_value(uint128), uint256), "staking: amount too large"
    assert len(self._lock_ids[msg.sender]) < MAX_LOCKS, "staking: too many locks"
    self._pull(amount)
    self._checkpoint(msg.sender)
    lock_id: uint256 = self.next_lock_id
    self.next_lock_id = lock_id + 1
    end: uint256 = block.timestamp + duration_s
    self._locks[lock_id] = PackedLock(
        head=(convert(msg.sender, uint256) << 96) | end, size=(amount << 128) | weight
    )
    self._lock_ids[msg.sender].append(lock_id)
    self.weight_of[msg.sender] += weight
    self.total_weight += weight
    self.total_locked += amount
    log Locked(account=msg.sender, lock_id=lock_id, amount=amount, weight=weight, end=end)
    return lock_id


@external
@nonreentrant
def unlock(lock_id: uint256) -> uint256:
    """
    @dev Returns an ended lock's amount to its owner and removes its weight.
    @return uint256 The amount returned.
    """
    entry: Lock = self._lock(lock_id)
    assert entry.owner == msg.sender, "staking: not your lock"
    assert entry.amount > 0, "staking: lock already closed"
    assert block.timestamp >= entry.end, "staking: still locked"
    self._checkpoint(msg.sender)
    self._reduce_lock(lock_id, entry, entry.amount)
    self._remove_lock_id(msg.sender, lock_id)
    self.total_locked -= entry.amount
    self._push(token.address, msg.sender, entry.amount)
    log Unlocked(account=msg.sender, lock_id=lock_id, amount=entry.amount)
    return entry.amount


@external
@view
def locks(lock_id: uint256) -> Lock:
    """
    @dev A lock's owner, amount, weight and end (amount and weight 0 once closed).
    """
    return self._lock(lock_id)


@external
@view
def lock_ids(account: address) -> DynArray[uint256, MAX_LOCKS]:
    """
    @dev The ids of the account's open locks (unlocked or fully slashed ones leave).
    """
    return self._lock_ids[account]


@external
@view
def staked_total() -> uint256:
    """
    @dev All staked tokens held: collateral, pending unstakes and locked amounts.
    """
    return self.total_collateral + self.total_pending_unstake + self.total_locked


# Reward streams


@external
def add_reward_token(reward_token: address):
    """
    @dev Registers a reward token (DEFAULT_ADMIN_ROLE); at most 8, never removed.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert reward_token != empty(address), "staking: zero address"
    assert not self.is_reward_token[reward_token], "staking: reward token exists"
    assert len(self._reward_tokens) < MAX_REWARD_TOKENS, "staking: too many reward tokens"
    self._reward_tokens.append(reward_token)
    self.is_reward_token[reward_token] = True
    log RewardTokenAdded(token=reward_token)


@external
@view
def reward_tokens() -> DynArray[address, MAX_REWARD_TOKENS]:
    """
    @dev The registered reward tokens in the order they were added.
    """
    return self._reward_tokens


@external
@nonreentrant
def fund(reward_token: address, amount: uint256, duration_s: uint256):
    """
    @dev Streams `amount` (transferFrom the caller, anyone may fund) plus what is
         left of the running period and the idle rewards over `duration_s` from now.
         While a period runs, a new funding must not lower the rate, so nobody can
         stretch a partner's stream thin with a tiny top-up.
    """
    assert self.is_reward_token[reward_token], "staking: unknown reward token"
    assert duration_s > 0, "staking: zero duration"
    assert amount > 0, "staking: zero amount"
    data: RewardData = self._accrue(reward_token)
    received: uint256 = self._pull_token(reward_token, amount)
    leftover: uint256 = 0
    if block.timestamp < data.period_end:
        leftover = (data.period_end - block.timestamp) * data.rate
    total: uint256 = received + leftover + self.idle_rewards[reward_token]
    assert total <= convert(max_value(uint128), uint256), "staking: amount too large"
    rate: uint256 = total // duration_s
    assert rate > 0, "staking: reward rate is zero"
    assert leftover == 0 or rate >= data.rate, "staking: funding would lower the rate"
    self.idle_rewards[reward_token] = total - rate * duration_s
    data.rate = rate
    data.updated_at = block.timestamp
    data.period_end = block.timestamp + duration_s
    self.reward_data[reward_token] = data
    log Funded(
        token=reward_token, funder=msg.sender, amount=received, rate=rate, period_end=data.period_end
    )


@external
@view
def earned(account: address, reward_token: address) -> uint256:
    """
    @dev Rewards of `reward_token` the account can claim now.
    """
    return self._earned(account, reward_token, self._per_weight(self.reward_data[reward_token]))


@external
@nonreentrant
def claim_rewards(reward_token: address) -> uint256:
    """
    @dev Pays the caller's rewards of one token.
    @return uint256 The amount paid (0 when nothing was owed).
    """
    assert self.is_reward_token[reward_token], "staking: unknown reward token"
    return self._claim(msg.sender, reward_token)


@external
@nonreentrant
def claim_all():
    """
    @dev Pays the caller's rewards of every reward token.
    """
    for reward_token: address in self._reward_tokens:
        self._claim(msg.sender, reward_token)


# Slashing


@external
@nonreentrant
def slash(account: address, amount: uint256, reason: String[64]) -> uint256:
    """
    @dev Takes up to `amount` from `account` only (SLASHER_ROLE): distributor rewards,
         then collateral, then the pending unstake, then locks oldest first. All of it
         goes to `slash_sink`.
    @return uint256 The total taken; less than `amount` when the account had less.
    """
    access_control._check_role(SLASHER_ROLE, msg.sender)
    assert amount > 0, "staking: zero amount"
    from_rewards: uint256 = self._slash_rewards(account, amount)
    rest: uint256 = amount - from_rewards
    taken: uint256 = self._slash_collateral(account, rest)
    taken += self._slash_pending_unstake(account, rest - taken)
    if taken < rest:
        taken += self._slash_locks(account, rest - taken)
    if from_rewards + taken > 0:
        self._push(token.address, slash_sink, from_rewards + taken)
    log Slashed(
        account=account, requested=amount, from_rewards=from_rewards, from_stake=taken, reason=reason
    )
    return from_rewards + taken


# Internals


@internal
@view
def _multiplier_bps(duration_s: uint256) -> uint256:
    assert duration_s >= min_lock_s, "staking: lock too short"
    assert duration_s <= max_lock_s, "staking: lock too long"
    span: uint256 = max_lock_s - min_lock_s
    return BPS + (max_multiplier_bps - BPS) * (duration_s - min_lock_s) // span


@internal
def _pull(amount: uint256):
    assert extcall token.transferFrom(msg.sender, self, amount), "staking: transfer failed"


@internal
def _pull_token(reward_token: address, amount: uint256) -> uint256:
    # Credit what arrived, not what was asked, so a fee-on-transfer token cannot
    # make the stream promise more than the contract holds.
    before: uint256 = staticcall IERC20(reward_token).balanceOf(self)
    assert extcall IERC20(reward_token).transferFrom(
        msg.sender, self, amount, default_return_value=True
    ), "staking: transfer failed"
    return staticcall IERC20(reward_token).balanceOf(self) - before


@internal
def _push(asset: address, to: address, amount: uint256):
    assert extcall IERC20(asset).transfer(to, amount, default_return_value=True), "staking: transfer failed"


@internal
@view
def _per_weight(data: RewardData) -> uint256:
    applicable: uint256 = min(block.timestamp, data.period_end)
    if applicable <= data.updated_at or self.total_weight == 0:
        return data.per_weight_stored
    elapsed: uint256 = applicable - data.updated_at
    return data.per_weight_stored + elapsed * data.rate * PRECISION // self.total_weight


@internal
def _accrue(reward_token: address) -> RewardData:
    data: RewardData = self.reward_data[reward_token]
    applicable: uint256 = min(block.timestamp, data.period_end)
    if applicable <= data.updated_at:
        return data
    if self.total_weight == 0:
        self.idle_rewards[reward_token] += (applicable - data.updated_at) * data.rate
    else:
        data.per_weight_stored = self._per_weight(data)
    data.updated_at = applicable
    self.reward_data[reward_token] = data
    return data


@internal
@view
def _earned(account: address, reward_token: address, per_weight: uint256) -> uint256:
    delta: uint256 = per_weight - self._paid_per_weight[account][reward_token]
    return self._owed[account][reward_token] + self.weight_of[account] * delta // PRECISION


@internal
def _settle(account: address, reward_token: address):
    per_weight: uint256 = self._accrue(reward_token).per_weight_stored
    self._owed[account][reward_token] = self._earned(account, reward_token, per_weight)
    self._paid_per_weight[account][reward_token] = per_weight


@internal
def _checkpoint(account: address):
    for reward_token: address in self._reward_tokens:
        self._settle(account, reward_token)


@internal
def _claim(account: address, reward_token: address) -> uint256:
    self._settle(account, reward_token)
    owed: uint256 = self._owed[account][reward_token]
    if owed == 0:
        return 0
    self._owed[account][reward_token] = 0
    self._push(reward_token, account, owed)
    log RewardPaid(account=account, token=reward_token, amount=owed)
    return owed


@internal
@view
def _lock(lock_id: uint256) -> Lock:
    packed: PackedLock = self._locks[lock_id]
    return Lock(
        owner=convert(convert(packed.head >> 96, uint160), address),
        amount=packed.size >> 128,
        weight=packed.size & convert(max_value(uint128), uint256),
        end=packed.head & MAX_LOCK_END,
    )


@internal
def _reduce_lock(lock_id: uint256, entry: Lock, amount: uint256):
    # Weight shrinks in proportion (rounded down) so a slashed lock keeps its multiplier.
    new_amount: uint256 = entry.amount - amount
    new_weight: uint256 = entry.weight * new_amount // entry.amount
    self.weight_of[entry.owner] -= entry.weight - new_weight
    self.total_weight -= entry.weight - new_weight
    self._locks[lock_id].size = (new_amount << 128) | new_weight


@internal
def _remove_lock_id(account: address, lock_id: uint256):
    ids: DynArray[uint256, MAX_LOCKS] = self._lock_ids[account]
    last: uint256 = len(ids) - 1
    for i: uint256 in range(MAX_LOCKS):
        if ids[i] == lock_id:
            self._lock_ids[account][i] = ids[last]
            self._lock_ids[account].pop()
            return


@internal
def _slash_rewards(account: address, amount: uint256) -> uint256:
    if distributor.address == empty(address):
        return 0
    before: uint256 = staticcall token.balanceOf(self)
    taken: uint256 = extcall distributor.slash_pending(account, amount)
    assert taken <= amount, "staking: distributor took too much"
    assert staticcall token.balanceOf(self) - before >= taken, "staking: distributor did not pay"
    return taken


@internal
def _slash_collateral(account: address, amount: uint256) -> uint256:
    taken: uint256 = min(amount, self.collateral_of[account])
    self.collateral_of[account] -= taken
    self.total_collateral -= taken
    return taken


@internal
def _slash_pending_unstake(account: address, amount: uint256) -> uint256:
    taken: uint256 = min(amount, self.pending_unstake[account].amount)
    self.pending_unstake[account].amount -= taken
    self.total_pending_unstake -= taken
    return taken


@internal
def _slash_locks(account: address, amount: uint256) -> uint256:
    self._checkpoint(account)
    ids: DynArray[uint256, MAX_LOCKS] = self._lock_ids[account]
    kept: DynArray[uint256, MAX_LOCKS] = []
    taken: uint256 = 0
    for lock_id: uint256 in ids:
        entry: Lock = self._lock(lock_id)
        part: uint256 = min(amount - taken, entry.amount)
        if part > 0:
            self._reduce_lock(lock_id, entry, part)
            log LockSlashed(account=account, lock_id=lock_id, amount=part)
        if part < entry.amount:
            kept.append(lock_id)
        taken += part
    self._lock_ids[account] = kept
    self.total_locked -= taken
    return taken
