"""Canary jobs: ordinary-looking jobs with known answers, and the delivery checks on them.

The indexer sends each node up to ``canaries_per_epoch`` canaries an epoch, spread
over the epoch, when the node is idle. A canary is submitted like any job by a fresh
buyer address funded from ``world`` (the network's cost of verification, visible in
the ledger as a deposit with a canary memo), then leased to the node it tests. The
node sees an ordinary assignment: a script, a data file, a spec like a small data
job's. When the canary finishes, a delivery check asks a panel of checkers to compare
the node's outputs with the answer they compute themselves from the seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass, replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gpunet.api.checks import DeliveryTask
from gpunet.api.jobs import FileRef, JobSubmit
from gpunet.errors import GpunetError
from gpunet.indexer import accounts, checkers, checks, jobs
from gpunet.indexer.jobs import JobRules
from gpunet.indexer.orm import CanaryRecord, CheckRecord, JobRecord, NodeRecord
from gpunet.protocol import ledger
from gpunet.protocol.assignment import assign_panels
from gpunet.protocol.canary import canary_job
from gpunet.protocol.jobspec_io import job_spec_from_dict
from gpunet.protocol.leases import LeaseState
from gpunet.protocol.reputation import CheckKind
from gpunet.protocol.vote import panel_size

log = logging.getLogger("gpunet.indexer.canaries")

_DELIVERED = (LeaseState.SUCCEEDED.value, LeaseState.FAILED.value)
_GONE = (LeaseState.CANCELLED.value,)
NO_CHECK = "-"


@dataclass(frozen=True)
class CanaryPlan:
    """How many canaries each node gets per epoch, and the epoch's length."""

    per_epoch: int
    epoch_s: float

    @property
    def spacing_s(self) -> float:
        return self.epoch_s / self.per_epoch if self.per_epoch else float("inf")


def send_canaries(
    session: Session, plan: CanaryPlan, now: float, cutoff: float, rules: JobRules
) -> list[str]:
    """Lease a canary to each idle node that is due one; return the nodes given one."""
    if plan.per_epoch <= 0:
        return []
    sent = []
    for node in jobs.idle_nodes(session, cutoff):
        if node.check_url is None or not _due(session, node.node_id, plan, now):
            continue
        try:
            if create_canary(session, node, secrets.token_bytes(32), now, rules, cutoff):
                sent.append(node.node_id)
        except GpunetError as exc:
            log.warning("no canary for node %s: %s", node.node_id, exc)
    return sent


def _due(session: Session, node_id: str, plan: CanaryPlan, now: float) -> bool:
    last = session.scalar(
        select(func.max(CanaryRecord.created_at)).where(CanaryRecord.node_id == node_id)
    )
    return last is None or now - last >= plan.spacing_s


def create_canary(
    session: Session, node: NodeRecord, seed: bytes, now: float, rules: JobRules, cutoff: float
) -> bool:
    """Submit a canary from a fresh funded buyer and lease it to ``node`` at its price."""
    canary = canary_job(seed)
    spec = dict(canary.spec_dict)
    spec.pop("max_price", None)
    spec["max_price_micros"] = max(node.price_micros, _budget(canary.spec_dict))
    inputs = []
    for path, data in sorted(canary.inputs.items()):
        digest = hashlib.sha256(data).hexdigest()
        jobs.put_blob(session, digest, data, now)
        inputs.append(FileRef(path=path, sha256=digest, size=len(data)))
    buyer = "0x" + hashlib.sha256(b"gpunet-canary-buyer" + seed).hexdigest()[:40]
    body = JobSubmit(spec=spec, inputs=inputs)
    need = jobs.budget_hold(job_spec_from_dict(spec, source="canary"))
    funding = replace(ledger.deposit(buyer, need), memo="canary funding")
    accounts.post(session, funding, at=now)
    (record,) = jobs.submit(session, buyer, body, now, rules, cutoff)
    if not jobs.assign(session, record, node, node.price_micros, now, rules):
        return False
    session.add(
        CanaryRecord(
            job_id=record.job_id,
            node_id=node.node_id,
            seed=seed.hex(),
            expected_json=json.dumps(canary.expected_outputs, sort_keys=True),
            created_at=now,
        )
    )
    session.flush()
    return True


def _budget(spec: dict[str, object]) -> int:
    return job_spec_from_dict(spec, source="canary").max_price_micros


def open_delivery_checks(
    session: Session,
    *,
    epoch: int,
    now: float,
    window_s: float,
    checker_n: int,
    seen_within_s: float,
) -> list[CheckRecord]:
    """Open a delivery check for each canary that finished since the last call."""
    pending = session.scalars(
        select(CanaryRecord).where(CanaryRecord.check_id.is_(None)).limit(1000)
    )
    opened = []
    for canary in list(pending):
        job = session.get(JobRecord, canary.job_id)
        if job is None or job.state in _GONE:
            canary.check_id = NO_CHECK
            continue
        if job.state not in _DELIVERED or job.node_id is None:
            continue
        check = _delivery_check(
            session, canary, job, epoch, now, window_s, checker_n, seen_within_s
        )
        canary.check_id = check.check_id if check is not None else NO_CHECK
        if check is not None:
            opened.append(check)
    session.flush()
    return opened


def _delivery_check(
    session: Session,
    canary: CanaryRecord,
    job: JobRecord,
    epoch: int,
    now: float,
    window_s: float,
    checker_n: int,
    seen_within_s: float,
) -> CheckRecord | None:
    node = session.get(NodeRecord, job.node_id)
    if node is None:
        return None
    active = checkers.active_checkers(session, now, seen_within_s)
    panels = assign_panels(
        [(node.node_id, node.operator)],
        [(c.address, c.operator or "") for c in active],
        secrets.token_bytes(32),
        panel_size(checker_n),
    )
    panel = panels.get(node.node_id, ())
    if not panel:
        return None
    task = DeliveryTask(
        job_id=job.job_id,
        canary_seed=canary.seed,
        expected_outputs=json.loads(canary.expected_json),
        outputs=jobs.files_of(session, job.job_id, "output"),
    )
    return checks.open_check(
        session, CheckKind.DELIVERY, epoch, node, panel, now, now + window_s, delivery=task
    )
