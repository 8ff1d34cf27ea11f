"""Errors of the checker; each derives from ``GpunetError``::

GpunetError
└── CheckerError             the checker component
    ├── CheckerRefused       the indexer refused a registration, poll or report (4xx)
    └── CheckNotRun          a check the checker could not run for a reason of its own
"""

from __future__ import annotations

from gpunet.errors import ApiError, GpunetError


class CheckerError(GpunetError):
    """Root of the checker's errors."""


class CheckerRefused(CheckerError):
    """The indexer refused the checker with an answer that retrying cannot change."""

    def __init__(self, action: str, error: ApiError) -> None:
        self.error = error
        super().__init__(
            f"the indexer refused to {action}: {error.message} "
            f"(HTTP {error.status_code}, {error.code}); fix the checker's key or settings "
            "and restart it"
        )


class CheckNotRun(CheckerError):
    """The checker could not run a check (its indexer or its own setup failed).

    No vote is cast: a vote must be about the node, never about the checker.
    """
