"""Jobs and sessions in the store: submit, match, start, finish, cancel, requeue, bill.

Split by concept, each module in the caller's transaction (a signed request's write,
the matcher's pass or the sweeper's):

- ``lifecycle``: the lease state machine and the money each move makes (``_move``);
- ``buyers``: submit and cancel, refused before anything is written;
- ``placement``: the matcher's pass over waiting jobs and idle nodes, and the lease;
- ``work``: what nodes report (start, logs, usage, the receipt) and the sweep;
- ``reading``: jobs, events, logs and accounts as the API shows them;
- ``files``: content-addressed blobs (inputs, outputs, checkpoints).

So a job, its escrow and its history can never disagree, even if the indexer dies
mid-request. Callers import this package (``from gpunet.indexer import jobs``).
"""

from __future__ import annotations

from gpunet.indexer.jobs.buyers import QUALIFY_SCAN, cancel, submit
from gpunet.indexer.jobs.files import blob_bytes, file_of, leased_record, put_blob, set_checkpoint
from gpunet.indexer.jobs.lifecycle import (
    LOW_FUNDS,
    JobRules,
    budget_hold,
    files_of,
    get_job,
    new_job_id,
    require_buyer,
    spec_of,
)
from gpunet.indexer.jobs.placement import (
    MATCH_WINDOW_MIN,
    MATCH_WINDOW_PER_NODE,
    assign,
    candidate,
    demand,
    idle_nodes,
    match_pass,
    waiting_jobs,
)
from gpunet.indexer.jobs.reading import (
    account,
    detail,
    events_after,
    list_jobs,
    logs_after,
    summary,
)
from gpunet.indexer.jobs.work import (
    ack,
    append_logs,
    assignments_for,
    cancellations_for,
    finish,
    report_usage,
    requeue_jobs_of_node,
    start,
    sweep_jobs,
)

__all__ = [
    "LOW_FUNDS",
    "MATCH_WINDOW_MIN",
    "MATCH_WINDOW_PER_NODE",
    "QUALIFY_SCAN",
    "JobRules",
    "account",
    "ack",
    "append_logs",
    "assign",
    "assignments_for",
    "blob_bytes",
    "budget_hold",
    "cancel",
    "cancellations_for",
    "candidate",
    "demand",
    "detail",
    "events_after",
    "file_of",
    "files_of",
    "finish",
    "get_job",
    "idle_nodes",
    "leased_record",
    "list_jobs",
    "logs_after",
    "match_pass",
    "new_job_id",
    "put_blob",
    "report_usage",
    "requeue_jobs_of_node",
    "require_buyer",
    "set_checkpoint",
    "spec_of",
    "start",
    "submit",
    "summary",
    "sweep_jobs",
    "waiting_jobs",
]
