"""Settings from the environment; errors name the variable and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpunet.errors import ConfigError
from gpunet.indexer.settings import load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPUNET_DATABASE_URL", raising=False)
    monkeypatch.delenv("GPUNET_DATA_DIR", raising=False)

    settings = load_settings()

    assert settings.resolved_database_url() == "sqlite:///.gpunet/indexer.db"
    assert (settings.heartbeat_interval_s, settings.heartbeat_timeout_s) == (60, 180)
    assert (settings.sweep_interval_s, settings.max_skew_s) == (5, 60)
    assert settings.max_body_bytes == 64 * 1024


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GPUNET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GPUNET_HEARTBEAT_TIMEOUT_S", "90")

    settings = load_settings()

    assert settings.resolved_database_url() == f"sqlite:///{tmp_path}/indexer.db"
    assert settings.heartbeat_timeout_s == 90


def test_bad_value_names_the_variable_and_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUNET_SWEEP_INTERVAL_S", "often")

    with pytest.raises(ConfigError, match=r"GPUNET_SWEEP_INTERVAL_S has value 'often'"):
        load_settings()


def test_timeout_must_exceed_interval() -> None:
    with pytest.raises(ConfigError, match=r"heartbeat_timeout_s .* must be longer"):
        load_settings(heartbeat_interval_s=60, heartbeat_timeout_s=30)
