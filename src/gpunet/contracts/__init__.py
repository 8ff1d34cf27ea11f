"""The gpunet token contracts, written in Vyper and shipped as package data.

Each contract is one ``<Name>.vy`` file in this directory. The chain shell compiles them
(through titanoboa or vyper) and deploys them; tests load them the same way, so the
sources here are the single place the on-chain rules live.
"""

from __future__ import annotations

from pathlib import Path

CONTRACTS_DIR = Path(__file__).parent


def source_path(name: str) -> Path:
    """The path of contract ``name`` (``"Token"`` or ``"Token.vy"``); it must exist."""
    stem = name.removesuffix(".vy")
    path = CONTRACTS_DIR / f"{stem}.vy"
    if not stem or "/" in stem or "\\" in stem or not path.is_file():
        raise FileNotFoundError(f"no contract named {name!r} in {CONTRACTS_DIR}")
    return path
