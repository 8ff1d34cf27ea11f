"""The delivery runner: outputs read through the SDK from a fake indexer, hashed, compared."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from gpunet.api.checks import CheckTask, DeliveryTask
from gpunet.api.jobs import FileRef
from gpunet.checker.delivery import check_delivery
from gpunet.checker.errors import CheckNotRun
from gpunet.checker.testing import make_task
from gpunet.protocol.canary import canary_job
from gpunet.protocol.vote import Verdict
from gpunet.sdk import Client

CHECK_ID = "c-0123456789abcdef"
JOB_ID = "j-0123456789abcdef"
SEED = bytes(range(32))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def indexer(stored: dict[str, bytes], account: LocalAccount, status: int = 200) -> Client:
    """A client whose indexer serves ``stored`` at the check's output route."""

    def answer(request: httpx.Request) -> httpx.Response:
        prefix = f"/v1/checks/{CHECK_ID}/outputs/"
        digest = request.url.path.removeprefix(prefix)
        if status != 200:
            return httpx.Response(status, json={"error": "x", "message": "indexer trouble"})
        if digest not in stored:
            return httpx.Response(404, json={"error": "not_found", "message": "no such output"})
        return httpx.Response(200, content=stored[digest])

    return Client("http://indexer.test", account, transport=httpx.MockTransport(answer))


def replica_task(operator: str, outputs: dict[str, bytes], expected: dict[str, bytes]) -> CheckTask:
    delivery = DeliveryTask(
        job_id=JOB_ID,
        canary_seed=None,
        expected_outputs={path: sha(data) for path, data in expected.items()},
        outputs=[FileRef(path=p, sha256=sha(d), size=len(d)) for p, d in outputs.items()],
    )
    return make_task(operator, "delivery", check_id=CHECK_ID, delivery=delivery)


def test_matching_outputs_pass(operator: LocalAccount, checker_key: LocalAccount) -> None:
    files = {"out/a.csv": b"a,b\n1,2\n", "out/b.json": b"{}"}
    task = replica_task(operator.address, files, files)

    outcome = check_delivery(task, indexer({sha(d): d for d in files.values()}, checker_key))

    assert outcome.verdict is Verdict.PASS
    assert outcome.detail == f"job {JOB_ID}: 2 output(s) match"


def test_a_different_output_fails(operator: LocalAccount, checker_key: LocalAccount) -> None:
    task = replica_task(operator.address, {"out/a.csv": b"made up"}, {"out/a.csv": b"real"})

    outcome = check_delivery(task, indexer({sha(b"made up"): b"made up"}, checker_key))

    assert outcome.verdict is Verdict.FAIL
    assert f"output out/a.csv differs: sha256 {sha(b'made up')[:12]}" in outcome.detail
    assert outcome.evidence["path"] == "out/a.csv"


def test_a_missing_output_fails(operator: LocalAccount, checker_key: LocalAccount) -> None:
    task = replica_task(operator.address, {}, {"out/a.csv": b"real"})

    outcome = check_delivery(task, indexer({}, checker_key))

    assert outcome.verdict is Verdict.FAIL
    assert "output out/a.csv is missing" in outcome.detail


def test_an_output_never_uploaded_fails(operator: LocalAccount, checker_key: LocalAccount) -> None:
    task = replica_task(operator.address, {"out/a.csv": b"real"}, {"out/a.csv": b"real"})

    outcome = check_delivery(task, indexer({}, checker_key))

    assert outcome.verdict is Verdict.FAIL
    assert "was never uploaded" in outcome.detail


def test_stored_bytes_that_do_not_match_their_name_fail(
    operator: LocalAccount, checker_key: LocalAccount
) -> None:
    task = replica_task(operator.address, {"out/a.csv": b"real"}, {"out/a.csv": b"real"})

    outcome = check_delivery(task, indexer({sha(b"real"): b"tampered"}, checker_key))

    assert outcome.verdict is Verdict.FAIL
    assert "the stored bytes hash to" in outcome.detail


def test_an_indexer_in_trouble_casts_no_vote(
    operator: LocalAccount, checker_key: LocalAccount
) -> None:
    task = replica_task(operator.address, {"out/a.csv": b"real"}, {"out/a.csv": b"real"})

    with pytest.raises(CheckNotRun, match=r"cannot read output out/a\.csv"):
        check_delivery(task, indexer({}, checker_key, status=503))


def canary_task(operator: str, outputs: dict[str, bytes], claimed: dict[str, str]) -> CheckTask:
    delivery = DeliveryTask(
        job_id=JOB_ID,
        canary_seed=SEED.hex(),
        expected_outputs=claimed,
        outputs=[FileRef(path=p, sha256=sha(d), size=len(d)) for p, d in outputs.items()],
    )
    return make_task(operator, "delivery", check_id=CHECK_ID, delivery=delivery)


def test_canary_answer_is_recomputed_from_the_seed(
    operator: LocalAccount, checker_key: LocalAccount
) -> None:
    from gpunet.protocol.canary import summarize

    job = canary_job(SEED)
    data_path = next(path for path in job.inputs if path != "summarize.py")
    honest = summarize(job.inputs[data_path].decode(), data_path)
    # The indexer's claim is ignored: the checker trusts only what it recomputes.
    task = canary_task(operator.address, honest, {path: "0" * 64 for path in honest})

    outcome = check_delivery(task, indexer({sha(d): d for d in honest.values()}, checker_key))

    assert outcome.verdict is Verdict.PASS
    assert outcome.evidence["canary"] is True


def test_canary_with_random_outputs_fails(
    operator: LocalAccount, checker_key: LocalAccount
) -> None:
    job = canary_job(SEED)
    fake = {path: b"random bytes" for path in job.expected_outputs}
    task = canary_task(operator.address, fake, dict(job.expected_outputs))

    outcome = check_delivery(task, indexer({sha(b"random bytes"): b"random bytes"}, checker_key))

    assert outcome.verdict is Verdict.FAIL
    assert "differs" in outcome.detail


def test_a_short_canary_seed_casts_no_vote(
    operator: LocalAccount, checker_key: LocalAccount
) -> None:
    delivery = DeliveryTask(job_id=JOB_ID, canary_seed="abcd", expected_outputs={}, outputs=[])
    task = make_task(operator.address, "delivery", check_id=CHECK_ID, delivery=delivery)

    with pytest.raises(CheckNotRun, match="not a usable seed"):
        check_delivery(task, indexer({}, checker_key))
