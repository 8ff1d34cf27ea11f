from __future__ import annotations

from pathlib import Path

import pytest

from gpunet.chain.artifacts import Artifacts
from gpunet.chain.client import Chain
from gpunet.chain.deploy import BURN_ADDRESS, load_deployment
from gpunet.chain.errors import ChainRevert, DeploymentMissing
from gpunet.chain.inprocess import InProcessChain
from gpunet.protocol.allocation import DEFAULT_ALLOCATION, TOTAL_SUPPLY, pool_amount
from gpunet.protocol.reward_tree import RewardLeaf, build_tree
from gpunet.protocol.units import ONE_TOKEN

from .conftest import DEPLOYER, FakeClock, deploy

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20
DAY = 86_400


def assert_supply_adds_up(chain: Chain) -> None:
    s = chain.supply()
    assert s.total == TOTAL_SUPPLY
    assert s.circulating + s.vesting_locked + s.emission_unemitted + s.burned == s.total


def test_genesis_places_every_pool(chain: Chain) -> None:
    supply = chain.supply()
    amounts = {p.name: p.amount for p in supply.by_pool}
    assert amounts == {p.name: pool_amount(p) for p in DEFAULT_ALLOCATION}
    assert chain.balance(DEPLOYER) == 0  # the deployer passed everything on
    emission = sum(pool_amount(p) for p in DEFAULT_ALLOCATION if p.schedule is None)
    assert supply.emission_unemitted == emission
    assert_supply_adds_up(chain)


def test_vesting_follows_the_schedules(chain: Chain, backend: InProcessChain) -> None:
    treasury = chain.deployment.roles["treasury"]
    schedules = {s.id: s for s in chain.vesting_show(treasury)}
    ecosystem = chain.deployment.pools["ecosystem"]
    at_tge = schedules[ecosystem["schedule_id"]]
    assert at_tge.vested == int(ecosystem["amount"]) // 2  # 50% at TGE
    backend.advance_time(2 * 365 * DAY)
    receipt = chain.vesting_release(ecosystem["schedule_id"])
    assert receipt.events_named("Released")[0].args["amount"] > at_tge.vested
    assert_supply_adds_up(chain)


def test_a_claim_end_to_end_with_a_reward_tree(
    chain: Chain, backend: InProcessChain, clock: FakeClock
) -> None:
    tree = build_tree(1, [RewardLeaf(ALICE, 1_000 * ONE_TOKEN, 0), RewardLeaf(BOB, 500, 0)])
    assert tree is not None
    clock.now += 2 * DAY  # let the emission cap grow past the epoch's rewards
    chain.post_epoch(1, tree.root, 1_000 * ONE_TOKEN + 500, 0)
    receipt = chain.claim(1, ALICE, 1_000 * ONE_TOKEN, 0, tree.proof(ALICE))
    (claimed,) = receipt.events_named("Claimed")
    assert claimed.args["reward"] == 1_000 * ONE_TOKEN
    assert chain.pending_rewards(ALICE) == 1_000 * ONE_TOKEN
    with pytest.raises(ChainRevert, match="distributor: already claimed"):
        chain.claim(1, ALICE, 1_000 * ONE_TOKEN, 0, tree.proof(ALICE))
    with pytest.raises(ChainRevert, match="distributor: invalid proof"):
        chain.claim(1, BOB, 501, 0, tree.proof(BOB))
    backend.advance_time(10 * DAY)  # the whole vesting period
    release = chain_as(chain, backend, ALICE).release(claimed.args["position_id"])
    assert release.events_named("Released")[0].args["reward"] == 1_000 * ONE_TOKEN
    assert chain.balance(ALICE) == 1_000 * ONE_TOKEN
    assert_supply_adds_up(chain)


def chain_as(chain: Chain, backend: InProcessChain, account: str) -> Chain:
    """The same deployment, sending from ``account``."""
    other = InProcessChain(backend.data_dir, clock=backend.clock, default_sender=account)
    return Chain(other, chain.deployment, chain.artifacts)


def fund(chain: Chain, account: str, tokens: int) -> None:
    """Give ``account`` tokens from the treasury's released ecosystem pool."""
    chain.vesting_release(chain.deployment.pools["ecosystem"]["schedule_id"])
    chain.transfer(account, tokens * ONE_TOKEN)


