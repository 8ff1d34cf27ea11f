"""The delivery check: did the node really run the job it was paid for?

Canary jobs (the checker knows the answer: it recomputes the expected outputs from the
canary's seed with ``protocol.canary``) and replicated jobs (the indexer sends the
outputs the replicas agree on) come with the outputs each path must have. The checker
downloads every output the node reported from the indexer
(``GET /v1/checks/{check_id}/outputs/{sha256}``, for the check's panel only), hashes
the bytes itself, and compares: an output that is missing, not stored, or different
fails the check.

An indexer that cannot serve an output (unreachable, 5xx, or refusing this checker) is
the checker's problem, not the node's: the check is not run (``CheckNotRun``), no vote.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

from gpunet.api.checks import CheckTask, DeliveryTask
from gpunet.api.jobs import FileRef
from gpunet.checker.errors import CheckNotRun
from gpunet.checker.outcome import CheckOutcome, failed, passed
from gpunet.errors import ApiError, GpunetError, ValidationError


class OutputSource(Protocol):
    """Where a checked job's outputs are read; ``gpunet.sdk.Client`` provides it."""

    def check_output(self, check_id: str, sha256: str) -> bytes: ...


def check_delivery(task: CheckTask, outputs: OutputSource) -> CheckOutcome:
    """Compare each expected output with the bytes the node delivered."""
    delivery = task.delivery
    if delivery is None:
        raise CheckNotRun(f"delivery check {task.check_id} came without its delivery task")
    expected = expected_outputs(delivery)
    if not expected:
        raise CheckNotRun(f"delivery check {task.check_id} names no expected output")
    reported = {ref.path: ref for ref in delivery.outputs}
    evidence: dict[str, Any] = {"job_id": delivery.job_id, "canary": bool(delivery.canary_seed)}
    for path, want in sorted(expected.items()):
        problem = _output_problem(task, path, want, reported.get(path), outputs)
        if problem:
            return failed(f"job {delivery.job_id}: {problem}", **evidence, path=path)
    count = len(expected)
    return passed(f"job {delivery.job_id}: {count} output(s) match", **evidence, outputs=count)


def expected_outputs(delivery: DeliveryTask) -> dict[str, str]:
    """What each output must hash to: from the canary's seed when there is one.

    A canary's answer is recomputed here rather than taken from the indexer, so a
    checker vouches only for what it can verify itself.
    """
    if delivery.canary_seed is None:
        return dict(delivery.expected_outputs)
    from gpunet.protocol.canary import canary_job

    try:
        return dict(canary_job(bytes.fromhex(delivery.canary_seed)).expected_outputs)
    except (ValueError, ValidationError) as exc:
        raise CheckNotRun(
            f"canary seed {delivery.canary_seed!r} of job {delivery.job_id} is not a "
            f"usable seed ({exc}); no vote"
        ) from None


def _output_problem(
    task: CheckTask, path: str, want: str, ref: FileRef | None, outputs: OutputSource
) -> str | None:
    if ref is None:
        return f"output {path} is missing (the node reported no such file)"
    data = _download(task, ref, outputs)
    if data is None:
        return f"output {path} ({ref.sha256[:12]}) was never uploaded to the indexer"
    actual = hashlib.sha256(data).hexdigest()
    if actual != ref.sha256:
        return f"output {path}: the stored bytes hash to {actual[:12]}, not {ref.sha256[:12]}"
    if actual != want:
        return f"output {path} differs: sha256 {actual[:12]}, expected {want[:12]}"
    return None


def _download(task: CheckTask, ref: FileRef, outputs: OutputSource) -> bytes | None:
    """The output's bytes; None when the indexer has no such output (404)."""
    try:
        return outputs.check_output(task.check_id, ref.sha256)
    except ApiError as exc:
        if exc.status_code == 404:
            return None
        raise CheckNotRun(
            f"cannot read output {ref.path} of check {task.check_id} from the indexer: {exc}"
        ) from exc
    except GpunetError as exc:
        raise CheckNotRun(f"cannot reach the indexer for output {ref.path}: {exc}") from exc
