"""Escrow.vy: client deposits, withdrawals and all-or-nothing epoch settlement.

Settlement pays into the real RewardDistributor, so these tests also check that the
distributor accepts the escrow's ``fund_fees`` and records the providers' share.
"""

from __future__ import annotations

from typing import Any

import boa
import pytest
from eth_hash.auto import keccak
from tests.unit.contracts.conftest import (
    BPS,
    DAY_S,
    ESCROW_FEE_BPS,
    MAX_UINT256,
    MISSING_ROLE,
    USD_SUPPLY,
    load,
)

pytestmark = pytest.mark.slow

ZERO = "0x" + "00" * 20
# Execution gas (without the 21,000 base cost); a block holds 30,000,000.
SETTLE_256_GAS_BUDGET = 2_000_000


def deposit(escrow: Any, usd: Any, admin: str, client: str, amount: int) -> None:
    """Give ``client`` ``amount`` of ``usd`` and deposit it all."""
    with boa.env.prank(admin):
        usd.transfer(client, amount)
    with boa.env.prank(client):
        usd.approve(escrow.address, amount)
        escrow.deposit(amount)


@pytest.fixture
def funded(escrow: Any, usd: Any, admin: str, alice: str, bob: str) -> Any:
    """The escrow with 1,000 units from alice and 500 from bob."""
    deposit(escrow, usd, admin, alice, 1_000)
    deposit(escrow, usd, admin, bob, 500)
    return escrow


# ---------------------------------------------------------------- construction
def test_roles_and_settings(
    escrow: Any, usd: Any, admin: str, deployer: str, treasury: str
) -> None:
    assert escrow.SETTLER_ROLE() == keccak(b"SETTLER_ROLE")
    assert escrow.hasRole(escrow.DEFAULT_ADMIN_ROLE(), admin)
    assert not escrow.hasRole(escrow.DEFAULT_ADMIN_ROLE(), deployer)
    assert not escrow.hasRole(escrow.SETTLER_ROLE(), admin)
    assert (escrow.payment_token(), escrow.treasury()) == (usd.address, treasury)
    assert escrow.protocol_fee_bps() == ESCROW_FEE_BPS


def test_fee_above_half_is_rejected(usd: Any, admin: str, treasury: str) -> None:
    with boa.reverts("escrow: fee too high"):
        load("Escrow", usd.address, admin, treasury, treasury, 5_001)
    assert load("Escrow", usd.address, admin, treasury, treasury, 5_000).protocol_fee_bps() == 5_000


@pytest.mark.parametrize("zero_at", range(4))
def test_zero_addresses_are_rejected(usd: Any, admin: str, zero_at: int) -> None:
    addresses = [usd.address, admin, admin, admin]
    addresses[zero_at] = ZERO
    with boa.reverts("escrow: zero address"):
        load("Escrow", *addresses, 0)


# ---------------------------------------------------------------- deposit, withdraw
def test_deposit_credits_the_caller(escrow: Any, usd: Any, admin: str, alice: str) -> None:
    deposit(escrow, usd, admin, alice, 1_000)
    event = escrow.get_logs()[-1]
    assert (type(event).__name__, event.client, event.amount) == ("Deposited", alice, 1_000)
    assert escrow.balance_of(alice) == 1_000
    assert escrow.total_deposits() == 1_000
    assert usd.balanceOf(escrow.address) == 1_000
    assert usd.balanceOf(alice) == 0


def test_deposit_needs_an_allowance(escrow: Any, usd: Any, admin: str) -> None:
    with boa.env.prank(admin), boa.reverts("erc20: insufficient allowance"):
        escrow.deposit(1)


def test_deposit_of_zero_reverts(escrow: Any, alice: str) -> None:
    with boa.env.prank(alice), boa.reverts("escrow: zero amount"):
        escrow.deposit(0)


def test_withdraw_returns_tokens(funded: Any, usd: Any, alice: str) -> None:
    with boa.env.prank(alice):
        funded.withdraw(400)
    event = funded.get_logs()[-1]
    assert (type(event).__name__, event.client, event.amount) == ("Withdrawn", alice, 400)
    assert funded.balance_of(alice) == 600
    assert usd.balanceOf(alice) == 400
    assert funded.total_deposits() == 1_100


def test_withdraw_above_balance_reverts(funded: Any, alice: str) -> None:
    with boa.env.prank(alice), boa.reverts("escrow: insufficient balance"):
        funded.withdraw(1_001)
    with boa.env.prank(alice), boa.reverts("escrow: zero amount"):
        funded.withdraw(0)


