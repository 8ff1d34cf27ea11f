# pragma version ~=0.4.3
"""
@title gpunet reward distributor
@custom:contract-name RewardDistributor
@license Apache-2.0
@notice Holds the provider and checker emission pools and the fees each epoch earns.
        A settler posts one Merkle root per epoch (leaf: epoch, account, reward, fee,
        hashed twice as in OpenZeppelin's merkle-tree); anyone may then claim a leaf
        for its account within the claim window. A claim opens a position: the reward
        vests linearly over `reward_vest_s`, the fee unlocks whole after `fee_vest_s`.
        When nothing would vest (`reward_vest_s == 0` and no locked fee) the claim pays
        out directly and returns position id 0, which keeps the common claim cheap.
        Rewards posted never exceed the emission cap of the month plus what came back
        to the pool (early-release penalties and swept, unclaimed rewards).
        Storage is packed by hand (amounts fit in 96 bits) so a claim writes few slots.
"""

from ethereum.ercs import IERC20
from snekmate.auth import access_control
from snekmate.utils import merkle_proof_verification as merkle

initializes: access_control

exports: access_control.__interface__


struct Epoch:
    root: bytes32
    reward_total: uint256
    fee_total: uint256
    claimed_reward: uint256
    claimed_fee: uint256
    posted_at: uint256
    swept: bool


struct Position:
    owner: address
    reward: uint256
    reward_released: uint256
    fee: uint256
    fee_released: bool
    start: uint256


event EmissionCapsSet:
    start_month: uint256
    months: uint256
    last_cap: uint256

event Sealed:
    staking: address
    escrow: address

event StakingSet:
    staking: address

event EscrowSet:
    escrow: address

event FeesFunded:
    epoch: indexed(uint256)
    amount: uint256
    sender: address

event EpochPosted:
    epoch: indexed(uint256)
    root: bytes32
    reward_total: uint256
    fee_total: uint256

event Claimed:
    epoch: indexed(uint256)
    account: indexed(address)
    reward: uint256
    fee: uint256
    position_id: uint256

event Released:
    position_id: indexed(uint256)
    owner: indexed(address)
    reward: uint256
    fee: uint256
    penalty: uint256

event PendingSlashed:
    account: indexed(address)
    requested: uint256
    taken: uint256

event EpochSwept:
    epoch: indexed(uint256)
    reward: uint256
    fee: uint256


SETTLER_ROLE: public(constant(bytes32)) = keccak256("SETTLER_ROLE")
BPS: constant(uint256) = 10_000
MONTH_S: constant(uint256) = 2_629_800
MAX_MONTHS: constant(uint256) = 128
MAX_PROOF: constant(uint256) = 32
MAX_OPEN_POSITIONS: constant(uint256) = 256
# Amounts are packed two to a slot; 2**96 base units is ~7.9e10 tokens of 18 decimals.
MAX_AMOUNT: public(constant(uint256)) = 2**96 - 1
MASK_96: constant(uint256) = 2**96 - 1
MASK_64: constant(uint256) = 2**64 - 1
MASK_160: constant(uint256) = 2**160 - 1

token: public(immutable(IERC20))
fee_token: public(immutable(IERC20))
tge: public(immutable(uint256))
reward_vest_s: public(immutable(uint256))
fee_vest_s: public(immutable(uint256))
early_penalty_bps: public(immutable(uint256))
claim_window_s: public(immutable(uint256))

sealed: public(bool)
staking: public(address)
escrow: public(address)
# Cumulative cap at the end of each month from tge, months 0 .. cap_months - 1.
caps_by_month: public(HashMap[uint256, uint256])
cap_months: public(uint256)

posted_rewards: public(uint256)
recycled: public(uint256)
# Posted and not yet paid, recycled or slashed: unclaimed leaves plus open positions.
# Set by post_epoch, so claims never pay for initialising the slot.
reward_liabilities: public(uint256)
fee_funded: public(HashMap[uint256, uint256])
recycled_fees: public(uint256)
# Fees funded and not yet paid out (unposted, unclaimed, locked in positions, recycled).
fee_liabilities: public(uint256)

