"""ABI encoding shared by both backends: calldata, return values, events, revert reasons.

Both backends speak raw bytes to the EVM; this module is the one place that turns
Python values into calldata and logs back into named events, so the in-process chain
and a JSON-RPC node decode identically.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode, encode
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from gpunet.chain.errors import ChainError

AbiEntry = dict[str, Any]
ERROR_SELECTOR = keccak(b"Error(string)")[:4]
PANIC_SELECTOR = keccak(b"Panic(uint256)")[:4]


@dataclass(frozen=True)
class Event:
    """One decoded log: the emitting contract, the event name and its arguments."""

    address: str
    name: str
    args: dict[str, Any]


def abi_type(param: AbiEntry) -> str:
    """The canonical type string of an ABI parameter (tuples spelled out)."""
    kind = str(param["type"])
    if not kind.startswith("tuple"):
        return kind
    inner = ",".join(abi_type(component) for component in param["components"])
    return f"({inner}){kind.removeprefix('tuple')}"


def signature(entry: AbiEntry) -> str:
    """``name(type,...)`` of a function or event."""
    types = ",".join(abi_type(param) for param in entry.get("inputs", []))
    return f"{entry['name']}({types})"


def selector(entry: AbiEntry) -> bytes:
    """The 4-byte function selector."""
    return keccak(signature(entry).encode())[:4]


def find_function(abi: Sequence[AbiEntry], name: str, arg_count: int | None = None) -> AbiEntry:
    """The function called ``name`` (by argument count when it is overloaded)."""
    found = [e for e in abi if e.get("type") == "function" and e.get("name") == name]
    if arg_count is not None:
        found = [e for e in found if len(e.get("inputs", [])) == arg_count] or found
    if not found:
        raise ChainError(f"the contract has no function {name!r}; is the deployment current?")
    return found[0]


def encode_args(inputs: Sequence[AbiEntry], args: Sequence[Any]) -> bytes:
    """ABI-encode ``args`` for ``inputs``."""
    if len(inputs) != len(args):
        raise ChainError(f"expected {len(inputs)} arguments, got {len(args)}")
    return encode(
        [abi_type(p) for p in inputs], [_to_abi(p, a) for p, a in zip(inputs, args, strict=True)]
    )


def encode_call(fn: AbiEntry, args: Sequence[Any]) -> bytes:
    """Calldata: selector followed by the encoded arguments."""
    return selector(fn) + encode_args(fn.get("inputs", []), args)


def decode_output(fn: AbiEntry, output: bytes) -> Any:
    """The return value: one value, a tuple for several outputs, None for none."""
    outputs = fn.get("outputs", [])
    if not outputs:
        return None
    values = decode([abi_type(p) for p in outputs], output)
    converted = tuple(_from_abi(p, v) for p, v in zip(outputs, values, strict=True))
    return converted[0] if len(converted) == 1 else converted


def revert_reason(output: bytes) -> str:
    """The message of an ``Error(string)`` revert, else a short description of the data."""
    if output[:4] == ERROR_SELECTOR:
        (message,) = decode(["string"], output[4:])
        return str(message)
    if output[:4] == PANIC_SELECTOR:
        (code,) = decode(["uint256"], output[4:])
        return f"panic 0x{code:02x} (an assertion or arithmetic check failed)"
    if not output:
        return "reverted without a reason"
    return f"reverted with data 0x{output.hex()}"


class EventDecoder:
    """Decodes logs by their first topic against every ABI it has been given."""

    def __init__(self) -> None:
        self._events: dict[bytes, AbiEntry] = {}

    def add_abi(self, abi: Iterable[AbiEntry]) -> None:
        """Learn the events of one contract ABI."""
        for entry in abi:
            if entry.get("type") == "event" and not entry.get("anonymous"):
                self._events[keccak(signature(entry).encode())] = entry

    def decode(self, address: str, topics: Sequence[bytes], data: bytes) -> Event | None:
        """The event of one log, or None for a log of an unknown event."""
        entry = self._events.get(bytes(topics[0])) if topics else None
        if entry is None:
            return None
        indexed = [p for p in entry["inputs"] if p.get("indexed")]
        plain = [p for p in entry["inputs"] if not p.get("indexed")]
        args: dict[str, Any] = {}
        for param, topic in zip(indexed, topics[1:], strict=True):
            args[param["name"]] = _indexed_value(param, bytes(topic))
        values = decode([abi_type(p) for p in plain], data)
        for param, value in zip(plain, values, strict=True):
            args[param["name"]] = _from_abi(param, value)
        return Event(to_checksum_address(address), str(entry["name"]), args)


def _indexed_value(param: AbiEntry, topic: bytes) -> Any:
    kind = abi_type(param)
    if kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("("):
        return topic  # dynamic values are indexed by their hash only
    return _from_abi(param, decode([kind], topic)[0])


def _to_abi(param: AbiEntry, value: Any) -> Any:
    kind = str(param["type"])
    if kind.endswith("[]") or (kind.endswith("]") and "[" in kind):
        element = {**param, "type": kind[: kind.rindex("[")]}
        return [_to_abi(element, item) for item in value]
    if kind == "address":
        return to_checksum_address(value)
    if kind.startswith("bytes") and isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return value


def _from_abi(param: AbiEntry, value: Any) -> Any:
    kind = str(param["type"])
    if kind.endswith("]"):
        element = {**param, "type": kind[: kind.rindex("[")]}
        return [_from_abi(element, item) for item in value]
    if kind == "address":
        return to_checksum_address(value)
    if kind.startswith("tuple"):
        return tuple(_from_abi(c, v) for c, v in zip(param["components"], value, strict=True))
    return value
