"""Operator and client keys, kept as standard Ethereum keystore (v3 JSON) files.

Each key lives in ``<keys_dir>/<name>.json``, encrypted with a password, in the format
geth, MetaMask and eth-account read, so a key made here can be used by any wallet and
back. The default directory is ``~/.gpunet/keys``, or ``$GPUNET_HOME/keys`` when
``GPUNET_HOME`` is set. Files are written atomically with mode 0600 in a 0700 directory.

Encryption uses eth-account's default KDF (scrypt with its standard, deliberately slow
cost) unless a caller passes ``kdf="pbkdf2"`` and a small ``iterations``: tests do that
to stay fast; real keys should keep the default.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from gpunet.errors import KeystoreError

__all__ = [
    "KeyInfo",
    "KeystoreError",
    "default_keys_dir",
    "import_key",
    "list_keys",
    "load_key",
    "new_key",
    "resolve_password",
    "show_key",
]

log = logging.getLogger("gpunet.keys")

Kdf = Literal["scrypt", "pbkdf2"]
PASSWORD_ENV = "GPUNET_KEY_PASSWORD"
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PRIVATE_KEY_RE = re.compile(r"(0x)?[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class KeyInfo:
    """A stored key: its name, checksummed address and keystore file."""

    name: str
    address: str
    path: Path


def default_keys_dir() -> Path:
    """Return ``$GPUNET_HOME/keys`` if GPUNET_HOME is set, else ``~/.gpunet/keys``."""
    home = os.environ.get("GPUNET_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".gpunet"
    return base / "keys"


def new_key(
    name: str,
    password: str,
    keys_dir: Path | None = None,
    *,
    kdf: Kdf | None = None,
    iterations: int | None = None,
) -> KeyInfo:
    """Create a random key and store it encrypted; refuses a name already in use."""
    account: LocalAccount = Account.create()
    return _store(name, bytes(account.key), password, keys_dir, kdf, iterations)


def import_key(
    name: str,
    private_key_hex: str,
    password: str,
    keys_dir: Path | None = None,
    *,
    kdf: Kdf | None = None,
    iterations: int | None = None,
) -> KeyInfo:
    """Store an existing private key (64 hex digits, ``0x`` optional) under ``name``."""
    key_hex = private_key_hex.strip()
    if not _PRIVATE_KEY_RE.fullmatch(key_hex):
        # Never echo the value: it is a secret. Its length is enough to spot the mistake.
        raise KeystoreError(
            f"private key for {name!r} is not 64 hex digits (got {len(key_hex)} characters); "
            "pass the raw key, optionally prefixed with 0x"
        )
    return _store(
        name, bytes.fromhex(key_hex.removeprefix("0x")), password, keys_dir, kdf, iterations
    )


def load_key(name: str, password: str, keys_dir: Path | None = None) -> LocalAccount:
    """Decrypt the key ``name``; KeystoreError names the file on a wrong password."""
    path = _existing_path(name, keys_dir)
    keystore = _read_keystore(path)
    try:
        private_key = Account.decrypt(keystore, password)
    except ValueError as exc:  # eth-keyfile says "MAC mismatch" for a wrong password
        raise KeystoreError(
            f"cannot decrypt key file {path}: wrong password ({exc}); "
            f"check the password or the {PASSWORD_ENV} environment variable"
        ) from exc
    except (KeyError, TypeError) as exc:
        raise KeystoreError(
            f"key file {path} is not a valid keystore v3 file (missing or bad {exc}); "
            "restore it from a backup or import the key again"
        ) from exc
    account: LocalAccount = Account.from_key(private_key)
    return account


def show_key(name: str, keys_dir: Path | None = None) -> KeyInfo:
    """Return the key's address without decrypting it (keystore files carry it)."""
    path = _existing_path(name, keys_dir)
    return KeyInfo(name=name, address=_keystore_address(path), path=path)


def list_keys(keys_dir: Path | None = None) -> list[KeyInfo]:
    """Return the stored keys sorted by name; unreadable files are logged and skipped."""
    directory = keys_dir or default_keys_dir()
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("*.json")):
        if not _NAME_RE.fullmatch(path.stem):
            log.warning("skipping %s: its name is not a valid key name", path)
            continue
        try:
            found.append(KeyInfo(name=path.stem, address=_keystore_address(path), path=path))
        except KeystoreError as exc:
            log.warning("skipping %s: %s", path, exc)
    return found


def resolve_password(
    env_var: str = PASSWORD_ENV, prompt: Callable[[str], str] | None = None
) -> str:
    """Return the password from ``env_var`` if set and non-empty, else ask ``prompt``."""
    from_env = os.environ.get(env_var)
    if from_env:
        return from_env
    if prompt is None:
        raise KeystoreError(
            f"no key password: environment variable {env_var} is unset or empty and there "
            f"is no terminal to ask; set {env_var}"
        )
    return prompt("Key password: ")


def key_path(name: str, keys_dir: Path | None = None) -> Path:
    """Return the keystore file for ``name``; KeystoreError if the name is not allowed."""
    if not _NAME_RE.fullmatch(name):
        raise KeystoreError(
            f"key name {name!r} is not allowed; use 1 to 64 letters, digits, '_', '.' or '-'"
        )
    return (keys_dir or default_keys_dir()) / f"{name}.json"


def _existing_path(name: str, keys_dir: Path | None) -> Path:
    path = key_path(name, keys_dir)
    if not path.is_file():
        raise KeystoreError(
            f"no key named {name!r} (looked for {path}); "
            "run `gpunet keys list` to see the stored keys"
        )
    return path


def _store(
    name: str,
    private_key: bytes,
    password: str,
    keys_dir: Path | None,
    kdf: Kdf | None,
    iterations: int | None,
) -> KeyInfo:
    path = key_path(name, keys_dir)
    if path.exists():
        raise KeystoreError(
            f"key {name!r} already exists at {path}; choose another name "
            "or move that file away first (it may hold the only copy of a key)"
        )
    keystore = Account.encrypt(private_key, password, kdf=kdf, iterations=iterations)
    _ensure_private_dir(path.parent)
    _write_atomic(path, json.dumps(keystore, indent=2).encode())
    return KeyInfo(name=name, address=to_checksum_address("0x" + keystore["address"]), path=path)


def _read_keystore(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeystoreError(
            f"cannot read key file {path}: {exc}; restore it from a backup"
        ) from exc
    if not isinstance(data, dict):
        raise KeystoreError(
            f"key file {path} holds a {type(data).__name__}, not a keystore JSON object; "
            "restore it from a backup"
        )
    return data


def _keystore_address(path: Path) -> str:
    address = _read_keystore(path).get("address")
    try:
        return to_checksum_address("0x" + str(address).removeprefix("0x"))
    except ValueError as exc:
        raise KeystoreError(
            f"key file {path} has address {address!r}, not a 20-byte hex address; "
            "restore it from a backup"
        ) from exc


def _ensure_private_dir(directory: Path) -> None:
    if directory.is_dir():
        return
    directory.mkdir(parents=True, mode=0o700)
    os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask


def _write_atomic(path: Path, content: bytes) -> None:
    """Write ``content`` so that ``path`` is either absent or complete, never partial."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            os.fchmod(tmp.fileno(), 0o600)
            tmp.write(content)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; Windows cannot open a directory, so skip there.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