# root; reward_total | claimed_reward << 96 | posted_at << 192;
# fee_total | claimed_fee << 96 | swept << 192.
_epoch_root: HashMap[uint256, bytes32]
_epoch_rewards: HashMap[uint256, uint256]
_epoch_fees: HashMap[uint256, uint256]
# One bit per epoch, 256 epochs per slot: an account's later claims rewrite a word that
# is already set (5,000 gas) instead of filling an empty slot (22,100).
_claimed: HashMap[address, HashMap[uint256, uint256]]

next_position_id: public(uint256)
# owner | fee << 160; reward | reward_released << 96 | start << 192 (63 bits) | fee_released << 255.
_pos_head: HashMap[uint256, uint256]
_pos_body: HashMap[uint256, uint256]
_open: HashMap[address, DynArray[uint256, MAX_OPEN_POSITIONS]]


@deploy
def __init__(
    token_: address,
    fee_token_: address,
    admin: address,
    tge_: uint256,
    reward_vest_s_: uint256,
    fee_vest_s_: uint256,
    early_penalty_bps_: uint256,
    claim_window_s_: uint256,
):
    """
    @dev Grants `admin` the default admin role; a deployer other than `admin` keeps none.
    @param token_ The gpunet token the emission pools are held in.
    @param fee_token_ The token client fees arrive in (from the escrow).
    @param admin The account that configures caps, staking, escrow and roles.
    @param tge_ The token generation time; emission months count from it.
    @param reward_vest_s_ Linear vesting of claimed rewards, in seconds (0: immediate).
    @param fee_vest_s_ Cliff before claimed fees unlock, in seconds (0: immediate).
    @param early_penalty_bps_ Share of the still-locked reward kept on early release.
    @param claim_window_s_ How long after posting an epoch can be claimed.
    """
    assert token_ != empty(address), "distributor: zero token"
    assert fee_token_ != empty(address), "distributor: zero fee token"
    assert admin != empty(address), "distributor: zero admin"
    assert early_penalty_bps_ <= BPS, "distributor: penalty above 100%"
    assert reward_vest_s_ <= MASK_64 and fee_vest_s_ <= MASK_64, "distributor: vesting too long"
    access_control.__init__()
    if admin != msg.sender:
        access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin)
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    token = IERC20(token_)
    fee_token = IERC20(fee_token_)
    tge = tge_
    reward_vest_s = reward_vest_s_
    fee_vest_s = fee_vest_s_
    early_penalty_bps = early_penalty_bps_
    claim_window_s = claim_window_s_
    self.next_position_id = 1


@external
def set_emission_caps(start_month: uint256, caps: DynArray[uint256, MAX_MONTHS]):
    """
    @dev Sets the cumulative caps of months `start_month` onwards, so a long schedule
         is written in batches; admin only, before `seal`. Months must stay contiguous
         from month 0 and the caps non-decreasing across the whole schedule.
    @param start_month The month (from tge, 0-based) that `caps[0]` ends; at most the
           number of months already set.
    @param caps Cumulative rewards allowed by the end of each month.
    """
    self._check_admin_unsealed()
    assert len(caps) > 0, "distributor: no caps"
    months: uint256 = self.cap_months
    assert start_month <= months, "distributor: caps leave a gap"
    previous: uint256 = 0
    if start_month > 0:
        previous = self.caps_by_month[start_month - 1]
    for i: uint256 in range(MAX_MONTHS):
        if i >= len(caps):
            break
        assert caps[i] >= previous, "distributor: caps must not decrease"
        previous = caps[i]
        self.caps_by_month[start_month + i] = previous
    end: uint256 = start_month + len(caps)
    if end < months:
        assert self.caps_by_month[end] >= previous, "distributor: caps must not decrease"
    self.cap_months = max(months, end)
    log EmissionCapsSet(start_month=start_month, months=len(caps), last_cap=previous)


@external
def set_staking(addr: address):
    """
    @dev Sets the staking contract allowed to call `slash_pending`; admin, before `seal`.
    @param addr The staking contract.
    """
    self._check_admin_unsealed()
    self.staking = addr
    log StakingSet(staking=addr)


