"""Jobs as the API shows them: detail with its money, summaries, events, logs, accounts."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gpunet.api.jobs import (
    AccountView,
    JobDetail,
    JobEvent,
    JobSummary,
    LeaseHardware,
    LogLine,
)
from gpunet.indexer import accounts, receipts
from gpunet.indexer.jobs.lifecycle import files_of
from gpunet.indexer.orm import (
    JobEventRecord,
    JobLogRecord,
    JobRecord,
    LedgerEntryRecord,
)
from gpunet.indexer.views import to_datetime as utc
from gpunet.protocol import ledger


def _money(session: Session, job_id: str) -> dict[str, int]:
    """Totals of the job's ledger entries: fees, holds placed, holds returned."""
    rows = session.execute(
        select(LedgerEntryRecord.kind, LedgerEntryRecord.account, LedgerEntryRecord.amount).where(
            LedgerEntryRecord.job_id == job_id
        )
    ).all()
    buyer_prefix = ledger.BUYER_PREFIX
    totals = {"fee": 0, "held": 0, "refunded": 0}
    for kind, account, amount in rows:
        if account == ledger.PROTOCOL_FEES:
            totals["fee"] += amount
        elif kind == "hold" and account.startswith(ledger.ESCROW_PREFIX):
            totals["held"] += amount
        elif kind in ("settle", "release") and account.startswith(buyer_prefix):
            totals["refunded"] += amount
    return totals


def detail(session: Session, record: JobRecord) -> JobDetail:
    money = _money(session, record.job_id)
    lease = None
    if record.node_id is not None and record.price_micros is not None:
        lease = LeaseHardware(
            node_id=record.node_id,
            operator=record.operator or "",
            gpu_model=record.gpu_model or "",
            gpu_count=record.gpu_count or 0,
            vram_mib=record.vram_mib or 0,
            price_micros=record.price_micros,
        )
    return JobDetail(
        job_id=record.job_id,
        name=record.name,
        kind="session" if record.kind == "session" else "job",
        buyer=record.buyer,
        state=record.state,
        attempts=record.attempts,
        created_at=utc(record.created_at),
        updated_at=utc(record.updated_at),
        started_at=utc(record.started_at) if record.started_at else None,
        finished_at=utc(record.finished_at) if record.finished_at else None,
        deadline_at=utc(record.deadline_at) if record.deadline_at else None,
        lease=lease,
        hold_micros=record.hold_micros,
        charged_micros=record.charged_micros,
        fee_micros=money["fee"],
        held_total_micros=money["held"],
        refunded_micros=money["refunded"],
        usage_s=record.usage_s,
        exit_code=record.exit_code,
        outcome=record.outcome,
        message=record.message,
        outputs=files_of(session, record.job_id, "output"),
        inputs=files_of(session, record.job_id, "input"),
        spec=json.loads(record.spec_json),
        group_id=record.group_id,
        replica=record.replica,
        low_funds_since=utc(record.low_funds_since) if record.low_funds_since else None,
        receipts=receipts.receipt_views(record),
    )


def summary(record: JobRecord) -> JobSummary:
    return JobSummary(
        job_id=record.job_id,
        name=record.name,
        kind=record.kind,
        buyer=record.buyer,
        state=record.state,
        node_id=record.node_id,
        price_micros=record.price_micros,
        charged_micros=record.charged_micros,
        created_at=utc(record.created_at),
        updated_at=utc(record.updated_at),
    )


def list_jobs(
    session: Session, *, buyer: str | None, state: str | None, limit: int, offset: int
) -> tuple[list[JobSummary], int]:
    conditions = []
    if buyer is not None:
        conditions.append(JobRecord.buyer == buyer.lower())
    if state is not None:
        conditions.append(JobRecord.state == state)
    total = session.scalar(select(func.count()).select_from(JobRecord).where(*conditions)) or 0
    query = (
        select(JobRecord)
        .where(*conditions)
        .order_by(JobRecord.created_at.desc(), JobRecord.job_id)
        .limit(limit)
        .offset(offset)
    )
    return [summary(r) for r in session.scalars(query)], total


def events_after(session: Session, job_id: str, after: int, limit: int = 500) -> list[JobEvent]:
    query = (
        select(JobEventRecord)
        .where(JobEventRecord.job_id == job_id, JobEventRecord.seq > after)
        .order_by(JobEventRecord.seq)
        .limit(limit)
    )
    return [
        JobEvent(
            seq=e.seq,
            at=utc(e.at),
            from_state=e.from_state,
            to_state=e.to_state,
            event=e.event,
            cause=e.cause,
            node_id=e.node_id,
        )
        for e in session.scalars(query)
    ]


def logs_after(session: Session, job_id: str, after: int, limit: int = 1000) -> list[LogLine]:
    query = (
        select(JobLogRecord)
        .where(JobLogRecord.job_id == job_id, JobLogRecord.seq > after)
        .order_by(JobLogRecord.seq)
        .limit(limit)
    )
    return [
        LogLine(seq=r.seq, at=utc(r.at), attempt=r.attempt, stream=r.stream, line=r.line)
        for r in session.scalars(query)
    ]


def account(session: Session, address: str) -> AccountView:
    return accounts.account_view(session, address)
