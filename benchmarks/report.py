"""What a benchmark hands back, the machine it ran on, and the markdown they become.

Each benchmark returns a ``Section``: a title, ``Figure`` rows (a measured value, its
goal, and whether the goal was met) and notes saying exactly what ran.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass(frozen=True)
class Figure:
    """One measured value; ``met`` is None for figures that have no goal."""

    name: str
    value: str
    goal: str = ""
    met: bool | None = None


@dataclass(frozen=True)
class Table:
    """Supporting detail: one row per configuration or query."""

    title: str
    headers: tuple[str, ...]
    rows: Sequence[Sequence[str]]


@dataclass
class Section:
    """One benchmark's results."""

    title: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def goals_met(self) -> bool:
        return all(f.met is not False for f in self.figures)


def ms(seconds: float) -> str:
    """Seconds as milliseconds: two decimals below a second, whole ones above."""
    if seconds >= 1:
        return f"{seconds * 1000:,.0f} ms"
    return f"{seconds * 1000:.2f} ms"


def per_second(rate: float) -> str:
    return f"{rate:,.0f}/s"


def _met_cell(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: ""}[met]


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def table_markdown(table: Table) -> list[str]:
    lines = ["", f"**{table.title}**", "", _row(table.headers)]
    lines.append(_row(["---"] * len(table.headers)))
    return lines + [_row(row) for row in table.rows]


def section_markdown(section: Section) -> str:
    """A section as a heading, its figure table, its detail tables and its notes."""
    lines = [f"## {section.title}", "", _row(("figure", "value", "goal", "met"))]
    lines.append(_row(["---"] * 4))
    lines += [_row((f.name, f.value, f.goal, _met_cell(f.met))) for f in section.figures]
    for table in section.tables:
        lines += table_markdown(table)
    if section.notes:
        lines += ["", *(f"- {note}" for note in section.notes)]
    return "\n".join(lines) + "\n"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _os_name() -> str:
    try:
        release = platform.freedesktop_os_release()
        return f"{release.get('PRETTY_NAME', 'Linux')}, kernel {platform.release()}"
    except OSError:
        return platform.platform()


def machine_rows() -> list[tuple[str, str]]:
    """The machine the benchmarks ran on, as (what, value) pairs."""
    memory_gib = psutil.virtual_memory().total / 2**30
    return [
        ("CPU", _cpu_model()),
        ("cores", str(os.cpu_count())),
        ("memory", f"{memory_gib:.1f} GiB"),
        ("OS", _os_name()),
        ("Python", sys.version.split()[0] + f" ({platform.python_implementation()})"),
    ]


def machine_markdown() -> str:
    rows = "\n".join(f"| {what} | {value} |" for what, value in machine_rows())
    return "| machine | |\n|---|---|\n" + rows + "\n"


def results_markdown(sections: Sequence[Section], command: str, date: str) -> str:
    """The whole RESULTS.md: the run, the machine, then one table per benchmark."""
    summary = [f"| {s.title} | {'yes' if s.goals_met else '**no**'} |" for s in sections]
    parts = [
        "# Benchmark results",
        "",
        "Written by `benchmarks/run_all.py`; see `benchmarks/README.md` for what each "
        "figure means. Do not edit by hand.",
        "",
        f"- command: `{command}`",
        f"- date: {date}",
        "",
        machine_markdown(),
        "| benchmark | all goals met |\n|---|---|\n" + "\n".join(summary) + "\n",
        *(section_markdown(s) for s in sections),
    ]
    return "\n".join(parts)
