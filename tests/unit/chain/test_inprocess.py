from __future__ import annotations

from pathlib import Path

import pytest

from gpunet.chain.abi import find_function
from gpunet.chain.artifacts import Artifact, Artifacts
from gpunet.chain.errors import ChainError, ChainRevert
from gpunet.chain.inprocess import IN_PROCESS_CHAIN_ID, JOURNAL_FILE, InProcessChain

from .conftest import DEPLOYER, T0, FakeClock

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20


@pytest.fixture
def token(artifacts: Artifacts) -> Artifact:
    return artifacts.get("Token")


def deploy_token(chain: InProcessChain, token: Artifact) -> str:
    return chain.deploy(token, ["gpunet", "GPU", [DEPLOYER], [1_000]])


def balance(chain: InProcessChain, token: Artifact, address: str, who: str) -> int:
    value: int = chain.call(address, find_function(token.abi, "balanceOf"), [who])
    return value


def send(chain: InProcessChain, token: Artifact, address: str, to: str, amount: int) -> None:
    chain.transact(DEPLOYER, address, find_function(token.abi, "transfer"), [to, amount])


def test_a_transfer_returns_gas_and_decoded_events(
    backend: InProcessChain, token: Artifact
) -> None:
    address = deploy_token(backend, token)
    receipt = backend.transact(None, address, find_function(token.abi, "transfer"), [ALICE, 250])
    assert 21_000 < receipt.gas_used < 100_000
    (event,) = receipt.events_named("Transfer")
    assert event.args["value"] == 250 and event.address == address
    assert balance(backend, token, address, ALICE) == 250
    assert backend.chain_id == IN_PROCESS_CHAIN_ID


def test_a_revert_carries_the_contract_message_and_changes_nothing(
    backend: InProcessChain, token: Artifact, data_dir: Path
) -> None:
    address = deploy_token(backend, token)
    journal_before = (data_dir / JOURNAL_FILE).read_bytes()
    with pytest.raises(ChainRevert, match="erc20: transfer amount exceeds balance"):
        send(backend, token, address, ALICE, 1_001)
    assert (data_dir / JOURNAL_FILE).read_bytes() == journal_before
    assert balance(backend, token, address, DEPLOYER) == 1_000


def test_state_survives_a_restart(data_dir: Path, token: Artifact, clock: FakeClock) -> None:
    first = InProcessChain(data_dir, clock=clock)
    address = deploy_token(first, token)
    send(first, token, address, ALICE, 10)
    first.close()
    reopened = InProcessChain(data_dir, clock=clock)
    assert balance(reopened, token, address, ALICE) == 10
    assert reopened.block_number() == 2
    send(reopened, token, address, BOB, 5)  # nonces and addresses continue, too
    assert balance(reopened, token, address, DEPLOYER) == 985


def test_block_time_follows_the_clock_but_never_goes_back(
    backend: InProcessChain, token: Artifact, clock: FakeClock
) -> None:
    address = deploy_token(backend, token)
    clock.now = T0 + 100
    send(backend, token, address, ALICE, 1)
    clock.now = T0 + 50  # the wall clock stepped back
    assert backend.timestamp() == T0 + 100
    backend.advance_time(1_000)
    assert backend.timestamp() == T0 + 1_050


def test_advance_time_is_shared_through_the_journal(
    data_dir: Path, token: Artifact, clock: FakeClock
) -> None:
    first = InProcessChain(data_dir, clock=clock)
    deploy_token(first, token)
    first.advance_time(86_400)
    assert InProcessChain(data_dir, clock=clock).timestamp() == T0 + 86_400
    with pytest.raises(ChainError, match="back"):
        first.advance_time(-1)


def test_a_torn_last_line_is_ignored_and_overwritten(
    data_dir: Path, token: Artifact, clock: FakeClock
) -> None:
    first = InProcessChain(data_dir, clock=clock)
    address = deploy_token(first, token)
    first.close()
    with (data_dir / JOURNAL_FILE).open("ab") as journal:
        journal.write(b'{"op":"tx","sen')  # a writer died mid-line
    reopened = InProcessChain(data_dir, clock=clock)
    send(reopened, token, address, ALICE, 4)
    assert balance(InProcessChain(data_dir, clock=clock), token, address, ALICE) == 4


def test_an_ephemeral_chain_writes_nothing(token: Artifact, tmp_path: Path) -> None:
    chain = InProcessChain(None)
    address = deploy_token(chain, token)
    send(chain, token, address, ALICE, 1)
    assert balance(chain, token, address, ALICE) == 1
    assert list(tmp_path.iterdir()) == []
