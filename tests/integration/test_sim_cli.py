"""``gpunet sim`` end to end: the shipped scenarios, errors, and the price-levels tool."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpunet.cli.main import app

EXAMPLES = Path(__file__).parents[2] / "examples" / "sim"
SHORT = ["--set", "simulation.years=0.5"]

pytestmark = pytest.mark.slow


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("run", ["USD per token", "GPU-hours", "[simulation] paths", "--full-csv", "bands.csv"]),
        ("compare", ["same random paths", "first scenario"]),
        ("sweep", ["KEY=LOW:HIGH:COUNT", "gpunet[ray]", "every local core", "sweep.csv"]),
        ("levels", ["OHLCV", "0.02 = 2%", "[default: 5]"]),
    ],
)
def test_help_explains_units_and_defaults(
    runner: CliRunner, command: str, expected: list[str]
) -> None:
    result = runner.invoke(app, ["sim", command, "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    for text in expected:
        assert text in result.stdout, f"{text!r} missing from sim {command} --help"


def test_run_writes_the_report(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "report"
    args = ["sim", "run", str(EXAMPLES / "default-bear.toml"), "--paths", "20", "--out", str(out)]

    result = runner.invoke(app, [*args, *SHORT], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert f"report: {out / 'index.html'}" in result.stdout
    assert "spiral probability" in result.stdout
    for name in ("index.html", "summary.md", "summary.csv", "bands.csv", "fig-price.png"):
        assert (out / name).is_file(), name


def test_bad_key_is_one_red_line_and_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text("[market]\nbogus = 1\n", encoding="utf-8")

    result = runner.invoke(app, ["sim", "run", str(scenario), "--out", str(tmp_path / "r")])

    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[-1]] and lines[0].startswith("error: ")
    assert "market.bogus" in lines[0]
    assert not (tmp_path / "r").exists()


def test_bad_override_is_an_error(runner: CliRunner, tmp_path: Path) -> None:
    args = ["sim", "run", str(EXAMPLES / "default-bear.toml"), "--set", "market.nope=1"]

    result = runner.invoke(app, [*args, "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "market.nope" in result.stderr


def test_compare_two_designs(runner: CliRunner, tmp_path: Path) -> None:
    scenarios = [str(EXAMPLES / "one-way.toml"), str(EXAMPLES / "staking-partners.toml")]

    result = runner.invoke(
        app, ["sim", "compare", *scenarios, "--paths", "8", *SHORT, "--out", str(tmp_path)]
    )

    assert result.exit_code == 0, result.output
    assert (tmp_path / "index.html").is_file() and (tmp_path / "fig-price.png").is_file()


def test_sweep_maps_the_grid(runner: CliRunner, tmp_path: Path) -> None:
    args = ["sim", "sweep", str(EXAMPLES / "default-bear.toml"), "--paths", "6", *SHORT]
    grid = ["--param", "demand.growth_per_year=-0.5:0.5:3", "--param", "market.volatility=0.3,0.9"]

    result = runner.invoke(app, [*args, *grid, "--workers", "2", "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    with (tmp_path / "sweep.csv").open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 6
    assert (tmp_path / "sweep.png").is_file()


def test_sweep_with_ray_missing_is_a_clear_error(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    args = ["sim", "sweep", str(EXAMPLES / "default-bear.toml"), "--param", "market.drift=0,1"]

    result = runner.invoke(app, [*args, "--ray", *SHORT, "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "pip install 'gpunet[ray]'" in result.stderr


def test_levels_on_the_sample(runner: CliRunner, tmp_path: Path) -> None:
    args = ["sim", "levels", str(EXAMPLES / "prices-sample.csv"), "--out", str(tmp_path)]

    result = runner.invoke(app, args, env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert "support" in result.stdout and "resistance" in result.stdout
    assert (tmp_path / "levels.png").stat().st_size > 20_000
    assert (tmp_path / "levels.csv").read_text(encoding="utf-8").startswith("kind,price")


def test_levels_missing_column(runner: CliRunner, tmp_path: Path) -> None:
    prices = tmp_path / "p.csv"
    prices.write_text("date,close\n2025-01-01,1\n", encoding="utf-8")

    result = runner.invoke(app, ["sim", "levels", str(prices), "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "missing column(s) open, high, low, volume" in result.stderr
