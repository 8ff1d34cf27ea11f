"""Jobs and sessions: leases, their events, files and logs, blobs, and the ledger.

New node columns get server defaults so that nodes registered before this revision
keep working: no runtime (they take no jobs until their agent registers again).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account", sa.String(length=80), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_accounts")),
    )
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blobs")),
    )
    op.create_table(
        "buyer_settings",
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("topup_amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("topup_threshold_micros", sa.BigInteger(), nullable=False),
        sa.Column("topup_limit_micros", sa.BigInteger(), nullable=False),
        sa.Column("topup_used_micros", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_buyer_settings")),
    )
    op.create_table(
        "job_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=True),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_job_events")),
    )
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_job_events_job_id_seq"), ["job_id", "seq"], unique=False
        )

    op.create_table(
        "job_files",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "role", "path", name=op.f("pk_job_files")),
    )
    op.create_table(
        "job_logs",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("stream", sa.String(length=8), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_job_logs")),
    )
    with op.batch_alter_table("job_logs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_logs_job_id_seq"), ["job_id", "seq"], unique=False)

    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("buyer", sa.String(length=42), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("deadline_at", sa.Float(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("node_id", sa.String(length=64), nullable=True),
        sa.Column("operator", sa.String(length=42), nullable=True),
        sa.Column("gpu_model", sa.String(length=32), nullable=True),
        sa.Column("gpu_count", sa.Integer(), nullable=True),
        sa.Column("vram_mib", sa.Integer(), nullable=True),
        sa.Column("price_micros", sa.BigInteger(), nullable=True),
        sa.Column("hold_micros", sa.BigInteger(), nullable=False),
        sa.Column("charged_micros", sa.BigInteger(), nullable=False),
        sa.Column("usage_s", sa.Float(), nullable=False),
        sa.Column("billed_usage_s", sa.Float(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("excluded_nodes", sa.Text(), nullable=False),
        sa.Column("checkpoint_sha256", sa.String(length=64), nullable=True),
        sa.Column("session_token", sa.String(length=64), nullable=True),
        sa.Column("session_endpoint", sa.String(length=200), nullable=True),
        sa.Column("low_funds_since", sa.Float(), nullable=True),
        sa.Column("receipt_json", sa.Text(), nullable=True),
        sa.Column("group_id", sa.String(length=32), nullable=True),
        sa.Column("replica", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_jobs_buyer_created_at"), ["buyer", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_jobs_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_node_id"), ["node_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_jobs_state_created_at"), ["state", "created_at"], unique=False
        )

    op.create_table(
        "ledger_entries",
        sa.Column("entry_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("transfer_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("account", sa.String(length=80), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("memo", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_account_entry_id"), ["account", "entry_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_transfer_id"), ["transfer_id"], unique=False
        )

    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("runtimes", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("allows_network", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("leases_total", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("leases_failed", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("latency_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_column("latency_ms")
        batch_op.drop_column("leases_failed")
        batch_op.drop_column("leases_total")
        batch_op.drop_column("allows_network")
        batch_op.drop_column("runtimes")

    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_transfer_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_entries_account_entry_id"))

    op.drop_table("ledger_entries")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_state_created_at"))
        batch_op.drop_index(batch_op.f("ix_jobs_node_id"))
        batch_op.drop_index(batch_op.f("ix_jobs_group_id"))
        batch_op.drop_index(batch_op.f("ix_jobs_buyer_created_at"))

    op.drop_table("jobs")
    with op.batch_alter_table("job_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_logs_job_id_seq"))

    op.drop_table("job_logs")
    op.drop_table("job_files")
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_events_job_id_seq"))

    op.drop_table("job_events")
    op.drop_table("buyer_settings")
    op.drop_table("blobs")
    op.drop_table("accounts")
