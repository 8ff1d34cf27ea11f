"""Wire models of jobs, sessions, blobs and accounts, shared by the indexer and the SDK.

Routes (all under ``/v1``; "signed" means an EIP-191 signed request, see
``protocol.auth``):

Buyers
  ``PUT  /blobs/{sha256}``             signed, body = raw bytes: upload an input file
  ``POST /jobs``                       signed by the buyer: submit (``JobSubmit``)
  ``POST /jobs/quote``                 quote a spec without submitting (``QuoteIn``)
  ``GET  /jobs?buyer=&state=``         list jobs
  ``GET  /jobs/{id}``                  one job (``JobDetail``)
  ``GET  /jobs/{id}/events?after=&wait_s=``  lifecycle events, long-polled
  ``GET  /jobs/{id}/logs?after=&wait_s=``    log lines, long-polled
  ``POST /jobs/{id}/cancel``           signed by the buyer: cancel a job, close a session
  ``POST /jobs/{id}/receipt``          signed by the buyer: its receipt (``ClientReceiptIn``)
  ``GET  /jobs/{id}/outputs/{path}``   signed by the buyer: one output's bytes
  ``GET  /jobs/{id}/session``          signed by the buyer: where and how to connect
  ``POST /accounts/deposit``           signed: credit the signer's deposit
  ``POST /accounts/withdraw``          signed: pay out the signer's available deposit
  ``PUT  /accounts/auto-topup``        signed: the signer's auto top-up rule
  ``GET  /accounts/{address}``         balances of an address (``AccountView``)

Nodes (signed by the operator of the node the work is assigned to)
  ``GET  /nodes/{node_id}/work?wait_s=``    long-poll for assignments and cancellations
  ``POST /jobs/{id}/start``            the node started the attempt (``StartIn``)
  ``POST /jobs/{id}/logs``             append log lines (``LogBatch``)
  ``POST /jobs/{id}/usage``            a session's running usage (``UsageIn``)
  ``PUT  /jobs/{id}/checkpoint``       body = tar.gz of the checkpoint folder
  ``GET  /jobs/{id}/checkpoint``       the last checkpoint, for a requeued attempt
  ``GET  /jobs/{id}/inputs/{target}``  one input's bytes
  ``PUT  /jobs/{id}/outputs/{sha256}`` body = one output's bytes
  ``POST /jobs/{id}/finish``           the signed usage receipt (``FinishIn``)

Amounts are integer micro-dollars; durations are seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SHA256_PATTERN = r"^[0-9a-f]{64}$"
JOB_ID_PATTERN = r"^j-[0-9a-f]{16}$"
OUTPUT_PATH_PATTERN = r"^[^/\x00][^\x00]{0,511}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileRef(_Strict):
    """A file by its place in the job's work dir and its content hash."""

    path: str = Field(pattern=OUTPUT_PATH_PATTERN, examples=["data/rows.csv"])
    sha256: str = Field(pattern=SHA256_PATTERN)
    size: int = Field(ge=0, le=1 << 40)


class JobSubmit(_Strict):
    """Body of ``POST /v1/jobs``: the spec (canonical JSON form) and its uploaded inputs."""

    spec: dict[str, Any]
    inputs: list[FileRef] = Field(default_factory=list, max_length=1000)


class QuoteIn(_Strict):
    """Body of ``POST /v1/jobs/quote``."""

    spec: dict[str, Any]


class OfferCheck(BaseModel):
    """One online node and why it does or does not qualify for a spec."""

    node_id: str
    gpu: str
    gpu_count: int
    price_micros: int
    region: str
    state: str
    qualifies: bool
    reason: str | None = None
    value_per_dollar: float = 0.0


class QuoteOut(BaseModel):
    """A spec's price on the current market and its savings against a reference cloud."""

    qualifying: int
    checked: int
    best: OfferCheck | None
    price_micros: int | None
    units: int
    duration_s: int
    estimated_micros: int | None
    hold_micros: int
    reference_micros: int | None
    reference_source: str | None
    savings_pct: float | None
    offers: list[OfferCheck]
    advice: str | None = None


class JobEvent(BaseModel):
    """One recorded transition of a job's lease, or a notice (low funds)."""

    seq: int
    at: datetime
    from_state: str | None
    to_state: str
    event: str | None
    cause: str
    node_id: str | None = None


class LogLine(BaseModel):
    seq: int
    at: datetime
    attempt: int
    stream: Literal["stdout", "stderr", "system"]
    line: str


class LeaseHardware(BaseModel):
    """The exact hardware the lease names: what the buyer pays for."""

    node_id: str
    operator: str
    gpu_model: str
    gpu_count: int
    vram_mib: int
    price_micros: int


