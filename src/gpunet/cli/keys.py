"""``gpunet keys``: create, import, show and list operator keys (keystore v3 files)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from gpunet.cli.console import out, print_json
from gpunet.errors import ConfigError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from gpunet.keys import Kdf, KeyInfo

PRIVATE_KEY_ENV = "GPUNET_PRIVATE_KEY"
KDF_ENV = "GPUNET_KEY_KDF"
KDF_ITERATIONS_ENV = "GPUNET_KEY_KDF_ITERATIONS"

app = typer.Typer(
    help=(
        "Operator keys: Ethereum accounts kept as encrypted keystore v3 files in "
        "$GPUNET_HOME/keys (default ~/.gpunet/keys). The password comes from "
        "$GPUNET_KEY_PASSWORD, else a hidden prompt."
    ),
    no_args_is_help=True,
)

KeysDir = Annotated[
    Path | None,
    typer.Option(
        "--keys-dir",
        help="Keystore directory. Default: $GPUNET_HOME/keys, else ~/.gpunet/keys.",
        show_default=False,
    ),
]
Name = Annotated[str, typer.Argument(help="Key name: 1-64 letters, digits, '_', '.' or '-'.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def ask_password(confirm: bool) -> str:
    """The key password from $GPUNET_KEY_PASSWORD, else a hidden prompt."""
    from gpunet.keys import resolve_password

    def prompt(text: str) -> str:
        answer: str = typer.prompt(text.rstrip(": "), hide_input=True, confirmation_prompt=confirm)
        return answer

    return resolve_password(prompt=prompt)


def kdf_settings() -> tuple[Kdf | None, int | None]:
    """KDF for new key files: eth-account's scrypt unless $GPUNET_KEY_KDF says pbkdf2.

    Tests and throwaway local networks set ``GPUNET_KEY_KDF=pbkdf2`` (and optionally
    ``GPUNET_KEY_KDF_ITERATIONS``) to start fast; real keys should keep scrypt.
    """
    kdf_text = os.environ.get(KDF_ENV, "").strip().lower()
    iterations_text = os.environ.get(KDF_ITERATIONS_ENV, "").strip()
    if iterations_text and not iterations_text.isdigit():
        raise ConfigError(f"{KDF_ITERATIONS_ENV} has value {iterations_text!r}; use a count")
    iterations = int(iterations_text) if iterations_text else None
    if kdf_text == "scrypt":
        return "scrypt", iterations
    if kdf_text == "pbkdf2":
        return "pbkdf2", iterations
    if kdf_text:
        raise ConfigError(f"{KDF_ENV} has value {kdf_text!r}; use scrypt or pbkdf2")
    return None, None


def create_key(name: str, password: str, keys_dir: Path | None) -> KeyInfo:
    """Create key ``name`` with the KDF from the environment."""
    from gpunet.keys import new_key

    kdf, iterations = kdf_settings()
    return new_key(name, password, keys_dir, kdf=kdf, iterations=iterations)


def load_or_create_key(name: str, keys_dir: Path | None) -> tuple[LocalAccount, KeyInfo, bool]:
    """Load key ``name``, creating it first if missing; True when it was created."""
    from gpunet.keys import key_path, load_key, show_key

    created = not key_path(name, keys_dir).exists()
    password = ask_password(confirm=created)
    if created:
        create_key(name, password, keys_dir)
    return load_key(name, password, keys_dir), show_key(name, keys_dir), created


def _info_json(info: KeyInfo) -> dict[str, str]:
    return {"name": info.name, "address": info.address, "path": str(info.path)}


def _print_created(verb: str, info: KeyInfo) -> None:
    out.print(f"{verb} key [bold]{info.name}[/]")
    out.print(f"  address: {info.address}")
    out.print(f"  file:    {info.path}")
    out.print("Back up this file and its password: without both, the key is lost.")


@app.command("new")
def new(name: Name, keys_dir: KeysDir = None) -> None:
    """Create a new random key, encrypted with a password (asked twice)."""
    info = create_key(name, ask_password(confirm=True), keys_dir)
    _print_created("Created", info)


@app.command("import")
def import_(name: Name, keys_dir: KeysDir = None) -> None:
    """Store an existing private key (64 hex digits) from $GPUNET_PRIVATE_KEY or a prompt."""
    from gpunet.keys import import_key

    private_key = os.environ.get(PRIVATE_KEY_ENV) or typer.prompt(
        "Private key (hex)", hide_input=True
    )
    password = ask_password(confirm=True)
    kdf, iterations = kdf_settings()
    info = import_key(name, private_key, password, keys_dir, kdf=kdf, iterations=iterations)
    _print_created("Imported", info)


@app.command("show")
def show(name: Name, keys_dir: KeysDir = None, as_json: AsJson = False) -> None:
    """Print a key's address and file (no password needed)."""
    from gpunet.keys import show_key

    info = show_key(name, keys_dir)
    if as_json:
        print_json(_info_json(info))
        return
    out.print(f"{info.name}  {info.address}  {info.path}")


@app.command("list")
def list_(keys_dir: KeysDir = None, as_json: AsJson = False) -> None:
    """List the stored keys: name, address, file."""
    from gpunet.keys import default_keys_dir, list_keys

    found = list_keys(keys_dir)
    if as_json:
        print_json([_info_json(info) for info in found])
        return
    if not found:
        out.print(
            f"No keys in {keys_dir or default_keys_dir()}; create one with `gpunet keys new`."
        )
        return
    table = Table("name", "address", "file")
    for info in found:
        table.add_row(info.name, info.address, str(info.path))
    out.print(table)
