"""The indexer's settings, read from ``GPUNET_*`` environment variables.

Settings are built when an app is created (``load_settings``), never at import time,
so tests and several apps in one process each get their own. A bad value raises
``ConfigError`` naming the variable and the value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import pydantic
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gpunet.errors import ConfigError

ENV_PREFIX = "GPUNET_"
DEFAULT_MAX_BODY_BYTES = 64 * 1024


class IndexerSettings(BaseSettings):
    """How an indexer stores its data and judges liveness and signed requests."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/indexer.db",
    )
    data_dir: Path = Field(default=Path(".gpunet"), description="where the SQLite file lives")
    heartbeat_interval_s: float = Field(default=60.0, gt=0, le=86_400)
    heartbeat_timeout_s: float = Field(default=180.0, gt=0, le=7 * 86_400)
    sweep_interval_s: float = Field(default=5.0, gt=0, le=3_600)
    max_skew_s: float = Field(default=60.0, gt=0, le=3_600)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024, le=64 * 1024 * 1024)
    max_blob_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="largest input, output or checkpoint file the indexer stores",
    )
    fee_bps: int = Field(default=2000, ge=0, le=10_000, description="protocol fee, basis points")
    max_attempts: int = Field(default=3, ge=1, le=100, description="nodes a job may try")
    match_interval_s: float = Field(default=1.0, gt=0, le=3_600)
    low_funds_grace_s: float = Field(default=120.0, ge=0, le=86_400)
    match_weight_price: float = Field(default=0.5, ge=0, le=100)
    match_weight_reputation: float = Field(default=0.3, ge=0, le=100)
    match_weight_latency: float = Field(default=0.2, ge=0, le=100)
    epoch_s: float = Field(
        default=86_400.0, ge=1, le=30 * 86_400, description="check and settlement period"
    )
    checker_n: int = Field(
        default=1, ge=0, le=10, description="each check goes to a panel of 2N+1 checkers"
    )
    check_window_s: float | None = Field(
        default=None,
        gt=0,
        le=86_400,
        description="how long a panel has to report; default half the epoch, at most 15 min",
    )
    capacity_every_epochs: int = Field(
        default=1, ge=0, le=1000, description="capacity challenge every K epochs; 0: never"
    )
    capacity_deadline_factor: float = Field(
        default=1.0,
        ge=1.0,
        le=20.0,
        description="multiplies capacity deadlines; above 1 only where nodes share a "
        "machine with everything else (a local network), which weakens detection",
    )
    check_tick_s: float = Field(
        default=2.0, gt=0, le=3_600, description="how often the check loop runs"
    )
    canaries_per_epoch: int = Field(
        default=2, ge=0, le=1000, description="canary jobs sent to each node per epoch"
    )
    tge_at: float | None = Field(
        default=None,
        ge=0,
        description="unix time of the token generation event, where emission starts; "
        "default: the chain deployment's, else the first epoch's start",
    )
    chain_dir: Path | None = Field(
        default=None,
        description="the chain's data dir (gpunet chain deploy): its deployment record, "
        "and the in-process chain's state; unset: epochs settle without a chain",
    )
    chain_key: str | None = Field(
        default=None,
        description="name of the key (in the keys dir) that posts roots and slashes on a "
        "JSON-RPC chain; the in-process chain needs none",
    )

    @model_validator(mode="after")
    def _timeout_exceeds_interval(self) -> Self:
        if self.heartbeat_timeout_s <= self.heartbeat_interval_s:
            raise ValueError(
                f"heartbeat_timeout_s ({self.heartbeat_timeout_s:g}) must be longer than "
                f"heartbeat_interval_s ({self.heartbeat_interval_s:g}), or every node "
                "would go offline between two heartbeats"
            )
        return self

    def check_window(self) -> float:
        """Seconds a check's panel has to report before the check closes without them."""
        if self.check_window_s is not None:
            return min(self.check_window_s, self.epoch_s)
        return min(self.epoch_s / 2, 900.0)

    def resolved_database_url(self) -> str:
        """The database URL in use: the configured one, or SQLite in ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.sqlite_path()}"

    def sqlite_path(self) -> Path:
        """Where the default SQLite database file lives."""
        return self.data_dir / "indexer.db"


def load_settings(**overrides: Any) -> IndexerSettings:
    """Build settings from the environment and ``overrides``; raise ``ConfigError`` if bad."""
    try:
        return IndexerSettings(**overrides)
    except pydantic.ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: pydantic.ValidationError) -> str:
    error = exc.errors()[0]
    if not error["loc"]:
        return f"indexer settings are inconsistent: {error['msg'].removeprefix('Value error, ')}"
    name = str(error["loc"][0])
    return (
        f"setting {ENV_PREFIX}{name.upper()} has value {error['input']!r}: {error['msg']}; "
        f"fix the environment variable or the value passed as {name}"
    )
