"""Wire models of checkers and checks, shared by the indexer, the checker agent and the SDK.

Routes (all under ``/v1``; "signed" means an EIP-191 signed request, see
``protocol.auth``):

Checkers
  ``POST /checkers``                   signed: register (or refresh) the signer as a checker
  ``GET  /checkers/me/tasks?wait_s=``  signed: long-poll for this checker's check tasks
  ``POST /checks/{check_id}/results``  signed: one signed result (``CheckResultIn``)

Anyone
  ``GET  /checkers``                   every checker and its standing (``CheckerList``)
  ``GET  /checkers/{address}``         one checker (``CheckerPublic``)
  ``GET  /nodes/{node_id}/checks``     a node's checks, votes, reputation and penalties
  ``GET  /checks/{check_id}``          one check and its votes (``CheckPublic``)

A check's verdict is the majority of its panel of 2N+1 checkers (``protocol.vote``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gpunet.api.jobs import FileRef

CHECK_ID_PATTERN = r"^c-[0-9a-f]{16}$"
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
SIGNATURE_PATTERN = r"^0x[0-9a-fA-F]{130}$"
MAX_EVIDENCE_BYTES = 4096

CheckKindName = Literal["liveness", "capacity", "delivery"]
VoteName = Literal["pass", "fail"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckerRegistration(_Strict):
    """Body of ``POST /v1/checkers``."""

    agent_version: str = Field(default="unknown", max_length=32)
    operator: str | None = Field(
        default=None,
        pattern=ADDRESS_PATTERN,
        description="operator address the checker also runs nodes for, if any: it is "
        "never assigned that operator's nodes",
    )


class CheckerPublic(BaseModel):
    """A checker and its standing."""

    address: str
    operator: str | None
    registered_at: datetime
    last_seen_at: datetime
    results_total: int
    against_majority: int = Field(description="results against the verdict, all time")
    against_majority_week: int = Field(description="results against the verdict, last 7 days")
    banned_until: datetime | None = Field(
        description="barred from rewards until then: 2 or more results against the "
        "majority in a week bar a checker for 30 days"
    )
    reward_eligible: bool


class CheckerList(BaseModel):
    checkers: list[CheckerPublic]


class DeliveryTask(BaseModel):
    """What a delivery check verifies: a finished job's outputs against a known answer."""

    job_id: str
    canary_seed: str | None = Field(description="hex seed of a canary job, None for a replica")
    expected_outputs: dict[str, str] = Field(description="path -> sha256 the outputs must have")
    outputs: list[FileRef] = Field(
        description="what the node reported; bytes at /v1/checks/{id}/outputs/{sha256}"
    )


class CheckTask(BaseModel):
    """One check a checker must run and report before ``due_at``."""

    check_id: str
    kind: CheckKindName
    epoch: int
    node_id: str
    operator: str
    check_url: str | None
    gpu_model: str
    gpu_count: int
    claimed_ops_per_s: float
    rtt_ms: float | None
    due_at: float = Field(description="unix seconds; results after it are refused")
    deadline_factor: float = Field(
        default=1.0,
        ge=1.0,
        le=20.0,
        description="capacity deadlines are multiplied by this (the network's "
        "capacity_deadline_factor: above 1 only where nodes share one machine)",
    )
    delivery: DeliveryTask | None = None


class TaskBatch(BaseModel):
    """Answer of the checker's long-poll."""

    epoch: int
    epoch_s: float
    tasks: list[CheckTask]


class CheckResultIn(_Strict):
    """Body of ``POST /v1/checks/{check_id}/results``: one checker's signed result."""

    verdict: VoteName
    detail: str = Field(max_length=500, description="one line for people: why")
    evidence: dict[str, Any] = Field(
        default_factory=dict, description="small JSON: timings, tiles, hashes"
    )
    signature: str = Field(
        pattern=SIGNATURE_PATTERN,
        description="EIP-191 signature by the checker over protocol.vote.result_message",
    )


class CheckResultAck(BaseModel):
    check_id: str
    accepted: bool
    state: Literal["open", "closed"]
    verdict: str | None


class VotePublic(BaseModel):
    checker: str
    verdict: VoteName
    detail: str
    evidence: dict[str, Any]
    signature: str
    reported_at: datetime
    with_majority: bool | None = Field(description="None until the check closes")


class CheckPublic(BaseModel):
    check_id: str
    kind: CheckKindName
    epoch: int
    node_id: str
    panel: list[str]
    created_at: datetime
    due_at: datetime
    closed_at: datetime | None
    verdict: str | None = Field(description="pass, fail or inconclusive once closed")
    finding: str | None = Field(description="e.g. offline_during_lease, canary output wrong")
    votes: list[VotePublic]


class ReputationView(BaseModel):
    """A node's reputation: the score and the three moving averages it is made of."""

    score: float
    capacity: float
    liveness: float
    delivery: float


class PenaltyPublic(BaseModel):
    """A penalty the chain will turn into a slash (issue: the token on chain)."""

    penalty_id: int
    node_id: str
    operator: str
    kind: str
    amount: str = Field(description="token base units (18 decimals), as a decimal string")
    check_id: str
    job_id: str | None
    epoch: int
    created_at: datetime
    reason: str


class NodeChecks(BaseModel):
    node_id: str
    reputation: ReputationView
    checks: list[CheckPublic]
    penalties: list[PenaltyPublic]