@external
def set_escrow(addr: address):
    """
    @dev Sets the escrow allowed to call `fund_fees`; admin, before `seal`.
    @param addr The escrow contract.
    """
    self._check_admin_unsealed()
    self.escrow = addr
    log EscrowSet(escrow=addr)


@external
def seal():
    """
    @dev Freezes the emission caps, staking and escrow for good; admin only.
    """
    self._check_admin_unsealed()
    assert self.cap_months > 0, "distributor: no caps"
    self.sealed = True
    log Sealed(staking=self.staking, escrow=self.escrow)


@external
def fund_fees(epoch: uint256, amount: uint256):
    """
    @dev Records fees already transferred here for `epoch`; escrow or settler only.
    @param epoch The epoch the fees were earned in.
    @param amount The fee-token base units received.
    """
    if msg.sender != self.escrow:
        access_control._check_role(SETTLER_ROLE, msg.sender)
    liabilities: uint256 = self.fee_liabilities + amount
    assert staticcall fee_token.balanceOf(self) >= self._fee_reserved(liabilities), "distributor: fees not received"
    self.fee_liabilities = liabilities
    self.fee_funded[epoch] += amount
    log FeesFunded(epoch=epoch, amount=amount, sender=msg.sender)


@external
def post_epoch(epoch: uint256, root: bytes32, reward_total: uint256, fee_total: uint256):
    """
    @dev Publishes an epoch's Merkle root; settler only, once per epoch.
    @notice Fees come from this epoch's funding first, then from swept fees.
    @param epoch The epoch number.
    @param root The Merkle root of (epoch, account, reward, fee) leaves.
    @param reward_total The sum of the leaves' rewards.
    @param fee_total The sum of the leaves' fees.
    """
    access_control._check_role(SETTLER_ROLE, msg.sender)
    assert self._epoch_root[epoch] == empty(bytes32), "distributor: epoch already posted"
    assert root != empty(bytes32), "distributor: zero root"
    assert reward_total <= MAX_AMOUNT and fee_total <= MAX_AMOUNT, "distributor: amount too large"
    posted: uint256 = self.posted_rewards + reward_total
    assert posted <= self._cap(block.timestamp) + self.recycled, "distributor: above the emission cap"
    assert reward_total <= self._pool_balance(), "distributor: pool too small"
    self._take_fees(epoch, fee_total)
    self.posted_rewards = posted
    self.reward_liabilities += reward_total
    self._epoch_root[epoch] = root
    self._epoch_rewards[epoch] = reward_total | (block.timestamp << 192)
    self._epoch_fees[epoch] = fee_total
    log EpochPosted(epoch=epoch, root=root, reward_total=reward_total, fee_total=fee_total)


@external
def claim(
    epoch: uint256, account: address, reward: uint256, fee: uint256, proof: DynArray[bytes32, MAX_PROOF]
) -> uint256:
    """
    @dev Claims `account`'s leaf of `epoch`; anyone may call, only `account` is paid.
    @param epoch The epoch.
    @param account The leaf's account.
    @param reward The leaf's reward.
    @param fee The leaf's fee.
    @param proof The sibling hashes from the leaf to the root.
    @return uint256 The position id, or 0 when paid out directly.
    """
    root: bytes32 = self._epoch_root[epoch]
    assert root != empty(bytes32), "distributor: unknown epoch"
    rewards: uint256 = self._epoch_rewards[epoch]
    assert block.timestamp <= (rewards >> 192) + claim_window_s, "distributor: epoch expired"
    word: uint256 = self._claimed[account][epoch >> 8]
    bit: uint256 = 1 << (epoch & 255)
    assert word & bit == 0, "distributor: already claimed"
    leaf: bytes32 = keccak256(keccak256(abi_encode(epoch, account, reward, fee)))
    assert merkle._verify(proof, root, leaf), "distributor: invalid proof"
    self._claimed[account][epoch >> 8] = word | bit
    claimed: uint256 = ((rewards >> 96) & MASK_96) + reward
    assert claimed <= rewards & MASK_96, "distributor: above the epoch total"
    self._epoch_rewards[epoch] = (rewards & ~(MASK_96 << 96)) | (claimed << 96)
    if fee != 0:
        self._count_claimed_fee(epoch, fee)
    position_id: uint256 = 0
    if reward_vest_s == 0 and (fee == 0 or fee_vest_s == 0):
        self._pay(account, reward, fee)
    elif reward != 0 or fee != 0:
        position_id = self._open_position(account, reward, fee)
    log Claimed(epoch=epoch, account=account, reward=reward, fee=fee, position_id=position_id)
    return position_id