def test_lock_and_a_partner_stream(
    chain: Chain, backend: InProcessChain, artifacts: Artifacts
) -> None:
    fund(chain, ALICE, 1_000)
    alice = chain_as(chain, backend, ALICE)
    locked = alice.lock(1_000 * ONE_TOKEN, 7 * DAY).events_named("Locked")[0]
    assert locked.args["weight"] == 1_000 * ONE_TOKEN  # 1x at the shortest lock
    partner = backend.deploy(
        artifacts.get("PartnerToken"), ["Partner", "PRT", 18, DEPLOYER, 10**24]
    )
    chain.add_reward_token(partner)
    chain.partner_fund(partner, 7 * DAY * 10**12, 7 * DAY)
    backend.advance_time(7 * DAY)
    earned = alice.earned(ALICE, partner)
    assert 0 < earned <= 7 * DAY * 10**12
    alice.claim_partner_rewards(partner)
    assert chain.balance(ALICE, partner) == earned
    with pytest.raises(ChainRevert, match="staking: lock too short"):
        alice.lock(ONE_TOKEN, DAY)
    assert chain.supply().staked == 1_000 * ONE_TOKEN
    alice.unlock(locked.args["lock_id"])
    assert chain.balance(ALICE) == 1_000 * ONE_TOKEN


def test_collateral_unstakes_after_the_delay_and_can_be_slashed(
    chain: Chain, backend: InProcessChain
) -> None:
    fund(chain, ALICE, 100)
    alice = chain_as(chain, backend, ALICE)
    alice.stake_collateral(100 * ONE_TOKEN)
    slash = chain.slash(ALICE, 40 * ONE_TOKEN, "below spec").events_named("Slashed")[0]
    assert slash.args["from_stake"] == 40 * ONE_TOKEN
    alice.request_unstake(60 * ONE_TOKEN)
    with pytest.raises(ChainRevert, match="staking: unstake not ready"):
        alice.withdraw_unstaked()
    backend.advance_time(180 * DAY)
    alice.withdraw_unstaked()
    assert chain.balance(ALICE) == 60 * ONE_TOKEN
    assert_supply_adds_up(chain)


def test_escrow_settlement_funds_an_epoch_of_fees(chain: Chain, clock: FakeClock) -> None:
    client_pays = 1_000_000  # 1 lUSD (6 decimals), held by the admin
    chain.deposit(client_pays)
    settled = chain.settle_escrow(1, [DEPLOYER], [client_pays]).events_named("Settled")[0]
    assert settled.args["fee"] == client_pays * 2_000 // 10_000
    tree = build_tree(1, [RewardLeaf(ALICE, 0, settled.args["to_providers"])])
    assert tree is not None
    clock.now += DAY
    chain.post_epoch(1, tree.root, 0, settled.args["to_providers"])
    chain.claim(1, ALICE, 0, settled.args["to_providers"], tree.proof(ALICE))
    assert chain.distributor.call("is_claimed", 1, ALICE)


def test_a_separate_admin_and_burning_slash_sink(
    backend: InProcessChain, data_dir: Path, artifacts: Artifacts
) -> None:
    roles = {"admin": ALICE, "settler": BOB, "slash_sink": "burn"}
    chain = deploy(backend, data_dir, artifacts, roles=roles)
    assert chain.deployment.roles["slash_sink"] == BURN_ADDRESS
    with pytest.raises(ChainRevert, match="access_control: account is missing role"):
        chain.add_reward_token(chain.token.address)  # the deployer kept no role
    chain_as(chain, backend, ALICE).add_reward_token(chain.payment_token.address)


def test_the_record_reopens_the_deployment(
    chain: Chain, backend: InProcessChain, data_dir: Path
) -> None:
    reopened = Chain.open(backend, data_dir)
    assert reopened.deployment == chain.deployment
    assert load_deployment(data_dir, backend.chain_id).config_hash.startswith("0x")
    with pytest.raises(DeploymentMissing, match="gpunet chain deploy"):
        load_deployment(data_dir, 5)
