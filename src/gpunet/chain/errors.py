"""Errors of the chain shell.

::

    GpunetError
    └── ChainError              a transaction or call the chain refused, or a chain we cannot use
        ├── ChainRevert         a revert, with the contract's "module: reason" message
        └── DeploymentMissing   no deployment record where one was expected
"""

from __future__ import annotations

from gpunet.errors import GpunetError


class ChainError(GpunetError):
    """A chain operation that failed; the message says what and what to do."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ChainRevert(ChainError):
    """A transaction or call reverted; ``reason`` is the contract's own message."""


class DeploymentMissing(ChainError):
    """No deployment record in the data directory (run ``gpunet chain deploy`` first)."""
