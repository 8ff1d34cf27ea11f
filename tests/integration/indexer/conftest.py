"""Store backends for integration tests: a SQLite file, and PostgreSQL when available.

PostgreSQL comes from ``GPUNET_TEST_POSTGRES_URL``. Without it the PostgreSQL cases
skip locally and fail in CI (``CI`` set), so CI cannot pass by testing less. Each
PostgreSQL test gets a fresh schema of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_ENV = "GPUNET_TEST_POSTGRES_URL"


def postgres_base_url() -> str:
    """The PostgreSQL URL to test against; skips (or fails in CI) when unset."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(
            f"{POSTGRES_ENV} is not set, so the PostgreSQL tests cannot run in CI: "
            "start a server with scripts/start-postgres.sh and export the URL it prints"
        )
    pytest.skip(f"set {POSTGRES_ENV}")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections use a new, empty schema."""
    base = postgres_base_url()
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/indexer.db"
    url: str = request.getfixturevalue("postgres_url")
    return url
