"""``gpunet chain|vesting|supply``: the token on chain (see also ``claims``, ``staking``).

Every command talks to one chain: the in-process chain kept in ``--data-dir`` (default
``$GPUNET_HOME/chain``), or, with ``--rpc-url``, any EVM node, signing with ``--key``.
On the in-process chain ``--key`` only picks the sending address (no password is
asked: the chain trusts whoever may write its data directory); left out, the sender
is the local deployer, which holds every role of a default deployment.

Token amounts are written in tokens (``1.5``); partner amounts in the partner token's
own decimals; durations as seconds or with a unit (``90d``, ``2w``, ``4y``). With
``--json`` integers from the chain are strings (a uint256 exceeds JSON's safe range),
except ``claim``'s epochs, which follow the indexer's reward list.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from gpunet.cli.console import gpunet_home, note, out, print_json
from gpunet.cli.keys import KeysDir, ask_password
from gpunet.errors import ConfigError, ValidationError
from gpunet.protocol.units import format_tokens

if TYPE_CHECKING:
    from gpunet.chain.backend import Backend, Receipt
    from gpunet.chain.client import Chain

RPC_URL_ENV = "GPUNET_CHAIN_RPC_URL"
DATA_DIR_ENV = "GPUNET_CHAIN_DIR"
_UNITS_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800, "y": 31_557_600}

app = typer.Typer(
    help="Deploy the gpunet contracts and inspect a deployment.", no_args_is_help=True
)
vesting_app = typer.Typer(help="Vesting schedules of the genesis pools.", no_args_is_help=True)

RpcUrl = Annotated[
    str | None,
    typer.Option(
        "--rpc-url",
        envvar=RPC_URL_ENV,
        help=f"JSON-RPC URL of an EVM node (${RPC_URL_ENV}). Default: the in-process chain.",
        show_default=False,
    ),
]
Key = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="Key that sends (see `gpunet keys`); required with --rpc-url. "
        "Default on the in-process chain: the local deployer.",
        show_default=False,
    ),
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar=DATA_DIR_ENV,
        help=f"Chain state and deployment records (${DATA_DIR_ENV}). Default: $GPUNET_HOME/chain.",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Duration = Annotated[
    str, typer.Option("--duration", help="Seconds, or a number with s, m, h, d, w or y (90d).")
]


def data_dir_or_default(data_dir: Path | None) -> Path:
    return data_dir or gpunet_home() / "chain"


def open_backend(
    rpc_url: str | None, key: str | None, keys_dir: Path | None, data_dir: Path | None
) -> Backend:
    """The chain the options name (tests replace this)."""
    if rpc_url:
        from gpunet.chain.rpc import RpcChain
        from gpunet.keys import load_key

        if not key:
            raise ValidationError("--key", key, "a JSON-RPC chain needs a key to sign with")
        return RpcChain(rpc_url, [load_key(key, ask_password(confirm=False), keys_dir)])
    from gpunet.chain.inprocess import LOCAL_DEPLOYER, InProcessChain
    from gpunet.keys import show_key

    sender = show_key(key, keys_dir).address if key else LOCAL_DEPLOYER
    return InProcessChain(data_dir_or_default(data_dir), default_sender=sender)


def open_chain(
    rpc_url: str | None, key: str | None, keys_dir: Path | None, data_dir: Path | None
) -> Chain:
    """The deployment recorded in the data directory, on the chain the options name."""
    from gpunet.chain.client import Chain

    backend = open_backend(rpc_url, key, keys_dir, data_dir)
    return Chain.open(backend, data_dir_or_default(data_dir))


def parse_duration(text: str) -> int:
    """Seconds from ``3600``, ``90d``, ``2w``, ``4y`` (a year is 365.25 days)."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdwy]?)\s*", text)
    if not match:
        raise ValidationError("--duration", text, "write seconds or a number with s/m/h/d/w/y")
    return int(match.group(1)) * _UNITS_S[match.group(2) or "s"]


def parse_units(text: str, decimals: int, field: str) -> int:
    """Base units of a decimal amount of a token with ``decimals`` decimals."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValidationError(field, text, "not a number; write it like 2.5") from None
    scaled = value * (Decimal(10) ** decimals)
    if not value.is_finite() or scaled != scaled.to_integral_value() or value < 0:
        raise ValidationError(field, text, f"must be positive with at most {decimals} decimals")
    return int(scaled)


def jsonable(value: Any) -> Any:
    """Event arguments as JSON: bytes as hex, integers as strings."""
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    events = [
        {"contract": e.address, "event": e.name, "args": jsonable(e.args)} for e in receipt.events
    ]
    return {
        "tx_hash": receipt.tx_hash,
        "block": receipt.block_number,
        "gas_used": receipt.gas_used,
        "events": events,
    }


def report(receipt: Receipt, message: str, as_json: bool, **extra: Any) -> None:
    """One line for people, or the receipt and ``extra`` as JSON."""
    if as_json:
        print_json({**jsonable(extra), **receipt_json(receipt)})
        return
    out.print(f"{message} (tx {receipt.tx_hash[:18]}..., gas {receipt.gas_used:,})")


@app.command("deploy")
def deploy(
    config: Annotated[
        Path,
        typer.Option("--config", help="Deployment config (TOML), see examples/chain/local.toml."),
    ],
    rpc_url: RpcUrl = None,
    key: Key = None,
    keys_dir: KeysDir = None,
    data_dir: DataDir = None,
    force: Annotated[
        bool, typer.Option("--force", help="Deploy a new set even if one is recorded.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Deploy every contract, mint the genesis pools and record the addresses.

    The record goes to DATA_DIR/deployment-<chain id>.json; later commands read it.
    """
    from gpunet.chain.config import load_config
    from gpunet.chain.deploy import deploy_system, record_path, save_deployment

    cfg = load_config(config)
    backend = open_backend(rpc_url, key, keys_dir, data_dir)
    existing = record_path(data_dir_or_default(data_dir), backend.chain_id)
    if existing.exists() and not force:
        raise ConfigError(
            f"chain {backend.chain_id} already has a deployment recorded in {existing}; "
            "pass --force to deploy a new set (the old contracts stay on chain)"
        )
    note(f"deploying to chain {backend.chain_id} from {backend.default_sender}")
    deployment = deploy_system(backend, cfg)
    path = save_deployment(data_dir_or_default(data_dir), deployment)
    if as_json:
        print_json({"record": str(path), **jsonable(deployment.__dict__)})
        return
    out.print(f"deployed to chain {deployment.chain_id} at block {deployment.block}")
    _print_contracts(deployment.contracts)
    out.print(f"record: {path}")


