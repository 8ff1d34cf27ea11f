from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from gpunet.cli.main import app
from gpunet.protocol.reward_tree import RewardLeaf, build_tree

from .conftest import DEPLOYER

# Each command opens the chain afresh, as a user's shell would: a few seconds in all.
pytestmark = pytest.mark.slow

CONFIG = "[rewards]\nreward_vest_s = 0\nfee_vest_s = 0\n"
ALICE = "0x" + "a1" * 20


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``gpunet`` against an in-process chain in a temporary data dir."""
    monkeypatch.setenv("GPUNET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GPUNET_CHAIN_RPC_URL", raising=False)
    data_dir = tmp_path / "chain"
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, [*args, "--data-dir", str(data_dir)])

    config = tmp_path / "local.toml"
    config.write_text(CONFIG)
    deployed = run("chain", "deploy", "--config", str(config), "--json")
    assert deployed.exit_code == 0, deployed.output
    run.deployment = json.loads(deployed.stdout)  # type: ignore[attr-defined]
    run.config = config  # type: ignore[attr-defined]
    return run


def test_deploy_records_the_deployment(cli: Any) -> None:
    record = cli.deployment
    assert set(record["contracts"]) >= {"token", "vesting", "distributor", "staking", "escrow"}
    assert Path(record["record"]).is_file()
    status = json.loads(cli("chain", "status", "--json").stdout)
    assert status["contracts"] == record["contracts"]
    again = cli("chain", "deploy", "--config", str(cli.config))
    assert again.exit_code == 2 and "--force" in again.stderr


def test_advance_time_moves_the_chain_clock(cli: Any) -> None:
    before = int(json.loads(cli("chain", "status", "--json").stdout)["timestamp"])
    assert cli("chain", "advance-time", "30d").exit_code == 0
    after = int(json.loads(cli("chain", "status", "--json").stdout)["timestamp"])
    assert after >= before + 30 * 86_400


def test_supply_json_adds_up(cli: Any) -> None:
    supply = json.loads(cli("supply", "--json").stdout)
    parts = ("circulating", "vesting_locked", "emission_unemitted", "burned")
    assert sum(int(supply[k]) for k in parts) == int(supply["total"])
    assert {p["name"] for p in supply["by_pool"]} >= {"team", "compute_providers"}


def test_vesting_show_lists_the_treasury_schedules(cli: Any) -> None:
    shown = json.loads(cli("vesting", "show", DEPLOYER, "--json").stdout)
    assert len(shown["schedules"]) == 6
    assert cli("vesting", "show", DEPLOYER).exit_code == 0


def test_claim_with_a_proof_and_a_revert_as_one_line(cli: Any) -> None:
    from gpunet.chain.client import Chain
    from gpunet.chain.inprocess import InProcessChain

    data_dir = Path(cli.deployment["record"]).parent
    chain = Chain.open(InProcessChain(data_dir), data_dir)
    tree = build_tree(4, [RewardLeaf(DEPLOYER, 0, 0), RewardLeaf(ALICE, 0, 0)])
    assert tree is not None
    chain.post_epoch(4, tree.root, 0, 0)
    proof = ",".join("0x" + p.hex() for p in tree.proof(DEPLOYER))
    claimed = cli("claim", "--epoch", "4", "--reward", "0", "--proof", proof, "--json")
    assert claimed.exit_code == 0, claimed.output
    assert json.loads(claimed.stdout)["claims"][0]["epoch"] == 4
    again = cli("claim", "--epoch", "4", "--reward", "0", "--proof", proof)
    assert again.exit_code == 2
    assert "error: distributor: already claimed" in again.stderr


def test_claim_from_the_indexer_claims_posted_epochs_not_yet_paid(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gpunet.chain.client import Chain
    from gpunet.chain.inprocess import InProcessChain

    data_dir = Path(cli.deployment["record"]).parent
    chain = Chain.open(InProcessChain(data_dir), data_dir)
    trees = {
        e: build_tree(e, [RewardLeaf(DEPLOYER, 0, 0), RewardLeaf(ALICE, 0, 0)]) for e in (7, 9)
    }
    for epoch, tree in trees.items():
        assert tree is not None
        chain.post_epoch(epoch, tree.root, 0, 0)
    proofs = {e: ["0x" + p.hex() for p in t.proof(DEPLOYER)] for e, t in trees.items() if t}
    chain.claim(7, DEPLOYER, 0, 0, [bytes.fromhex(p[2:]) for p in proofs[7]])
    claims = [
        # posted, not yet claimed: claimed now
        {"epoch": 9, "reward": "0", "fee": "0", "status": "posted", "proof": proofs[9]},
        # settled, but its root is not on chain yet: left for later
        {"epoch": 8, "reward": "5", "fee": "0", "status": "computed", "proof": []},
        # posted and already claimed on chain: skipped, not refused
        {"epoch": 7, "reward": "0", "fee": "0", "status": "posted", "proof": proofs[7]},
    ]
    asked: list[str] = []

    def fake_get(url: str, timeout: float) -> httpx.Response:
        asked.append(url)
        body = {"account": DEPLOYER, "claims": claims}
        return httpx.Response(200, json=body, request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", fake_get)
    result = cli("claim", "--from-indexer", "http://indexer.test", "--json")
    assert result.exit_code == 0, result.output
    assert asked == [f"http://indexer.test/v1/rewards/{DEPLOYER}"]
    assert [c["epoch"] for c in json.loads(result.stdout)["claims"]] == [9]


def test_lock_stake_and_unstake_from_the_command_line(cli: Any) -> None:
    assert cli("vesting", "release", "2").exit_code == 0  # the treasury's ecosystem tokens
    locked = json.loads(cli("lock", "100", "--duration", "4y", "--json").stdout)
    assert int(locked["weight"]) == 400 * 10**18
    assert cli("stake", "50").exit_code == 0
    unstaked = json.loads(cli("unstake", "20", "--json").stdout)
    assert int(unstaked["ready_at"]) > 0
    too_short = cli("lock", "1", "--duration", "1h")
    assert too_short.exit_code == 2 and "staking: lock too short" in too_short.stderr


def test_partner_fund_and_claim(cli: Any) -> None:
    stablecoin = cli.deployment["contracts"]["payment_token"]
    assert cli("vesting", "release", "2").exit_code == 0
    assert cli("lock", "10", "--duration", "1w").exit_code == 0
    assert cli("partner", "add-token", stablecoin).exit_code == 0
    funded = cli("partner", "fund", stablecoin, "70", "--duration", "1w", "--json")
    assert funded.exit_code == 0, funded.output
    assert json.loads(funded.stdout)["amount"] == str(70 * 10**6)
    assert cli("partner", "claim", "--json").exit_code == 0


def test_bad_input_is_one_error_line(cli: Any) -> None:
    result = cli("lock", "1", "--duration", "soon")
    assert result.exit_code == 2 and "--duration" in result.stderr
    missing = cli("claim", "--epoch", "1")
    assert missing.exit_code == 2 and "--from-indexer" in missing.stderr
