"""The indexer's ChainLink against the real contracts on the in-process chain.

The indexer's own tests post through a recording stand-in; this is the same boundary
with the deployed distributor and staking contracts behind it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gpunet.chain.client import Chain
from gpunet.chain.errors import ChainRevert
from gpunet.chain.inprocess import InProcessChain
from gpunet.cli.localnet import ensure_local_chain
from gpunet.errors import ConfigError
from gpunet.indexer.chain_link import open_chain_link
from gpunet.indexer.settings import load_settings
from gpunet.protocol.reward_tree import RewardLeaf, build_tree
from gpunet.protocol.units import ONE_TOKEN

pytestmark = pytest.mark.slow

OPERATOR = "0x" + "a1" * 20
OTHER = "0x" + "b2" * 20


def as_(data_dir: Path, sender: str) -> Chain:
    return Chain.open(InProcessChain(data_dir, default_sender=sender), data_dir)


def test_a_posted_root_pays_its_leaf_and_a_slash_takes_stake(tmp_path: Path) -> None:
    data_dir = tmp_path / "chain"
    assert ensure_local_chain(data_dir)
    assert not ensure_local_chain(data_dir)  # once: the journal keeps it
    link = open_chain_link(load_settings(data_dir=tmp_path / "indexer", chain_dir=data_dir))
    assert link is not None
    assert link.tge_at == link.chain.deployment.tge

    reward = 12 * ONE_TOKEN
    tree = build_tree(7, [RewardLeaf(OPERATOR, reward, 0), RewardLeaf(OTHER, ONE_TOKEN, 0)])
    assert tree is not None
    tx = link.post_epoch(7, tree.root, reward + ONE_TOKEN, 0)
    assert tx.startswith("0x")
    with pytest.raises(ChainRevert, match="distributor: epoch already posted"):
        link.post_epoch(7, tree.root, reward + ONE_TOKEN, 0)

    operator = as_(data_dir, OPERATOR)
    operator.claim(7, OPERATOR, reward, 0, tree.proof(OPERATOR))
    assert operator.balance(OPERATOR) == reward  # the local chain pays claims at once

    operator.stake_collateral(10 * ONE_TOKEN)
    taken, slash_tx = link.slash(OPERATOR, 3 * ONE_TOKEN, "epoch 7 penalties above its rewards")
    assert taken == 3 * ONE_TOKEN and slash_tx.startswith("0x")
    assert int(operator.staking.call("collateral_of", OPERATOR)) == 7 * ONE_TOKEN
    assert int(operator.staking.call("collateral_of", OTHER)) == 0


def test_a_chain_dir_without_a_deployment_is_a_clear_config_error(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "indexer", chain_dir=tmp_path / "empty")
    with pytest.raises(ConfigError, match="gpunet chain deploy"):
        open_chain_link(settings)
