"""The indexer's tables as SQLAlchemy ORM models.

Times are unix seconds (floats); the API converts them to timezone-aware datetimes.
Operator addresses are stored in lowercase so that equality needs no function call.
Columns derived from a claim (``fp16_tflops``, ``vram_gib``) are computed once at
registration, so offer filters compare plain indexed columns.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# A new node's score in each part of its reputation, until checks move it.
REPUTATION_PRIOR = 0.5

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
    runtimes: Mapped[str] = mapped_column(String(64), default="")
    allows_network: Mapped[bool] = mapped_column(Boolean, default=False)
    leases_total: Mapped[int] = mapped_column(Integer, default=0)
    leases_failed: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    check_url: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The three moving averages of protocol.reputation (a new node starts at the prior).
    rep_capacity: Mapped[float] = mapped_column(Float, default=REPUTATION_PRIOR)
    rep_liveness: Mapped[float] = mapped_column(Float, default=REPUTATION_PRIOR)
    rep_delivery: Mapped[float] = mapped_column(Float, default=REPUTATION_PRIOR)

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


class JobRecord(Base):
    """A job or session: its spec, its lease state and the lease it holds now.

    The lease columns (``node_id`` ... ``vram_mib``) name the exact hardware of the
    current attempt and its price; they are cleared when the job goes back to the queue.
    Money columns mirror the ledger for fast reads: ``hold_micros`` is the balance of
    the job's escrow account, ``charged_micros`` what delivered usage has cost so far.
    """

    __tablename__ = "jobs"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    buyer: Mapped[str] = mapped_column(String(42))
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    spec_json: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    deadline_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    operator: Mapped[str | None] = mapped_column(String(42), nullable=True)
    gpu_model: Mapped[str | None] = mapped_column(String(32), nullable=True)
    gpu_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    vram_mib: Mapped[int | None] = mapped_column(Integer, nullable=True)
    price_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    hold_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    charged_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    usage_s: Mapped[float] = mapped_column(Float, default=0.0)
    billed_usage_s: Mapped[float] = mapped_column(Float, default=0.0)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    excluded_nodes: Mapped[str] = mapped_column(Text, default="")
    checkpoint_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    session_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    session_endpoint: Mapped[str | None] = mapped_column(String(200), nullable=True)
    low_funds_since: Mapped[float | None] = mapped_column(Float, nullable=True)
    receipt_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    client_receipt_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    group_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    replica: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index(None, "state", "created_at"),
        Index(None, "buyer", "created_at"),
        Index(None, "node_id"),
        Index(None, "group_id"),
    )


class JobEventRecord(Base):
    """One transition of a job's lease (or a notice), with its time and cause."""

    __tablename__ = "job_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[float] = mapped_column(Float)
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(16), nullable=True)
    cause: Mapped[str] = mapped_column(Text)
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (Index(None, "job_id", "seq"),)


class JobFileRecord(Base):
    """An input or output file of a job, by path in the work dir and content hash."""

    __tablename__ = "job_files"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    role: Mapped[str] = mapped_column(String(8), primary_key=True)  # "input" | "output"
    path: Mapped[str] = mapped_column(String(512), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)


class JobLogRecord(Base):
    """One log line of one attempt."""

    __tablename__ = "job_logs"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[float] = mapped_column(Float)
    stream: Mapped[str] = mapped_column(String(8))
    line: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "job_id", "seq"),)


class BlobRecord(Base):
    """A content-addressed file (inputs, outputs, checkpoints), kept in the database so
    that every indexer replica sees it."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerEntryRecord(Base):
    """One posting of a double-entry transfer; the postings of a transfer sum to zero."""

    __tablename__ = "ledger_entries"

    entry_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(String(80))
    amount: Mapped[int] = mapped_column(BigInteger)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    at: Mapped[float] = mapped_column(Float)
    memo: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index(None, "account", "entry_id"), Index(None, "transfer_id"))


class AccountRecord(Base):
    """An account's balance, kept in step with its ledger entries in each transaction."""

    __tablename__ = "accounts"

    account: Mapped[str] = mapped_column(String(80), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)


class BuyerSettingsRecord(Base):
    """A buyer's auto top-up rule and how much of its limit it has used."""

    __tablename__ = "buyer_settings"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    topup_amount_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    topup_threshold_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    topup_limit_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    topup_used_micros: Mapped[int] = mapped_column(BigInteger, default=0)


