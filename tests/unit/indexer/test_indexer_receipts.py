"""Usage receipts: the node signs when it finishes, the buyer signs for the outputs."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from starlette.applications import Starlette

from gpunet.api.jobs import FileRef, FinishIn
from gpunet.indexer.context import app_context
from gpunet.indexer.matcher import match_here
from gpunet.indexer.testing import IndexerTestClient, sample_registration
from gpunet.protocol.receipts import ClientVerdict
from gpunet.sdk.receipts import client_receipt, signed_node_receipt

NODE = "n-00000000000a"
OUTPUT = b"42\n"


def finished_job(
    client: IndexerTestClient, operator: LocalAccount, buyer: LocalAccount, *, signer: Any
) -> tuple[str, FinishIn, int]:
    """A job run on a CPU node and finished with a receipt signed by ``signer`` (or not);
    returns the job id, the receipt and the status the finish got."""
    node = {**sample_registration("CPU", 0, price_micros=400_000), "runtimes": ["bwrap"]}
    client.signed("PUT", f"/v1/nodes/{NODE}", operator, json=node)
    client.signed("POST", "/v1/accounts/deposit", buyer, json={"amount_micros": 5_000_000})
    spec = {
        "name": "hello",
        "command": ["python", "-c", "print(42)"],
        "max_price": "1.00",
        "max_duration": "1h",
        "resources": {"cpu_cores": 1, "memory": "1GiB"},
    }
    job_id = client.signed("POST", "/v1/jobs", buyer, json={"spec": spec, "inputs": []}).json()[
        "job_id"
    ]
    assert isinstance(client.app, Starlette)
    match_here(app_context(client.app))
    client.signed("POST", f"/v1/jobs/{job_id}/start", operator, json={"attempt": 1})
    digest = hashlib.sha256(OUTPUT).hexdigest()
    client.signed("PUT", f"/v1/jobs/{job_id}/outputs/{digest}", operator, content=OUTPUT)
    receipt = FinishIn(
        attempt=1,
        outcome="succeeded",
        exit_code=0,
        usage_s=1.0,
        outputs=[FileRef(path="out.txt", sha256=digest, size=len(OUTPUT))],
    )
    if signer is not None:
        receipt = signed_node_receipt(signer, job_id, receipt)
    body = receipt.model_dump(mode="json")
    done = client.signed("POST", f"/v1/jobs/{job_id}/finish", operator, json=body)
    return job_id, receipt, done.status_code


def send_client_receipt(
    client: IndexerTestClient, buyer: LocalAccount, job_id: str, verdict: ClientVerdict, **kw: Any
) -> Any:
    outputs = kw.pop("outputs", client.get(f"/v1/jobs/{job_id}").json()["outputs"])
    refs = [FileRef(**ref) for ref in outputs]
    signer = kw.pop("signer", buyer)
    receipt = client_receipt(signer, job_id, kw.pop("attempt", 1), refs, verdict)
    body = receipt.model_dump(mode="json")
    return client.signed("POST", f"/v1/jobs/{job_id}/receipt", buyer, json=body)


@pytest.fixture
def buyer() -> LocalAccount:
    account: LocalAccount = Account.create()
    return account


def test_both_signed_receipts_are_kept_and_shown_with_the_job(
    client: IndexerTestClient, operator: LocalAccount, buyer: LocalAccount
) -> None:
    job_id, node_receipt, status = finished_job(client, operator, buyer, signer=operator)
    assert status == 200

    answer = send_client_receipt(client, buyer, job_id, ClientVerdict.ACCEPTED)

    assert answer.status_code == 200, answer.text
    receipts = {r["party"]: r for r in answer.json()["receipts"]}
    assert receipts["node"]["signer"] == operator.address.lower()
    assert receipts["node"]["signature"] == node_receipt.signature
    assert receipts["node"]["usage_s"] == 1.0
    assert receipts["client"]["verdict"] == "accepted"
    assert receipts["client"]["outputs_sha256"] == receipts["node"]["outputs_sha256"]
    again = send_client_receipt(client, buyer, job_id, ClientVerdict.ACCEPTED)
    assert again.status_code == 200  # the same receipt twice changes nothing


def test_a_node_receipt_signed_by_another_key_is_refused_and_the_job_keeps_running(
    client: IndexerTestClient, operator: LocalAccount, buyer: LocalAccount
) -> None:
    job_id, _, status = finished_job(client, operator, buyer, signer=Account.create())
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert status == 422
    assert job["state"] == "running"
    assert job["receipts"] == []


def test_the_client_receipt_is_refused_when_it_is_not_the_buyers_word_on_these_outputs(
    client: IndexerTestClient, operator: LocalAccount, buyer: LocalAccount
) -> None:
    job_id, _, _ = finished_job(client, operator, buyer, signer=operator)
    other = [{"path": "out.txt", "sha256": "00" * 32, "size": 3}]

    wrong_outputs = send_client_receipt(
        client, buyer, job_id, ClientVerdict.ACCEPTED, outputs=other
    )
    wrong_signer = send_client_receipt(
        client, buyer, job_id, ClientVerdict.ACCEPTED, signer=Account.create()
    )
    wrong_attempt = send_client_receipt(client, buyer, job_id, ClientVerdict.ACCEPTED, attempt=2)
    stranger = Account.create()
    not_buyer = send_client_receipt(client, stranger, job_id, ClientVerdict.ACCEPTED)

    assert wrong_outputs.status_code == 422
    assert wrong_outputs.json()["field"] == "outputs_sha256"
    assert wrong_signer.status_code == 422
    assert wrong_attempt.status_code == 422
    assert not_buyer.status_code == 403
    assert client.get(f"/v1/jobs/{job_id}").json()["receipts"][1:] == []


def test_a_dispute_is_kept_and_cannot_be_swapped_for_an_acceptance(
    client: IndexerTestClient, operator: LocalAccount, buyer: LocalAccount
) -> None:
    job_id, _, _ = finished_job(client, operator, buyer, signer=operator)
    other = [{"path": "out.txt", "sha256": "00" * 32, "size": 3}]

    disputed = send_client_receipt(client, buyer, job_id, ClientVerdict.DISPUTED, outputs=other)
    swapped = send_client_receipt(client, buyer, job_id, ClientVerdict.ACCEPTED)

    assert disputed.status_code == 200, disputed.text
    assert swapped.status_code == 409
    client_view = client.get(f"/v1/jobs/{job_id}").json()["receipts"][-1]
    assert client_view["verdict"] == "disputed"
