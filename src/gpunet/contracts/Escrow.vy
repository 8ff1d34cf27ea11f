# pragma version ~=0.4.3
"""
@title gpunet escrow
@custom:contract-name Escrow
@license Apache-2.0
@notice Clients deposit the payment token here ahead of their jobs. Once per epoch
        a settler charges what each client owes: the protocol fee
        (`total * protocol_fee_bps // 10_000`, rounded down) goes to the treasury and
        the rest to the RewardDistributor, which is told through `fund_fees` so that
        providers can claim it with the epoch's rewards. A settlement is all or
        nothing: one client short of funds reverts the whole epoch.
"""

from ethereum.ercs import IERC20
from snekmate.auth import access_control

initializes: access_control

exports: access_control.__interface__


interface RewardDistributor:
    def fund_fees(epoch: uint256, amount: uint256): nonpayable


BPS: constant(uint256) = 10_000
MAX_FEE_BPS: constant(uint256) = 5_000
MAX_CLIENTS: constant(uint256) = 256
SETTLER_ROLE: public(constant(bytes32)) = keccak256("SETTLER_ROLE")


event Deposited:
    client: indexed(address)
    amount: uint256


event Withdrawn:
    client: indexed(address)
    amount: uint256


event Charged:
    epoch: indexed(uint256)
    client: indexed(address)
    amount: uint256


event Settled:
    epoch: indexed(uint256)
    total: uint256
    fee: uint256
    to_providers: uint256


payment_token: public(immutable(address))
treasury: public(immutable(address))
distributor: public(immutable(address))
protocol_fee_bps: public(immutable(uint256))
balance_of: public(HashMap[address, uint256])
total_deposits: public(uint256)
settled: public(HashMap[uint256, bool])


@deploy
def __init__(
    payment_token_: address, admin: address, treasury_: address, distributor_: address, protocol_fee_bps_: uint256
):
    """
    @dev Grants `admin` the DEFAULT_ADMIN_ROLE (which grants SETTLER_ROLE); the
         deployer keeps no role unless it is the admin.
    @param payment_token_ The token clients pay in.
    @param admin The role administrator.
    @param treasury_ Receives the protocol fee.
    @param distributor_ The RewardDistributor that receives the providers' share.
    @param protocol_fee_bps_ The protocol fee in basis points, at most 5000.
    """
    assert protocol_fee_bps_ <= MAX_FEE_BPS, "escrow: fee too high"
    assert payment_token_ != empty(address), "escrow: zero address"
    assert admin != empty(address), "escrow: zero address"
    assert treasury_ != empty(address), "escrow: zero address"
    assert distributor_ != empty(address), "escrow: zero address"
    access_control.__init__()
    if admin != msg.sender:
        access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin)
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    payment_token = payment_token_
    treasury = treasury_
    distributor = distributor_
    protocol_fee_bps = protocol_fee_bps_


@external
@nonreentrant
def deposit(amount: uint256):
    """
    @dev Pulls `amount` from the caller (approve first) and credits what arrived:
         a token that charges a fee on transfer credits less than `amount`, so the
         deposits never exceed what the escrow holds.
    @param amount Base units of the payment token, more than 0.
    """
    assert amount != 0, "escrow: zero amount"
    held: uint256 = staticcall IERC20(payment_token).balanceOf(self)
    assert extcall IERC20(payment_token).transferFrom(
        msg.sender, self, amount, default_return_value=True
    ), "escrow: transfer failed"
    received: uint256 = staticcall IERC20(payment_token).balanceOf(self) - held
    assert received != 0, "escrow: nothing received"
    self.balance_of[msg.sender] += received
    self.total_deposits += received
    log Deposited(client=msg.sender, amount=received)


@external
@nonreentrant
def withdraw(amount: uint256):
    """
    @dev Returns `amount` of the caller's unspent balance to them.
    @param amount Base units, more than 0 and at most the caller's balance.
    """
    assert amount != 0, "escrow: zero amount"
    assert self.balance_of[msg.sender] >= amount, "escrow: insufficient balance"
    self.balance_of[msg.sender] -= amount
    self.total_deposits -= amount
    assert extcall IERC20(payment_token).transfer(msg.sender, amount, default_return_value=True), (
        "escrow: transfer failed"
    )
    log Withdrawn(client=msg.sender, amount=amount)


@external
@nonreentrant
def settle(
    epoch: uint256, clients: DynArray[address, MAX_CLIENTS], amounts: DynArray[uint256, MAX_CLIENTS]
) -> uint256:
    """
    @dev Charges each `clients[i]` `amounts[i]` for `epoch` (a client may appear
         more than once), pays the fee to the treasury and the rest to the
         distributor. Only SETTLER_ROLE; once per epoch; all or nothing.
    @param epoch The settlement epoch.
    @param clients The charged clients.
    @param amounts What each owes, in base units.
    @return uint256 The amount sent to the distributor for providers.
    """
    access_control._check_role(SETTLER_ROLE, msg.sender)
    assert len(clients) == len(amounts), "escrow: clients and amounts differ"
    assert not self.settled[epoch], "escrow: epoch already settled"
    self.settled[epoch] = True
    total: uint256 = self._charge(epoch, clients, amounts)
    fee: uint256 = self._fee_of(total)
    rest: uint256 = total - fee
    if fee != 0:
        assert extcall IERC20(payment_token).transfer(treasury, fee, default_return_value=True), (
            "escrow: transfer failed"
        )
    # An empty epoch still counts as settled, but the distributor hears of funds only.
    if rest != 0:
        assert extcall IERC20(payment_token).transfer(distributor, rest, default_return_value=True), (
            "escrow: transfer failed"
        )
        extcall RewardDistributor(distributor).fund_fees(epoch, rest)
    log Settled(epoch=epoch, total=total, fee=fee, to_providers=rest)
    return rest


@internal
@view
def _fee_of(total: uint256) -> uint256:
    # Equal to `total * protocol_fee_bps // BPS`, without overflowing for any total.
    return total // BPS * protocol_fee_bps + total % BPS * protocol_fee_bps // BPS


@internal
def _charge(
    epoch: uint256, clients: DynArray[address, MAX_CLIENTS], amounts: DynArray[uint256, MAX_CLIENTS]
) -> uint256:
    total: uint256 = 0
    for i: uint256 in range(MAX_CLIENTS):
        if i >= len(clients):
            break
        balance: uint256 = self.balance_of[clients[i]]
        assert balance >= amounts[i], "escrow: insufficient balance"
        self.balance_of[clients[i]] = balance - amounts[i]
        total += amounts[i]
        log Charged(epoch=epoch, client=clients[i], amount=amounts[i])
    self.total_deposits -= total
    return total
