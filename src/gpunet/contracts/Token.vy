# pragma version ~=0.4.3
"""
@title gpunet token
@custom:contract-name Token
@license Apache-2.0
@notice The fixed-supply gpunet token: snekmate's ERC-20 with EIP-2612 permit,
        minted once at deployment to the genesis pools and never again. Only the
        standard ERC-20 and permit functions are exported, so there is no mint, no
        burn and no owner. "Burning" means sending to 0x...dEaD, which keeps
        `totalSupply` constant for the life of the token.
"""

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

exports: (
    erc20.transfer,
    erc20.approve,
    erc20.transferFrom,
    erc20.balanceOf,
    erc20.allowance,
    erc20.totalSupply,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    erc20.permit,
    erc20.nonces,
    erc20.DOMAIN_SEPARATOR,
)

DECIMALS: constant(uint8) = 18
MAX_HOLDERS: constant(uint256) = 16
EIP712_VERSION: constant(String[20]) = "1"


@deploy
def __init__(
    name: String[25],
    symbol: String[5],
    holders: DynArray[address, MAX_HOLDERS],
    amounts: DynArray[uint256, MAX_HOLDERS],
):
    """
    @dev Mints each `amounts[i]` to `holders[i]` once; after this the supply is fixed.
    @param name The token name (also the EIP-712 domain name).
    @param symbol The token symbol.
    @param holders The genesis holders (pools, vesting and distributor contracts).
    @param amounts The base units minted to each holder.
    """
    assert len(holders) == len(amounts), "token: holders and amounts differ"
    ownable.__init__()
    erc20.__init__(name, symbol, DECIMALS, name, EIP712_VERSION)
    for i: uint256 in range(MAX_HOLDERS):
        if i >= len(holders):
            break
        assert holders[i] != empty(address), "token: zero holder"
        erc20._mint(holders[i], amounts[i])
    # The deployer was made a minter by erc20; mint is not exported, but drop the
    # flag anyway so that no address is ever recorded as able to mint.
    erc20.is_minter[msg.sender] = False
    log erc20.RoleMinterChanged(minter=msg.sender, status=False)
