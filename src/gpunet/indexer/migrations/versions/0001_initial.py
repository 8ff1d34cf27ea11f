"""Initial schema: nodes and request nonces.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("last_heartbeat_at", sa.Float(), nullable=False),
        sa.Column("gpu_model", sa.String(length=32), nullable=False),
        sa.Column("gpu_count", sa.Integer(), nullable=False),
        sa.Column("vram_gib", sa.Integer(), nullable=False),
        sa.Column("price_micros", sa.BigInteger(), nullable=False),
        sa.Column("fp16_tflops", sa.Float(), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("cpu_cores", sa.Integer(), nullable=False),
        sa.Column("memory_mib", sa.BigInteger(), nullable=False),
        sa.Column("disk_gib", sa.BigInteger(), nullable=False),
        sa.Column("operator", sa.String(length=42), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("vram_mib", sa.Integer(), nullable=False),
        sa.Column("benchmark_gflops", sa.Float(), nullable=False),
        sa.Column("detection", sa.String(length=16), nullable=False),
        sa.Column("agent_version", sa.String(length=32), nullable=False),
        sa.Column("registered_at", sa.Float(), nullable=False),
        sa.Column("heartbeats", sa.BigInteger(), nullable=False),
        sa.Column("gpu_utilization", sa.Float(), nullable=True),
        sa.Column("jobs_running", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_nodes")),
    )
    op.create_index(op.f("ix_nodes_operator"), "nodes", ["operator"])
    op.create_index(op.f("ix_nodes_price_micros"), "nodes", ["price_micros"])
    op.create_index(op.f("ix_nodes_fp16_tflops"), "nodes", ["fp16_tflops"])
    op.create_index(op.f("ix_nodes_gpu_model_price_micros"), "nodes", ["gpu_model", "price_micros"])

    op.create_table(
        "request_nonces",
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("address", "nonce", name=op.f("pk_request_nonces")),
    )
    op.create_index(op.f("ix_request_nonces_seen_at"), "request_nonces", ["seen_at"])


def downgrade() -> None:
    op.drop_table("request_nonces")
    op.drop_table("nodes")