def test_whole_supply_can_be_deposited_and_withdrawn(
    escrow: Any, usd: Any, admin: str, alice: str
) -> None:
    deposit(escrow, usd, admin, alice, USD_SUPPLY)
    with boa.env.prank(alice):
        escrow.withdraw(USD_SUPPLY)
    assert usd.balanceOf(alice) == USD_SUPPLY


# ---------------------------------------------------------------- settle
def test_settle_splits_fee_and_funds_the_distributor(
    funded: Any,
    usd: Any,
    fee_distributor: Any,
    settler: str,
    treasury: str,
    alice: str,
    bob: str,
) -> None:
    with boa.env.prank(settler):
        rest = funded.settle(7, [alice, bob], [900, 100])
    settled = funded.get_logs()[-1]
    assert (settled.epoch, settled.total, settled.fee, settled.to_providers) == (7, 1_000, 100, 900)
    assert rest == 900
    assert (funded.balance_of(alice), funded.balance_of(bob)) == (100, 400)
    assert usd.balanceOf(treasury) == 100
    assert usd.balanceOf(fee_distributor.address) == 900
    assert fee_distributor.fee_funded(7) == 900
    assert funded.settled(7)
    assert usd.balanceOf(funded.address) == funded.total_deposits() == 500


def test_settle_emits_a_charge_per_client(funded: Any, settler: str, alice: str) -> None:
    with boa.env.prank(settler):
        funded.settle(1, [alice, alice], [10, 20])
    charged = [e for e in funded.get_logs() if type(e).__name__ == "Charged"]
    assert [(e.epoch, e.client, e.amount) for e in charged] == [(1, alice, 10), (1, alice, 20)]
    assert funded.balance_of(alice) == 970


def test_fee_rounds_down(funded: Any, usd: Any, settler: str, treasury: str, alice: str) -> None:
    with boa.env.prank(settler):
        assert funded.settle(1, [alice], [19]) == 18
    assert usd.balanceOf(treasury) == 1


def test_settle_is_all_or_nothing(
    funded: Any, usd: Any, settler: str, alice: str, bob: str
) -> None:
    with boa.env.prank(settler), boa.reverts("escrow: insufficient balance"):
        funded.settle(1, [alice, bob], [1_000, 501])
    assert (funded.balance_of(alice), funded.balance_of(bob)) == (1_000, 500)
    assert not funded.settled(1)
    assert usd.balanceOf(funded.address) == 1_500


def test_each_epoch_settles_once(funded: Any, settler: str, alice: str) -> None:
    with boa.env.prank(settler):
        funded.settle(3, [alice], [1])
    with boa.env.prank(settler), boa.reverts("escrow: epoch already settled"):
        funded.settle(3, [alice], [1])


def test_empty_settlement_marks_the_epoch(
    funded: Any, fee_distributor: Any, usd: Any, settler: str, treasury: str
) -> None:
    with boa.env.prank(settler):
        assert funded.settle(4, [], []) == 0
    assert funded.settled(4)
    assert fee_distributor.fee_funded(4) == 0
    assert usd.balanceOf(treasury) == 0


def test_settle_rejects_length_mismatch(funded: Any, settler: str, alice: str) -> None:
    with boa.env.prank(settler), boa.reverts("escrow: clients and amounts differ"):
        funded.settle(1, [alice], [1, 2])


@pytest.mark.parametrize("caller", ["admin", "deployer", "alice"])
def test_settle_needs_the_settler_role(
    funded: Any, caller: str, admin: str, deployer: str, alice: str
) -> None:
    account = {"admin": admin, "deployer": deployer, "alice": alice}[caller]
    with boa.env.prank(account), boa.reverts(MISSING_ROLE):
        funded.settle(1, [alice], [1])


@pytest.mark.parametrize("caller", ["settler", "alice"])
def test_only_the_admin_grants_settler(funded: Any, caller: str, settler: str, alice: str) -> None:
    account = {"settler": settler, "alice": alice}[caller]
    with boa.env.prank(account), boa.reverts(MISSING_ROLE):
        funded.grantRole(funded.SETTLER_ROLE(), account)


