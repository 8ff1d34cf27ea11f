"""Content-addressed blobs: inputs, outputs and checkpoints of jobs."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gpunet.api.jobs import FileRef
from gpunet.errors import ConflictError, NotFoundError
from gpunet.indexer.jobs.lifecycle import _leased_to
from gpunet.indexer.orm import (
    BlobRecord,
    JobFileRecord,
    JobRecord,
)
from gpunet.protocol.leases import LeaseState


def put_blob(session: Session, sha256: str, data: bytes, now: float) -> bool:
    """Store ``data`` under its hash; False when it was there already."""
    if session.get(BlobRecord, sha256) is not None:
        return False
    session.add(BlobRecord(sha256=sha256, size=len(data), created_at=now, data=data))
    session.flush()
    return True


def blob_bytes(session: Session, sha256: str) -> bytes:
    record = session.get(BlobRecord, sha256)
    if record is None:
        raise NotFoundError(f"blob {sha256} is not stored")
    return bytes(record.data)


def file_of(session: Session, job_id: str, role: str, path: str) -> FileRef:
    record = session.get(JobFileRecord, (job_id, role, path))
    if record is None:
        raise NotFoundError(f"job {job_id} has no {role} named {path}")
    return FileRef(path=record.path, sha256=record.sha256, size=record.size)


def set_checkpoint(
    session: Session, job_id: str, operator: str, sha256: str, now: float
) -> JobRecord:
    record = _leased_to(session, job_id, None, operator)
    if record.state != LeaseState.RUNNING.value:
        raise ConflictError(f"job {job_id} is {record.state}: checkpoints come from running jobs")
    record.checkpoint_sha256 = sha256
    record.updated_at = now
    return record


def leased_record(session: Session, job_id: str, operator: str) -> JobRecord:
    return _leased_to(session, job_id, None, operator)
