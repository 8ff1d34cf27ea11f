"""The ``gpunet`` command: keys, a node, an indexer, listings and a local network.

Every ``GpunetError`` ends the command with one red line ``error: <message>`` on stderr
and exit code 2, without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any

import typer
from typer._click.core import Context
from typer.core import TyperGroup

from gpunet import __version__
from gpunet.cli import (
    accounts,
    chain,
    checker,
    claims,
    demo,
    indexer,
    jobs,
    keys,
    listing,
    network,
    node,
    rewards,
    sessions,
    sim,
    staking,
)
from gpunet.cli.console import ERROR_EXIT_CODE, print_error
from gpunet.errors import GpunetError


class GpunetGroup(TyperGroup):
    """The root command group: turns gpunet's own errors into a red line and exit 2."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except GpunetError as exc:
            print_error(str(exc))
            raise typer.Exit(ERROR_EXIT_CODE) from None


app = typer.Typer(
    cls=GpunetGroup,
    name="gpunet",
    help="gpunet: an open-source decentralized GPU cloud. Run a node, an indexer, or both.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold passwords and keys
)
app.add_typer(keys.app, name="keys")
app.add_typer(node.app, name="node")
app.add_typer(checker.app, name="checker")
app.add_typer(indexer.app, name="indexer")
app.add_typer(sim.app, name="sim")
app.command("nodes")(listing.nodes)
app.command("offers")(listing.offers)
app.command("up")(network.up)
app.command("demo")(demo.demo)
app.command("quote")(jobs.quote)
app.command("run")(jobs.run)
app.command("jobs")(jobs.jobs_list)
app.add_typer(jobs.job_app, name="job")
app.add_typer(sessions.app, name="session")
app.command("deposit")(accounts.deposit)
app.command("withdraw")(accounts.withdraw)
app.command("balance")(accounts.balance)
app.command("earnings")(accounts.earnings)
app.add_typer(chain.app, name="chain")
app.command("claim")(claims.claim)
app.command("stake")(staking.stake)
app.command("unstake")(staking.unstake)
app.command("lock")(staking.lock)
app.command("unlock")(staking.unlock)
app.add_typer(staking.partner_app, name="partner")
app.add_typer(chain.vesting_app, name="vesting")
app.command("supply")(chain.supply)
app.command("settlements")(rewards.settlements)
app.command("rewards")(rewards.rewards)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gpunet {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """gpunet: an open-source decentralized GPU cloud. Run a node, an indexer, or both."""


def run() -> None:
    """Console-script entry point (``gpunet``)."""
    app()


if __name__ == "__main__":
    run()
