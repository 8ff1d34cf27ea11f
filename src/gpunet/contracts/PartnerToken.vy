# pragma version ~=0.4.3
"""
@title Partner token
@custom:contract-name PartnerToken
@license Apache-2.0
@notice A plain fixed-supply ERC-20 (snekmate, with permit) for partners' reward
        tokens and for a local stablecoin in tests and local networks. The whole
        supply goes to one holder at deployment; there is no mint, burn or owner.
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

EIP712_VERSION: constant(String[20]) = "1"


@deploy
def __init__(name: String[25], symbol: String[5], decimals: uint8, holder: address, supply: uint256):
    """
    @dev Mints `supply` to `holder` once.
    @param name The token name (also the EIP-712 domain name).
    @param symbol The token symbol.
    @param decimals The decimal places (6 for a USD stablecoin, 18 for most tokens).
    @param holder Receives the whole supply; must not be the zero address.
    @param supply The fixed supply in base units.
    """
    assert holder != empty(address), "token: zero holder"
    ownable.__init__()
    erc20.__init__(name, symbol, decimals, name, EIP712_VERSION)
    erc20._mint(holder, supply)
    erc20.is_minter[msg.sender] = False
    log erc20.RoleMinterChanged(minter=msg.sender, status=False)
