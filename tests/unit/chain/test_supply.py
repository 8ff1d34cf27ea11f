"""Supply conservation on chain: whatever happens, every token is in exactly one place."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from gpunet.chain.artifacts import Artifacts
from gpunet.chain.client import Chain
from gpunet.chain.config import parse_config
from gpunet.chain.deploy import deploy_system
from gpunet.chain.errors import ChainRevert
from gpunet.chain.inprocess import InProcessChain
from gpunet.protocol.allocation import TOTAL_SUPPLY
from gpunet.protocol.units import ONE_TOKEN

from .conftest import DEPLOYER, FakeClock

DAY = 86_400
steps = st.lists(
    st.one_of(
        st.tuples(st.just("time"), st.integers(1, 800)),
        st.tuples(st.just("release"), st.integers(0, 5)),
        st.tuples(st.just("lock"), st.integers(1, 10**6)),
        st.tuples(st.just("stake"), st.integers(1, 10**6)),
        st.tuples(st.just("slash"), st.integers(1, 2 * 10**6)),
    ),
    max_size=8,
)


def apply(chain: Chain, step: tuple[str, int]) -> None:
    kind, value = step
    if kind == "time":
        chain.backend.advance_time(value * DAY)
    elif kind == "release":
        chain.vesting_release(value)
    elif kind == "lock":
        chain.lock(value * ONE_TOKEN, 30 * DAY)
    elif kind == "stake":
        chain.stake_collateral(value * ONE_TOKEN)
    else:
        chain.slash(DEPLOYER, value * ONE_TOKEN, "test")


@settings(max_examples=12, deadline=None)
@given(steps=steps)
def test_supply_always_adds_up_to_the_fixed_total(
    artifacts: Artifacts, steps: list[tuple[str, int]]
) -> None:
    backend = InProcessChain(None, clock=FakeClock())
    config = parse_config({"roles": {"slash_sink": "burn"}})
    chain = Chain(backend, deploy_system(backend, config, artifacts), artifacts)
    for step in steps:
        # A revert (nothing releasable yet, not enough tokens) moves nothing.
        with contextlib.suppress(ChainRevert):
            apply(chain, step)
        s = chain.supply()
        assert s.total == TOTAL_SUPPLY
        assert s.circulating + s.vesting_locked + s.emission_unemitted + s.burned == s.total
        assert 0 <= s.staked <= s.circulating
