"""The demo's chain part: an epoch settles on chain, an operator claims, a holder earns.

The checkers' network runs with an in-process EVM chain in ``<root>/chain`` (the
token, vesting, reward distributor, staking and escrow contracts, deployed at start).
Every epoch the indexer settles the closed one and posts its reward tree's root to
the distributor. The demo then runs the real commands, each its own process on the
same chain: ``gpunet claim --from-indexer`` for an honest operator; ``gpunet vesting
release`` and ``gpunet lock`` for a holder (the local deployer, who is every vesting
pool's beneficiary on a local chain); a partner token streamed to lockers with
``gpunet partner add-token`` and ``gpunet partner fund``, claimed with ``gpunet
partner claim``; and ``gpunet supply``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from rich.table import Table

from gpunet.cli.console import out
from gpunet.cli.localnet import LocalNetwork, wait_until
from gpunet.errors import GpunetError
from gpunet.protocol.units import ONE_TOKEN
from gpunet.sdk import Client

POSTED_TIMEOUT_S = 120.0
PARTNER_SUPPLY = 1_000_000 * ONE_TOKEN
PARTNER_STREAM = "36000"  # partner tokens streamed to lockers...
PARTNER_PERIOD = "1h"  # ...over this period: 10 a second
EARN_FOR_S = 5.0


def tokens(base_units: int) -> str:
    """Base units as whole tokens with two decimals, for reading (exact values: --json)."""
    return f"{base_units / ONE_TOKEN:,.2f}"


class ChainDemoFailed(GpunetError):
    """A chain step of the demo did not show what it should have."""


def gpunet(network: LocalNetwork, *args: str) -> dict[str, Any]:
    """Run ``gpunet ARGS --json`` on the network's chain; its JSON answer."""
    env = {
        **os.environ,
        "GPUNET_CHAIN_DIR": str(network.layout.chain_dir),
        "GPUNET_HOME": str(network.layout.root),
    }
    command = [sys.executable, "-m", "gpunet.cli.main", *args, "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise ChainDemoFailed(f"`gpunet {' '.join(args)}` failed: {done.stderr.strip()}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def operator_of(network: LocalNetwork, client: Client, name: str) -> str:
    node_id = network.node_id(name)
    if node_id is None:
        raise ChainDemoFailed(f"{name} has no node id")
    return client.get_node(node_id).operator


def wait_for_posted_reward(client: Client, operator: str) -> dict[str, Any]:
    """The newest posted claim of ``operator``, once an epoch settles on chain."""

    found: list[dict[str, Any]] = []

    def posted() -> bool:
        try:
            claims = client.rewards(operator).claims
        except GpunetError:
            return False
        found.extend(c.model_dump() for c in claims if c.status == "posted")
        return bool(found)

    wait_until(
        posted, POSTED_TIMEOUT_S, f"no posted reward for {operator} in {POSTED_TIMEOUT_S:g}s"
    )
    return found[0]


def show_settlement(client: Client, epoch: int) -> None:
    settled = client.settlement(epoch)
    table = Table("part", "emission", "paid", "carried on", title=f"epoch {epoch} settled")
    for name, part in settled.parts.items():
        table.add_row(
            name,
            tokens(int(part.emission)),
            tokens(int(part.paid)),
            tokens(int(part.carry)),
        )
    out.print(table)
    out.print(
        f"root {settled.root} with {settled.leaves} leaves posted to the reward distributor "
        f"(tx {(settled.post_tx or '')[:18]}...)"
    )
    for account, amount in settled.slashed.items():
        out.print(f"slash on chain: {tokens(int(amount))} tokens of {account}")


def settle_and_claim(network: LocalNetwork, client: Client, name: str) -> None:
    """Wait for ``name``'s operator to have a posted reward, show the epoch, claim it."""
    operator = operator_of(network, client, name)
    claim = wait_for_posted_reward(client, operator)
    show_settlement(client, claim["epoch"])
    listed = gpunet(network, "rewards", operator, "--indexer", network.spec.url)["claims"]
    if not any(c["epoch"] == claim["epoch"] and c["proof"] == claim["proof"] for c in listed):
        raise ChainDemoFailed(f"`gpunet rewards {operator}` does not list epoch {claim['epoch']}")
    before = balance(network, operator)
    claimed = gpunet(network, "claim", "--from-indexer", network.spec.url, "--account", operator)[
        "claims"
    ]
    after = balance(network, operator)
    if not claimed or after <= before:
        raise ChainDemoFailed(f"claiming paid {operator} nothing: {claimed}")
    epochs = ", ".join(str(c["epoch"]) for c in claimed)
    out.print(
        f"{name}'s operator {operator} claimed epoch(s) {epochs}: balance "
        f"{tokens(before)} -> {tokens(after)} tokens"
    )


def balance(network: LocalNetwork, account: str, token: str | None = None) -> int:
    args = ["chain", "balance", account, *(["--token", token] if token else [])]
    return int(gpunet(network, *args)["balance"])


def stake_and_earn(network: LocalNetwork) -> None:
    """The holder locks tokens; a partner streams its token; the holder claims some."""
    # On a local chain the treasury, every vesting pool's beneficiary, is the sender.
    holder = gpunet(network, "chain", "status")["roles"]["treasury"]
    ecosystem = next(
        s for s in gpunet(network, "vesting", "show", holder)["schedules"] if s["releasable"] != "0"
    )
    gpunet(network, "vesting", "release", str(ecosystem["id"]))
    locked = gpunet(network, "lock", "1000000", "--duration", "1y")
    out.print(
        f"holder {holder} released {tokens(int(ecosystem['releasable']))} vested "
        f"tokens and locked 1,000,000 for a year (lock {locked['lock_id']}, weight "
        f"{tokens(int(locked['weight']))})"
    )
    partner = gpunet(
        network, "partner", "deploy-token", "--name", "Partner Credit", "--symbol", "PCR",
        "--supply", str(PARTNER_SUPPLY // ONE_TOKEN),
    )["token"]  # fmt: skip
    gpunet(network, "partner", "add-token", partner)
    gpunet(network, "partner", "fund", partner, PARTNER_STREAM, "--duration", PARTNER_PERIOD)
    funded = time.monotonic()
    out.print(f"a partner streams {PARTNER_STREAM} PCR ({partner}) to lockers over 1 hour")
    time.sleep(EARN_FOR_S)
    before = balance(network, holder, partner)
    gpunet(network, "partner", "claim", partner)
    earned = balance(network, holder, partner) - before
    if earned <= 0:
        raise ChainDemoFailed("the holder's lock earned no partner tokens")
    waited = time.monotonic() - funded
    out.print(
        f"about {waited:.0f}s later the holder, the only locker, claims {tokens(earned)} PCR "
        "(10 a second)"
    )


def show_supply(network: LocalNetwork) -> None:
    supply = gpunet(network, "supply")
    table = Table("", "tokens", title="the fixed supply, where it is", title_justify="left")
    for key in ("total", "circulating", "vesting_locked", "emission_unemitted", "staked"):
        table.add_row(key.replace("_", " "), tokens(int(supply[key])))
    out.print(table)