@pytest.mark.parametrize("fee_bps", [0, 5_000])
def test_fee_extremes(
    usd: Any,
    admin: str,
    treasury: str,
    settler: str,
    alice: str,
    token: Any,
    tge: int,
    fee_bps: int,
) -> None:
    distributor = load("RewardDistributor", token.address, usd.address, admin, tge, 0, 0, 0, DAY_S)
    escrow = load("Escrow", usd.address, admin, treasury, distributor.address, fee_bps)
    with boa.env.prank(admin):
        escrow.grantRole(escrow.SETTLER_ROLE(), settler)
        distributor.set_escrow(escrow.address)
    deposit(escrow, usd, admin, alice, 1_001)
    with boa.env.prank(settler):
        rest = escrow.settle(0, [alice], [1_001])
    assert rest == 1_001 - 1_001 * fee_bps // BPS
    assert usd.balanceOf(treasury) + distributor.fee_funded(0) == 1_001


def test_maximal_amount_settles_without_overflow(
    admin: str, treasury: str, settler: str, alice: str, token: Any, tge: int
) -> None:
    big = load("PartnerToken", "Big", "BIG", 18, admin, MAX_UINT256)
    distributor = load("RewardDistributor", token.address, big.address, admin, tge, 0, 0, 0, DAY_S)
    escrow = load("Escrow", big.address, admin, treasury, distributor.address, 5_000)
    with boa.env.prank(admin):
        escrow.grantRole(escrow.SETTLER_ROLE(), settler)
        distributor.set_escrow(escrow.address)
    deposit(escrow, big, admin, alice, MAX_UINT256)
    with boa.env.prank(settler):
        rest = escrow.settle(0, [alice], [MAX_UINT256])
    assert rest == MAX_UINT256 - MAX_UINT256 * 5_000 // BPS
    assert big.balanceOf(treasury) == MAX_UINT256 * 5_000 // BPS


def test_settle_of_256_clients_fits_a_block(
    escrow: Any, usd: Any, admin: str, settler: str, fee_distributor: Any
) -> None:
    clients = [str(boa.env.generate_address(f"client{i}")) for i in range(256)]
    for client in clients:
        deposit(escrow, usd, admin, client, 10)
    with boa.env.prank(settler):
        escrow.settle(9, clients, [10] * 256)
    assert escrow._computation.get_gas_used() < SETTLE_256_GAS_BUDGET
    assert fee_distributor.fee_funded(9) == 2_560 - 2_560 * ESCROW_FEE_BPS // BPS
    assert escrow.total_deposits() == 0


def test_escrow_in_the_gpunet_token_itself(
    token: Any, admin: str, treasury: str, settler: str, alice: str, tge: int
) -> None:
    # A deployment may take payments in the gpunet token, which the distributor also
    # holds its emission pools in; the fees must still be recorded apart from the pool.
    distributor = load(
        "RewardDistributor", token.address, token.address, admin, tge, 0, 0, 0, DAY_S
    )
    escrow = load("Escrow", token.address, admin, treasury, distributor.address, ESCROW_FEE_BPS)
    with boa.env.prank(admin):
        token.transfer(distributor.address, 10**24)
        escrow.grantRole(escrow.SETTLER_ROLE(), settler)
        distributor.set_escrow(escrow.address)
    deposit(escrow, token, admin, alice, 10_000)
    with boa.env.prank(settler):
        assert escrow.settle(0, [alice], [10_000]) == 9_000
    assert distributor.fee_funded(0) == 9_000
    assert token.balanceOf(distributor.address) == 10**24 + 9_000


# ---------------------------------------------------------------- fee-on-transfer tokens
# A payment token that keeps 1% of every transfer: the escrow must credit what arrived.
FEE_TOKEN = """
# pragma version ~=0.4.3
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])

@deploy
def __init__(holder: address, supply: uint256):
    self.balanceOf[holder] = supply

@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True

@external
def transfer(to: address, amount: uint256) -> bool:
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount - amount // 100
    return True

@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    self.allowance[owner][msg.sender] -= amount
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount - amount // 100
    return True
"""


def test_a_fee_on_transfer_token_credits_only_what_arrived(
    admin: str, treasury: str, alice: str, fee_distributor: Any
) -> None:
    token = boa.loads(FEE_TOKEN, alice, 10_000)
    escrow = load("Escrow", token.address, admin, treasury, fee_distributor.address, ESCROW_FEE_BPS)
    with boa.env.prank(alice):
        token.approve(escrow.address, 1_000)
        escrow.deposit(1_000)
    assert escrow.balance_of(alice) == 990 == token.balanceOf(escrow.address)
    assert escrow.total_deposits() == 990
    with boa.env.prank(alice), boa.reverts("escrow: insufficient balance"):
        escrow.withdraw(1_000)
