"""Checkers and checks: epochs, panels and votes, penalties, canaries, node reputation,
and the client's receipt of a job.

Nodes registered before this revision start at the reputation prior (0.5 in each
part) and have no check endpoint until their agent registers again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "canaries",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("expected_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("check_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_canaries")),
    )
    with op.batch_alter_table("canaries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_canaries_check_id"), ["check_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_canaries_node_id_created_at"), ["node_id", "created_at"], unique=False
        )

    op.create_table(
        "check_votes",
        sa.Column("check_id", sa.String(length=32), nullable=False),
        sa.Column("checker", sa.String(length=42), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("evidence_json", sa.Text(), nullable=True),
        sa.Column("signature", sa.String(length=132), nullable=True),
        sa.Column("reported_at", sa.Float(), nullable=True),
        sa.Column("with_majority", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("check_id", "checker", name=op.f("pk_check_votes")),
    )
    with op.batch_alter_table("check_votes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_check_votes_checker_reported_at"),
            ["checker", "reported_at"],
            unique=False,
        )

    op.create_table(
        "checkers",
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("operator", sa.String(length=42), nullable=True),
        sa.Column("agent_version", sa.String(length=32), nullable=False),
        sa.Column("registered_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.Column("results_total", sa.Integer(), nullable=False),
        sa.Column("against_majority", sa.Integer(), nullable=False),
        sa.Column("banned_until", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_checkers")),
    )
    op.create_table(
        "checks",
        sa.Column("check_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.String(length=42), nullable=False),
        sa.Column("panel", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("closed_at", sa.Float(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("finding", sa.String(length=200), nullable=True),
        sa.Column("lease_job_id", sa.String(length=32), nullable=True),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("task_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("check_id", name=op.f("pk_checks")),
    )
    with op.batch_alter_table("checks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_checks_closed_at_due_at"), ["closed_at", "due_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_checks_epoch"), ["epoch"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_checks_node_id_created_at"), ["node_id", "created_at"], unique=False
        )

    op.create_table(
        "epochs",
        sa.Column("epoch", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("opened_at", sa.Float(), nullable=False),
        sa.Column("entropy", sa.String(length=64), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.Column("checkers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("epoch", name=op.f("pk_epochs")),
    )
    op.create_table(
        "penalties",
        sa.Column("penalty_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.String(length=42), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.String(length=80), nullable=False),
        sa.Column("check_id", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("penalty_id", name=op.f("pk_penalties")),
        sa.UniqueConstraint("check_id", name=op.f("uq_penalties_check_id")),
    )
    with op.batch_alter_table("penalties", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_penalties_node_id_created_at"), ["node_id", "created_at"], unique=False
        )

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_receipt_json", sa.Text(), nullable=True))

    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("check_url", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("rep_capacity", sa.Float(), nullable=False, server_default="0.5")
        )
        batch_op.add_column(
            sa.Column("rep_liveness", sa.Float(), nullable=False, server_default="0.5")
        )
        batch_op.add_column(
            sa.Column("rep_delivery", sa.Float(), nullable=False, server_default="0.5")
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("client_receipt_json")

    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_column("rep_delivery")
        batch_op.drop_column("rep_liveness")
        batch_op.drop_column("rep_capacity")
        batch_op.drop_column("check_url")

    with op.batch_alter_table("penalties", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_penalties_node_id_created_at"))

    op.drop_table("penalties")
    op.drop_table("epochs")
    with op.batch_alter_table("checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checks_node_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_checks_epoch"))
        batch_op.drop_index(batch_op.f("ix_checks_closed_at_due_at"))

    op.drop_table("checks")
    op.drop_table("checkers")
    with op.batch_alter_table("check_votes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_check_votes_checker_reported_at"))

    op.drop_table("check_votes")
    with op.batch_alter_table("canaries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_canaries_node_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_canaries_check_id"))

    op.drop_table("canaries")