@app.command("status")
def status(
    rpc_url: RpcUrl = None,
    key: Key = None,
    keys_dir: KeysDir = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Show the chain, its latest block and the recorded deployment."""
    chain = open_chain(rpc_url, key, keys_dir, data_dir)
    d = chain.deployment
    info = {
        "chain_id": d.chain_id,
        "block": chain.backend.block_number(),
        "timestamp": chain.backend.timestamp(),
        "tge": d.tge,
        "config_hash": d.config_hash,
        "contracts": d.contracts,
        "roles": d.roles,
    }
    if as_json:
        print_json(info)
        return
    out.print(f"chain {d.chain_id}, block {info['block']}, time {info['timestamp']}, TGE {d.tge}")
    _print_contracts(d.contracts)


@app.command("balance")
def balance(
    account: Annotated[str, typer.Argument(help="Address (0x...).")],
    token: Annotated[
        str | None,
        typer.Option(help="ERC-20 address. Default: the gpunet token.", show_default=False),
    ] = None,
    rpc_url: RpcUrl = None,
    key: Key = None,
    keys_dir: KeysDir = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Show an account's balance of the gpunet token, or of another token."""
    chain = open_chain(rpc_url, key, keys_dir, data_dir)
    amount = chain.balance(account, token)
    if as_json:
        print_json(
            {"account": account, "token": token or chain.token.address, "balance": str(amount)}
        )
        return
    shown = format_tokens(amount) + " tokens" if token is None else f"{amount} base units"
    out.print(f"{account}: {shown}")


@app.command("advance-time")
def advance_time(
    duration: Annotated[str, typer.Argument(help="How far: seconds, or 90d, 2w, 1y.")],
    rpc_url: RpcUrl = None,
    key: Key = None,
    keys_dir: KeysDir = None,
    data_dir: DataDir = None,
) -> None:
    """Move a local chain's clock forward, to watch vesting and unstaking happen.

    The in-process chain records it for every process; Hardhat and Anvil take it too.
    """
    backend = open_backend(rpc_url, key, keys_dir, data_dir)
    backend.advance_time(parse_duration(duration))
    out.print(f"chain time is now {backend.timestamp()}")


def _print_contracts(contracts: dict[str, str]) -> None:
    table = Table("contract", "address")
    for name, address in contracts.items():
        table.add_row(name, address)
    out.print(table)


@vesting_app.command("show")
def vesting_show(
    address: Annotated[str, typer.Argument(help="Beneficiary address (0x...).")],
    rpc_url: RpcUrl = None,
    key: Key = None,
    keys_dir: KeysDir = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Show a beneficiary's schedules: total, vested, released and releasable now."""
    schedules = open_chain(rpc_url, key, keys_dir, data_dir).vesting_show(address)
    if as_json:
        print_json({"beneficiary": address, "schedules": jsonable([s.__dict__ for s in schedules])})
        return
    table = Table("id", "total", "vested", "released", "releasable", "cliff (d)", "linear (d)")
    for s in schedules:
        table.add_row(
            str(s.id),
            *(format_tokens(v) for v in (s.total, s.vested, s.released, s.releasable)),
            str(s.cliff_s // 86_400),
            str(s.linear_s // 86_400),
        )
    out.print(table if schedules else f"no vesting schedules for {address}")


@vesting_app.command("release")
def vesting_release(
    schedule_id: Annotated[int, typer.Argument(help="Schedule id (see `vesting show`).")],
    rpc_url: RpcUrl = None,
    key: Key = None,
    keys_dir: KeysDir = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Pay a schedule's releasable tokens to its beneficiary (anyone may send it)."""
    chain = open_chain(rpc_url, key, keys_dir, data_dir)
    receipt = chain.vesting_release(schedule_id)
    amount = receipt.events_named("Released")[0].args["amount"]
    report(receipt, f"released {format_tokens(amount)} tokens", as_json, amount=amount)


def supply(
    rpc_url: RpcUrl = None,
    key: Key = None,
    keys_dir: KeysDir = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Where the fixed supply is: circulating, vesting, unemitted, staked, burned, by pool."""
    s = open_chain(rpc_url, key, keys_dir, data_dir).supply()
    if as_json:
        print_json(jsonable({**s.__dict__, "by_pool": [p.__dict__ for p in s.by_pool]}))
        return
    for label in (
        "total",
        "circulating",
        "vesting_locked",
        "emission_unemitted",
        "staked",
        "burned",
    ):
        out.print(f"{label + ':':<20}{format_tokens(getattr(s, label)):>24}")
    table = Table("pool", "kind", "amount", "locked")
    for p in s.by_pool:
        table.add_row(p.name, p.kind, format_tokens(p.amount), format_tokens(p.locked))
    out.print(table)
