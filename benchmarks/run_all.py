"""Run every benchmark and write ``benchmarks/RESULTS.md``.

``make bench`` runs this. Each benchmark module has ``run(progress) -> Section``;
a benchmark that fails is reported as failed in the results (with its error) and
the others still run. Exit status: 0 when every benchmark ran, whether or not its
goals were met; 1 when one could not run.

    .venv/bin/python benchmarks/run_all.py [--output PATH]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import bench_agent
import bench_checks
import bench_gas
import bench_heartbeats
import bench_jobs
import bench_matching
import bench_offers
import bench_settlement
import bench_sim
from harness import REPO_ROOT
from report import Figure, Section, results_markdown
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

Benchmark = Callable[[Callable[[str], None]], Section]

BENCHMARKS: tuple[tuple[str, Benchmark], ...] = (
    ("heartbeats", bench_heartbeats.run),
    ("offers", bench_offers.run),
    ("agent", bench_agent.run),
    ("sim", bench_sim.run),
    ("matching", bench_matching.run),
    ("jobs", bench_jobs.run),
    ("checks", bench_checks.run),
    ("settlement", bench_settlement.run),
    ("gas", bench_gas.run),
)
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "RESULTS.md"


def _failed(name: str, error: Exception) -> Section:
    message = " ".join(f"{type(error).__name__}: {error}".split())[:500]
    return Section(title=f"{name} (failed)", figures=[Figure("ran", message, "ran", False)])


def _run_one(name: str, benchmark: Benchmark, progress: Progress, console: Console) -> Section:
    task = progress.add_task(name, total=None)
    started = time.monotonic()
    try:
        section = benchmark(lambda text: progress.update(task, description=text))
    except Exception as error:  # one broken benchmark must not lose the others' results
        console.print_exception()
        section = _failed(name, error)
    verdict = "goals met" if section.goals_met else "goals NOT met"
    took = time.monotonic() - started
    progress.update(task, description=f"{name}: done in {took:.0f} s, {verdict}", total=1)
    progress.update(task, completed=1)
    return section


def run_all(console: Console) -> list[Section]:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        return [_run_one(name, bench, progress, console) for name, bench in BENCHMARKS]


def _command() -> str:
    python = Path(sys.executable)
    shown = python.relative_to(REPO_ROOT) if python.is_relative_to(REPO_ROOT) else python
    script = Path(sys.argv[0]).resolve()
    script_shown = script.relative_to(REPO_ROOT) if script.is_relative_to(REPO_ROOT) else script
    return shlex.join([str(shown), str(script_shown), *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run all benchmarks; write RESULTS.md.")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    console = Console()
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = run_all(console)
    args.output.write_text(results_markdown(sections, _command(), date))
    console.print(f"wrote {args.output}")
    return 1 if any(s.title.endswith("(failed)") for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
