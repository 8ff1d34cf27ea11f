"""``gpunet settlements`` and ``gpunet rewards ADDRESS``: epochs settled by the indexer.

Both read the indexer (no chain needed): what each epoch paid and whether its root is
on chain, and an account's leaves with the proofs ``gpunet claim`` sends.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gpunet.cli.console import INDEXER_OPTION, out, print_json
from gpunet.protocol.units import format_tokens
from gpunet.sdk import DEFAULT_INDEXER_URL, Client

AsJson = Annotated[bool, typer.Option("--json", help="Print the indexer's JSON answer.")]


def settlements(
    indexer: Annotated[str, INDEXER_OPTION] = DEFAULT_INDEXER_URL,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Most epochs to show.")] = 20,
    as_json: AsJson = False,
) -> None:
    """Settled epochs, newest first: rewards paid by part, leaves, and chain status.

    Status: posted (the root is on the reward distributor, claimable), computed (not
    on chain yet; the indexer retries), empty (nothing to pay), local (no chain).
    """
    with Client(indexer) as client:
        listing = client.settlements(limit)
    if as_json:
        print_json(listing.model_dump(mode="json"))
        return
    if not listing.settlements:
        out.print("No settled epochs yet: an epoch settles once all its checks have closed.")
        return
    table = Table("epoch", "status", "leaves", "capacity", "delivery", "checkers", "slashed")
    for s in listing.settlements:
        paid = {name: format_tokens(int(part.paid)) for name, part in s.parts.items()}
        slashed = sum(int(amount) for amount in s.slashed.values())
        table.add_row(
            str(s.epoch),
            s.status + (" (retrying)" if s.post_error else ""),
            str(s.leaves),
            paid.get("capacity", "0"),
            paid.get("delivery", "0"),
            paid.get("checkers", "0"),
            format_tokens(slashed) if slashed else "",
        )
    out.print(table)


def rewards(
    address: Annotated[str, typer.Argument(help="Account address (0x...).")],
    indexer: Annotated[str, INDEXER_OPTION] = DEFAULT_INDEXER_URL,
    as_json: AsJson = False,
) -> None:
    """An account's reward leaves, newest first, with their Merkle proofs (--json).

    Claim the posted ones with `gpunet claim --from-indexer URL`.
    """
    with Client(indexer) as client:
        claims = client.rewards(address)
    if as_json:
        print_json(claims.model_dump(mode="json"))
        return
    if not claims.claims:
        out.print(f"No rewards for {address} yet.")
        return
    table = Table("epoch", "reward (tokens)", "fee", "status", "proof")
    for c in claims.claims:
        table.add_row(
            str(c.epoch), format_tokens(int(c.reward)), c.fee, c.status, f"{len(c.proof)} hashes"
        )
    out.print(table)
