"""Checkers on a real local network: three checker agents catch a lying node.

One indexer, three node agents (the last started with ``--misbehave
random-outputs``) and three ``gpunet checker start`` agents, each its own process on
loopback, with epochs of a few seconds. The honest nodes must come out of every
check clean; the liar must fail, be penalized and sink below them. The tests with a
network of their own come first, so the module's shared network (started by the first
test that needs it) never runs beside another one on the same cores.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from gpunet.api.checks import CheckerRegistration, CheckPublic, CheckResultIn, NodeChecks
from gpunet.cli.localnet import LocalNetwork, NetworkSpec, free_port
from gpunet.errors import ApiError
from gpunet.protocol.vote import evidence_digest, result_message
from gpunet.sdk import Client

from .conftest import wait_for

# Starting a network and waiting for the panels takes longer than the default limit.
pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.timeout(300)]

CAUGHT_TIMEOUT_S = 120.0


@contextlib.contextmanager
def lying_network(root: Path, lie: str, canaries: int = 1) -> Iterator[LocalNetwork]:
    """Two honest nodes, one started with ``--misbehave lie``, and three checkers."""
    spec = NetworkSpec(
        nodes=3,
        port=free_port(),
        heartbeat_s=1.0,
        checkers=3,
        epoch_s=10.0,
        lying_node=lie,
        canaries_per_epoch=canaries,
    )
    network = LocalNetwork(spec, root)
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("GPUNET_")}
    os.environ.update(GPUNET_KEY_KDF="pbkdf2", GPUNET_KEY_KDF_ITERATIONS="1000")
    try:
        network.start()
        yield network
    finally:
        network.stop()
        for key in ("GPUNET_KEY_KDF", "GPUNET_KEY_KDF_ITERATIONS"):
            os.environ.pop(key, None)
        os.environ.update(saved)


def _record(client: Client, node_id: str) -> str:
    """The node's checks and penalties, one line each, for a failure message."""
    try:
        record = client.node_checks(node_id)
    except ApiError as exc:
        return f"unreadable ({exc})"
    lines = [
        f"{c.epoch} {c.kind} {c.verdict} {c.finding} votes={len(c.votes)}" for c in record.checks
    ]
    return "\n".join([*lines, f"penalties: {[p.kind for p in record.penalties]}"])


def _failed(record: NodeChecks, kind: str, finding: str = "") -> bool:
    return any(
        c.kind == kind and c.verdict == "fail" and finding in (c.finding or "")
        for c in record.checks
    )


# Each lie, and what the panels must find: a failed check, and the penalty it carries.
OTHER_LIES: dict[str, Callable[[NodeChecks], bool]] = {
    # Skips every job, uploads random outputs: a canary's delivery check fails.
    "skip-jobs=1": lambda r: (
        _failed(r, "delivery") and {p.kind for p in r.penalties} == {"malicious"}
    ),
    # Signs its answers with another key: pings and commitments are refused.
    "impersonate": lambda r: (
        _failed(r, "capacity")
        and _failed(r, "liveness")
        and "below_spec" in {p.kind for p in r.penalties}
    ),
    # Silent while idle: offline, but idle, so no stake is at risk.
    "offline-idle": lambda r: _failed(r, "liveness", "offline_idle") and not r.penalties,
}


# A canary makes a node busy, and a busy offline-idle liar answers its pings: without
# canaries it is idle, and so silent, whenever a panel probes it.
CANARIES = {"offline-idle": 0}


@pytest.mark.parametrize("lie", sorted(OTHER_LIES))
def test_each_kind_of_lie_is_caught_and_honest_nodes_stay_clean(tmp_path: Path, lie: str) -> None:
    with lying_network(tmp_path / "net", lie, CANARIES.get(lie, 1)) as network:
        honest, liar = node_ids(network)
        with network.client() as client:

            def caught() -> bool:
                try:
                    return OTHER_LIES[lie](client.node_checks(liar))
                except ApiError:  # not registered yet
                    return False

            try:
                wait_for(caught, f"the panels to catch {lie}", CAUGHT_TIMEOUT_S)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; the liar's record: {_record(client, liar)}") from None
            for node_id in honest:
                clean = client.node_checks(node_id)
                assert [c.finding for c in clean.checks if c.verdict == "fail"] == []
                assert clean.penalties == []


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    with lying_network(tmp_path_factory.mktemp("checks-net"), "random-outputs") as network:
        yield network


