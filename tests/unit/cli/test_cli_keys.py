"""``gpunet keys``: new, import, show, list in a private GPUNET_HOME."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpunet.cli.keys import kdf_settings
from gpunet.cli.main import app
from gpunet.errors import ConfigError
from gpunet.keys import load_key

# The example key from the eth-account documentation, and its address.
KNOWN_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
KNOWN_ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"


def test_new_key_prints_address_and_file(runner: CliRunner, home: Path) -> None:
    result = runner.invoke(app, ["keys", "new", "alice"])

    assert result.exit_code == 0, result.output
    path = home / "keys" / "alice.json"
    assert str(path) in result.stdout
    assert load_key("alice", "correct horse", home / "keys").address in result.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_new_key_asks_for_the_password_twice(
    runner: CliRunner, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GPUNET_KEY_PASSWORD")

    result = runner.invoke(app, ["keys", "new", "bob"], input="s3cret\ns3cret\n")

    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    assert load_key("bob", "s3cret", home / "keys").address in result.stdout


def test_import_reads_the_key_from_the_environment(
    runner: CliRunner, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPUNET_PRIVATE_KEY", KNOWN_KEY)

    result = runner.invoke(app, ["keys", "import", "known"])

    assert result.exit_code == 0, result.output
    assert KNOWN_ADDRESS in result.stdout
    assert KNOWN_KEY not in result.output


def test_import_prompts_for_the_key_hidden(runner: CliRunner, home: Path) -> None:
    result = runner.invoke(app, ["keys", "import", "known"], input=KNOWN_KEY + "\n")

    assert result.exit_code == 0, result.output
    assert KNOWN_KEY not in result.output
    assert KNOWN_ADDRESS in result.stdout


def test_list_and_show_as_json(runner: CliRunner, home: Path) -> None:
    runner.invoke(app, ["keys", "new", "b-key"])
    runner.invoke(app, ["keys", "new", "a-key"])

    listed = json.loads(runner.invoke(app, ["keys", "list", "--json"]).stdout)
    shown = json.loads(runner.invoke(app, ["keys", "show", "a-key", "--json"]).stdout)

    assert [k["name"] for k in listed] == ["a-key", "b-key"]
    assert shown == listed[0]
    assert shown["path"] == str(home / "keys" / "a-key.json")


def test_list_without_keys_says_how_to_make_one(runner: CliRunner, home: Path) -> None:
    result = runner.invoke(app, ["keys", "list"])

    assert result.exit_code == 0
    assert "gpunet keys new" in result.stdout


def test_missing_key_is_one_red_line_and_exit_2(runner: CliRunner, home: Path) -> None:
    result = runner.invoke(app, ["keys", "show", "nobody"])

    assert result.exit_code == 2
    assert result.stderr.startswith("error: no key named 'nobody'")
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_existing_key_is_not_overwritten(runner: CliRunner, home: Path) -> None:
    runner.invoke(app, ["keys", "new", "alice"])

    result = runner.invoke(app, ["keys", "new", "alice"])

    assert result.exit_code == 2
    assert "already exists" in result.stderr


def test_kdf_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUNET_KEY_KDF", "PBKDF2")
    monkeypatch.setenv("GPUNET_KEY_KDF_ITERATIONS", "10")
    assert kdf_settings() == ("pbkdf2", 10)

    monkeypatch.delenv("GPUNET_KEY_KDF")
    monkeypatch.delenv("GPUNET_KEY_KDF_ITERATIONS")
    assert kdf_settings() == (None, None)

    monkeypatch.setenv("GPUNET_KEY_KDF", "md5")
    with pytest.raises(ConfigError, match="'md5'"):
        kdf_settings()