@external
def release(position_id: uint256) -> (uint256, uint256):
    """
    @dev Pays the position's owner what has vested and was not paid yet.
    @param position_id The position, owned by the caller.
    @return uint256 The reward paid.
    @return uint256 The fee paid.
    """
    p: Position = self._owned_position(position_id)
    reward: uint256 = self._releasable_reward(p)
    fee: uint256 = self._releasable_fee(p)
    assert reward != 0 or fee != 0, "distributor: nothing releasable"
    self._settle_release(position_id, p, reward, fee, 0)
    return reward, fee


@external
def release_early(position_id: uint256) -> (uint256, uint256):
    """
    @dev Pays the whole unreleased reward now, less `early_penalty_bps` of its still
         locked part, which goes back to the pool. Locked fees stay locked.
    @param position_id The position, owned by the caller.
    @return uint256 The reward paid.
    @return uint256 The fee paid.
    """
    p: Position = self._owned_position(position_id)
    free: uint256 = self._releasable_reward(p)
    locked: uint256 = p.reward - p.reward_released - free
    penalty: uint256 = locked * early_penalty_bps // BPS
    reward: uint256 = free + locked - penalty
    fee: uint256 = self._releasable_fee(p)
    if reward == 0 and fee == 0 and penalty == 0:
        assert p.fee_released or p.fee == 0, "distributor: fees cannot be released early"
        raise "distributor: nothing releasable"
    self.recycled += penalty
    self.reward_liabilities -= penalty
    self._settle_release(position_id, p, reward, fee, penalty)
    return reward, fee


@external
def slash_pending(account: address, amount: uint256) -> uint256:
    """
    @dev Takes up to `amount` of `account`'s unreleased reward, oldest position first,
         and sends it to the staking contract; staking only.
    @param account The slashed account.
    @param amount The most to take.
    @return uint256 The amount taken.
    """
    assert msg.sender == self.staking and msg.sender != empty(address), "distributor: caller is not staking"
    taken: uint256 = 0
    still_open: DynArray[uint256, MAX_OPEN_POSITIONS] = []
    for position_id: uint256 in self._open[account]:
        p: Position = self._position(position_id)
        take: uint256 = min(amount - taken, p.reward - p.reward_released)
        if take != 0:
            p.reward -= take
            taken += take
            self._store(position_id, p)
        if not self._done(p):
            still_open.append(position_id)
    self._open[account] = still_open
    if taken != 0:
        self.reward_liabilities -= taken
        assert extcall token.transfer(msg.sender, taken, default_return_value=True), "distributor: transfer failed"
    log PendingSlashed(account=account, requested=amount, taken=taken)
    return taken


@external
def sweep_expired(epoch: uint256):
    """
    @dev Returns an expired epoch's unclaimed rewards to the pool (`recycled`) and its
         unclaimed fees, with any fees funded for it but never posted, to
         `recycled_fees`, which later epochs may post; settler only.
    @param epoch The expired epoch.
    """
    access_control._check_role(SETTLER_ROLE, msg.sender)
    assert self._epoch_root[epoch] != empty(bytes32), "distributor: unknown epoch"
    rewards: uint256 = self._epoch_rewards[epoch]
    assert block.timestamp > (rewards >> 192) + claim_window_s, "distributor: epoch not expired"
    fees: uint256 = self._epoch_fees[epoch]
    assert fees >> 192 == 0, "distributor: epoch already swept"
    self._epoch_fees[epoch] = fees | (1 << 192)
    reward_left: uint256 = (rewards & MASK_96) - ((rewards >> 96) & MASK_96)
    fee_left: uint256 = (fees & MASK_96) - ((fees >> 96) & MASK_96) + self.fee_funded[epoch]
    self.fee_funded[epoch] = 0
    self.recycled += reward_left
    self.reward_liabilities -= reward_left
    self.recycled_fees += fee_left
    log EpochSwept(epoch=epoch, reward=reward_left, fee=fee_left)