class CheckerRecord(Base):
    """A checker: its key, the operator it must never check, and its record."""

    __tablename__ = "checkers"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    operator: Mapped[str | None] = mapped_column(String(42), nullable=True)
    agent_version: Mapped[str] = mapped_column(String(32))
    registered_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)
    results_total: Mapped[int] = mapped_column(Integer, default=0)
    against_majority: Mapped[int] = mapped_column(Integer, default=0)
    banned_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class EpochRecord(Base):
    """A check epoch: when it opened and the entropy its panels were drawn from.

    The entropy is fresh per epoch and kept, so anyone can recompute the panels
    afterwards (``protocol.assignment``), while no one could predict them before.
    """

    __tablename__ = "epochs"

    epoch: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    opened_at: Mapped[float] = mapped_column(Float)
    entropy: Mapped[str] = mapped_column(String(64))
    nodes: Mapped[int] = mapped_column(Integer)
    checkers: Mapped[int] = mapped_column(Integer)


class CheckRecord(Base):
    """One check of one node, run by a panel of checkers; closed with the majority."""

    __tablename__ = "checks"

    check_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    epoch: Mapped[int] = mapped_column(Integer)
    node_id: Mapped[str] = mapped_column(String(64))
    operator: Mapped[str] = mapped_column(String(42))
    panel: Mapped[str] = mapped_column(Text)  # checker addresses, comma-separated
    created_at: Mapped[float] = mapped_column(Float)
    due_at: Mapped[float] = mapped_column(Float)
    closed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    verdict: Mapped[str | None] = mapped_column(String(16), nullable=True)
    finding: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    task_json: Mapped[str] = mapped_column(Text)  # the task as checkers receive it

    __table_args__ = (
        Index(None, "node_id", "created_at"),
        Index(None, "closed_at", "due_at"),
        Index(None, "epoch"),
    )


class CheckVoteRecord(Base):
    """One panel seat of a check: empty until its checker reports a signed result."""

    __tablename__ = "check_votes"

    check_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    checker: Mapped[str] = mapped_column(String(42), primary_key=True)
    verdict: Mapped[str | None] = mapped_column(String(16), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    evidence_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    signature: Mapped[str | None] = mapped_column(String(132), nullable=True)
    reported_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    with_majority: Mapped[bool | None] = mapped_column(Boolean, nullable=True)

    __table_args__ = (Index(None, "checker", "reported_at"),)


class PenaltyRecord(Base):
    """A penalty a closed check calls for; the chain turns these into slashes."""

    __tablename__ = "penalties"

    penalty_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    node_id: Mapped[str] = mapped_column(String(64))
    operator: Mapped[str] = mapped_column(String(42))
    kind: Mapped[str] = mapped_column(String(32))
    amount: Mapped[str] = mapped_column(String(80))  # token base units; too big for BIGINT
    check_id: Mapped[str] = mapped_column(String(32), unique=True)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    epoch: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "node_id", "created_at"),)


class CanaryRecord(Base):
    """A canary job: an ordinary-looking job whose right outputs the network knows."""

    __tablename__ = "canaries"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64))
    seed: Mapped[str] = mapped_column(String(64))
    expected_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    check_id: Mapped[str | None] = mapped_column(String(32), nullable=True)

    __table_args__ = (Index(None, "node_id", "created_at"), Index(None, "check_id"))


class SettlementRecord(Base):
    """One epoch's settlement: its totals, its reward tree's root, and where it went.

    ``status`` is ``computed`` (stored, not yet on chain), ``posted`` (the root is on
    the reward distributor), ``empty`` (nothing to pay: no tree, nothing to post) or
    ``local`` (no chain is configured; the leaves stay here). Amounts are token base
    units as decimal strings, too big for BIGINT.
    """

    __tablename__ = "settlements"

    epoch: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    settled_at: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    root: Mapped[str | None] = mapped_column(String(66), nullable=True)
    reward_total: Mapped[str] = mapped_column(String(80))
    fee_total: Mapped[str] = mapped_column(String(80))
    carry_out: Mapped[str] = mapped_column(String(80))  # dust carried to the next epoch
    leaves: Mapped[int] = mapped_column(Integer)
    summary_json: Mapped[str] = mapped_column(Text)  # the parts' budgets and payouts
    posted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    post_tx: Mapped[str | None] = mapped_column(String(80), nullable=True)
    post_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index(None, "status"),)


class RewardLeafRecord(Base):
    """One account's leaf of an epoch's reward tree: what it may claim, and the proof's input."""

    __tablename__ = "reward_leaves"

    epoch: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    account: Mapped[str] = mapped_column(String(42), primary_key=True)
    reward: Mapped[str] = mapped_column(String(80))
    fee: Mapped[str] = mapped_column(String(80))

    __table_args__ = (Index(None, "account", "epoch"),)


class StakeSlashRecord(Base):
    """The part of an epoch's penalties that its rewards could not cover: slashed on chain."""

    __tablename__ = "stake_slashes"

    epoch: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    account: Mapped[str] = mapped_column(String(42), primary_key=True)
    amount: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16))  # pending, applied or local
    applied_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    taken: Mapped[str | None] = mapped_column(String(80), nullable=True)
    tx: Mapped[str | None] = mapped_column(String(80), nullable=True)
