"""Fixtures for checker tests: the node's operator, a stranger's key, the checker's key."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from gpunet.checker.testing import FakeClock


@pytest.fixture
def operator() -> LocalAccount:
    account: LocalAccount = Account.from_key("0x" + "22" * 32)
    return account


@pytest.fixture
def stranger() -> LocalAccount:
    account: LocalAccount = Account.from_key("0x" + "33" * 32)
    return account


@pytest.fixture
def checker_key() -> LocalAccount:
    account: LocalAccount = Account.from_key("0x" + "44" * 32)
    return account


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