@external
@view
def emission_cap(at: uint256) -> uint256:
    """
    @dev The cumulative emission cap of the month containing `at` (0 before tge or
         when no caps are set, the last cap after the last month).
    @param at A timestamp.
    @return uint256 The cap in base units.
    """
    return self._cap(at)


@external
@view
def epochs(epoch: uint256) -> Epoch:
    """
    @dev An epoch's root, totals, claimed amounts, posting time and swept flag.
    @param epoch The epoch.
    @return Epoch The unpacked epoch record (all zero when not posted).
    """
    rewards: uint256 = self._epoch_rewards[epoch]
    fees: uint256 = self._epoch_fees[epoch]
    return Epoch(
        root=self._epoch_root[epoch],
        reward_total=rewards & MASK_96,
        fee_total=fees & MASK_96,
        claimed_reward=(rewards >> 96) & MASK_96,
        claimed_fee=(fees >> 96) & MASK_96,
        posted_at=rewards >> 192,
        swept=fees >> 192 != 0,
    )


@external
@view
def is_claimed(epoch: uint256, account: address) -> bool:
    """
    @dev Whether `account` claimed its leaf of `epoch`.
    @param epoch The epoch.
    @param account The account.
    @return bool True once claimed.
    """
    return self._claimed[account][epoch >> 8] & (1 << (epoch & 255)) != 0


@external
@view
def positions(position_id: uint256) -> Position:
    """
    @dev A position (all zero when it does not exist).
    @param position_id The position.
    @return Position The unpacked position.
    """
    return self._position(position_id)


@external
@view
def position_ids(account: address) -> DynArray[uint256, MAX_OPEN_POSITIONS]:
    """
    @dev The account's open positions (something still to pay), oldest first.
    @param account The account.
    @return DynArray The position ids.
    """
    return self._open[account]


@external
@view
def releasable(position_id: uint256) -> (uint256, uint256):
    """
    @dev What `release` would pay now.
    @param position_id The position.
    @return uint256 The reward.
    @return uint256 The fee.
    """
    p: Position = self._position(position_id)
    return self._releasable_reward(p), self._releasable_fee(p)


@external
@view
def pending_rewards(account: address) -> uint256:
    """
    @dev The unreleased reward over all of the account's positions.
    @param account The account.
    @return uint256 The reward still held for the account.
    """
    total: uint256 = 0
    for position_id: uint256 in self._open[account]:
        body: uint256 = self._pos_body[position_id]
        total += (body & MASK_96) - ((body >> 96) & MASK_96)
    return total


@external
@view
def pool_balance() -> uint256:
    """
    @dev Tokens held that no one is owed yet: the pool left to post.
    @return uint256 The balance minus unclaimed posted rewards and unreleased positions.
    """
    return self._pool_balance()


@internal
def _check_admin_unsealed():
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert not self.sealed, "distributor: sealed"


