"""The indexer's hand on the chain: post settled epochs' roots and slash stakes.

With ``GPUNET_CHAIN_DIR`` set, the indexer opens the deployment recorded there: on the
in-process chain kept in that directory (the local network's), or, when
``GPUNET_CHAIN_RPC_URL`` is also set, on that JSON-RPC chain, signing with the key
named by ``GPUNET_CHAIN_KEY`` (its password from ``GPUNET_KEY_PASSWORD``). The sender
must hold the distributor's settler role and the staking contract's slasher role.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from gpunet.errors import ConfigError
from gpunet.indexer.settings import IndexerSettings

if TYPE_CHECKING:
    from gpunet.chain.backend import Backend
    from gpunet.chain.client import Chain

RPC_URL_ENV = "GPUNET_CHAIN_RPC_URL"
PASSWORD_ENV = "GPUNET_KEY_PASSWORD"


class ChainLink:
    """``settlement.ChainPoster`` over a deployed system."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    @property
    def tge_at(self) -> float:
        """The deployment's TGE: emission, and so the epochs' budgets, start here."""
        return float(self.chain.deployment.tge)

    def post_epoch(self, epoch: int, root: bytes, reward_total: int, fee_total: int) -> str:
        return self.chain.post_epoch(epoch, root, reward_total, fee_total).tx_hash

    def slash(self, account: str, amount: int, reason: str) -> tuple[int, str]:
        receipt = self.chain.slash(account, amount, reason[:64])
        taken = sum(
            int(e.args["from_rewards"]) + int(e.args["from_stake"])
            for e in receipt.events_named("Slashed")
        )
        return taken, receipt.tx_hash


def open_chain_link(settings: IndexerSettings, keys_dir: Path | None = None) -> ChainLink | None:
    """The chain the settings name; None when ``chain_dir`` is unset."""
    if settings.chain_dir is None:
        return None
    from gpunet.chain.client import Chain
    from gpunet.chain.errors import ChainError

    try:
        chain = Chain.open(_backend(settings, keys_dir), settings.chain_dir)
    except (ChainError, FileNotFoundError) as exc:
        raise ConfigError(
            f"GPUNET_CHAIN_DIR={settings.chain_dir}: no usable deployment there ({exc}); "
            "run `gpunet chain deploy` first"
        ) from exc
    return ChainLink(chain)


def _backend(settings: IndexerSettings, keys_dir: Path | None) -> Backend:
    rpc_url = os.environ.get(RPC_URL_ENV)
    if rpc_url:
        from gpunet.chain.rpc import RpcChain
        from gpunet.keys import load_key

        if not settings.chain_key:
            raise ConfigError(f"{RPC_URL_ENV} is set: GPUNET_CHAIN_KEY must name the settler key")
        password = os.environ.get(PASSWORD_ENV)
        if password is None:
            raise ConfigError(f"{PASSWORD_ENV} must hold the password of the settler key")
        return RpcChain(rpc_url, [load_key(settings.chain_key, password, keys_dir)])
    from gpunet.chain.deploy import load_deployment
    from gpunet.chain.inprocess import IN_PROCESS_CHAIN_ID, InProcessChain

    assert settings.chain_dir is not None
    deployment = load_deployment(settings.chain_dir, IN_PROCESS_CHAIN_ID)
    return InProcessChain(settings.chain_dir, default_sender=deployment.roles["settler"])
