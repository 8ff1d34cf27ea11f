"""Epoch settlements: each epoch's reward tree (its root and leaves) and stake slashes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.String(length=80)


def upgrade() -> None:
    op.create_table(
        "settlements",
        sa.Column("epoch", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("settled_at", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("root", sa.String(length=66), nullable=True),
        sa.Column("reward_total", AMOUNT, nullable=False),
        sa.Column("fee_total", AMOUNT, nullable=False),
        sa.Column("carry_out", AMOUNT, nullable=False),
        sa.Column("leaves", sa.Integer(), nullable=False),
        sa.Column("summary_json", sa.Text(), nullable=False),
        sa.Column("posted_at", sa.Float(), nullable=True),
        sa.Column("post_tx", sa.String(length=80), nullable=True),
        sa.Column("post_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("epoch", name=op.f("pk_settlements")),
    )
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_settlements_status"), ["status"], unique=False)

    op.create_table(
        "reward_leaves",
        sa.Column("epoch", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("reward", AMOUNT, nullable=False),
        sa.Column("fee", AMOUNT, nullable=False),
        sa.PrimaryKeyConstraint("epoch", "account", name=op.f("pk_reward_leaves")),
    )
    with op.batch_alter_table("reward_leaves", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reward_leaves_account_epoch"), ["account", "epoch"], unique=False
        )

    op.create_table(
        "stake_slashes",
        sa.Column("epoch", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("applied_at", sa.Float(), nullable=True),
        sa.Column("taken", AMOUNT, nullable=True),
        sa.Column("tx", sa.String(length=80), nullable=True),
        sa.PrimaryKeyConstraint("epoch", "account", name=op.f("pk_stake_slashes")),
    )


def downgrade() -> None:
    op.drop_table("stake_slashes")
    with op.batch_alter_table("reward_leaves", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reward_leaves_account_epoch"))
    op.drop_table("reward_leaves")
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlements_status"))
    op.drop_table("settlements")
