"""Gas per operation of the token contracts, on the in-process EVM (py-evm).

The whole system is deployed twice from the local config: once with claimed rewards
paid at once (``reward_vest_s = 0``, the local network's setting) and once with the
default 180-day vesting, where a claim opens a vesting position. An epoch of
``LEAVES`` accounts is posted (its tree built by ``protocol.reward_tree``, so a proof
has 17 hashes) and one account claims; then the other operations, each one
transaction from the local deployer (which holds the genesis pools on a local chain).

Each transaction starts with cold storage, as a real one does (the backend resets
EIP-2929 access lists per transaction). "Transaction gas" is what a wallet pays for:
execution plus the 21,000 base and the calldata, less refunds. The goal (a claim at
100,000 leaves costs at most 70,000 gas) is checked on the execution gas: the base
and the calldata of a 17-hash proof alone are about 32,000, and paying a new holder
and marking a leaf claimed are two fresh storage slots (22,100 each), so no claim
transaction could meet 70,000 in total.

Run alone: ``.venv/bin/python benchmarks/bench_gas.py``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from report import Figure, Section, Table, machine_markdown, section_markdown

from gpunet.chain.backend import Receipt
from gpunet.chain.client import Chain
from gpunet.chain.config import parse_config
from gpunet.chain.deploy import deploy_system
from gpunet.chain.inprocess import InProcessChain
from gpunet.protocol.reward_tree import RewardLeaf, RewardTree
from gpunet.protocol.units import ONE_TOKEN

LEAVES = 100_000
EPOCH = 1
CLAIM_GOAL = 70_000
DAY_S = 86_400
T0 = 1_800_000_000

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Gas:
    operation: str
    transaction: int
    execution: int


class FixedClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return float(self.now)


def _system(rewards: dict[str, int]) -> Chain:
    backend = InProcessChain(None, clock=FixedClock())
    deployment = deploy_system(backend, parse_config({"rewards": rewards}, "gas benchmark"))
    return Chain(backend, deployment)


def _gas(operation: str, receipt: Receipt) -> Gas:
    execution = receipt.execution_gas if receipt.execution_gas is not None else -1
    return Gas(operation, receipt.gas_used, execution)


def _tree(progress: Progress) -> RewardTree:
    progress(f"gas: building a tree of {LEAVES:,} leaves")
    leaves = [
        RewardLeaf("0x" + (index + 1).to_bytes(20, "big").hex(), 10 * ONE_TOKEN + index, 0)
        for index in range(LEAVES)
    ]
    return RewardTree(EPOCH, leaves)


def _claims(tree: RewardTree, progress: Progress) -> list[Gas]:
    account = tree.leaves[LEAVES // 2].account
    leaf = tree.leaf(account)
    total = sum(item.reward for item in tree.leaves)
    rows = []
    for label, rewards in (
        ("paid at once", {"reward_vest_s": 0}),
        ("opens a 180-day vesting position", {}),
    ):
        progress(f"gas: claim, {label}")
        chain = _system(rewards)
        chain.backend.advance_time(30 * DAY_S)  # a month of emission under the cap
        rows.append(
            _gas(
                "post_epoch (root of 100,000 leaves)", chain.post_epoch(EPOCH, tree.root, total, 0)
            )
        )
        claim = chain.claim(EPOCH, account, leaf.reward, 0, tree.proof(account))
        rows.append(_gas(f"claim at {LEAVES:,} leaves, {label}", claim))
        if rewards:
            continue
        chain.backend.advance_time(30 * DAY_S)
        (opened,) = claim.events_named("Claimed")
        position = int(opened.args["position_id"])
        # Only the position's owner releases it (the in-process chain sends as anyone).
        released = chain.distributor.transact(account, "release", position)
        rows.append(_gas("release a position after 30 days", released))
    return rows


def _staking(progress: Progress) -> list[Gas]:
    progress("gas: staking, partner rewards, transfers")
    chain = _system({"reward_vest_s": 0})
    me = chain.sender
    ecosystem = next(p for p in chain.vesting_show(me) if p.releasable > 0)
    rows = [_gas("vesting release (ecosystem TGE unlock)", chain.vesting_release(ecosystem.id))]
    rows.append(_gas("transfer to a new holder", chain.transfer("0x" + "77" * 20, ONE_TOKEN)))
    rows.append(_gas("transfer to a holder", chain.transfer("0x" + "77" * 20, ONE_TOKEN)))
    rows.append(_gas("stake collateral", chain.stake_collateral(10_000 * ONE_TOKEN)))
    rows.append(_gas("request unstake", chain.request_unstake(10_000 * ONE_TOKEN)))
    lock = chain.lock(1_000 * ONE_TOKEN, 365 * DAY_S)
    rows.append(_gas("lock for a year", lock))
    partner = chain.deploy_partner_token("Partner", "PRT", 18, 1_000_000 * ONE_TOKEN)
    chain.add_reward_token(partner)
    rows.append(
        _gas("partner fund (30 days)", chain.partner_fund(partner, 1_000 * ONE_TOKEN, 30 * DAY_S))
    )
    chain.backend.advance_time(DAY_S)
    rows.append(_gas("claim partner rewards (one token)", chain.claim_partner_rewards(partner)))
    chain.backend.advance_time(180 * DAY_S)
    rows.append(_gas("withdraw unstaked after 180 days", chain.withdraw_unstaked()))
    chain.backend.advance_time(200 * DAY_S)
    lock_id = int(lock.events_named("Locked")[0].args["lock_id"])
    rows.append(_gas("unlock an ended lock", chain.unlock(lock_id)))
    chain.stake_collateral(100 * ONE_TOKEN)
    rows.append(_gas("slash stake", chain.slash(me, 50 * ONE_TOKEN, "benchmark")))
    return rows


def run(progress: Progress = lambda _: None) -> Section:
    """Deploy, post a 100,000-leaf epoch, claim, and time nothing: count gas."""
    started = time.perf_counter()
    tree = _tree(progress)
    rows = _claims(tree, progress) + _staking(progress)
    direct = next(r for r in rows if r.operation.endswith("paid at once"))
    figures = [
        Figure(
            f"claim at {LEAVES:,} leaves (17-hash proof), execution gas",
            f"{direct.execution:,}",
            f"<= {CLAIM_GOAL:,}",
            0 <= direct.execution <= CLAIM_GOAL,
        ),
        Figure(
            "the same claim, transaction gas (with base and calldata)", f"{direct.transaction:,}"
        ),
    ]
    table = Table(
        "Gas per operation (cold storage; transaction = execution + 21,000 + calldata - refunds)",
        ("operation", "transaction gas", "execution gas"),
        [(r.operation, f"{r.transaction:,}", f"{r.execution:,}") for r in rows],
    )
    notes = [
        "Measured on the in-process EVM (py-evm, Cancun rules through titanoboa) with the "
        "contracts compiled by Vyper 0.4.3; a JSON-RPC node charges the same gas for the "
        "same transaction and state.",
        f"Whole run {time.perf_counter() - started:.1f} s (two deployments and the tree).",
    ]
    return Section("Gas: the token contracts' operations", figures, [table], notes)


def main() -> int:
    section = run(progress=lambda text: print(text, file=sys.stderr))
    print(machine_markdown())
    print("command: `.venv/bin/python benchmarks/bench_gas.py`\n")
    print(section_markdown(section))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
