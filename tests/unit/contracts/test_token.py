"""Token.vy and PartnerToken.vy: fixed supply at genesis, ERC-20 and permit behaviour."""

from __future__ import annotations

from typing import Any

import boa
from eth_account import Account
from eth_account.messages import encode_typed_data
from tests.unit.contracts.conftest import BURN_ADDRESS, MAX_UINT256, USD_SUPPLY, load, now

from gpunet.protocol.allocation import TOTAL_SUPPLY

EXPORTED = {
    "transfer",
    "approve",
    "transferFrom",
    "balanceOf",
    "allowance",
    "totalSupply",
    "name",
    "symbol",
    "decimals",
    "permit",
    "nonces",
    "DOMAIN_SEPARATOR",
}
# Execution gas (without the 21,000 base cost) of a transfer to a new holder. boa keeps
# slots warm between calls (resetting that would break its anchors), so the measured
# figure is somewhat below a real transaction's; docs/contracts.md gives cold figures.
TRANSFER_GAS_BUDGET = 40_000


def _functions(contract: Any) -> set[str]:
    return {item["name"] for item in contract.abi if item["type"] == "function"}


def _permit_signature(token: Any, key: Any, spender: str, value: int, deadline: int) -> Any:
    message = {
        "domain": {
            "name": token.name(),
            "version": "1",
            "chainId": boa.env.evm.chain.chain_id,
            "verifyingContract": token.address,
        },
        "types": {
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ]
        },
        "primaryType": "Permit",
        "message": {
            "owner": key.address,
            "spender": spender,
            "value": value,
            "nonce": token.nonces(key.address),
            "deadline": deadline,
        },
    }
    return key.sign_message(encode_typed_data(full_message=message))


# ---------------------------------------------------------------- genesis
def test_genesis_mints_each_amount_once(alice: str, bob: str) -> None:
    token = load("Token", "gpunet", "GPU", [alice, bob, alice], [10, 20, 5])
    assert token.balanceOf(alice) == 15
    assert token.balanceOf(bob) == 20
    assert token.totalSupply() == 35
    assert (token.name(), token.symbol(), token.decimals()) == ("gpunet", "GPU", 18)


def test_genesis_of_the_full_supply(token: Any, admin: str) -> None:
    assert token.totalSupply() == TOTAL_SUPPLY
    assert token.balanceOf(admin) == TOTAL_SUPPLY


def test_exports_only_erc20_and_permit(token: Any) -> None:
    assert _functions(token) == EXPORTED
    for name in ("mint", "burn", "burn_from", "set_minter", "owner", "transfer_ownership"):
        assert not hasattr(token, name)


def test_genesis_rejects_length_mismatch(alice: str) -> None:
    with boa.reverts("token: holders and amounts differ"):
        load("Token", "gpunet", "GPU", [alice], [1, 2])


def test_genesis_rejects_zero_holder(alice: str) -> None:
    with boa.reverts("token: zero holder"):
        load("Token", "gpunet", "GPU", [alice, "0x" + "00" * 20], [1, 2])


def test_genesis_with_no_holders_has_no_supply() -> None:
    token = load("Token", "gpunet", "GPU", [], [])
    assert token.totalSupply() == 0


def test_genesis_accepts_sixteen_holders_and_the_maximal_supply() -> None:
    holders = [str(boa.env.generate_address(f"pool{i}")) for i in range(16)]
    amounts = [0] * 15 + [MAX_UINT256]
    token = load("Token", "gpunet", "GPU", holders, amounts)
    assert token.totalSupply() == MAX_UINT256
    assert token.balanceOf(holders[-1]) == MAX_UINT256


def test_genesis_reverts_when_the_supply_would_overflow(alice: str, bob: str) -> None:
    with boa.reverts():
        load("Token", "gpunet", "GPU", [alice, bob], [MAX_UINT256, 1])


# ---------------------------------------------------------------- transfers
def test_transfer_moves_balance_and_keeps_supply(token: Any, admin: str, alice: str) -> None:
    with boa.env.prank(admin):
        assert token.transfer(alice, 7)
    events = token.get_logs()
    assert [type(e).__name__ for e in events] == ["Transfer"]
    assert token.balanceOf(alice) == 7
    assert token.balanceOf(admin) == TOTAL_SUPPLY - 7
    assert token.totalSupply() == TOTAL_SUPPLY


