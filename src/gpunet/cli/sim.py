"""``gpunet sim``: run, compare and sweep economy scenarios; find price levels.

Every command writes a folder with an ``index.html`` to open in a browser, and prints
where it is. Scenario files are TOML (see ``examples/sim/``); ``--set KEY=VALUE``
overrides any parameter by its dotted key, checked like the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gpunet.cli.console import err, note, out

if TYPE_CHECKING:  # the lab (NumPy, pandas, the model) loads only when a sim command runs
    from gpunet.sim.result import SimulationResult

app = typer.Typer(
    name="sim",
    help="The economy lab: simulate the token economy, compare designs, find the death spiral.",
    no_args_is_help=True,
)

ScenarioFile = Annotated[
    Path, typer.Argument(help="Scenario TOML file, e.g. examples/sim/default-bear.toml.")
]
Paths = Annotated[
    int | None,
    typer.Option(min=1, help="Monte Carlo paths. Default: the scenario's \\[simulation] paths."),
]
Seed = Annotated[
    int | None,
    typer.Option(
        min=0, help="Random seed; the same seed gives the same paths. Default: the scenario's."
    ),
]
Overrides = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a parameter by dotted key, e.g. --set simulation.years=2 "
        "--set market.drift=-0.3 (repeatable).",
    ),
]
Out = Annotated[Path | None, typer.Option(help="Report folder. Default: reports/<what was run>.")]


@contextmanager
def progress_bar() -> Iterator[Progress]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=True) as bar:
        yield bar


def step_callback(bar: Progress, description: str) -> Callable[[int, int], None]:
    """A model progress callback ``(step, total)`` that moves one line of ``bar``."""
    task = bar.add_task(description, total=None)

    def update(step: int, total: int) -> None:
        bar.update(task, completed=step, total=total)

    return update


@app.command()
def run(
    scenario: ScenarioFile,
    paths: Paths = None,
    seed: Seed = None,
    overrides: Overrides = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Report folder. Default: reports/<scenario file name>."),
    ] = None,
    full_csv: Annotated[
        bool,
        typer.Option(
            "--full-csv",
            help="Also write series.csv with every path, day and series (large: paths x days "
            "x 14 numbers). By default only bands.csv (median, 5% and 95% per day).",
        ),
    ] = False,
) -> None:
    """Simulate one scenario and write its report: summary, CSV, PNG figures, index.html.

    Units: price in USD per token, supply in tokens, capacity in GPU-hours per step,
    utilization as a fraction; bands are the 5th to 95th percentile across paths.
    """
    from gpunet.sim.report import summary_table, write_report
    from gpunet.sim.runs import parse_overrides, run_scenario
    from gpunet.sim.summary import finding, summary_rows

    settings = parse_overrides(overrides or [])
    with progress_bar() as bar:
        callback = step_callback(bar, f"simulating {scenario.name}")
        result = run_scenario(
            scenario, paths=paths, seed=seed, overrides=settings, progress=callback
        )
    index = write_report(result, out_dir or Path("reports") / scenario.stem, full_series=full_csv)
    out.print(_summary(result, summary_table(result, summary_rows(result))))
    out.print(finding(result), soft_wrap=True)
    out.print(f"report: {index}", soft_wrap=True)


def _summary(result: SimulationResult, rows: list[list[str]]) -> Table:
    from gpunet.sim.report import SUMMARY_HEADER

    title = f"{result.scenario}: {result.paths:,} paths, seed {result.seed}"
    table = Table(*SUMMARY_HEADER, title=title, box=box.SIMPLE_HEAD)
    for row in rows:
        table.add_row(*row)
    return table


@app.command()
def compare(
    scenarios: Annotated[
        list[Path], typer.Argument(help="Two or more scenario TOML files, compared in this order.")
    ],
    paths: Paths = None,
    seed: Annotated[
        int | None,
        typer.Option(min=0, help="Seed for every scenario. Default: the first scenario's."),
    ] = None,
    overrides: Overrides = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Report folder. Default: reports/compare-<a>-vs-<b>."),
    ] = None,
) -> None:
    """Run several scenarios on the same random paths and put them side by side.

    Same seed and paths for all (default: the first scenario's), so differences come
    from the designs, not from luck. Writes overlaid figures, a table and a finding.
    """
    from gpunet.sim.compare import comparison_table, labels, run_comparison, write_comparison
    from gpunet.sim.runs import parse_overrides

    settings = parse_overrides(overrides or [])
    with progress_bar() as bar:
        results = run_comparison(
            scenarios,
            paths=paths,
            seed=seed,
            overrides=settings,
            on_start=lambda path: step_callback(bar, f"simulating {path.name}"),
        )
    default = Path("reports") / ("compare-" + "-vs-".join(p.stem for p in scenarios))
    index = write_comparison(results, out_dir or default)
    header, rows = comparison_table(list(zip(labels(results), results, strict=True)))
    table = Table(*header, box=box.SIMPLE_HEAD)
    for row in rows:
        table.add_row(*row)
    out.print(table)
    out.print(f"report: {index}", soft_wrap=True)


@app.command()
def sweep(
    scenario: ScenarioFile,
    params: Annotated[
        list[str],
        typer.Option(
            "--param",
            help="A swept parameter (repeatable; the grid is every combination): "
            "KEY=LOW:HIGH:COUNT for COUNT evenly spaced values, or KEY=V1,V2,... "
            "e.g. --param demand.growth_per_year=-0.5:0.5:5 --param market.volatility=0.2,0.6,1.0",
        ),
    ],
    paths: Annotated[
        int | None,
        typer.Option(min=1, help="Monte Carlo paths per grid point. Default: the scenario's."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0, help="Seed of every point (the same paths everywhere). Default: the scenario's."
        ),
    ] = None,
    overrides: Overrides = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Processes (or Ray CPUs) to use. Default: every local core."),
    ] = None,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray", help="Run points on Ray (pip install 'gpunet\\[ray]'; honours RAY_ADDRESS)."
        ),
    ] = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Report folder. Default: reports/sweep-<scenario>.")
    ] = None,
) -> None:
    """Vary parameters over a grid; map where the economy holds and where it spirals.

    Per point: spiral probability (fraction of paths), median spiral day, final median
    price (USD per token). Rows stream to sweep.csv as points finish; then a heat map
    (sweep.png) and index.html.
    """
    from gpunet.sim.runs import parse_overrides
    from gpunet.sim.sweep import PointResult, run_sweep

    settings = parse_overrides(overrides or [])
    with progress_bar() as bar:
        task = bar.add_task("grid points", total=None)

        def on_point(point: PointResult, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        index = run_sweep(
            scenario,
            params,
            out_dir or Path("reports") / f"sweep-{scenario.stem}",
            paths=paths,
            seed=seed,
            workers=workers,
            use_ray=ray,
            base_overrides=settings,
            on_point=on_point,
        )
    out.print(f"report: {index}", soft_wrap=True)


@app.command()
def levels(
    prices: Annotated[
        Path,
        typer.Argument(
            help="OHLCV CSV (date or timestamp, open, high, low, close, volume), or a "
            "series.csv written by 'gpunet sim run --full-csv'."
        ),
    ],
    window: Annotated[
        int, typer.Option(min=1, help="Bars on each side that a swing high/low must top.")
    ] = 5,
    tolerance: Annotated[
        float,
        typer.Option(
            min=0.0001, help="Relative distance joining swing points into one level (0.02 = 2%)."
        ),
    ] = 0.02,
    min_touches: Annotated[int, typer.Option(min=1, help="Swing points a level needs.")] = 2,
    max_levels: Annotated[int, typer.Option(min=1, help="Most levels to keep, by touches.")] = 8,
    path: Annotated[
        int, typer.Option("--path", min=0, help="Which simulated path of a series.csv.")
    ] = 0,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder. Default: reports/levels-<file name>."),
    ] = None,
) -> None:
    """Detect support and resistance levels and plot them over the prices.

    Swing highs and lows over WINDOW bars each side, clustered by price within TOLERANCE,
    ranked by touch count; writes levels.png and levels.csv.
    """
    from gpunet.sim.levels import find_levels, load_prices, plot_levels, write_levels_csv

    series = load_prices(prices, sim_path=path)
    found = find_levels(
        series, window=window, tolerance=tolerance, min_touches=min_touches, max_levels=max_levels
    )
    folder = out_dir or Path("reports") / f"levels-{prices.stem}"
    folder.mkdir(parents=True, exist_ok=True)
    figure = plot_levels(series, found, folder / "levels.png", window=window)
    write_levels_csv(series, found, folder / "levels.csv")
    table = Table("kind", "price", "touches", "first", "last", box=box.SIMPLE_HEAD)
    for level in reversed(found):
        first, last = series.labels[level.first], series.labels[level.last]
        table.add_row(level.kind, f"{level.price:.6g}", str(level.touches), first, last)
    out.print(table if found else "no level with enough touches; try a smaller --window")
    note(f"figure: {figure}")
