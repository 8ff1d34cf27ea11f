"""Checks in the indexer: panels each epoch, signed results, majority, penalties, bans."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from starlette.applications import Starlette

from gpunet.indexer import IndexerSettings, create_app
from gpunet.indexer.check_loop import TickReport, tick_on
from gpunet.indexer.context import app_context
from gpunet.indexer.matcher import match_here
from gpunet.indexer.testing import IndexerTestClient, ManualClock, sample_registration
from gpunet.protocol.vote import evidence_digest, result_message

EPOCH_S = 100.0
WINDOW_S = 30.0


@pytest.fixture
def settings(tmp_path: Path) -> IndexerSettings:
    return IndexerSettings(
        data_dir=tmp_path / "data",
        heartbeat_interval_s=10,
        heartbeat_timeout_s=1000,
        sweep_interval_s=3600,
        epoch_s=EPOCH_S,
        check_window_s=WINDOW_S,
        check_tick_s=3600,  # the tests tick by hand
        canaries_per_epoch=0,
    )


@pytest.fixture
def client(settings: IndexerSettings, clock: ManualClock) -> Iterator[IndexerTestClient]:
    with IndexerTestClient(create_app(settings, clock=clock)) as test_client:
        yield test_client


@pytest.fixture
def checkers() -> list[LocalAccount]:
    return [Account.create() for _ in range(3)]


def tick(client: IndexerTestClient) -> TickReport:
    assert isinstance(client.app, Starlette)
    context = app_context(client.app)
    return context.database.write_here(partial(tick_on, context))


def next_epoch(
    client: IndexerTestClient, clock: ManualClock, polling: list[LocalAccount]
) -> TickReport:
    """Move to the next epoch; the ``polling`` checkers poll (so are active), then tick."""
    clock.now = (clock.now // EPOCH_S + 1) * EPOCH_S + 1
    for checker in polling:
        tasks(client, checker)
    return tick(client)


def register_checker(client: IndexerTestClient, account: LocalAccount, **body: Any) -> None:
    answer = client.signed("POST", "/v1/checkers", account, json=body)
    assert answer.status_code == 200, answer.text


def register_node(
    client: IndexerTestClient, operator: LocalAccount, node_id: str, **kw: Any
) -> None:
    body = {**sample_registration(**kw), "check_url": "http://127.0.0.1:9999"}
    answer = client.signed("PUT", f"/v1/nodes/{node_id}", operator, json=body)
    assert answer.status_code == 201, answer.text


def tasks(client: IndexerTestClient, checker: LocalAccount) -> list[dict[str, Any]]:
    answer = client.signed("GET", "/v1/checkers/me/tasks?wait_s=0", checker)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["tasks"])


def result_body(
    task: dict[str, Any], verdict: str, signer: LocalAccount, **evidence: Any
) -> dict[str, Any]:
    message = result_message(
        task["check_id"], task["node_id"], task["kind"], verdict, evidence_digest(evidence)
    )
    signature = signer.sign_message(encode_defunct(text=message)).signature.hex()
    return {
        "verdict": verdict,
        "detail": f"{verdict} by test",
        "evidence": evidence,
        "signature": signature if signature.startswith("0x") else "0x" + signature,
    }


def report(
    client: IndexerTestClient, checker: LocalAccount, task: dict[str, Any], verdict: str
) -> Any:
    body = result_body(task, verdict, checker, rtt_ms=3.5)
    return client.signed("POST", f"/v1/checks/{task['check_id']}/results", checker, json=body)


def task_of(client: IndexerTestClient, checker: LocalAccount, kind: str) -> dict[str, Any]:
    return next(t for t in tasks(client, checker) if t["kind"] == kind)


def node_checks(client: IndexerTestClient, node_id: str) -> dict[str, Any]:
    answer = client.get(f"/v1/nodes/{node_id}/checks")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.fixture
def network(
    client: IndexerTestClient,
    clock: ManualClock,
    operator: LocalAccount,
    checkers: list[LocalAccount],
) -> IndexerTestClient:
    for checker in checkers:
        register_checker(client, checker)
    register_node(client, operator, "n-000000000001")
    assert next_epoch(client, clock, checkers).opened == 2  # liveness and capacity
    return client


def test_each_epoch_opens_liveness_and_capacity_checks_with_a_panel_of_three(
    network: IndexerTestClient, checkers: list[LocalAccount]
) -> None:
    for checker in checkers:
        kinds = sorted(t["kind"] for t in tasks(network, checker))
        assert kinds == ["capacity", "liveness"]
    task = task_of(network, checkers[0], "capacity")
    assert task["node_id"] == "n-000000000001"
    assert task["check_url"] == "http://127.0.0.1:9999"
    assert task["claimed_ops_per_s"] > 0


def test_the_majority_decides_and_the_dissenter_is_recorded(
    network: IndexerTestClient, checkers: list[LocalAccount]
) -> None:
    votes = ["pass", "pass", "fail"]
    for checker, verdict in zip(checkers, votes, strict=True):
        answer = report(network, checker, task_of(network, checker, "liveness"), verdict)
        assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "closed"
    assert answer.json()["verdict"] == "pass"

    checks = node_checks(network, "n-000000000001")
    liveness = next(c for c in checks["checks"] if c["kind"] == "liveness")
    assert liveness["verdict"] == "pass"
    against = [v["checker"] for v in liveness["votes"] if v["with_majority"] is False]
    assert against == [checkers[2].address.lower()]
    assert checks["reputation"]["liveness"] > 0.5
    assert checks["penalties"] == []

    dissenter = network.get(f"/v1/checkers/{checkers[2].address}").json()
    assert dissenter["against_majority"] == 1
    assert dissenter["reward_eligible"] is True


@pytest.mark.parametrize("liars", [[0], [1], [2]])
def test_one_colluding_checker_of_three_cannot_change_the_verdict(
    network: IndexerTestClient, checkers: list[LocalAccount], liars: list[int]
) -> None:
    for index, checker in enumerate(checkers):
        verdict = "fail" if index in liars else "pass"
        report(network, checker, task_of(network, checker, "capacity"), verdict)
    checks = node_checks(network, "n-000000000001")
    capacity = next(c for c in checks["checks"] if c["kind"] == "capacity")
    assert capacity["verdict"] == "pass"
    assert checks["penalties"] == []


def test_a_failed_capacity_check_records_a_below_spec_penalty_of_one_k(
    network: IndexerTestClient, checkers: list[LocalAccount]
) -> None:
    for checker in checkers:
        report(network, checker, task_of(network, checker, "capacity"), "fail")
    checks = node_checks(network, "n-000000000001")
    (penalty,) = checks["penalties"]
    assert penalty["kind"] == "below_spec"
    assert int(penalty["amount"]) == 100 * 100 * 10**18  # H100: 100 capacity units
    assert checks["reputation"]["capacity"] < 0.5


def test_offline_while_idle_costs_no_stake_but_offline_during_a_paid_lease_does(
    network: IndexerTestClient, checkers: list[LocalAccount]
) -> None:
    for checker in checkers:
        report(network, checker, task_of(network, checker, "liveness"), "fail")
    checks = node_checks(network, "n-000000000001")
    liveness = next(c for c in checks["checks"] if c["kind"] == "liveness")
    assert liveness["finding"] == "offline_idle"
    assert checks["penalties"] == []


def test_results_from_outsiders_twice_forged_or_late_are_refused(
    network: IndexerTestClient,
    clock: ManualClock,
    checkers: list[LocalAccount],
) -> None:
    task = task_of(network, checkers[0], "liveness")
    path = f"/v1/checks/{task['check_id']}/results"
    outsider = Account.create()
    register_checker(network, outsider)
    refused = network.signed("POST", path, outsider, json=result_body(task, "pass", outsider))
    assert refused.status_code == 403

    forged = result_body(task, "pass", outsider)  # signed by another key
    assert network.signed("POST", path, checkers[0], json=forged).status_code == 422
    other_check = task_of(network, checkers[0], "capacity")
    moved = result_body(other_check, "pass", checkers[0])  # signature over another check
    assert network.signed("POST", path, checkers[0], json=moved).status_code == 422

    body = result_body(task, "pass", checkers[0], rtt_ms=3.5)
    sent = network.signed("POST", path, checkers[0], json=body, nonce="replayed-nonce-0001")
    assert sent.status_code == 200
    replayed = network.signed("POST", path, checkers[0], json=body, nonce="replayed-nonce-0001")
    assert replayed.status_code == 401  # the same signed request again
    again = report(network, checkers[0], task, "fail")
    assert again.status_code == 409
    assert "already reported" in again.json()["message"]

    clock.advance(WINDOW_S + 1)
    late = report(network, checkers[1], task, "pass")
    assert late.status_code == 409


def test_an_overdue_check_closes_with_the_votes_it_has(
    network: IndexerTestClient, clock: ManualClock, checkers: list[LocalAccount]
) -> None:
    report(network, checkers[0], task_of(network, checkers[0], "liveness"), "pass")
    report(network, checkers[1], task_of(network, checkers[1], "liveness"), "pass")
    clock.advance(WINDOW_S + 1)
    closed = tick(network).closed
    assert closed == 2
    checks = node_checks(network, "n-000000000001")
    verdicts = {c["kind"]: c["verdict"] for c in checks["checks"]}
    assert verdicts == {"liveness": "pass", "capacity": "inconclusive"}


def test_two_results_against_the_majority_in_a_week_bar_a_checker_from_rewards(
    network: IndexerTestClient, clock: ManualClock, checkers: list[LocalAccount]
) -> None:
    for kind in ("liveness", "capacity"):
        for index, checker in enumerate(checkers):
            report(network, checker, task_of(network, checker, kind), "fail" if index else "pass")
    barred = network.get(f"/v1/checkers/{checkers[0].address}").json()
    assert barred["against_majority_week"] == 2
    assert barred["reward_eligible"] is False
    assert barred["banned_until"] is not None
    listed = {c["address"]: c for c in network.get("/v1/checkers").json()["checkers"]}
    assert listed[checkers[1].address.lower()]["reward_eligible"] is True


def test_a_checker_never_sits_on_a_panel_for_its_own_operators_nodes(
    client: IndexerTestClient, clock: ManualClock, operator: LocalAccount
) -> None:
    honest = [Account.create() for _ in range(3)]
    for checker in honest:
        register_checker(client, checker)
    own = Account.create()
    register_checker(client, own, operator=operator.address)
    register_node(client, operator, "n-000000000002")
    next_epoch(client, clock, [*honest, own])
    assert tasks(client, own) == []
    assert all(len(tasks(client, c)) == 2 for c in honest)


def test_reputation_from_checks_shows_in_offers_and_nodes(
    network: IndexerTestClient, checkers: list[LocalAccount]
) -> None:
    for checker in checkers:
        report(network, checker, task_of(network, checker, "capacity"), "fail")
    node = network.get("/v1/nodes/n-000000000001").json()
    offers = network.get("/v1/offers").json()["offers"]
    assert node["reputation"] < 0.5
    assert offers[0]["reputation"] == pytest.approx(node["reputation"], abs=1e-3)


def cpu_node_with_checks() -> dict[str, Any]:
    return {**sample_registration("CPU", 0, price_micros=400_000), "runtimes": ["bwrap"]}


def test_going_offline_during_a_paid_lease_records_a_downtime_penalty(
    client: IndexerTestClient,
    clock: ManualClock,
    operator: LocalAccount,
    checkers: list[LocalAccount],
) -> None:
    for checker in checkers:
        register_checker(client, checker)
    body = {**cpu_node_with_checks(), "check_url": "http://127.0.0.1:9999"}
    assert client.signed("PUT", "/v1/nodes/n-000000000003", operator, json=body).is_success
    buyer = Account.create()
    client.signed("POST", "/v1/accounts/deposit", buyer, json={"amount_micros": 5_000_000})
    spec = {
        "name": "hello",
        "command": ["python", "-c", "print(1)"],
        "max_price": "1.00",
        "max_duration": "1h",
        "resources": {"cpu_cores": 1, "memory": "1GiB"},
    }
    submitted = client.signed("POST", "/v1/jobs", buyer, json={"spec": spec, "inputs": []})
    assert submitted.status_code == 201, submitted.text
    match_here(app_context(client.app))  # type: ignore[arg-type]
    next_epoch(client, clock, checkers)
    for checker in checkers:
        report(client, checker, task_of(client, checker, "liveness"), "fail")
    checks = node_checks(client, "n-000000000003")
    liveness = next(c for c in checks["checks"] if c["kind"] == "liveness")
    assert liveness["finding"] == "offline_during_lease"
    (penalty,) = checks["penalties"]
    assert penalty["kind"] == "downtime_during_lease"
    assert penalty["job_id"] == submitted.json()["job_id"]
    assert int(penalty["amount"]) == 100 * 10**18 // 3  # a CPU node: K = 1 capacity unit


def test_a_canary_runs_on_the_node_like_any_job_and_opens_a_delivery_check(
    settings: IndexerSettings,
    clock: ManualClock,
    operator: LocalAccount,
    checkers: list[LocalAccount],
) -> None:
    canary_settings = settings.model_copy(update={"canaries_per_epoch": 1})
    with IndexerTestClient(create_app(canary_settings, clock=clock)) as client:
        for checker in checkers:
            register_checker(client, checker)
        body = {**cpu_node_with_checks(), "check_url": "http://127.0.0.1:9999"}
        client.signed("PUT", "/v1/nodes/n-000000000004", operator, json=body)
        assert next_epoch(client, clock, checkers).canaries == ["n-000000000004"]
        work = client.signed("GET", "/v1/nodes/n-000000000004/work?wait_s=0", operator).json()
        (assignment,) = work["assignments"]
        job_id = assignment["job_id"]
        assert "canary" not in str(assignment).lower()  # the node cannot tell
        run_to_success(client, operator, job_id, b"not the right summary\n")

        assert tick(client).opened == 1
        task = task_of(client, checkers[0], "delivery")
        assert task["delivery"]["job_id"] == job_id
        assert task["delivery"]["expected_outputs"]
        output = task["delivery"]["outputs"][0]
        fetched = client.signed(
            "GET", f"/v1/checks/{task['check_id']}/outputs/{output['sha256']}", checkers[0]
        )
        assert fetched.content == b"not the right summary\n"
        outsider = Account.create()
        register_checker(client, outsider)
        path = f"/v1/checks/{task['check_id']}/outputs/{output['sha256']}"
        assert client.signed("GET", path, outsider).status_code == 403

        for checker in checkers:
            delivery = task_of(client, checker, "delivery")
            assert report(client, checker, delivery, "fail").status_code == 200
        (penalty,) = node_checks(client, "n-000000000004")["penalties"]
        assert penalty["kind"] == "malicious"
        assert penalty["job_id"] == job_id


def run_to_success(
    client: IndexerTestClient, operator: LocalAccount, job_id: str, output: bytes
) -> None:
    attempt = client.get(f"/v1/jobs/{job_id}").json()["attempts"]
    client.signed("POST", f"/v1/jobs/{job_id}/start", operator, json={"attempt": attempt})
    digest = hashlib.sha256(output).hexdigest()
    client.signed("PUT", f"/v1/jobs/{job_id}/outputs/{digest}", operator, content=output)
    receipt = {
        "attempt": attempt,
        "outcome": "succeeded",
        "exit_code": 0,
        "usage_s": 1.0,
        "outputs": [{"path": "summary.json", "sha256": digest, "size": len(output)}],
    }
    done = client.signed("POST", f"/v1/jobs/{job_id}/finish", operator, json=receipt)
    assert done.status_code == 200, done.text


def test_the_capacity_deadline_factor_setting_reaches_the_checkers(
    settings: IndexerSettings,
    clock: ManualClock,
    operator: LocalAccount,
    checkers: list[LocalAccount],
) -> None:
    stretched = settings.model_copy(update={"capacity_deadline_factor": 4.0})
    with IndexerTestClient(create_app(stretched, clock=clock)) as client:
        for checker in checkers:
            register_checker(client, checker)
        register_node(client, operator, "n-000000000001")
        next_epoch(client, clock, checkers)
        assert task_of(client, checkers[0], "capacity")["deadline_factor"] == 4.0