@internal
@view
def _cap(at: uint256) -> uint256:
    months: uint256 = self.cap_months
    if at < tge or months == 0:
        return 0
    return self.caps_by_month[min((at - tge) // MONTH_S, months - 1)]


@internal
@view
def _fee_reserved(fee_liabilities: uint256) -> uint256:
    # When fees are paid in the gpunet token itself, the fee balance must also cover
    # every reward still owed, or fees could be "funded" out of the emission pool.
    if fee_token.address == token.address:
        return fee_liabilities + self.reward_liabilities
    return fee_liabilities


@internal
@view
def _pool_balance() -> uint256:
    owed: uint256 = self.reward_liabilities
    if fee_token.address == token.address:
        owed += self.fee_liabilities
    held: uint256 = staticcall token.balanceOf(self)
    return held - min(held, owed)


@internal
def _take_fees(epoch: uint256, fee_total: uint256):
    funded: uint256 = self.fee_funded[epoch]
    from_epoch: uint256 = min(funded, fee_total)
    from_recycled: uint256 = fee_total - from_epoch
    assert from_recycled <= self.recycled_fees, "distributor: fees not funded"
    self.fee_funded[epoch] = funded - from_epoch
    if from_recycled != 0:
        self.recycled_fees -= from_recycled


@internal
def _count_claimed_fee(epoch: uint256, fee: uint256):
    fees: uint256 = self._epoch_fees[epoch]
    claimed: uint256 = ((fees >> 96) & MASK_96) + fee
    assert claimed <= fees & MASK_96, "distributor: above the epoch total"
    self._epoch_fees[epoch] = (fees & ~(MASK_96 << 96)) | (claimed << 96)


@internal
def _pay(account: address, reward: uint256, fee: uint256):
    if reward != 0:
        self.reward_liabilities -= reward
        assert extcall token.transfer(account, reward, default_return_value=True), "distributor: transfer failed"
    if fee != 0:
        self.fee_liabilities -= fee
        assert extcall fee_token.transfer(account, fee, default_return_value=True), "distributor: transfer failed"


@internal
def _open_position(account: address, reward: uint256, fee: uint256) -> uint256:
    assert len(self._open[account]) < MAX_OPEN_POSITIONS, "distributor: too many open positions"
    position_id: uint256 = self.next_position_id
    self.next_position_id = position_id + 1
    self._open[account].append(position_id)
    self._pos_head[position_id] = convert(account, uint256) | (fee << 160)
    self._pos_body[position_id] = reward | (block.timestamp << 192)
    return position_id


@internal
@view
def _position(position_id: uint256) -> Position:
    head: uint256 = self._pos_head[position_id]
    body: uint256 = self._pos_body[position_id]
    return Position(
        owner=convert(convert(head & MASK_160, uint160), address),
        reward=body & MASK_96,
        reward_released=(body >> 96) & MASK_96,
        fee=head >> 160,
        fee_released=body >> 255 != 0,
        start=(body >> 192) & (2**63 - 1),
    )


@internal
def _store(position_id: uint256, p: Position):
    # The owner, fee amount and start never change after the claim.
    flag: uint256 = 1 if p.fee_released else 0
    self._pos_body[position_id] = (
        p.reward | (p.reward_released << 96) | (p.start << 192) | (flag << 255)
    )


@internal
@view
def _owned_position(position_id: uint256) -> Position:
    p: Position = self._position(position_id)
    assert p.owner != empty(address), "distributor: unknown position"
    assert p.owner == msg.sender, "distributor: not your position"
    return p


@internal
@view
def _releasable_reward(p: Position) -> uint256:
    vested: uint256 = p.reward
    if block.timestamp < p.start + reward_vest_s:
        vested = p.reward * (block.timestamp - p.start) // reward_vest_s
    if vested <= p.reward_released:
        return 0
    return vested - p.reward_released


@internal
@view
def _releasable_fee(p: Position) -> uint256:
    if p.fee_released or block.timestamp < p.start + fee_vest_s:
        return 0
    return p.fee


@internal
@pure
def _done(p: Position) -> bool:
    return p.reward_released == p.reward and (p.fee == 0 or p.fee_released)


@internal
def _settle_release(position_id: uint256, p: Position, reward: uint256, fee: uint256, penalty: uint256):
    released: Position = p
    released.reward_released += reward + penalty
    if fee != 0:
        released.fee_released = True
    self._store(position_id, released)
    if self._done(released):
        self._close(p.owner, position_id)
    self._pay(p.owner, reward, fee)
    log Released(position_id=position_id, owner=p.owner, reward=reward, fee=fee, penalty=penalty)


@internal
def _close(owner: address, position_id: uint256):
    ids: DynArray[uint256, MAX_OPEN_POSITIONS] = self._open[owner]
    last: uint256 = len(ids) - 1
    for i: uint256 in range(MAX_OPEN_POSITIONS):
        if ids[i] == position_id:
            # Shift rather than swap, so the list stays oldest first for slashing.
            for j: uint256 in range(i, last, bound=MAX_OPEN_POSITIONS):
                self._open[owner][j] = ids[j + 1]
            self._open[owner].pop()
            return
