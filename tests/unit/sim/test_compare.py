"""Comparisons: scenarios side by side on the same paths, with overlaid figures."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from gpunet.sim.compare import (
    comparison_finding,
    comparison_table,
    labels,
    run_comparison,
    write_comparison,
)
from gpunet.sim.errors import SimError
from gpunet.sim.result import SERIES, SimulationResult

MakeResult = Callable[..., SimulationResult]
EXAMPLES = Path(__file__).parents[3] / "examples" / "sim"


def test_comparison_writes_overlays_table_and_finding(
    tmp_path: Path, make_result: MakeResult
) -> None:
    results = [
        make_result("one-way", paths=12, steps=30, drift=-0.01),
        make_result("staking", paths=12, steps=30, drift=0.0),
    ]

    index = write_comparison(results, tmp_path)

    page = index.read_text(encoding="utf-8")
    figures = {p.name for p in tmp_path.glob("*.png")}
    assert figures == {f"fig-{name}.png" for name in SERIES}
    assert set(re.findall(r'src="([^"]+)"', page)) == figures
    assert "one-way vs staking" in page
    assert (tmp_path / "comparison.md").read_text(encoding="utf-8").count("|") > 20
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000


def test_table_has_a_column_per_scenario(make_result: MakeResult) -> None:
    named = [("a", make_result("a", paths=9)), ("b", make_result("b", paths=9, drift=0.01))]

    header, rows = comparison_table(named)

    assert header == ["metric", "a", "b"]
    assert rows[0] == ["spiral probability", "33%", "33%"]
    assert all(len(row) == 3 for row in rows)
    assert "final price" in [row[0] for row in rows]


def test_finding_names_the_safest_design(make_result: MakeResult) -> None:
    risky = make_result("risky", paths=9)
    safe = SimulationResult("safe", 1, 3.0, risky.series, risky.spiral_step * 0 - 1)

    text = comparison_finding([("risky", risky), ("safe", safe)])

    assert text.startswith("On the same 9 random paths (seed 1)")
    assert "risky in 33% (median day" in text and "safe in 0%" in text
    assert "Lowest spiral probability: safe." in text


def test_duplicate_names_are_numbered(make_result: MakeResult) -> None:
    results = [make_result("x"), make_result("x"), make_result("y")]

    assert labels(results) == ["x (1)", "x (2)", "y"]


def test_one_scenario_is_not_a_comparison() -> None:
    with pytest.raises(SimError, match="at least two"):
        run_comparison([EXAMPLES / "default-bear.toml"])


@pytest.mark.slow
def test_scenarios_share_seed_and_paths() -> None:
    short = {"simulation.years": 0.25}
    results = run_comparison(
        [EXAMPLES / "one-way.toml", EXAMPLES / "staking-partners.toml"],
        paths=4,
        overrides=short,
    )

    assert [r.paths for r in results] == [4, 4]
    assert results[0].seed == results[1].seed