def test_transfer_costs_less_than_budget(token: Any, admin: str, alice: str) -> None:
    with boa.env.prank(admin):
        token.transfer(alice, 7)
    assert token._computation.get_gas_used() < TRANSFER_GAS_BUDGET


def test_transfer_of_zero_is_allowed(token: Any, admin: str, alice: str) -> None:
    with boa.env.prank(admin):
        assert token.transfer(alice, 0)
    assert token.balanceOf(alice) == 0


def test_transfer_above_balance_reverts(token: Any, alice: str, bob: str) -> None:
    with boa.env.prank(alice), boa.reverts("erc20: transfer amount exceeds balance"):
        token.transfer(bob, 1)


def test_transfer_to_zero_address_reverts(token: Any, admin: str) -> None:
    with boa.env.prank(admin), boa.reverts("erc20: transfer to the zero address"):
        token.transfer("0x" + "00" * 20, 1)


def test_burn_by_sending_to_dead_keeps_total_supply(token: Any, admin: str) -> None:
    with boa.env.prank(admin):
        token.transfer(BURN_ADDRESS, TOTAL_SUPPLY)
    assert token.balanceOf(BURN_ADDRESS) == TOTAL_SUPPLY
    assert token.totalSupply() == TOTAL_SUPPLY


def test_transfer_from_spends_allowance(token: Any, admin: str, alice: str, bob: str) -> None:
    with boa.env.prank(admin):
        token.approve(alice, 10)
    with boa.env.prank(alice):
        token.transferFrom(admin, bob, 4)
    assert token.allowance(admin, alice) == 6
    assert token.balanceOf(bob) == 4


def test_transfer_from_above_allowance_reverts(token: Any, admin: str, alice: str) -> None:
    with boa.env.prank(admin):
        token.approve(alice, 3)
    with boa.env.prank(alice), boa.reverts("erc20: insufficient allowance"):
        token.transferFrom(admin, alice, 4)


def test_maximal_allowance_is_never_spent(token: Any, admin: str, alice: str) -> None:
    with boa.env.prank(admin):
        token.approve(alice, MAX_UINT256)
    with boa.env.prank(alice):
        token.transferFrom(admin, alice, TOTAL_SUPPLY)
    assert token.allowance(admin, alice) == MAX_UINT256


# ---------------------------------------------------------------- permit
def test_permit_sets_allowance_from_a_signature(token: Any, alice: str) -> None:
    key = Account.create()
    deadline = now() + 3600
    signed = _permit_signature(token, key, alice, 123, deadline)
    r, s = signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")
    token.permit(key.address, alice, 123, deadline, signed.v, r, s)
    assert token.allowance(key.address, alice) == 123
    assert token.nonces(key.address) == 1
    with boa.reverts("erc20: invalid signature"):
        token.permit(key.address, alice, 123, deadline, signed.v, r, s)


def test_permit_after_deadline_reverts(token: Any, alice: str) -> None:
    key = Account.create()
    deadline = now() + 10
    signed = _permit_signature(token, key, alice, 1, deadline)
    boa.env.time_travel(seconds=11)
    with boa.reverts("erc20: expired deadline"):
        token.permit(
            key.address,
            alice,
            1,
            deadline,
            signed.v,
            signed.r.to_bytes(32, "big"),
            signed.s.to_bytes(32, "big"),
        )


# ---------------------------------------------------------------- partner token
def test_partner_token_mints_supply_to_holder(usd: Any, admin: str) -> None:
    assert (usd.name(), usd.symbol(), usd.decimals()) == ("USD Coin", "USDC", 6)
    assert usd.totalSupply() == USD_SUPPLY
    assert usd.balanceOf(admin) == USD_SUPPLY
    assert _functions(usd) == EXPORTED


def test_partner_token_rejects_zero_holder() -> None:
    with boa.reverts("token: zero holder"):
        load("PartnerToken", "Partner", "PRT", 18, "0x" + "00" * 20, 1)


def test_partner_token_accepts_maximal_supply(alice: str) -> None:
    partner = load("PartnerToken", "Partner", "PRT", 18, alice, MAX_UINT256)
    assert partner.balanceOf(alice) == MAX_UINT256
    with boa.env.prank(alice):
        partner.transfer(BURN_ADDRESS, MAX_UINT256)
    assert partner.totalSupply() == MAX_UINT256
