"""``gpunet node checks NODE_ID``: a node's reputation, its latest checks and penalties."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from gpunet.api.checks import CheckPublic, NodeChecks, PenaltyPublic
from gpunet.cli.console import INDEXER_OPTION, out, print_json
from gpunet.cli.listing import ago
from gpunet.protocol.units import format_tokens
from gpunet.sdk import DEFAULT_INDEXER_URL, Client

VERDICT_STYLES = {"pass": "green", "fail": "red", "inconclusive": "yellow"}


def checks(
    node_id: Annotated[str, typer.Argument(help="The node's id, like n-0123456789ab.")],
    indexer: Annotated[str, INDEXER_OPTION] = DEFAULT_INDEXER_URL,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Most checks to show.")] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the indexer's JSON answer.")
    ] = False,
) -> None:
    """Show a node's reputation (score and its parts), its checks and its penalties.

    Each check shows its panel's votes ("2/3 pass": two of three checkers voted for
    the verdict) and what was found; penalties are in tokens, charged on chain.
    """
    with Client(indexer) as client:
        report = client.node_checks(node_id, limit=limit)
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    out.print(reputation_line(report))
    if report.checks:
        out.print(checks_table(report.checks, title=f"latest {len(report.checks)} check(s)"))
    else:
        out.print("No checks yet.")
    if report.penalties:
        out.print(penalties_table(report.penalties))


def reputation_line(report: NodeChecks) -> str:
    rep = report.reputation
    return (
        f"node [bold]{report.node_id}[/]: reputation {rep.score:.2f} "
        f"(capacity {rep.capacity:.2f}, liveness {rep.liveness:.2f}, "
        f"delivery {rep.delivery:.2f})"
    )


def votes_summary(check: CheckPublic) -> str:
    """``2/3 pass`` once closed (votes for the verdict / panel), ``1/3 in`` while open."""
    seats = len(check.panel) or len(check.votes)
    counts: Counter[str] = Counter(vote.verdict for vote in check.votes)
    if check.verdict in ("pass", "fail"):
        return f"{counts[check.verdict]}/{seats} {check.verdict}"
    if check.verdict is None:
        return f"{len(check.votes)}/{seats} in"
    return f"{counts['pass']} pass, {counts['fail']} fail of {seats}"


def checks_table(rows: list[CheckPublic], title: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("age", justify="right")
    table.add_column("check", no_wrap=True)
    table.add_column("kind")
    table.add_column("epoch", justify="right")
    table.add_column("verdict")
    table.add_column("votes", no_wrap=True)
    table.add_column("finding")
    for check in rows:
        verdict = check.verdict or "open"
        style = VERDICT_STYLES.get(verdict, "white")
        table.add_row(
            ago(check.created_at),
            check.check_id,
            check.kind,
            str(check.epoch),
            f"[{style}]{verdict}[/]",
            votes_summary(check),
            check.finding or _dissent(check),
        )
    return table


def _dissent(check: CheckPublic) -> str:
    """For a check without a finding: the first vote against the majority, and why."""
    against = [vote for vote in check.votes if vote.with_majority is False]
    return f"{against[0].checker[:10]}... dissented: {against[0].detail}" if against else ""


def penalties_table(rows: list[PenaltyPublic]) -> Table:
    table = Table(title="penalties", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("age", justify="right")
    table.add_column("kind")
    table.add_column("tokens", justify="right")
    table.add_column("epoch", justify="right")
    table.add_column("check", no_wrap=True)
    table.add_column("reason")
    for penalty in rows:
        table.add_row(
            ago(penalty.created_at),
            penalty.kind,
            format_tokens(int(penalty.amount)),
            str(penalty.epoch),
            penalty.check_id,
            penalty.reason,
        )
    return table
