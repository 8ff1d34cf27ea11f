"""Every command explains itself with ``--help``: options, units and defaults."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gpunet.cli.main import app

COMMANDS = {
    (): ["keys", "node", "indexer", "nodes", "offers", "up", "demo"],
    ("keys",): ["new", "import", "show", "list", "GPUNET_KEY_PASSWORD"],
    ("keys", "new"): ["Key name", "--keys-dir"],
    ("keys", "import"): ["GPUNET_PRIVATE_KEY"],
    ("keys", "show"): ["--json"],
    ("keys", "list"): ["--json"],
    ("node", "start"): ["--indexer", "USD per GPU-hour", "1.99", "eu-west", "Seconds", "60"],
    ("indexer", "start"): ["127.0.0.1", "8700", "--data-dir", "Seconds"],
    ("nodes",): ["--state", "GPUNET_INDEXER_URL", "--json"],
    ("offers",): ["--where", "USD/GPU-hour", "GiB", "-price", "--limit"],
    ("up",): ["--nodes", "--for", "seconds", "0600", "GPUNET_KEY_PASSWORD", "8700"],
    ("demo",): ["--nodes", "Exits 0"],
}


@pytest.mark.parametrize("command", list(COMMANDS), ids=lambda c: " ".join(c) or "gpunet")
def test_help_explains_options(runner: CliRunner, command: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    for expected in COMMANDS[command]:
        assert expected in result.stdout, f"{expected!r} missing from {command} --help"


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.stdout.startswith("gpunet ")
