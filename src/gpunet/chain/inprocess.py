"""An EVM in this process (py-evm via titanoboa) whose state survives restarts.

Persistence is a journal. Every successful transaction (and deployment) is appended
to ``<data_dir>/journal.jsonl`` as one JSON line: sender, target, calldata and block
timestamp. Opening the chain replays the journal into a fresh py-evm; before every
call or transaction the chain also replays whatever other processes (the indexer,
another CLI command) appended since. All of this happens under an exclusive
``fcntl.flock`` on ``<data_dir>/chain.lock``, so two processes never append out of
order and each sees the other's transactions. Reverted transactions change nothing
and are not written.

Cost: opening replays every transaction ever made, at py-evm speed (about a
millisecond or a few per transaction; a full deployment is a few dozen). Catching up
costs only the new lines. There is no snapshot: for a local network's lifetime of
daily epochs the journal stays small, and a journal is easy to inspect and cannot
disagree with itself. Should it grow large, a snapshot of py-evm's key-value store at
a journal offset would bound the replay; the format leaves room for it.

Clock: a block's timestamp is the wall clock (``clock``, injectable) plus any
``advance_time`` offset, never below the previous block's. ``advance_time`` is itself
journaled, so every process agrees on the chain's time. Blocks hold one transaction.

Gas: receipts report what a node would charge: execution gas plus the intrinsic cost
(21,000, calldata bytes, creation) less the refund (capped at a fifth). Senders are
not signed: the in-process chain is a local tool that trusts whoever may write its
data directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from gpunet.chain import abi as abi_codec
from gpunet.chain.artifacts import Artifact
from gpunet.chain.backend import Receipt
from gpunet.chain.errors import ChainError, ChainRevert

IN_PROCESS_CHAIN_ID = 1337
JOURNAL_FILE = "journal.jsonl"
LOCK_FILE = "chain.lock"
# The deployer and default sender of a local chain: a fixed, keyless address.
LOCAL_DEPLOYER = "0x00000000000000000000000000000000000De910"


class InProcessChain:
    """The ``Backend`` of a local chain (see the module docstring)."""

    def __init__(
        self,
        data_dir: Path | None,
        *,
        clock: Callable[[], float] = time.time,
        default_sender: str = LOCAL_DEPLOYER,
    ) -> None:
        from boa.environment import Env

        self.data_dir = data_dir
        self.clock = clock
        self._default_sender = to_checksum_address(default_sender)
        self._env = Env()
        self._env.evm.patch.chain_id = IN_PROCESS_CHAIN_ID
        self._decoder = abi_codec.EventDecoder()
        self._offset = 0
        self._last_ts = 0
        self._warp_s = 0
        self._blocks = 0
        self._lock_fd: int | None = None
        self._thread_lock = threading.RLock()
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        with self._locked(fcntl.LOCK_SH):
            self._catch_up()

    @property
    def chain_id(self) -> int:
        return IN_PROCESS_CHAIN_ID

    @property
    def default_sender(self) -> str:
        return self._default_sender

    def close(self) -> None:
        """Release the lock file (the journal is always complete on disk)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def register(self, address: str, abi: Sequence[abi_codec.AbiEntry]) -> None:
        self._decoder.add_abi(abi)

    def timestamp(self) -> int:
        with self._locked(fcntl.LOCK_SH):
            self._catch_up()
            return self._next_timestamp()

    def block_number(self) -> int:
        with self._locked(fcntl.LOCK_SH):
            self._catch_up()
            return self._blocks

    def deploy(self, artifact: Artifact, args: Sequence[Any], sender: str | None = None) -> str:
        constructor = next((e for e in artifact.abi if e.get("type") == "constructor"), None)
        encoded = abi_codec.encode_args(constructor["inputs"] if constructor else [], args)
        initcode = artifact.bytecode + encoded
        entry = {"op": "deploy", "sender": self._sender(sender), "data": initcode.hex()}
        receipt = self._commit(entry)
        self._decoder.add_abi(artifact.abi)
        assert receipt.contract_address is not None
        return receipt.contract_address

    def call(self, address: str, fn: abi_codec.AbiEntry, args: Sequence[Any]) -> Any:
        data = abi_codec.encode_call(fn, args)
        with self._locked(fcntl.LOCK_SH):
            self._catch_up()
            self._set_block(self._next_timestamp(), self._blocks + 1)
            computation = self._env.execute_code(
                to_address=address, sender=self._default_sender, data=data, is_modifying=False
            )
        if computation.is_error:
            raise ChainRevert(abi_codec.revert_reason(bytes(computation.output)))
        return abi_codec.decode_output(fn, bytes(computation.output))

    def transact(
        self, sender: str | None, address: str, fn: abi_codec.AbiEntry, args: Sequence[Any]
    ) -> Receipt:
        data = abi_codec.encode_call(fn, args)
        entry = {
            "op": "tx",
            "sender": self._sender(sender),
            "to": to_checksum_address(address),
            "data": data.hex(),
        }
        return self._commit(entry)

    def advance_time(self, seconds: int) -> None:
        if seconds < 0:
            raise ChainError(f"cannot move the chain's clock back ({seconds} s)")
        with self._locked(fcntl.LOCK_EX):
            self._catch_up()
            entry = {"op": "warp", "seconds": seconds}
            self._apply(entry)
            self._append(entry)

    def _sender(self, sender: str | None) -> str:
        return to_checksum_address(sender) if sender else self._default_sender

    def _next_timestamp(self) -> int:
        return max(int(self.clock()) + self._warp_s, self._last_ts)

    def _commit(self, entry: dict[str, Any]) -> Receipt:
        with self._locked(fcntl.LOCK_EX):
            self._catch_up()
            entry["ts"] = self._next_timestamp()
            receipt = self._apply(entry)
            assert receipt is not None
            self._append(entry)
            return receipt

    def _apply(self, entry: dict[str, Any]) -> Receipt | None:
        """Run one journal entry; raises ChainRevert (state unchanged) when it fails."""
        if entry["op"] == "warp":
            self._warp_s += int(entry["seconds"])
            return None
        self._set_block(int(entry["ts"]), self._blocks + 1)
        evm = self._env.evm
        evm.reset_access_counters()
        snapshot = evm.snapshot()
        sender = entry["sender"]
        data = bytes.fromhex(entry["data"])
        if entry["op"] == "deploy":
            address, computation = self._env.deploy(sender=sender, bytecode=data)
            to = None
        else:
            address, to = None, entry["to"]
            computation = self._env.execute_code(to_address=to, sender=sender, data=data)
        if computation.is_error:
            evm.revert(snapshot)
            raise ChainRevert(abi_codec.revert_reason(bytes(computation.output)))
        evm.vm.state.commit(snapshot)
        self._env.sha3_trace.clear()  # boa's debugging traces would grow without bound
        self._env.sstore_trace.clear()
        self._blocks += 1
        self._last_ts = int(entry["ts"])
        created = to_checksum_address(str(address)) if address is not None else None
        return self._receipt(entry, computation, data, created)

    def _receipt(
        self, entry: dict[str, Any], computation: Any, data: bytes, created: str | None
    ) -> Receipt:
        execution = computation.get_gas_used()
        gas = execution + _intrinsic_gas(data, creation=created is not None)
        gas -= min(computation.get_gas_refund(), gas // 5)
        events = []
        for log in computation.get_log_entries():
            address, topics, log_data = log[-3:]
            topic_bytes = [int(t).to_bytes(32, "big") for t in topics]
            event = self._decoder.decode(address, topic_bytes, log_data)
            if event is not None:
                events.append(event)
        digest = keccak(json.dumps(entry, sort_keys=True).encode() + self._blocks.to_bytes(8))
        return Receipt(
            tx_hash="0x" + digest.hex(),
            gas_used=gas,
            block_number=self._blocks,
            timestamp=int(entry["ts"]),
            events=events,
            contract_address=created,
            execution_gas=execution,
        )

    def _set_block(self, timestamp: int, number: int) -> None:
        self._env.evm.patch.timestamp = timestamp
        self._env.evm.patch.block_number = number

    def _catch_up(self) -> None:
        """Replay the journal lines other processes appended since our last look."""
        if self.data_dir is None:
            return
        path = self.data_dir / JOURNAL_FILE
        if not path.exists():
            return
        with path.open("rb") as journal:
            journal.seek(self._offset)
            pending = journal.read()
        complete = pending[: pending.rfind(b"\n") + 1]  # a torn last line is ignored
        for line in complete.splitlines():
            try:
                self._apply(json.loads(line))
            except ChainRevert as exc:
                raise ChainError(
                    f"the chain journal {path} no longer replays ({exc}); "
                    "was it edited, or written by another gpunet version?"
                ) from exc
        self._offset += len(complete)

    def _append(self, entry: dict[str, Any]) -> None:
        if self.data_dir is None:
            return
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        with (self.data_dir / JOURNAL_FILE).open("ab") as journal:
            journal.truncate(self._offset)  # drop a torn line a crashed writer left
            journal.write(line)
            journal.flush()
            os.fsync(journal.fileno())
        self._offset += len(line)

    @contextlib.contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        # Threads of one process share the lock file; the RLock orders them first.
        with self._thread_lock:
            if self._lock_fd is None:
                yield
                return
            fcntl.flock(self._lock_fd, mode)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)


def _intrinsic_gas(data: bytes, *, creation: bool) -> int:
    zeros = data.count(0)
    gas = 21_000 + 4 * zeros + 16 * (len(data) - zeros)
    if creation:
        gas += 32_000 + 2 * ((len(data) + 31) // 32)
    return gas
