"""Fixtures for the chain shell: compiled contracts, a fake clock, deployed systems.

Contracts are compiled once into a cache under pytest's cache directory, which every
test (and any subprocess it starts) finds through ``GPUNET_CACHE_DIR``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gpunet.chain.artifacts import CACHE_ENV, Artifacts
from gpunet.chain.client import Chain
from gpunet.chain.config import parse_config
from gpunet.chain.deploy import deploy_system, save_deployment
from gpunet.chain.inprocess import InProcessChain

T0 = 1_800_000_000
DEPLOYER = "0x00000000000000000000000000000000000de910"


class FakeClock:
    """A wall clock that moves only when told to."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return float(self.now)


@pytest.fixture(scope="session")
def cache_dir(pytestconfig: pytest.Config) -> Path:
    # pytest's own cache directory: compiled contracts survive between runs, and the
    # source hash in each entry's name keeps a stale one from ever being used.
    return Path(pytestconfig.cache.mkdir("gpunet-contracts"))


@pytest.fixture(autouse=True)
def _shared_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(cache_dir))


@pytest.fixture(scope="session")
def artifacts(cache_dir: Path) -> Artifacts:
    return Artifacts(cache_dir=cache_dir)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "chain"


@pytest.fixture
def backend(data_dir: Path, clock: FakeClock) -> Iterator[InProcessChain]:
    chain = InProcessChain(data_dir, clock=clock)
    yield chain
    chain.close()


def deploy(
    backend: InProcessChain, data_dir: Path, artifacts: Artifacts, **config: object
) -> Chain:
    """Deploy with ``config`` (parsed TOML tables), record it and open it."""
    deployment = deploy_system(backend, parse_config(dict(config)), artifacts)
    save_deployment(data_dir, deployment)
    return Chain(backend, deployment, artifacts)


@pytest.fixture
def chain(backend: InProcessChain, data_dir: Path, artifacts: Artifacts) -> Chain:
    """A default deployment except that rewards and fees vest over 10 days."""
    return deploy(
        backend, data_dir, artifacts, rewards={"reward_vest_s": 864_000, "fee_vest_s": 864_000}
    )
