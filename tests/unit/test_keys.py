"""Key management with Ethereum keystore v3 files."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Literal, TypedDict

import pytest
from eth_account import Account

from gpunet.keys import (
    KeyInfo,
    KeystoreError,
    default_keys_dir,
    import_key,
    list_keys,
    load_key,
    new_key,
    resolve_password,
    show_key,
)

# The example key from the web3.py / eth-account documentation, and its address.
KNOWN_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
KNOWN_ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"


class FastKdf(TypedDict):
    kdf: Literal["pbkdf2"]
    iterations: int


FAST: FastKdf = {"kdf": "pbkdf2", "iterations": 2}  # keeps tests fast; real keys use scrypt


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    return tmp_path / "home" / "keys"


def test_new_then_load_roundtrip(keys_dir: Path) -> None:
    info = new_key("operator", "s3cret", keys_dir, **FAST)

    account = load_key("operator", "s3cret", keys_dir)

    assert account.address == info.address
    assert info.path == keys_dir / "operator.json"
    assert json.loads(info.path.read_text())["version"] == 3


def test_default_kdf_is_scrypt(keys_dir: Path) -> None:
    info = import_key("client", KNOWN_KEY, "pw", keys_dir)

    assert json.loads(info.path.read_text())["crypto"]["kdf"] == "scrypt"


def test_import_known_key_gives_known_address(keys_dir: Path) -> None:
    info = import_key("client", KNOWN_KEY, "pw", keys_dir, **FAST)

    assert info == KeyInfo("client", KNOWN_ADDRESS, keys_dir / "client.json")
    assert load_key("client", "pw", keys_dir).key.hex() == KNOWN_KEY.removeprefix("0x")


def test_import_accepts_key_without_0x(keys_dir: Path) -> None:
    info = import_key("c", KNOWN_KEY[2:], "pw", keys_dir, **FAST)

    assert info.address == KNOWN_ADDRESS


def test_import_rejects_malformed_key_without_echoing_it(keys_dir: Path) -> None:
    with pytest.raises(KeystoreError, match="not 64 hex digits") as caught:
        import_key("c", KNOWN_KEY[:-2] + "zz", "pw", keys_dir)

    assert KNOWN_KEY[4:20] not in str(caught.value)
    assert not keys_dir.exists()


def test_keystore_is_readable_by_eth_account(keys_dir: Path) -> None:
    info = import_key("c", KNOWN_KEY, "pw", keys_dir, **FAST)

    private_key = Account.decrypt(info.path.read_text(), "pw")

    assert Account.from_key(private_key).address == KNOWN_ADDRESS


def test_wrong_password_names_the_file(keys_dir: Path) -> None:
    info = new_key("operator", "right", keys_dir, **FAST)

    with pytest.raises(KeystoreError, match="wrong password") as caught:
        load_key("operator", "wrong", keys_dir)

    assert str(info.path) in str(caught.value)


def test_load_missing_key_says_what_to_do(keys_dir: Path) -> None:
    with pytest.raises(KeystoreError, match=r"no key named 'ghost'.*gpunet keys list"):
        load_key("ghost", "pw", keys_dir)


def test_load_corrupt_file_names_the_file(keys_dir: Path) -> None:
    keys_dir.mkdir(parents=True)
    (keys_dir / "bad.json").write_text("{not json")

    with pytest.raises(KeystoreError, match=r"cannot read key file .*bad\.json"):
        load_key("bad", "pw", keys_dir)


def test_load_file_missing_crypto_section(keys_dir: Path) -> None:
    keys_dir.mkdir(parents=True)
    (keys_dir / "half.json").write_text(json.dumps({"version": 3, "address": "00" * 20}))

    with pytest.raises(KeystoreError, match=r"half\.json is not a valid keystore"):
        load_key("half", "pw", keys_dir)


def test_refuses_to_overwrite(keys_dir: Path) -> None:
    first = import_key("op", KNOWN_KEY, "pw", keys_dir, **FAST)
    before = first.path.read_bytes()

    with pytest.raises(KeystoreError, match=r"key 'op' already exists at .*op\.json"):
        new_key("op", "pw", keys_dir, **FAST)

    assert first.path.read_bytes() == before


@pytest.mark.parametrize("name", ["", "a/b", "../x", "with space", "é", "x" * 65])
def test_bad_names_are_refused(keys_dir: Path, name: str) -> None:
    with pytest.raises(KeystoreError, match="is not allowed"):
        new_key(name, "pw", keys_dir, **FAST)

    assert not keys_dir.exists()


@pytest.mark.parametrize("name", ["a", "op-1", "team.main", "A_b", "x" * 64])
def test_good_names_are_accepted(keys_dir: Path, name: str) -> None:
    assert new_key(name, "pw", keys_dir, **FAST).name == name


def test_file_is_0600_and_dir_is_0700(keys_dir: Path) -> None:
    info = new_key("op", "pw", keys_dir, **FAST)

    assert stat.S_IMODE(info.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    assert [p.name for p in keys_dir.iterdir()] == ["op.json"]  # no temp file left


def test_list_and_show(keys_dir: Path) -> None:
    b = import_key("b", KNOWN_KEY, "pw", keys_dir, **FAST)
    a = new_key("a", "pw", keys_dir, **FAST)

    assert list_keys(keys_dir) == [a, b]
    assert show_key("b", keys_dir) == b


def test_list_skips_unreadable_files(keys_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = import_key("good", KNOWN_KEY, "pw", keys_dir, **FAST)
    (keys_dir / "broken.json").write_text("[]")
    (keys_dir / "notes.txt").write_text("not a key")

    assert list_keys(keys_dir) == [good]
    assert "broken.json" in caplog.text


def test_list_of_missing_dir_is_empty(tmp_path: Path) -> None:
    assert list_keys(tmp_path / "nothing") == []


def test_default_keys_dir_follows_gpunet_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GPUNET_HOME", str(tmp_path))
    assert default_keys_dir() == tmp_path / "keys"

    monkeypatch.delenv("GPUNET_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert default_keys_dir() == tmp_path / "user" / ".gpunet" / "keys"


def test_keys_dir_defaults_to_gpunet_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GPUNET_HOME", str(tmp_path))

    info = new_key("op", "pw", **FAST)

    assert info.path == tmp_path / "keys" / "op.json"
    assert list_keys() == [info]


def test_password_from_env_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUNET_KEY_PASSWORD", "from-env")

    assert resolve_password(prompt=lambda _: "from-prompt") == "from-env"


def test_password_from_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPUNET_KEY_PASSWORD", raising=False)
    asked: list[str] = []

    def prompt(message: str) -> str:
        asked.append(message)
        return "typed"

    assert resolve_password(prompt=prompt) == "typed"
    assert len(asked) == 1


def test_no_password_source_says_which_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_PW", "")

    with pytest.raises(KeystoreError, match="set MY_PW"):
        resolve_password("MY_PW")
