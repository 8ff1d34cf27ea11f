"""Epoch settlement in the indexer: closed epochs settle once, in order, with proofs.

The network fixture is the checks tests' own: one H100 node, three checkers and a
first epoch whose liveness and capacity checks are open.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from starlette.applications import Starlette

from gpunet.indexer.check_loop import post_settlements
from gpunet.indexer.context import app_context
from gpunet.indexer.testing import IndexerTestClient, ManualClock
from gpunet.protocol.reward_tree import leaf_hash, verify_proof
from gpunet.protocol.settlement_budget import EmissionParams, epoch_budget

from . import test_indexer_checks as checks_suite
from .test_indexer_checks import EPOCH_S, next_epoch, report, task_of

# The checks tests' fixtures, used here by name.
settings, client = checks_suite.settings, checks_suite.client
checkers, network = checks_suite.checkers, checks_suite.network

K_H100 = 100 * 100 * 10**18  # 100 tokens x 100 capacity units


def judge(network: IndexerTestClient, checkers: list[LocalAccount], capacity: str) -> None:
    for checker in checkers:
        report(network, checker, task_of(network, checker, "liveness"), "pass")
        report(network, checker, task_of(network, checker, "capacity"), capacity)


def all_settlements(client: IndexerTestClient) -> list[dict[str, Any]]:
    answer = client.get("/v1/settlements")
    assert answer.status_code == 200, answer.text
    return list(answer.json()["settlements"])


def settlements(client: IndexerTestClient) -> list[dict[str, Any]]:
    """Settled epochs but the empty one the app opened at startup, before any node."""
    return [s for s in all_settlements(client) if s["status"] != "empty"]


def test_a_closed_epoch_settles_once_with_rewards_within_its_budget(
    network: IndexerTestClient,
    clock: ManualClock,
    operator: LocalAccount,
    checkers: list[LocalAccount],
) -> None:
    judge(network, checkers, "pass")
    first_epoch = int(clock.now // EPOCH_S)
    next_epoch(network, clock, checkers)
    next_epoch(network, clock, checkers)  # a second tick must not settle it again

    everything = all_settlements(network)
    (settled,) = [s for s in everything if s["epoch"] == first_epoch]
    assert settled["status"] == "local"  # no chain configured
    epochs = sorted(s["epoch"] for s in everything)
    assert epochs == list(range(epochs[0], epochs[-1] + 1))  # each once, none skipped
    # Emission starts at the first epoch's start (the app's first tick, with no nodes).
    start_s = int((first_epoch - epochs[0]) * EPOCH_S)
    budget = epoch_budget(EmissionParams(), start_s, start_s + int(EPOCH_S))
    parts = settled["parts"]
    assert int(parts["capacity"]["emission"]) == budget.capacity
    assert int(parts["checkers"]["emission"]) == budget.checkers
    # The one eligible node takes the whole capacity part, with what the empty first
    # epoch carried in; no job ran, so the delivery part carries on.
    assert int(parts["capacity"]["paid"]) == int(parts["capacity"]["budget"]) > budget.capacity
    assert int(parts["delivery"]["paid"]) == 0
    assert int(parts["delivery"]["carry"]) == int(parts["delivery"]["budget"]) > budget.delivery
    # Three checkers with two correct checks each share the checker part equally.
    checker_part = parts["checkers"]
    assert int(checker_part["paid"]) + int(checker_part["carry"]) == int(checker_part["budget"])
    assert int(checker_part["carry"]) < 3  # dust: under one base unit per checker
    available = sum(int(part["budget"]) for part in parts.values())
    assert int(settled["reward_total"]) <= available <= 2 * budget.total
    assert settled["leaves"] == 4


def test_every_leaf_comes_with_a_proof_of_the_posted_root(
    network: IndexerTestClient,
    clock: ManualClock,
    operator: LocalAccount,
    checkers: list[LocalAccount],
) -> None:
    judge(network, checkers, "pass")
    next_epoch(network, clock, checkers)
    for account in [operator.address, *(c.address for c in checkers)]:
        answer = network.get(f"/v1/rewards/{account}")
        assert answer.status_code == 200, answer.text
        (claim,) = answer.json()["claims"]
        leaf = leaf_hash(claim["epoch"], account, int(claim["reward"]), int(claim["fee"]))
        proof = [bytes.fromhex(p[2:]) for p in claim["proof"]]
        assert verify_proof(bytes.fromhex(claim["root"][2:]), leaf, proof)
        assert int(claim["reward"]) > 0
    stranger = network.get("/v1/rewards/0x" + "ab" * 20)
    assert stranger.json()["claims"] == []


def test_a_penalty_above_the_epoch_reward_becomes_a_stake_slash(
    network: IndexerTestClient,
    clock: ManualClock,
    operator: LocalAccount,
    checkers: list[LocalAccount],
) -> None:
    judge(network, checkers, "fail")  # capacity fails: a below-spec penalty of 1 K
    next_epoch(network, clock, checkers)
    (settled,) = settlements(network)
    # A failed check makes the node ineligible: no capacity reward to take the penalty from.
    assert settled["slashed"] == {operator.address.lower(): str(K_H100)}
    assert network.get(f"/v1/rewards/{operator.address}").json()["claims"] == []


@dataclass
class RecordingChain:
    """A stand-in chain for the posting loop; the real one is in the chain tests."""

    fail_with: str | None = None
    posts: list[tuple[int, bytes, int, int]] = field(default_factory=list)
    slashes: list[tuple[str, int]] = field(default_factory=list)

    def post_epoch(self, epoch: int, root: bytes, reward_total: int, fee_total: int) -> str:
        if self.fail_with:
            raise RuntimeError(self.fail_with)
        self.posts.append((epoch, root, reward_total, fee_total))
        return "0x" + "11" * 32

    def slash(self, account: str, amount: int, reason: str) -> tuple[int, str]:
        self.slashes.append((account, amount))
        return amount, "0x" + "22" * 32


def with_chain(client: IndexerTestClient, chain: RecordingChain) -> None:
    assert isinstance(client.app, Starlette)
    context = app_context(client.app)
    object.__setattr__(context, "chain", chain)


def post(client: IndexerTestClient, chain: RecordingChain) -> None:
    assert isinstance(client.app, Starlette)
    asyncio.run(post_settlements(app_context(client.app), chain))


@pytest.mark.parametrize("capacity", ["pass", "fail"])
def test_roots_and_slashes_reach_the_chain_once_and_a_failed_post_is_retried(
    network: IndexerTestClient,
    clock: ManualClock,
    operator: LocalAccount,
    checkers: list[LocalAccount],
    capacity: str,
) -> None:
    chain = RecordingChain(fail_with="distributor: above the emission cap")
    with_chain(network, chain)
    judge(network, checkers, capacity)
    next_epoch(network, clock, checkers)
    (settled,) = settlements(network)
    assert settled["status"] == "computed"

    post(network, chain)
    (failed,) = settlements(network)
    assert failed["status"] == "computed"
    assert failed["post_error"] == "distributor: above the emission cap"

    chain.fail_with = None
    post(network, chain)
    post(network, chain)  # nothing left to post
    (posted,) = settlements(network)
    assert posted["status"] == "posted" and posted["post_error"] is None
    assert chain.posts == [
        (posted["epoch"], bytes.fromhex(posted["root"][2:]), int(posted["reward_total"]), 0)
    ]
    expected = [(operator.address.lower(), K_H100)] if capacity == "fail" else []
    assert chain.slashes == expected