class JobDetail(BaseModel):
    """A job or session as its buyer sees it."""

    job_id: str
    name: str
    kind: Literal["job", "session"]
    buyer: str
    state: str
    attempts: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    deadline_at: datetime | None = None
    lease: LeaseHardware | None = None
    hold_micros: int = Field(description="funds still held in escrow for this job")
    charged_micros: int = Field(description="paid so far for delivered usage")
    fee_micros: int = Field(default=0, description="the protocol's fee out of the charge")
    held_total_micros: int = Field(default=0, description="all holds placed for this job")
    refunded_micros: int = Field(default=0, description="held funds returned to the buyer")
    usage_s: float = 0.0
    exit_code: int | None = None
    outcome: str | None = None
    message: str | None = None
    outputs: list[FileRef] = Field(default_factory=list)
    inputs: list[FileRef] = Field(default_factory=list)
    spec: dict[str, Any]
    group_id: str | None = None
    replica: int = 0
    low_funds_since: datetime | None = None
    receipts: list[ReceiptView] = Field(
        default_factory=list, description="the node's and the client's signed receipts"
    )


class JobSummary(BaseModel):
    job_id: str
    name: str
    kind: str
    buyer: str
    state: str
    node_id: str | None
    price_micros: int | None
    charged_micros: int
    created_at: datetime
    updated_at: datetime


class JobList(BaseModel):
    jobs: list[JobSummary]
    total: int


class EventPage(BaseModel):
    events: list[JobEvent]
    state: str
    next_after: int


class LogPage(BaseModel):
    lines: list[LogLine]
    state: str
    next_after: int


class CancelIn(_Strict):
    reason: str = Field(default="cancelled by the buyer", max_length=200)


class SessionAccess(BaseModel):
    """Where the buyer connects to a running session and the token the node asks for."""

    job_id: str
    state: str
    endpoint: str | None
    token: str | None
    port: int | None


# -- node side --


class Assignment(BaseModel):
    """Work the indexer gives a node: one attempt at one job."""

    job_id: str
    attempt: int
    spec: dict[str, Any]
    inputs: list[FileRef]
    price_micros: int
    checkpoint_sha256: str | None = None
    session_token: str | None = None


class WorkPoll(BaseModel):
    """Answer of the node's long-poll: new work and jobs to stop."""

    assignments: list[Assignment]
    cancel: list[str] = Field(description="job ids the node must stop now")


class StartIn(_Strict):
    attempt: int = Field(ge=1)
    endpoint: str | None = Field(
        default=None, max_length=200, description="host:port of a session's forwarder"
    )


class LogEntry(_Strict):
    stream: Literal["stdout", "stderr", "system"]
    line: str = Field(max_length=8192)


class LogBatch(_Strict):
    attempt: int = Field(ge=1)
    lines: list[LogEntry] = Field(max_length=1000)


class UsageIn(_Strict):
    attempt: int = Field(ge=1)
    usage_s: float = Field(ge=0, le=366 * 86400, allow_inf_nan=False)


class UsageAck(BaseModel):
    state: str
    hold_micros: int
    charged_micros: int
    low_funds: bool


class FinishIn(_Strict):
    """The node's usage receipt for one attempt, signed like every node request."""

    attempt: int = Field(ge=1)
    outcome: str = Field(max_length=32)
    exit_code: int | None = None
    message: str = Field(default="", max_length=2000)
    usage_s: float = Field(ge=0, le=366 * 86400, allow_inf_nan=False)
    cpu_time_s: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    max_rss_mib: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    outputs: list[FileRef] = Field(default_factory=list, max_length=1000)
    signature: str | None = Field(
        default=None,
        pattern=r"^0x[0-9a-fA-F]{130}$",
        description="the operator's EIP-191 signature over protocol.receipts."
        "node_receipt_message: the receipt, signed on its own so it outlives the request",
    )


class ClientReceiptIn(_Strict):
    """Body of ``POST /v1/jobs/{id}/receipt``: the buyer's signed word on the outputs."""

    attempt: int = Field(ge=1)
    verdict: Literal["accepted", "disputed"]
    outputs_sha256: str = Field(
        pattern=SHA256_PATTERN, description="protocol.receipts.outputs_digest of what it got"
    )
    signature: str = Field(
        pattern=r"^0x[0-9a-fA-F]{130}$",
        description="the buyer's EIP-191 signature over protocol.receipts.client_receipt_message",
    )


class ReceiptView(BaseModel):
    """One party's signed receipt for the job's last attempt."""

    party: Literal["node", "client"]
    signer: str
    attempt: int
    verdict: str = Field(description="the node's outcome, or the client's accepted/disputed")
    outputs_sha256: str
    usage_s: float | None = None
    signature: str


# -- accounts --


class AmountIn(_Strict):
    amount_micros: int = Field(gt=0, le=10**15)


class AutoTopUpIn(_Strict):
    """When available funds fall below ``threshold_micros``, credit ``amount_micros``,
    at most ``limit_micros`` in all. Zero amount turns it off."""

    amount_micros: int = Field(ge=0, le=10**15)
    threshold_micros: int = Field(ge=0, le=10**15)
    limit_micros: int = Field(ge=0, le=10**15)


class AccountView(BaseModel):
    address: str
    available_micros: int
    held_micros: int
    earned_micros: int = Field(description="operator earnings")
    deposited_micros: int
    withdrawn_micros: int
    auto_topup_amount_micros: int = 0
    auto_topup_threshold_micros: int = 0
    auto_topup_limit_micros: int = 0
    auto_topup_used_micros: int = 0
    jobs_paid: int = Field(default=0, description="settled jobs paid to this operator")
