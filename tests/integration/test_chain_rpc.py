"""The whole system on a real JSON-RPC node (Hardhat), through web3.py.

The node comes from ``GPUNET_TEST_EVM_URL`` (``scripts/start-hardhat.sh`` starts one
and prints it). Without it these tests skip locally and fail in CI (``CI`` set), so CI
cannot pass by testing less. Hardhat's default accounts are funded with ETH; account
0 deploys and holds every role, account 1 is a provider.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from gpunet.chain.artifacts import Artifacts
from gpunet.chain.client import Chain
from gpunet.chain.config import parse_config
from gpunet.chain.deploy import deploy_system, save_deployment
from gpunet.chain.errors import ChainRevert
from gpunet.chain.rpc import RpcChain
from gpunet.indexer.chain_link import PASSWORD_ENV, RPC_URL_ENV, ChainLink, open_chain_link
from gpunet.indexer.settings import load_settings
from gpunet.keys import import_key
from gpunet.protocol.reward_tree import RewardLeaf, build_tree
from gpunet.protocol.units import ONE_TOKEN

pytestmark = [pytest.mark.evm, pytest.mark.slow]

EVM_ENV = "GPUNET_TEST_EVM_URL"
# Hardhat's well-known development keys (public; worthless outside a local node).
HARDHAT_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
)
DAY = 86_400
# Hardhat's account 2, a staker used only by the chain link test.
STAKER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
# Far from the epochs the other tests post on the shared deployment.
LINK_EPOCH = 9_001


def evm_url() -> str:
    url = os.environ.get(EVM_ENV)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(
            f"{EVM_ENV} is not set, so the JSON-RPC chain tests cannot run in CI: start a "
            "node with scripts/start-hardhat.sh and export the URL it prints"
        )
    pytest.skip(f"set {EVM_ENV} (scripts/start-hardhat.sh prints it)")


@pytest.fixture(scope="module")
def accounts() -> list[LocalAccount]:
    return [Account.from_key(key) for key in HARDHAT_KEYS]


@pytest.fixture(scope="module")
def artifacts(pytestconfig: pytest.Config) -> Artifacts:
    return Artifacts(cache_dir=Path(pytestconfig.cache.mkdir("gpunet-contracts")))


@pytest.fixture(scope="module")
def chain(accounts: list[LocalAccount], artifacts: Artifacts) -> Chain:
    """A fresh deployment on the node (each run deploys new contracts)."""
    backend = RpcChain(evm_url(), accounts)
    config = parse_config({"rewards": {"reward_vest_s": 0, "fee_vest_s": 0}})
    return Chain(backend, deploy_system(backend, config, artifacts), artifacts)


def as_account(chain: Chain, account: LocalAccount) -> Chain:
    """The same deployment and node, sending from ``account``."""
    return Chain(RpcChain(evm_url(), [account]), chain.deployment, chain.artifacts)


def test_deployment_holds_the_whole_supply(chain: Chain) -> None:
    supply = chain.supply()
    assert supply.total == 42_000_000_000 * ONE_TOKEN
    assert supply.circulating + supply.vesting_locked + supply.emission_unemitted == supply.total


def test_post_epoch_and_claim(chain: Chain, accounts: list[LocalAccount]) -> None:
    provider = accounts[1].address
    tree = build_tree(
        1, [RewardLeaf(provider, 3 * ONE_TOKEN, 0), RewardLeaf("0x" + "b2" * 20, 1, 0)]
    )
    assert tree is not None
    chain.backend.advance_time(DAY)  # let the emission cap pass the epoch's total
    posted = chain.post_epoch(1, tree.root, 3 * ONE_TOKEN + 1, 0)
    assert posted.events_named("EpochPosted")[0].args["epoch"] == 1
    claimed = chain.claim(1, provider, 3 * ONE_TOKEN, 0, tree.proof(provider))
    assert claimed.gas_used > 21_000
    assert chain.balance(provider) == 3 * ONE_TOKEN
    with pytest.raises(ChainRevert, match=r"^distributor: already claimed$"):
        chain.claim(1, provider, 3 * ONE_TOKEN, 0, tree.proof(provider))


def test_lock_partner_fund_and_claim_partner_rewards(
    chain: Chain, accounts: list[LocalAccount], artifacts: Artifacts
) -> None:
    holder = as_account(chain, accounts[1])
    chain.vesting_release(chain.deployment.pools["ecosystem"]["schedule_id"])
    chain.transfer(accounts[1].address, 100 * ONE_TOKEN)
    lock = holder.lock(100 * ONE_TOKEN, 7 * DAY).events_named("Locked")[0]
    assert lock.args["weight"] == 100 * ONE_TOKEN
    partner = chain.backend.deploy(
        artifacts.get("PartnerToken"), ["Partner", "PRT", 18, chain.sender, 10**24]
    )
    chain.add_reward_token(partner)
    chain.partner_fund(partner, 7 * DAY * 10**9, 7 * DAY)
    chain.backend.advance_time(7 * DAY)
    holder.claim_partner_rewards(partner)
    assert 0 < chain.balance(accounts[1].address, partner) <= 7 * DAY * 10**9


def test_a_revert_reason_reaches_the_caller(chain: Chain, accounts: list[LocalAccount]) -> None:
    holder = as_account(chain, accounts[1])
    with pytest.raises(ChainRevert, match=r"^staking: lock too short$"):
        holder.lock(ONE_TOKEN, 60)
    with pytest.raises(ChainRevert, match=r"^access_control: account is missing role$"):
        holder.add_reward_token(chain.token.address)


def test_indexer_chain_link_posts_roots_and_slashes(
    chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The indexer's link, opened from a saved deployment record and a keystore the way
    the indexer opens it, posts an epoch that its leaf then claims, and slashes."""
    link = open_link(chain, tmp_path, monkeypatch)
    assert link.tge_at == chain.deployment.tge
    staker = Account.from_key(STAKER_KEY)
    reward = 5 * ONE_TOKEN
    tree = build_tree(
        LINK_EPOCH, [RewardLeaf(staker.address, reward, 0), RewardLeaf("0x" + "c3" * 20, 1, 0)]
    )
    assert tree is not None
    chain.backend.advance_time(DAY)  # let the emission cap pass the epoch's total
    assert link.post_epoch(LINK_EPOCH, tree.root, reward + 1, 0).startswith("0x")

    holder = as_account(chain, staker)
    holder.claim(LINK_EPOCH, staker.address, reward, 0, tree.proof(staker.address))
    assert chain.balance(staker.address) == reward
    holder.stake_collateral(reward)
    assert link.slash(staker.address, 2 * ONE_TOKEN, "failed a check")[0] == 2 * ONE_TOKEN
    assert chain.staking.call("collateral_of", staker.address) == 3 * ONE_TOKEN
    # Asked for more than is at stake, the slash takes what there is.
    assert link.slash(staker.address, 10 * ONE_TOKEN, "x" * 100)[0] == 3 * ONE_TOKEN
    assert chain.staking.call("collateral_of", staker.address) == 0


def open_link(chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ChainLink:
    """The indexer's ChainLink to ``chain``'s deployment, signing with account 0's key
    read from a keystore (fast KDF) in a temporary keys dir."""
    chain_dir, keys_dir = tmp_path / "chain", tmp_path / "keys"
    save_deployment(chain_dir, chain.deployment)
    import_key("settler", HARDHAT_KEYS[0], "settler-pw", keys_dir, kdf="pbkdf2", iterations=2)
    monkeypatch.setenv(RPC_URL_ENV, evm_url())
    monkeypatch.setenv(PASSWORD_ENV, "settler-pw")
    settings = load_settings(
        data_dir=tmp_path / "indexer", chain_dir=chain_dir, chain_key="settler"
    )
    link = open_chain_link(settings, keys_dir)
    assert link is not None
    assert link.chain.sender == Account.from_key(HARDHAT_KEYS[0]).address
    return link
