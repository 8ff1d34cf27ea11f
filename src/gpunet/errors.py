"""Errors gpunet raises on purpose.

Every error a user can meet derives from ``GpunetError`` and carries a message that
says what was wrong, with which value, and what to do::

    GpunetError
    ├── ValidationError            bad input to a protocol rule (field, value, hint)
    │   ├── UnknownGpuModel        a GPU model name not in the catalogue
    │   └── QuerySyntaxError       an offer filter that does not parse
    ├── AuthError                  a request whose signature cannot be accepted
    ├── NotFoundError              a record that does not exist
    ├── PermissionDeniedError      a record owned by another account
    ├── ConflictError              a request that contradicts stored state
    ├── ApiError                   an error answer from the indexer, seen by the SDK
    ├── KeystoreError              a key file that cannot be read or written
    └── ConfigError                a setting with a value that cannot be used
"""

from __future__ import annotations

from typing import Any


class GpunetError(Exception):
    """Root of every error gpunet raises on purpose."""


class ValidationError(GpunetError):
    """Input that breaks a protocol rule; names the field and the value."""

    def __init__(self, field: str, value: Any, message: str) -> None:
        self.field = field
        self.value = value
        self.message = message
        super().__init__(f"{field}: {message} (got {value!r})")


class UnknownGpuModel(ValidationError):
    """A GPU model name that is not in the catalogue."""


class QuerySyntaxError(ValidationError):
    """An offer filter expression that does not parse."""


class AuthError(GpunetError):
    """A signed request that is unsigned, wrongly signed, stale or replayed."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


class NotFoundError(GpunetError):
    """A record that does not exist."""


class PermissionDeniedError(GpunetError):
    """A record that belongs to another account."""


class ConflictError(GpunetError):
    """A request that contradicts the stored state."""


class ApiError(GpunetError):
    """An error answer from the indexer, as the SDK sees it."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        self.status_code = status_code
        self.code = code
        self.message = message
        super().__init__(f"{message} (HTTP {status_code}, {code})")


class KeystoreError(GpunetError):
    """A key file that cannot be created, read or decrypted."""


class ConfigError(GpunetError):
    """A setting whose value cannot be used."""
