"""The indexer's tables as SQLAlchemy ORM models.

Times are unix seconds (floats); the API converts them to timezone-aware datetimes.
Operator addresses are stored in lowercase so that equality needs no function call.
Columns derived from a claim (``fp16_tflops``, ``vram_gib``) are computed once at
registration, so offer filters compare plain indexed columns.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with stable constraint names, so migrations can name them."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class NodeRecord(Base):
    """A registered node: its claim, its offer and its liveness."""

    __tablename__ = "nodes"

    # Columns are stored in this order. Offer search scans the columns it filters on,
    # and SQLite decodes a row only up to the last column it needs: those come first.
    state: Mapped[str] = mapped_column(String(16))
    last_heartbeat_at: Mapped[float] = mapped_column(Float)
    gpu_model: Mapped[str] = mapped_column(String(32))
    gpu_count: Mapped[int] = mapped_column(Integer)
    vram_gib: Mapped[int] = mapped_column(Integer)
    price_micros: Mapped[int] = mapped_column(BigInteger)
    fp16_tflops: Mapped[float] = mapped_column(Float)
    region: Mapped[str] = mapped_column(String(64))
    cpu_cores: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(BigInteger)
    disk_gib: Mapped[int] = mapped_column(BigInteger)
    operator: Mapped[str] = mapped_column(String(42))
    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    vram_mib: Mapped[int] = mapped_column(Integer)
    benchmark_gflops: Mapped[float] = mapped_column(Float)
    detection: Mapped[str] = mapped_column(String(16))
    agent_version: Mapped[str] = mapped_column(String(32))
    registered_at: Mapped[float] = mapped_column(Float)
    heartbeats: Mapped[int] = mapped_column(BigInteger, default=0)
    gpu_utilization: Mapped[float | None] = mapped_column(Float, nullable=True)
    jobs_running: Mapped[int] = mapped_column(Integer, default=0)

    # Offer search walks the price or TFLOPS order and most often filters by GPU model.
    # Liveness columns get no index on purpose: nearly every node is online, so such an
    # index selects almost everything and tempts SQLite into a slower plan than a scan.
    __table_args__ = (
        Index(None, "operator"),
        Index(None, "price_micros"),
        Index(None, "fp16_tflops"),
        Index(None, "gpu_model", "price_micros"),
    )


class RequestNonce(Base):
    """A nonce a signer has used; the primary key refuses its second use."""

    __tablename__ = "request_nonces"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index(None, "seen_at"),)
