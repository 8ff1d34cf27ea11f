"""The small interface every chain backend offers, and what a transaction returns.

Two backends implement it: ``InProcessChain`` (py-evm in this process, state kept in
a data directory) and ``RpcChain`` (any EVM node over JSON-RPC). Everything above
them (deployment, the ``Chain`` client, the CLI) speaks only this interface, so the
same code runs against both, and tests use the in-process one.

Reverts surface as ``ChainRevert`` carrying the contract's own message
("distributor: invalid proof"); the caller never sees backend-specific exceptions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gpunet.chain.abi import AbiEntry, Event
from gpunet.chain.artifacts import Artifact


@dataclass(frozen=True)
class Receipt:
    """A mined transaction: its hash, gas used, block and decoded events."""

    tx_hash: str
    gas_used: int
    block_number: int
    timestamp: int
    events: list[Event] = field(default_factory=list)
    contract_address: str | None = None
    # Gas of the execution alone, without the 21,000 base and calldata (in-process only).
    execution_gas: int | None = None

    def events_named(self, name: str) -> list[Event]:
        """The events called ``name``, in log order."""
        return [event for event in self.events if event.name == name]


class Backend(Protocol):
    """What deployment and the ``Chain`` client need from a chain."""

    @property
    def chain_id(self) -> int:
        """The chain id (the in-process chain's is ``IN_PROCESS_CHAIN_ID``)."""
        ...

    @property
    def default_sender(self) -> str:
        """The account transactions come from when the caller names none."""
        ...

    def deploy(self, artifact: Artifact, args: Sequence[Any], sender: str | None = None) -> str:
        """Deploy ``artifact`` with constructor ``args``; returns its checksummed address."""
        ...

    def register(self, address: str, abi: Sequence[AbiEntry]) -> None:
        """Learn a contract's events so receipts can decode them."""
        ...

    def call(self, address: str, fn: AbiEntry, args: Sequence[Any]) -> Any:
        """Run a view function at the latest block; returns the decoded value."""
        ...

    def transact(
        self, sender: str | None, address: str, fn: AbiEntry, args: Sequence[Any]
    ) -> Receipt:
        """Send a transaction and wait for it; ``ChainRevert`` when it reverts."""
        ...

    def timestamp(self) -> int:
        """The timestamp the next transaction will see (never below the last block's)."""
        ...

    def block_number(self) -> int:
        """The latest block number."""
        ...

    def advance_time(self, seconds: int) -> None:
        """Move the chain's clock forward (local chains only: tests and demos)."""
        ...
