"""``gpunet deposit|withdraw|balance|earnings``: a buyer's deposit, an operator's earnings.

Also what the buyer's commands share: the ``--key`` option (default ``buyer``), the
signed client, and an address read from a key file without its password.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gpunet.api.jobs import AccountView
from gpunet.cli.console import INDEXER_OPTION, note, out, print_json
from gpunet.cli.keys import KeysDir, ask_password, load_or_create_key
from gpunet.errors import ValidationError
from gpunet.protocol.units import format_usd, parse_usd
from gpunet.sdk import DEFAULT_INDEXER_URL, Client

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

BUYER_KEY = "buyer"
OPERATOR_KEY = "operator"

BuyerKey = Annotated[
    str,
    typer.Option(
        "--key", help="Buyer key name (see `gpunet keys`); created (and printed) if missing."
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the indexer's JSON answer.")]
Usd = Annotated[str, typer.Argument(help="Amount in USD, like 25 or 12.50.", show_default=False)]


def open_client(indexer: str, account: LocalAccount | None = None) -> Client:
    """The client every command of this family talks through (tests replace it)."""
    return Client(indexer, account)


def buyer_account(key: str, keys_dir: Path | None, *, create: bool = True) -> LocalAccount:
    """Load the buyer key; unless ``create`` is false, create it first if it is missing.

    Commands that act on an existing job or session do not create a key: a new key
    cannot own anything yet.
    """
    if not create:
        from gpunet.keys import load_key

        key_address(key, keys_dir)  # a missing key fails here, before the password prompt
        return load_key(key, ask_password(confirm=False), keys_dir)
    account, info, created = load_or_create_key(key, keys_dir)
    if created:
        note(f"created key {info.name}: address {info.address}, file {info.path}")
    return account


def key_address(key: str, keys_dir: Path | None) -> str:
    """The address of a stored key, read without its password."""
    from gpunet.keys import show_key

    return show_key(key, keys_dir).address


def deposit(
    amount: Usd,
    indexer: Annotated[str, INDEXER_OPTION] = DEFAULT_INDEXER_URL,
    key: BuyerKey = BUYER_KEY,
    keys_dir: KeysDir = None,
    auto_topup: Annotated[
        str | None,
        typer.Option(
            "--auto-topup",
            help="Also top up by this many USD whenever the available deposit falls below "
            "--threshold, at most --limit USD in all; 0 turns it off.",
            show_default=False,
        ),
    ] = None,
    threshold: Annotated[
        str | None, typer.Option(help="Auto top-up threshold in USD.", show_default=False)
    ] = None,
    limit: Annotated[
        str | None, typer.Option(help="Most USD auto top-up may add in all.", show_default=False)
    ] = None,
) -> None:
    """Add USD to your deposit, from which jobs are held and paid.

    AMOUNT may be 0 when only setting the auto top-up rule.
    """
    amount_micros = parse_usd(amount, "amount")
    rule = _topup_rule(auto_topup, threshold, limit)
    if amount_micros <= 0 and rule is None:
        raise ValidationError("amount", amount, "must be more than 0 USD")
    views: list[AccountView] = []
    with open_client(indexer, buyer_account(key, keys_dir)) as client:
        if amount_micros > 0:
            views.append(client.deposit(amount_micros))
            out.print(f"deposited {format_usd(amount_micros)} USD")
        if rule is not None:
            views.append(client.set_auto_topup(*rule))
            out.print("auto top-up " + ("set" if rule[0] else "turned off"))
    print_balance(views[-1])


def _topup_rule(
    amount: str | None, threshold: str | None, limit: str | None
) -> tuple[int, int, int] | None:
    """(amount, threshold, limit) in micro-dollars, or None when no option was given."""
    if amount is None and threshold is None and limit is None:
        return None
    amount_micros = parse_usd(amount or "0", "--auto-topup")
    given = {"--auto-topup": amount, "--threshold": threshold, "--limit": limit}
    missing = [name for name, value in given.items() if value is None]
    if missing and (amount is None or amount_micros):
        raise ValidationError(
            "auto top-up",
            ", ".join(missing),
            "is missing; give --auto-topup, --threshold and --limit together "
            "(or --auto-topup 0 to turn it off)",
        )
    return (
        amount_micros,
        parse_usd(threshold or "0", "--threshold"),
        parse_usd(limit or "0", "--limit"),
    )


def withdraw(
    amount: Usd,
    indexer: Annotated[str, INDEXER_OPTION] = DEFAULT_INDEXER_URL,
    key: BuyerKey = BUYER_KEY,
    keys_dir: KeysDir = None,
) -> None:
    """Pay out USD from your available deposit (funds held for jobs stay held)."""
    amount_micros = parse_usd(amount, "amount")
    with open_client(indexer, buyer_account(key, keys_dir)) as client:
        view = client.withdraw(amount_micros)
    out.print(f"withdrew {format_usd(amount_micros)} USD")
    print_balance(view)


def balance(
    address: Annotated[
        str | None,
        typer.Argument(
            help="Address (0x...). Default: the --key key's address.", show_default=False
        ),
    ] = None,
    indexer: Annotated[str, INDEXER_OPTION] = DEFAULT_INDEXER_URL,
    key: Annotated[str, typer.Option("--key", help="Key whose address to show.")] = BUYER_KEY,
    keys_dir: KeysDir = None,
    as_json: AsJson = False,
) -> None:
    """Show a deposit: available, held for running jobs, deposited, withdrawn, top-up."""
    with open_client(indexer) as client:
        view = client.get_account(address or key_address(key, keys_dir))
    if as_json:
        print_json(view.model_dump(mode="json"))
        return
    print_balance(view)


def earnings(
    address: Annotated[
        str | None,
        typer.Argument(
            help="Operator address (0x...). Default: the --key key's address.", show_default=False
        ),
    ] = None,
    indexer: Annotated[str, INDEXER_OPTION] = DEFAULT_INDEXER_URL,
    key: Annotated[str, typer.Option("--key", help="Operator key name.")] = OPERATOR_KEY,
    keys_dir: KeysDir = None,
    as_json: AsJson = False,
) -> None:
    """Show an operator's earnings from settled jobs (after the protocol fee)."""
    with open_client(indexer) as client:
        view = client.get_account(address or key_address(key, keys_dir))
    if as_json:
        print_json(
            {
                "address": view.address,
                "earned_micros": view.earned_micros,
                "jobs_paid": view.jobs_paid,
            }
        )
        return
    out.print(f"operator {view.address}")
    out.print(f"  earned:    {format_usd(view.earned_micros)} USD")
    out.print(f"  jobs paid: {view.jobs_paid}")


def print_balance(view: AccountView) -> None:
    out.print(f"account {view.address}")
    out.print(f"  available: {format_usd(view.available_micros)} USD")
    out.print(f"  held:      {format_usd(view.held_micros)} USD (for open jobs and sessions)")
    out.print(f"  deposited: {format_usd(view.deposited_micros)} USD")
    out.print(f"  withdrawn: {format_usd(view.withdrawn_micros)} USD")
    if view.auto_topup_amount_micros:
        out.print(
            f"  auto top-up: {format_usd(view.auto_topup_amount_micros)} USD below "
            f"{format_usd(view.auto_topup_threshold_micros)} USD, "
            f"{format_usd(view.auto_topup_used_micros)} of "
            f"{format_usd(view.auto_topup_limit_micros)} USD used"
        )
