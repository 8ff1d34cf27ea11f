"""A deployed contract bound to a backend: ``token.call("balanceOf", a)``."""

from __future__ import annotations

from typing import Any

from gpunet.chain.abi import find_function
from gpunet.chain.artifacts import Artifact
from gpunet.chain.backend import Backend, Receipt


class BoundContract:
    """One contract at one address, called and sent to through a ``Backend``."""

    def __init__(self, backend: Backend, artifact: Artifact, address: str) -> None:
        self.backend = backend
        self.artifact = artifact
        self.address = address
        backend.register(address, artifact.abi)

    def call(self, fn: str, *args: Any) -> Any:
        """A view call at the latest block."""
        entry = find_function(self.artifact.abi, fn, len(args))
        return self.backend.call(self.address, entry, args)

    def transact(self, sender: str | None, fn: str, *args: Any) -> Receipt:
        """A transaction from ``sender`` (the backend's default when None)."""
        entry = find_function(self.artifact.abi, fn, len(args))
        return self.backend.transact(sender, self.address, entry, args)
