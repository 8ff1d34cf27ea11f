"""Jobs through the indexer's HTTP API: submit, match, run, finish, bill, requeue, cancel.

The matcher and sweeper are driven by hand (``match_here``, ``sweep_once``) with the
manual clock, so every step is deterministic.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select

from gpunet.indexer.context import app_context
from gpunet.indexer.matcher import match_here
from gpunet.indexer.orm import AccountRecord, LedgerEntryRecord
from gpunet.indexer.sweeper import sweep_once
from gpunet.indexer.testing import IndexerTestClient, ManualClock, sample_registration
from gpunet.protocol import ledger

USD = 1_000_000


@pytest.fixture
def buyer() -> LocalAccount:
    account: LocalAccount = Account.create()
    return account


def cpu_node(price_micros: int = 400_000, **extra: Any) -> dict[str, Any]:
    body = sample_registration("CPU", 0, price_micros=price_micros)
    body["runtimes"] = ["bwrap"]
    body.update(extra)
    return body


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "hello",
        "command": ["python", "-c", "print(1)"],
        "max_price": "1.00",
        "max_duration": "1h",
        "resources": {"cpu_cores": 1, "memory": "1GiB"},
    }
    base.update(overrides)
    return base


def register(client: IndexerTestClient, account: LocalAccount, node_id: str, **kw: Any) -> None:
    response = client.signed("PUT", f"/v1/nodes/{node_id}", account, json=cpu_node(**kw))
    assert response.status_code in (200, 201), response.text


def deposit(client: IndexerTestClient, account: LocalAccount, micros: int) -> None:
    response = client.signed(
        "POST", "/v1/accounts/deposit", account, json={"amount_micros": micros}
    )
    assert response.status_code == 200, response.text


def submit(client: IndexerTestClient, account: LocalAccount, **overrides: Any) -> dict[str, Any]:
    response = client.signed(
        "POST", "/v1/jobs", account, json={"spec": spec(**overrides), "inputs": []}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def match(client: IndexerTestClient) -> None:
    assert isinstance(client.app, object)
    match_here(app_context(client.app))  # type: ignore[arg-type]


def job(client: IndexerTestClient, job_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
    return body


def poll(client: IndexerTestClient, operator: LocalAccount, node_id: str) -> dict[str, Any]:
    response = client.signed("GET", f"/v1/nodes/{node_id}/work?wait_s=0", operator)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ledger_is_balanced(client: IndexerTestClient) -> None:
    context = app_context(client.app)  # type: ignore[arg-type]
    with context.database.reading() as session:
        total = session.scalar(select(func.coalesce(func.sum(AccountRecord.balance), 0)))
        entries = session.scalar(select(func.coalesce(func.sum(LedgerEntryRecord.amount), 0)))
        accounts = dict(session.execute(select(AccountRecord.account, AccountRecord.balance)).all())
    assert total == 0
    assert entries == 0
    assert all(v >= 0 for k, v in accounts.items() if k != ledger.WORLD)


def test_a_job_runs_and_is_billed_for_the_time_it_ran(
    client: IndexerTestClient, clock: ManualClock, operator: LocalAccount, buyer: LocalAccount
) -> None:
    register(client, operator, "cpu-1", price_micros=360_000)  # 0.36 USD/h = 100 micros/s
    deposit(client, buyer, 10 * USD)
    submitted = submit(client, buyer)
    assert submitted["state"] == "queued"

    match(client)
    work = poll(client, operator, "cpu-1")
    [assignment] = work["assignments"]
    assert assignment["job_id"] == submitted["job_id"]
    matched = job(client, submitted["job_id"])
    assert matched["state"] == "matched"
    assert matched["lease"]["node_id"] == "cpu-1"
    assert matched["lease"]["price_micros"] == 360_000
    assert matched["hold_micros"] == 360_000  # one hour at the node's price

    job_id = submitted["job_id"]
    started = client.signed("POST", f"/v1/jobs/{job_id}/start", operator, json={"attempt": 1})
    assert started.status_code == 200, started.text
    logs = client.signed(
        "POST",
        f"/v1/jobs/{job_id}/logs",
        operator,
        json={"attempt": 1, "lines": [{"stream": "stdout", "line": "1"}]},
    )
    assert logs.json() == {"kept": 1}
    output = b"result\n"
    digest = hashlib.sha256(output).hexdigest()
    put = client.signed("PUT", f"/v1/jobs/{job_id}/outputs/{digest}", operator, content=output)
    assert put.status_code == 201, put.text

    clock.advance(100)
    receipt = {
        "attempt": 1,
        "outcome": "succeeded",
        "exit_code": 0,
        "usage_s": 100.0,
        "outputs": [{"path": "out.txt", "sha256": digest, "size": len(output)}],
    }
    done = client.signed("POST", f"/v1/jobs/{job_id}/finish", operator, json=receipt)
    assert done.status_code == 200, done.text

    final = job(client, job_id)
    assert final["state"] == "succeeded"
    assert final["charged_micros"] == 10_000  # 100 s at 100 micros/s
    assert final["hold_micros"] == 0
    assert final["outputs"][0]["sha256"] == digest
    buyer_view = client.get(f"/v1/accounts/{buyer.address}").json()
    assert buyer_view["available_micros"] == 10 * USD - 10_000
    operator_view = client.get(f"/v1/accounts/{operator.address}").json()
    assert operator_view["earned_micros"] == 8_000  # 20% protocol fee
    events = client.get(f"/v1/jobs/{job_id}/events").json()["events"]
    assert [e["to_state"] for e in events] == ["queued", "matched", "running", "succeeded"]
    lines = client.get(f"/v1/jobs/{job_id}/logs").json()["lines"]
    assert [line["line"] for line in lines] == ["1"]
    downloaded = client.signed("GET", f"/v1/jobs/{job_id}/outputs/out.txt", buyer)
    assert downloaded.content == output
    ledger_is_balanced(client)


def test_a_node_cannot_bill_more_time_than_the_indexer_saw(
    client: IndexerTestClient, clock: ManualClock, operator: LocalAccount, buyer: LocalAccount
) -> None:
    register(client, operator, "cpu-1", price_micros=360_000)
    deposit(client, buyer, 10 * USD)
    job_id = submit(client, buyer)["job_id"]
    match(client)
    client.signed("POST", f"/v1/jobs/{job_id}/start", operator, json={"attempt": 1})
    clock.advance(10)
    receipt = {"attempt": 1, "outcome": "failed", "exit_code": 1, "usage_s": 3000.0}
    client.signed("POST", f"/v1/jobs/{job_id}/finish", operator, json=receipt)

    final = job(client, job_id)
    assert final["state"] == "failed"
    assert final["charged_micros"] == 1_500  # 10 s observed + 5 s slack, not 3000 s
    ledger_is_balanced(client)


def test_a_silent_node_loses_the_job_which_runs_elsewhere_and_costs_nothing_for_the_lost_try(
    client: IndexerTestClient,
    clock: ManualClock,
    operator: LocalAccount,
    other_operator: LocalAccount,
    buyer: LocalAccount,
) -> None:
    register(client, operator, "cpu-1", price_micros=100_000)
    deposit(client, buyer, 10 * USD)
    job_id = submit(client, buyer)["job_id"]
    match(client)
    client.signed("POST", f"/v1/jobs/{job_id}/start", operator, json={"attempt": 1})
    register(client, other_operator, "cpu-2", price_micros=200_000)

    clock.advance(31)  # past the 30 s heartbeat timeout; cpu-2 registered just now
    client.signed("POST", "/v1/nodes/cpu-2/heartbeat", other_operator, json={})
    sweep_once(app_context(client.app))  # type: ignore[arg-type]
    requeued = job(client, job_id)
    assert requeued["state"] == "requeued"
    assert requeued["hold_micros"] == 0
    assert requeued["charged_micros"] == 0

    match(client)
    moved = job(client, job_id)
    assert moved["lease"]["node_id"] == "cpu-2"
    assert moved["attempts"] == 2
    late = client.signed(
        "POST", f"/v1/jobs/{job_id}/start", operator, json={"attempt": 1}
    )  # the lost node's stale attempt
    assert late.status_code == 403
    ledger_is_balanced(client)


def test_cancel_before_start_returns_the_whole_hold(
    client: IndexerTestClient, operator: LocalAccount, buyer: LocalAccount
) -> None:
    register(client, operator, "cpu-1")
    deposit(client, buyer, 10 * USD)
    job_id = submit(client, buyer)["job_id"]
    match(client)
    cancelled = client.signed("POST", f"/v1/jobs/{job_id}/cancel", buyer, json={})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert client.get(f"/v1/accounts/{buyer.address}").json()["available_micros"] == 10 * USD
    assert poll(client, operator, "cpu-1")["cancel"] == [job_id]
    again = client.signed("POST", f"/v1/jobs/{job_id}/cancel", buyer, json={})
    assert again.status_code == 409
    ledger_is_balanced(client)


def test_only_the_buyer_may_cancel(
    client: IndexerTestClient, operator: LocalAccount, buyer: LocalAccount
) -> None:
    register(client, operator, "cpu-1")
    deposit(client, buyer, 10 * USD)
    job_id = submit(client, buyer)["job_id"]
    before = job(client, job_id)["state"]
    refused = client.signed("POST", f"/v1/jobs/{job_id}/cancel", operator, json={})
    assert refused.status_code == 403
    assert job(client, job_id)["state"] == before != "cancelled"


def test_a_job_is_refused_before_any_money_moves_when_funds_are_short(
    client: IndexerTestClient, operator: LocalAccount, buyer: LocalAccount
) -> None:
    register(client, operator, "cpu-1")
    deposit(client, buyer, 100)
    refused = client.signed("POST", "/v1/jobs", buyer, json={"spec": spec(), "inputs": []})
    assert refused.status_code == 422
    body = refused.json()
    assert body["field"] == "deposit"
    assert "gpunet deposit" in body["message"]
    assert client.get("/v1/jobs").json()["total"] == 0


def test_a_spec_with_an_unknown_field_is_refused_with_the_field_named(
    client: IndexerTestClient, buyer: LocalAccount
) -> None:
    deposit(client, buyer, 10 * USD)
    refused = client.signed(
        "POST", "/v1/jobs", buyer, json={"spec": spec(max_prise="1.00"), "inputs": []}
    )
    assert refused.status_code == 422
    assert "max_prise" in refused.text


def test_inputs_must_be_uploaded_and_match_the_spec(
    client: IndexerTestClient, operator: LocalAccount, buyer: LocalAccount
) -> None:
    register(client, operator, "cpu-1")
    deposit(client, buyer, 10 * USD)
    data = b"a,b\n1,2\n"
    digest = hashlib.sha256(data).hexdigest()
    body = {
        "spec": spec(inputs=["rows.csv"]),
        "inputs": [{"path": "rows.csv", "sha256": digest, "size": len(data)}],
    }
    missing = client.signed("POST", "/v1/jobs", buyer, json=body)
    assert missing.status_code == 422
    assert "upload" in missing.json()["message"]

    wrong = client.signed("PUT", f"/v1/blobs/{'0' * 64}", buyer, content=data)
    assert wrong.status_code == 422
    stored = client.signed("PUT", f"/v1/blobs/{digest}", buyer, content=data)
    assert stored.status_code == 201
    accepted = client.signed("POST", "/v1/jobs", buyer, json=body)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["inputs"] == body["inputs"]


def test_quote_names_the_best_offer_and_why_others_do_not_qualify(
    client: IndexerTestClient, operator: LocalAccount, other_operator: LocalAccount
) -> None:
    register(client, operator, "cheap-1", price_micros=300_000)
    register(client, other_operator, "dear-1", price_micros=5_000_000)
    response = client.post("/v1/jobs/quote", json={"spec": spec(max_price="1.00")})
    assert response.status_code == 200, response.text
    quote = response.json()
    assert quote["qualifying"] == 1
    assert quote["best"]["node_id"] == "cheap-1"
    assert quote["estimated_micros"] == 300_000
    dear = next(o for o in quote["offers"] if o["node_id"] == "dear-1")
    assert not dear["qualifies"]
    assert "budget" in dear["reason"]


def test_a_deadline_expires_a_job_nobody_ran_in_time(
    client: IndexerTestClient, clock: ManualClock, operator: LocalAccount, buyer: LocalAccount
) -> None:
    register(client, operator, "cpu-1")
    deposit(client, buyer, 10 * USD)
    job_id = submit(client, buyer, max_duration="1m", deadline="2m")["job_id"]
    clock.advance(121)  # the node went silent before the matcher ran
    sweep_once(app_context(client.app))  # type: ignore[arg-type]
    expired = job(client, job_id)
    assert expired["state"] == "failed"
    assert "deadline" in client.get(f"/v1/jobs/{job_id}/events").json()["events"][-1]["cause"]


def session_spec(**overrides: Any) -> dict[str, Any]:
    body = spec(
        name="game",
        kind="session",
        command=["python", "-m", "http.server", "8000"],
        expose_port=8000,
        network=True,
        session_hold="60s",
        max_price="0.36",
    )
    body.pop("max_duration", None)
    body.update(overrides)
    return body


def test_a_latency_bound_uses_the_round_trip_nodes_report(
    client: IndexerTestClient, operator: LocalAccount, other_operator: LocalAccount
) -> None:
    register(client, operator, "near-1")
    register(client, other_operator, "far-1")
    client.signed("POST", "/v1/nodes/near-1/heartbeat", operator, json={"rtt_ms": 12.0})
    client.signed("POST", "/v1/nodes/far-1/heartbeat", other_operator, json={"rtt_ms": 180.0})

    quote = client.post("/v1/jobs/quote", json={"spec": spec(max_latency_ms=50)}).json()

    assert quote["qualifying"] == 1
    assert quote["best"]["node_id"] == "near-1"
    far = next(o for o in quote["offers"] if o["node_id"] == "far-1")
    assert "latency" in far["reason"]


def test_a_session_is_billed_per_second_and_closed_when_funds_run_out(
    client: IndexerTestClient, clock: ManualClock, operator: LocalAccount, buyer: LocalAccount
) -> None:
    register(client, operator, "cpu-1", price_micros=360_000, allows_network=True)
    deposit(client, buyer, 12_000)  # 60 s hold = 6,000; enough for a second hold only
    response = client.signed("POST", "/v1/jobs", buyer, json={"spec": session_spec(), "inputs": []})
    assert response.status_code == 201, response.text
    job_id = response.json()["job_id"]
    match(client)
    [assignment] = poll(client, operator, "cpu-1")["assignments"]
    assert assignment["session_token"]
    client.signed(
        "POST", f"/v1/jobs/{job_id}/start", operator, json={"attempt": 1, "endpoint": "h:1"}
    )
    access = client.signed("GET", f"/v1/jobs/{job_id}/session", buyer).json()
    assert access["endpoint"] == "h:1"
    assert access["token"] == assignment["session_token"]
    assert client.signed("GET", f"/v1/jobs/{job_id}/session", operator).status_code == 403

    clock.advance(40)
    ack = client.signed(
        "POST", f"/v1/jobs/{job_id}/usage", operator, json={"attempt": 1, "usage_s": 40.0}
    ).json()
    assert ack["charged_micros"] == 4_000  # 40 s at 100 micros/s, paid out already
    assert ack["low_funds"] is False  # the hold was refilled from the deposit

    clock.advance(60)
    ack = client.signed(
        "POST", f"/v1/jobs/{job_id}/usage", operator, json={"attempt": 1, "usage_s": 100.0}
    ).json()
    assert ack["charged_micros"] == 10_000
    assert ack["low_funds"] is True
    events = client.get(f"/v1/jobs/{job_id}/events").json()["events"]
    assert events[-1]["event"] == "low_funds"

    clock.advance(150)  # hold exhausted, grace period (120 s) over
    client.signed("POST", "/v1/nodes/cpu-1/heartbeat", operator, json={})
    sweep_once(app_context(client.app))  # type: ignore[arg-type]
    closed = job(client, job_id)
    assert closed["state"] == "cancelled"
    assert closed["charged_micros"] == 12_000  # every micro-dollar deposited, no more
    assert client.get(f"/v1/accounts/{buyer.address}").json()["available_micros"] == 0
    ledger_is_balanced(client)


def test_a_budget_below_every_offer_is_refused_naming_the_price_to_offer(
    client: IndexerTestClient, operator: LocalAccount, buyer: LocalAccount
) -> None:
    register(client, operator, "cpu-1", price_micros=380_000)
    deposit(client, buyer, 10 * USD)

    refused = client.signed(
        "POST", "/v1/jobs", buyer, json={"spec": spec(max_price="0.05"), "inputs": []}
    )

    assert refused.status_code == 422
    body = refused.json()
    assert body["field"] == "max_price"
    assert "0.38" in body["message"]
    assert client.get("/v1/jobs").json()["total"] == 0
    assert client.get(f"/v1/accounts/{buyer.address}").json()["available_micros"] == 10 * USD


def test_resources_no_online_node_has_are_refused(
    client: IndexerTestClient, operator: LocalAccount, buyer: LocalAccount
) -> None:
    register(client, operator, "cpu-1")
    deposit(client, buyer, 10 * USD)

    big = spec(resources={"cpu_cores": 512, "memory": "1GiB"})
    refused = client.signed("POST", "/v1/jobs", buyer, json={"spec": big, "inputs": []})

    assert refused.status_code == 422
    assert refused.json()["field"] == "resources"
    assert "gpunet quote" in refused.json()["message"]


def run_to_success(
    client: IndexerTestClient, operator: LocalAccount, job_id: str, output: bytes
) -> None:
    attempt = job(client, job_id)["attempts"]
    client.signed("POST", f"/v1/jobs/{job_id}/start", operator, json={"attempt": attempt})
    digest = hashlib.sha256(output).hexdigest()
    client.signed("PUT", f"/v1/jobs/{job_id}/outputs/{digest}", operator, content=output)
    receipt = {
        "attempt": attempt,
        "outcome": "succeeded",
        "exit_code": 0,
        "usage_s": 1.0,
        "outputs": [{"path": "out.txt", "sha256": digest, "size": len(output)}],
    }
    done = client.signed("POST", f"/v1/jobs/{job_id}/finish", operator, json=receipt)
    assert done.status_code == 200, done.text


@pytest.mark.parametrize(
    ("second_output", "verdict"), [(b"42\n", "outputs_match"), (b"41\n", "outputs_differ")]
)
def test_redundant_runs_go_to_two_nodes_and_their_outputs_are_compared(
    client: IndexerTestClient,
    operator: LocalAccount,
    other_operator: LocalAccount,
    buyer: LocalAccount,
    second_output: bytes,
    verdict: str,
) -> None:
    register(client, operator, "cpu-1")
    register(client, other_operator, "cpu-2")
    deposit(client, buyer, 10 * USD)
    first = submit(client, buyer, redundancy=2)
    match(client)

    group = client.get("/v1/jobs").json()["jobs"]
    assert len(group) == 2
    details = [job(client, j["job_id"]) for j in group]
    assert {d["group_id"] for d in details} == {first["group_id"]}
    assert {d["lease"]["node_id"] for d in details} == {"cpu-1", "cpu-2"}

    owners = {"cpu-1": operator, "cpu-2": other_operator}
    for detail, output in zip(details, (b"42\n", second_output), strict=True):
        run_to_success(client, owners[detail["lease"]["node_id"]], detail["job_id"], output)

    for detail in details:
        events = client.get(f"/v1/jobs/{detail['job_id']}/events").json()["events"]
        assert events[-1]["event"] == verdict
    ledger_is_balanced(client)


def test_auto_top_up_credits_what_a_job_needs_within_its_limit(
    client: IndexerTestClient, operator: LocalAccount, buyer: LocalAccount
) -> None:
    register(client, operator, "cpu-1", price_micros=360_000)
    rule = {"amount_micros": 200_000, "threshold_micros": 0, "limit_micros": 500_000}
    assert client.signed("PUT", "/v1/accounts/auto-topup", buyer, json=rule).status_code == 200

    # One hour at the 1 USD/h budget needs 1,000,000: more than the rule's limit. The
    # refusal rolls the attempted top-ups back with it: no money appears.
    too_big = client.signed("POST", "/v1/jobs", buyer, json={"spec": spec(), "inputs": []})
    assert too_big.status_code == 422
    view = client.get(f"/v1/accounts/{buyer.address}").json()
    assert (view["available_micros"], view["auto_topup_used_micros"]) == (0, 0)

    # One minute needs 16,667: one top-up of 200,000 covers it.
    small = client.signed(
        "POST", "/v1/jobs", buyer, json={"spec": spec(max_duration="1m"), "inputs": []}
    )
    assert small.status_code == 201, small.text
    view = client.get(f"/v1/accounts/{buyer.address}").json()
    assert view["available_micros"] + view["held_micros"] == 200_000  # held once matched
    assert view["deposited_micros"] == 200_000
    assert view["auto_topup_used_micros"] == 200_000
    ledger_is_balanced(client)
