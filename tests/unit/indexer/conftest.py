"""Fixtures for indexer API tests: a manual clock, a SQLite file store, signing keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from gpunet.indexer import IndexerSettings, create_app
from gpunet.indexer.testing import IndexerTestClient, ManualClock

START = 1_750_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def settings(tmp_path: Path) -> IndexerSettings:
    # A long sweep interval keeps the background sweeper out of the way; tests sweep.
    return IndexerSettings(
        data_dir=tmp_path / "data",
        heartbeat_interval_s=10,
        heartbeat_timeout_s=30,
        sweep_interval_s=3600,
        max_skew_s=60,
    )


@pytest.fixture
def client(settings: IndexerSettings, clock: ManualClock) -> Iterator[IndexerTestClient]:
    with IndexerTestClient(create_app(settings, clock=clock)) as test_client:
        yield test_client


@pytest.fixture
def operator() -> LocalAccount:
    account: LocalAccount = Account.create()
    return account


@pytest.fixture
def other_operator() -> LocalAccount:
    account: LocalAccount = Account.create()
    return account
