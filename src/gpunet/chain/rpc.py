"""Any EVM chain over JSON-RPC (web3.py), signing locally with an eth-account key.

Transactions are signed here and sent raw, so the node never holds a key. Before
sending, each transaction is estimated; a revert there (or a mined receipt with
status 0, replayed with ``eth_call`` to learn why) becomes ``ChainRevert`` with the
contract's message. Receipts wait for the transaction to be mined.

``advance_time`` uses ``evm_increaseTime`` and ``evm_mine``, which Hardhat and Anvil
answer; a real chain refuses them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from gpunet.chain import abi as abi_codec
from gpunet.chain.artifacts import Artifact
from gpunet.chain.backend import Receipt
from gpunet.chain.errors import ChainError, ChainRevert

RECEIPT_TIMEOUT_S = 120.0
GAS_MARGIN_BPS = 12_000  # estimates are padded by 20%: state can change before mining


class RpcChain:
    """The ``Backend`` of a JSON-RPC node."""

    def __init__(self, url: str, accounts: Sequence[LocalAccount]) -> None:
        from web3 import Web3

        if not accounts:
            raise ChainError("a JSON-RPC chain needs a key to sign with; pass --key")
        self.url = url
        self._w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
        self._accounts = {to_checksum_address(a.address): a for a in accounts}
        self._default = to_checksum_address(accounts[0].address)
        self._decoder = abi_codec.EventDecoder()
        try:
            self._chain_id = int(self._w3.eth.chain_id)
        except Exception as exc:  # connection errors come in many types
            raise ChainError(f"cannot reach the JSON-RPC node at {url}: {exc}") from exc

    @property
    def chain_id(self) -> int:
        return self._chain_id

    @property
    def default_sender(self) -> str:
        return self._default

    def register(self, address: str, abi: Sequence[abi_codec.AbiEntry]) -> None:
        self._decoder.add_abi(abi)

    def timestamp(self) -> int:
        latest = self._w3.eth.get_block("latest")
        return max(int(latest["timestamp"]), int(time.time()))

    def block_number(self) -> int:
        return int(self._w3.eth.block_number)

    def advance_time(self, seconds: int) -> None:
        self._rpc("evm_increaseTime", [seconds])
        self._rpc("evm_mine", [])

    def deploy(self, artifact: Artifact, args: Sequence[Any], sender: str | None = None) -> str:
        constructor = next((e for e in artifact.abi if e.get("type") == "constructor"), None)
        data = artifact.bytecode + abi_codec.encode_args(
            constructor["inputs"] if constructor else [], args
        )
        receipt = self._send(sender, None, data)
        self._decoder.add_abi(artifact.abi)
        if receipt.contract_address is None:
            raise ChainError(f"deploying {artifact.name} returned no contract address")
        return receipt.contract_address

    def call(self, address: str, fn: abi_codec.AbiEntry, args: Sequence[Any]) -> Any:
        tx = {"to": to_checksum_address(address), "data": abi_codec.encode_call(fn, args)}
        try:
            output = bytes(self._w3.eth.call(tx))  # type: ignore[arg-type]
        except Exception as exc:
            raise _revert_or_error(exc) from exc
        return abi_codec.decode_output(fn, output)

    def transact(
        self, sender: str | None, address: str, fn: abi_codec.AbiEntry, args: Sequence[Any]
    ) -> Receipt:
        return self._send(sender, to_checksum_address(address), abi_codec.encode_call(fn, args))

    def _account(self, sender: str | None) -> LocalAccount:
        address = to_checksum_address(sender) if sender else self._default
        if address not in self._accounts:
            raise ChainError(f"no key for {address} on this chain; pass its key with --key")
        return self._accounts[address]

    def _send(self, sender: str | None, to: str | None, data: bytes) -> Receipt:
        account = self._account(sender)
        tx: dict[str, Any] = {"from": account.address, "data": data, "value": 0}
        if to is not None:
            tx["to"] = to
        try:
            gas = int(self._w3.eth.estimate_gas(tx))  # type: ignore[arg-type]
        except Exception as exc:
            raise _revert_or_error(exc) from exc
        tx.update(
            gas=gas * GAS_MARGIN_BPS // 10_000,
            gasPrice=int(self._w3.eth.gas_price),
            nonce=int(self._w3.eth.get_transaction_count(account.address, "pending")),
            chainId=self._chain_id,
        )
        signed = account.sign_transaction(tx)
        tx_hash = self._w3.eth.send_raw_transaction(signed.raw_transaction)
        mined = self._w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=RECEIPT_TIMEOUT_S, poll_latency=0.02
        )
        if int(mined["status"]) != 1:
            raise self._replay_revert(tx, int(mined["blockNumber"]))
        return self._receipt(mined)

    def _replay_revert(self, tx: dict[str, Any], block: int) -> ChainError:
        call = {k: tx[k] for k in ("from", "to", "data") if k in tx}
        try:
            self._w3.eth.call(call, block)  # type: ignore[arg-type]
        except Exception as exc:
            return _revert_or_error(exc)
        return ChainRevert("reverted (the node gave no reason)")

    def _receipt(self, mined: Any) -> Receipt:
        block = self._w3.eth.get_block(mined["blockNumber"])
        events = []
        for log in mined["logs"]:
            topics = [bytes(t) for t in log["topics"]]
            event = self._decoder.decode(str(log["address"]), topics, bytes(log["data"]))
            if event is not None:
                events.append(event)
        created = mined.get("contractAddress")
        return Receipt(
            tx_hash="0x" + bytes(mined["transactionHash"]).hex(),
            gas_used=int(mined["gasUsed"]),
            block_number=int(mined["blockNumber"]),
            timestamp=int(block["timestamp"]),
            events=events,
            contract_address=to_checksum_address(created) if created else None,
        )

    def _rpc(self, method: str, params: list[Any]) -> Any:
        answer = self._w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in answer:
            raise ChainError(f"{method} failed at {self.url}: {answer['error']}")
        return answer.get("result")


def _revert_or_error(exc: Exception) -> ChainError:
    """``ChainRevert`` with the contract's message for a revert; ChainError otherwise."""
    from web3.exceptions import ContractLogicError

    if isinstance(exc, ContractLogicError):
        data = exc.data.get("data") if isinstance(exc.data, dict) else exc.data
        if isinstance(data, str) and data.startswith("0x") and len(data) > 10:
            return ChainRevert(abi_codec.revert_reason(bytes.fromhex(data[2:])))
        message = str(exc.message or exc).removeprefix("execution reverted: ")
        quoted = re.search(r"reverted with reason string '(.*)'", message)
        return ChainRevert(quoted.group(1) if quoted else message.strip())
    return ChainError(f"the JSON-RPC node refused the request: {exc}")
