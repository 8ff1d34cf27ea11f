"""``gpunet checker start|stats``: run a checker, and see how checkers stand.

A checker checks the nodes the indexer assigns to it each epoch (liveness, capacity,
delivery), signs each result with its key and reports it; its results against the
panel's majority count against its standing (``gpunet checker stats``).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from gpunet.api.checks import CheckerPublic, CheckerRegistration
from gpunet.cli.console import INDEXER_OPTION, note, out, print_json, setup_logging
from gpunet.cli.keys import KeysDir, load_or_create_key
from gpunet.cli.listing import ago
from gpunet.errors import ValidationError
from gpunet.sdk import DEFAULT_INDEXER_URL, Client

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

CHECKER_KEY = "checker"
NODE_TIMEOUT_S = 10.0  # a check's own timeouts are shorter; this only bounds a stuck socket

app = typer.Typer(
    help="Check nodes for an indexer, and see checkers' standing.", no_args_is_help=True
)

AsJson = Annotated[bool, typer.Option("--json", help="Print the indexer's JSON answer.")]


@app.command("start")
def start(
    indexer: Annotated[str, INDEXER_OPTION] = DEFAULT_INDEXER_URL,
    key: Annotated[
        str, typer.Option(help="Checker key name; created (and printed) if missing.")
    ] = CHECKER_KEY,
    keys_dir: KeysDir = None,
    operator: Annotated[
        str | None,
        typer.Option(
            help="Operator address (0x...) whose nodes you also run: you are never asked "
            "to check them.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Checks run at the same time.")] = 4,
    poll_wait: Annotated[
        float, typer.Option(min=0, max=30, help="Seconds the indexer may hold a task poll.")
    ] = 20.0,
) -> None:
    """Register as a checker and run the checks the indexer assigns until Ctrl-C.

    Each epoch the indexer puts this checker on the panels of some nodes. For each it
    probes the node's check endpoint (liveness), sends a capacity challenge and opens
    tiles of the answer (capacity), or compares a finished job's outputs with the known
    answer (delivery), then signs its vote and reports it. Logs one line per vote:
    kind, check, node, pass or fail, why, and the check's state.
    """
    setup_logging()
    registration = checker_registration(operator)
    account, info, created = load_or_create_key(key, keys_dir)
    if created:
        note(f"created key {info.name}: address {info.address}, file {info.path}")
    note(f"checker {account.address}, indexer {indexer}")
    run_checker(indexer, account, registration, workers=workers, poll_wait_s=poll_wait)


def checker_registration(operator: str | None) -> CheckerRegistration:
    """What the checker registers with; a malformed operator address is refused first."""
    from gpunet import __version__

    try:
        return CheckerRegistration(agent_version=__version__, operator=operator)
    except ValueError:
        raise ValidationError(
            "--operator", operator, "write an address as 0x and 40 hex digits"
        ) from None


# Tile products are tiny: BLAS worker threads only spin after each one, which cost a
# checker four times the CPU of one thread (benchmarks/README.md, bench_checks).
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def use_one_blas_thread() -> None:
    """One BLAS thread for the checker, unless the environment says otherwise.

    Must run before NumPy is first imported: BLAS reads these once, at load.
    """
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


def run_checker(
    indexer: str,
    account: LocalAccount,
    registration: CheckerRegistration,
    *,
    workers: int,
    poll_wait_s: float,
) -> None:
    """Build the agent over one SDK client and one HTTP client for nodes; run it."""
    use_one_blas_thread()
    import httpx

    from gpunet.checker.agent import CheckerAgent
    from gpunet.checker.runner import CheckRunner
    from gpunet.node.signals import stop_on_signals

    with Client(indexer, account) as client, httpx.Client(timeout=NODE_TIMEOUT_S) as nodes:
        runner = CheckRunner(nodes, client)
        agent = CheckerAgent(
            client, account, runner, registration, workers=workers, poll_wait_s=poll_wait_s
        )
        with stop_on_signals(agent.stop):
            agent.run()


@app.command("stats")
def stats(
    address: Annotated[
        str | None,
        typer.Argument(help="One checker's address; default: every checker.", show_default=False),
    ] = None,
    indexer: Annotated[str, INDEXER_OPTION] = DEFAULT_INDEXER_URL,
    as_json: AsJson = False,
) -> None:
    """Show checkers: results, results against the majority, bans and reward eligibility.

    "against 7d" counts results against the panel's majority in the last 7 days,
    "against all" since the checker registered. Two or more within 7 days bar a checker
    from rewards for 30 days from the second one ("banned until", UTC).
    """
    with Client(indexer) as client:
        checkers = [client.get_checker(address)] if address else client.list_checkers().checkers
    if as_json:
        rows = [checker.model_dump(mode="json") for checker in checkers]
        print_json(rows[0] if address else {"checkers": rows})
        return
    if not checkers:
        out.print(f"No checkers at {indexer}; start one with `gpunet checker start`.")
        return
    out.print(checkers_table(checkers, title=f"{len(checkers)} checker(s) at {indexer}"))


def checkers_table(rows: list[CheckerPublic], title: str) -> Table:
    # Full addresses (to pass to `stats ADDRESS`) fit in 120 columns with edges unpadded.
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("checker", no_wrap=True)
    for column in ("results", "against 7d", "against all"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("banned until", no_wrap=True)
    table.add_column("rewards", no_wrap=True)
    table.add_column("seen", justify="right", no_wrap=True)
    for checker in rows:
        table.add_row(
            checker.address,
            str(checker.results_total),
            str(checker.against_majority_week),
            str(checker.against_majority),
            _when(checker.banned_until),
            "[green]eligible[/]" if checker.reward_eligible else "[red]barred[/]",
            ago(checker.last_seen_at),
        )
    return table


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")
