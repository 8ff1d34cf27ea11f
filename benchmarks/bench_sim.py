"""The economy lab's speed: Monte Carlo runs, individual agents, and the radCAD twin.

Three measurements, each in its own child process so that its peak resident memory is
its own (``ru_maxrss`` of the child, which includes the interpreter and imports):

- ``gpunet.sim.simulate`` on ``examples/sim/default-sideways.toml``: 1,000 paths of 10
  years in daily steps with the scenario's 50 provider cohorts; best of ``REPEATS_COHORTS``;
- the same scenario with 10,000 individual provider agents (10,000 cohorts of one GPU:
  the three templates' GPU counts set to 3,334, 3,333 and 3,333), 100 paths;
- ``sim_twin/compare_core.py``: the model's core (supply, provider sales, the pool and
  its shocks) with gpunet's own functions against the independent radCAD twin, on the
  same shocks and parameters, in the same run: both timed, every series diffed.

The twin needs its own virtualenv (radCAD pins numpy<1.26.4). When
``benchmarks/sim_twin/.venv`` is missing it is created here (``python3.11 -m venv`` and
``pip install -r requirements.txt``); when that fails (no network, say) the twin's rows
say so and the other figures still count.

Run alone: ``.venv/bin/python benchmarks/bench_sim.py``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from report import Figure, Section, Table, section_markdown

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
TWIN_DIR = BENCH_DIR / "sim_twin"
TWIN_VENV = TWIN_DIR / ".venv"
SCENARIO = REPO_ROOT / "examples" / "sim" / "default-sideways.toml"
SEED = 7
YEARS = 10.0
COHORT_PATHS, REPEATS_COHORTS, GOAL_COHORTS_S = 1000, 3, 10.0
AGENT_PATHS, REPEATS_AGENTS, GOAL_AGENTS_S = 100, 2, 60.0
AGENTS = 10_000
# (paths, years, judged against GOAL_SPEEDUP): radCAD takes about 0.1 ms per path-day
# here, so each run stays under about a minute.
TWIN_RUNS = ((1000, 1.0, True), (100, 10.0, False))
GOAL_SPEEDUP = 100.0
VENV_TIMEOUT_S = 900

Progress = Callable[[str], None]


def agent_overrides() -> dict[str, object]:
    """10,000 cohorts of exactly one GPU: templates' GPUs split to match the cohorts."""
    counts = [AGENTS // 3 + (1 if index < AGENTS % 3 else 0) for index in range(3)]
    overrides: dict[str, object] = {"providers.cohorts": AGENTS}
    overrides |= {f"providers.templates.{i}.gpus": float(n) for i, n in enumerate(counts)}
    return overrides


def _child(kind: str) -> dict[str, Any]:
    """In the child process: run one configuration; times and peak RSS as a dict."""
    from gpunet.sim import load_scenario, simulate
    from gpunet.sim.providers import build_cohorts

    scenario = load_scenario(SCENARIO).with_overrides({"simulation.years": YEARS})
    if kind == "cohorts":
        paths, repeats = COHORT_PATHS, REPEATS_COHORTS
    else:
        scenario = scenario.with_overrides(agent_overrides())
        paths, repeats = AGENT_PATHS, REPEATS_AGENTS
        gpus = build_cohorts(scenario.params.providers).gpus
        assert gpus.shape[0] == AGENTS and (gpus == 1.0).all(), "cohorts must be single GPUs"
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = simulate(scenario, paths=paths, seed=SEED)
        seconds.append(time.perf_counter() - started)
        steps = result.series["price"].shape[1] - 1
        spiral_share = float(result.spiral_probability())
        del result  # one run's series in memory at a time: the peak is one run's
    return {
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,
        "paths": paths,
        "steps": steps,
        "cohorts": scenario.params.providers.cohorts,
        "spiral_share": spiral_share,
    }


def _measure(kind: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def twin_python(progress: Progress) -> tuple[Path | None, str]:
    """The twin's interpreter, creating its virtualenv when missing; else None and why."""
    chosen = os.environ.get("TWIN_PYTHON")
    python = Path(chosen) if chosen else TWIN_VENV / "bin" / "python"
    if _has_radcad(python):
        return python, f"existing, `{_shown(python)}`"
    if chosen:
        return None, f"TWIN_PYTHON={chosen} cannot import radcad"
    base = shutil.which("python3.11") or sys.executable
    progress(f"sim: creating the radCAD twin's virtualenv in {TWIN_VENV} (pip install)")
    try:
        subprocess.run(
            [base, "-m", "venv", "--clear", str(TWIN_VENV)],
            check=True,
            capture_output=True,
            text=True,
            timeout=VENV_TIMEOUT_S,
        )
        pip = [str(python), "-m", "pip", "install", "-q", "-r", str(TWIN_DIR / "requirements.txt")]
        subprocess.run(pip, check=True, capture_output=True, text=True, timeout=VENV_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        last = " ".join(str(detail).strip().splitlines()[-1:])[:200]
        return None, f"could not create {_shown(TWIN_VENV)}: {last}"
    if not _has_radcad(python):
        return None, f"{_shown(TWIN_VENV)} was created but cannot import radcad"
    return python, f"created just now, `{_shown(python)}`"


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)


def _has_radcad(python: Path) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run([str(python), "-c", "import radcad"], capture_output=True, check=False)
    return probe.returncode == 0


def _compare_core() -> ModuleType:
    """``sim_twin/compare_core.py`` as a module (its folder is not a package)."""
    spec = importlib.util.spec_from_file_location("compare_core", TWIN_DIR / "compare_core.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["compare_core"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def _run_figures(label: str, data: dict[str, Any], goal_s: float) -> list[Figure]:
    best = min(data["seconds"])
    runs = len(data["seconds"])
    shown = f"{best:.2f} s" + (f" (best of {runs})" if runs > 1 else "")
    return [
        Figure(f"{label}: wall time", shown, f"< {goal_s:.0f} s", best < goal_s),
        Figure(f"{label}: peak RSS", f"{data['peak_rss_mb']:,.0f} MB"),
    ]


def _run_row(label: str, data: dict[str, Any]) -> list[str]:
    times = ", ".join(f"{s:.2f}" for s in data["seconds"])
    return [
        label,
        f"{data['paths']:,}",
        f"{data['steps']:,}",
        f"{data['cohorts']:,}",
        times,
        f"{data['peak_rss_mb']:,.0f} MB",
        f"{data['spiral_share']:.0%}",
    ]


def _twin_label(paths: int, years: float) -> str:
    return f"{paths:,} paths x {years:g} year{'s' if years != 1 else ''}"


def _twin_figures(progress: Progress) -> tuple[list[Figure], list[Table], list[str]]:
    python, state = twin_python(progress)
    if python is None:
        name = "radCAD twin / gpunet core"
        return [Figure(name, f"skipped: {state}", f">= {GOAL_SPEEDUP:.0f}x", None)], [], []
    core = _compare_core()
    scenario = core.load_scenario(SCENARIO)
    figures: list[Figure] = []
    rows: list[list[str]] = []
    gap_rows: list[list[str]] = []
    for paths, years, judged in TWIN_RUNS:
        label = _twin_label(paths, years)
        progress(f"sim: radCAD twin vs gpunet core, {label} (under a minute)")
        result = core.compare(scenario, paths, years, SEED, python)
        worst = max(gap.max_rel for gap in result.gaps)
        goal = f">= {GOAL_SPEEDUP:.0f}x" if judged else ""
        met = result.speedup >= GOAL_SPEEDUP if judged else None
        figures += [
            Figure(f"radCAD twin / gpunet core, {label}", f"{result.speedup:,.0f}x", goal, met),
            Figure(
                f"twin vs gpunet, {label}: largest relative difference",
                f"{worst:.1e}",
                f"<= {core.RELATIVE_TOLERANCE:.0e}",
                result.agrees and result.shocks_identical,
            ),
        ]
        rows.append(
            [
                label,
                f"{result.steps:,}",
                f"{result.gpunet_seconds:.3f} s",
                f"{result.twin_seconds:.1f} s",
                f"{result.twin_wall_seconds:.1f} s",
                f"{result.speedup:,.0f}x",
                f"{result.model_seconds:.2f} s",
                "bit-identical" if result.shocks_identical else "**different**",
            ]
        )
        gap_rows += [
            [label, gap.name, f"{gap.max_abs:.3e}", f"{gap.max_rel:.3e}", _yes(gap.agrees)]
            for gap in result.gaps
        ]
    headers = ("paths x years", "steps", "gpunet core", "radCAD", "radCAD with start-up")
    headers += ("speed-up", "full gpunet model", "twin's own draws")
    tables = [
        Table("radCAD twin vs gpunet core: timings", headers, rows),
        Table(
            "radCAD twin vs gpunet core: differences per series (every path and step)",
            ("paths x years", "series", "max abs diff", "max rel diff", "agree"),
            gap_rows,
        ),
    ]
    notes = [
        "Twin: `benchmarks/sim_twin/compare_core.py` (`--paths P --years Y --seed "
        f"{SEED}`): the model's core (supply releases, recipients' sales, sentiment and "
        "demand shocks, provider sales by cohort, the constant-product trade) with "
        "gpunet's own functions vectorized over paths, against `core_twin.py` in radCAD "
        f"(SINGLE_PROCESS backend; twin venv: {state}), on the same "
        "shocks from `numpy.random.default_rng(seed)` in the model's draw order; the twin "
        "redraws them with its own NumPy and must find them bit-identical.",
        "Speed-up = radCAD simulating time (one run) / gpunet core time (best of 3), "
        "both excluding interpreter start-up; the gpunet core includes computing the "
        "protocol's integer supply curves (about 0.13 s for 10 years). The goal is judged "
        f"at the Monte Carlo width of the headline run ({TWIN_RUNS[0][0]:,} paths), over one "
        "year so that radCAD finishes within a minute. At 100 paths the gpunet side is "
        "dominated by per-step NumPy call overhead and supply curves, not by paths, so the "
        "ratio there is lower; it grows in proportion to the paths.",
    ]
    return figures, tables, notes


def _yes(flag: bool) -> str:
    return "yes" if flag else "**no**"


def run(progress: Progress = lambda _: None) -> Section:
    """Time the two Monte Carlo configurations, then the twin comparison."""
    progress(f"sim: {COHORT_PATHS:,} paths x 50 cohorts (best of {REPEATS_COHORTS})")
    cohorts = _measure("cohorts")
    progress(f"sim: {AGENT_PATHS} paths x {AGENTS:,} agents (best of {REPEATS_AGENTS})")
    agents = _measure("agents")
    figures = _run_figures(f"{COHORT_PATHS:,} paths x 50 cohorts", cohorts, GOAL_COHORTS_S)
    figures += _run_figures(f"{AGENT_PATHS} paths x {AGENTS:,} agents", agents, GOAL_AGENTS_S)
    headers = ("run", "paths", "steps", "cohorts", "wall times (s)", "peak RSS", "spiralled")
    runs = Table(
        "Monte Carlo runs",
        headers,
        [
            _run_row("50 cohorts", cohorts),
            _run_row("10,000 agents (1 GPU each)", agents),
        ],
    )
    twin_figures, twin_tables, twin_notes = _twin_figures(progress)
    notes = [
        f"`gpunet.sim.simulate` on `examples/sim/{SCENARIO.name}`, seed {SEED}, "
        f"{YEARS:.0f} years in daily steps; every series kept in memory (14 arrays of paths "
        "x steps float64). Each configuration runs in its own child process; peak RSS is "
        "that process's `ru_maxrss` (interpreter and imports included).",
        f"Agents: `providers.cohorts = {AGENTS}` with the three default templates' GPU "
        "counts set to 3,334, 3,333 and 3,333, so every cohort is one GPU with its own cost.",
        *twin_notes,
    ]
    return Section(
        title="Economy lab: Monte Carlo speed and the radCAD twin",
        figures=figures + twin_figures,
        tables=[runs, *twin_tables],
        notes=notes,
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2])))
    else:
        print(section_markdown(run(progress=print)))
