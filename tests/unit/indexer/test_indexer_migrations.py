"""Migrations: the migrated schema is the ORM's, and the store is set up for WAL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from gpunet.indexer.database import make_engine
from gpunet.indexer.migrate import upgrade_database
from gpunet.indexer.orm import Base


def test_migrated_schema_matches_the_orm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new/dir/indexer.db"

    upgrade_database(url)
    upgrade_database(url)  # a second run finds nothing to do

    engine = make_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        assert set(inspect(connection).get_table_names()) == {
            "accounts",
            "alembic_version",
            "blobs",
            "buyer_settings",
            "canaries",
            "check_votes",
            "checkers",
            "checks",
            "epochs",
            "job_events",
            "job_files",
            "job_logs",
            "jobs",
            "ledger_entries",
            "nodes",
            "penalties",
            "request_nonces",
            "reward_leaves",
            "settlements",
            "stake_slashes",
        }
    engine.dispose()


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/indexer.db")

    with engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert pragma("PRAGMA busy_timeout").scalar() == 10_000
    engine.dispose()
