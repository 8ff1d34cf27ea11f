"""Errors the SDK adds to ``gpunet.errors``; every one derives from ``GpunetError``::

GpunetError
├── ApiError                 the indexer answered with an error (gpunet.errors)
├── IndexerUnreachable       no answer: connection refused, timeout, DNS, TLS
├── InvalidResponse          a success answer whose body is not the expected model
└── ConfigError              (gpunet.errors)
    └── AccountRequired      a signed call on a client built without an account
"""

from __future__ import annotations

from gpunet.errors import ApiError, ConfigError, GpunetError

__all__ = ["AccountRequired", "ApiError", "IndexerUnreachable", "InvalidResponse"]


class IndexerUnreachable(GpunetError):
    """The indexer gave no HTTP answer at all; names the URL and the transport error."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"cannot reach the indexer at {url} ({reason}); "
            "check that the indexer is running and that the URL is right"
        )


class InvalidResponse(GpunetError):
    """A success answer that does not hold what the API promises (version mismatch?)."""

    def __init__(self, url: str, status_code: int, detail: str) -> None:
        self.url = url
        self.status_code = status_code
        super().__init__(
            f"the indexer at {url} answered HTTP {status_code} with an unexpected body "
            f"({detail}); check that the SDK and the indexer run the same gpunet version"
        )


class AccountRequired(ConfigError):
    """A signed call made on a client that was built without an account."""

    def __init__(self, operation: str) -> None:
        self.operation = operation
        super().__init__(
            f"{operation} must be signed, but this client has no account; "
            "pass account=load_key(...) when creating the client"
        )
