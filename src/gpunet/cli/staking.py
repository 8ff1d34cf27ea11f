"""``gpunet stake|unstake|lock|unlock|partner``: node collateral, holder locks, partner rewards.

Options and amounts work as in ``gpunet.cli.chain`` (see its docstring).
"""

from __future__ import annotations

from typing import Annotated

import typer

from gpunet.cli.chain import (
    AsJson,
    DataDir,
    Duration,
    Key,
    RpcUrl,
    open_chain,
    parse_duration,
    parse_units,
    report,
)
from gpunet.cli.console import out, print_json
from gpunet.cli.keys import KeysDir
from gpunet.errors import ValidationError
from gpunet.protocol.units import format_tokens, parse_tokens

partner_app = typer.Typer(
    help="Partner reward streams for token lockers: fund one, claim what you earned.",
    no_args_is_help=True,
)


def stake(
    amount: Annotated[str, typer.Argument(help="Tokens to stake as node collateral.")],
    rpc_url: RpcUrl = None,
    key: Key = None,
    keys_dir: KeysDir = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Stake node collateral (the requirement is K of your GPU class x the coefficient)."""
    chain = open_chain(rpc_url, key, keys_dir, data_dir)
    receipt = chain.stake_collateral(parse_tokens(amount))
    collateral = int(chain.staking.call("collateral_of", chain.sender))
    report(
        receipt,
        f"staked {amount}; collateral now {format_tokens(collateral)}",
        as_json,
        collateral=collateral,
    )


def unstake(
    amount: Annotated[str | None, typer.Argument(help="Tokens of collateral to unstake.")] = None,
    withdraw: Annotated[
        bool, typer.Option("--withdraw", help="Take back collateral whose delay has passed.")
    ] = False,
    rpc_url: RpcUrl = None,
    key: Key = None,
    keys_dir: KeysDir = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Request an unstake (ready after the unstaking delay), or --withdraw a ready one."""
    chain = open_chain(rpc_url, key, keys_dir, data_dir)
    if withdraw:
        report(chain.withdraw_unstaked(), "withdrew unstaked collateral", as_json)
        return
    if amount is None:
        raise ValidationError("amount", amount, "give an amount, or --withdraw")
    receipt = chain.request_unstake(parse_tokens(amount))
    ready = receipt.events_named("UnstakeRequested")[0].args["ready_at"]
    report(receipt, f"unstake of {amount} requested; ready at {ready}", as_json, ready_at=ready)


def lock(
    amount: Annotated[str, typer.Argument(help="Tokens to lock.")],
    duration: Duration = "7d",
    rpc_url: RpcUrl = None,
    key: Key = None,
    keys_dir: KeysDir = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Lock tokens to share staking rewards; longer locks weigh more (1x to 4x)."""
    chain = open_chain(rpc_url, key, keys_dir, data_dir)
    receipt = chain.lock(parse_tokens(amount), parse_duration(duration))
    args = receipt.events_named("Locked")[0].args
    report(
        receipt,
        f"lock {args['lock_id']}: {amount} tokens, weight "
        f"{format_tokens(args['weight'])}, ends {args['end']}",
        as_json,
        lock_id=args["lock_id"],
        weight=args["weight"],
        end=args["end"],
    )


def unlock(
    lock_id: Annotated[int, typer.Argument(help="Lock id (printed by `gpunet lock`).")],
    rpc_url: RpcUrl = None,
    key: Key = None,
    keys_dir: KeysDir = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Take back the tokens of an ended lock."""
    chain = open_chain(rpc_url, key, keys_dir, data_dir)
    report(chain.unlock(lock_id), f"unlocked lock {lock_id}", as_json, lock_id=lock_id)


@partner_app.command("fund")
def partner_fund(
    token: Annotated[str, typer.Argument(help="Partner token address (0x...).")],
    amount: Annotated[str, typer.Argument(help="Amount in the partner token's units.")],
    duration: Duration = "30d",
    rpc_url: RpcUrl = None,
    key: Key = None,
    keys_dir: KeysDir = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Stream partner tokens to lockers, pro rata to lock weight, over --duration."""
    chain = open_chain(rpc_url, key, keys_dir, data_dir)
    decimals = int(chain.erc20(token).call("decimals"))
    units = parse_units(amount, decimals, "amount")
    receipt = chain.partner_fund(token, units, parse_duration(duration))
    report(receipt, f"funded {amount} of {token} over {duration}", as_json, amount=units)


@partner_app.command("claim")
def partner_claim(
    token: Annotated[str | None, typer.Argument(help="Reward token. Default: all.")] = None,
    rpc_url: RpcUrl = None,
    key: Key = None,
    keys_dir: KeysDir = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Claim what your locks earned of one reward token, or of all of them."""
    chain = open_chain(rpc_url, key, keys_dir, data_dir)
    receipt = chain.claim_partner_rewards(token)
    paid = [(e.args["token"], e.args["amount"]) for e in receipt.events_named("RewardPaid")]
    text = ", ".join(f"{amount} of {t}" for t, amount in paid) or "nothing"
    report(receipt, f"claimed {text} (base units)", as_json)


@partner_app.command("add-token")
def partner_add_token(
    token: Annotated[str, typer.Argument(help="Token address to allow as a reward.")],
    rpc_url: RpcUrl = None,
    key: Key = None,
    keys_dir: KeysDir = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Allow a partner token as a staking reward stream (admin only; at most 8)."""
    chain = open_chain(rpc_url, key, keys_dir, data_dir)
    report(chain.add_reward_token(token), f"added reward token {token}", as_json)


@partner_app.command("deploy-token")
def partner_deploy_token(
    name: Annotated[str, typer.Option(help="Token name (at most 25 characters).")],
    symbol: Annotated[str, typer.Option(help="Token symbol (at most 5 characters).")],
    supply: Annotated[str, typer.Option(help="Whole tokens minted to the sender.")],
    decimals: Annotated[int, typer.Option(min=0, max=36, help="Decimals.")] = 18,
    rpc_url: RpcUrl = None,
    key: Key = None,
    keys_dir: KeysDir = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Deploy a plain ERC-20 to stream as a reward, for partners without a token here."""
    chain = open_chain(rpc_url, key, keys_dir, data_dir)
    units = parse_units(supply, decimals, "supply")
    address = chain.deploy_partner_token(name, symbol, decimals, units)
    if as_json:
        print_json({"token": address, "holder": chain.sender, "supply": str(units)})
        return
    out.print(f"deployed {symbol} at {address}; {supply} held by {chain.sender}")