def node_ids(network: LocalNetwork) -> tuple[list[str], str]:
    ids = [wait_for(lambda n=name: network.node_id(n), f"{name}'s id") for name in network.nodes]
    return ids[:-1], ids[-1]


@pytest.fixture(scope="module")
def caught(network: LocalNetwork) -> tuple[list[str], str]:
    """Wait until the liar has a penalty and every node has closed checks."""
    honest, liar = node_ids(network)
    with network.client() as client:

        def judged() -> bool:
            try:
                if not client.node_checks(liar).penalties:
                    return False
                return all(_closed(client.node_checks(n).checks) for n in honest)
            except ApiError:  # not registered yet
                return False

        wait_for(judged, "a penalty for the liar", CAUGHT_TIMEOUT_S)
    return honest, liar


def _closed(checks: list[CheckPublic]) -> bool:
    kinds = {c.kind for c in checks if c.verdict in ("pass", "fail")}
    return {"liveness", "capacity"} <= kinds


def test_the_lying_node_fails_is_penalized_and_ranks_last(
    network: LocalNetwork, caught: tuple[list[str], str]
) -> None:
    honest, liar = caught
    with network.client() as client:
        record = client.node_checks(liar)
        failed = [c for c in record.checks if c.verdict == "fail"]
        assert failed, record
        assert {p.kind for p in record.penalties} <= {"below_spec", "malicious"}
        reputations = {n.node_id: n.reputation for n in client.list_nodes().nodes}
        for node_id in honest:
            clean = client.node_checks(node_id)
            assert [c.finding for c in clean.checks if c.verdict == "fail"] == []
            assert clean.penalties == []
            assert reputations[node_id] > reputations[liar]


def test_every_vote_carries_the_checkers_own_signature(
    network: LocalNetwork, caught: tuple[list[str], str]
) -> None:
    _honest, liar = caught
    with network.client() as client:
        check = next(c for c in client.node_checks(liar).checks if c.verdict == "fail")
        assert len(check.votes) >= 2
        for vote in check.votes:
            digest = evidence_digest(vote.evidence)
            message = result_message(
                check.check_id, check.node_id, check.kind, vote.verdict, digest
            )
            signer = Account.recover_message(encode_defunct(text=message), signature=vote.signature)
            assert signer.lower() == vote.checker.lower()


def test_a_result_from_outside_the_panel_is_refused(
    network: LocalNetwork, caught: tuple[list[str], str]
) -> None:
    _honest, liar = caught
    outsider = Account.create()
    with network.client() as reader:
        check = reader.node_checks(liar).checks[0]
    evidence: dict[str, object] = {"forged": True}
    message = result_message(check.check_id, liar, check.kind, "pass", evidence_digest(evidence))
    signature = outsider.sign_message(encode_defunct(text=message)).signature.hex()
    result = CheckResultIn(
        verdict="pass",
        detail="forged",
        evidence=evidence,
        signature=signature if signature.startswith("0x") else "0x" + signature,
    )
    with Client(network.spec.url, outsider) as client:
        client.register_checker(CheckerRegistration())
        with pytest.raises(ApiError) as refused:
            client.report_check(check.check_id, result)
    assert refused.value.status_code in (403, 409)


def test_the_cli_shows_a_nodes_checks_and_the_checkers_standing(
    network: LocalNetwork, caught: tuple[list[str], str]
) -> None:
    _honest, liar = caught
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUNET_")}
    env["COLUMNS"] = "200"
    base = [sys.executable, "-m", "gpunet.cli.main"]
    shown = subprocess.run(
        [*base, "node", "checks", liar, "--indexer", network.spec.url],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "fail" in shown.stdout
    assert "penalt" in shown.stdout.lower()
    stats = subprocess.run(
        [*base, "checker", "stats", "--indexer", network.spec.url],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert stats.returncode == 0, stats.stderr
    assert stats.stdout.count("0x") >= 3
