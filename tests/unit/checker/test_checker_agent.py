"""CheckerAgent's loop through the real SDK client against a scripted MockTransport indexer."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from gpunet.api.checks import CheckResultIn, CheckTask
from gpunet.checker.agent import CheckerAgent, CheckerState
from gpunet.checker.errors import CheckerRefused, CheckNotRun
from gpunet.checker.outcome import CheckOutcome, failed, passed
from gpunet.checker.testing import FakeClock, InlineExecutor, make_task
from gpunet.protocol.auth import verify_request
from gpunet.protocol.vote import evidence_digest, result_message
from gpunet.sdk import Client

NOW = 1_764_072_000.0
BASE_URL = "http://indexer.test"


def error(status: int, message: str) -> httpx.Response:
    body = {"error": f"http_{status}", "message": message, "field": None, "value": None}
    return httpx.Response(status, json=body)


class ScriptedIndexer:
    """Answers the checker's calls; each script holds statuses to answer before a 200."""

    def __init__(self, tasks: list[CheckTask], *, polls: int = 3, **scripts: list[int]) -> None:
        self.tasks = tasks
        self.scripts = {name: deque(statuses) for name, statuses in scripts.items()}
        self.requests: list[httpx.Request] = []
        self.reports: dict[str, CheckResultIn] = {}
        self.polls_left = polls
        self.agent: CheckerAgent | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        name = self._name(request)
        script = self.scripts.get(name)
        if script:
            return error(script.popleft(), f"scripted answer to {name}")
        return getattr(self, name)(request)

    @staticmethod
    def _name(request: httpx.Request) -> str:
        if request.url.path == "/v1/checkers":
            return "register"
        return "poll" if request.url.path.endswith("/tasks") else "report"

    def register(self, request: httpx.Request) -> httpx.Response:
        address = request.headers["x-gpunet-address"]
        when = "2025-01-01T00:00:00Z"
        return httpx.Response(
            200,
            json={
                "address": address,
                "operator": None,
                "registered_at": when,
                "last_seen_at": when,
                "results_total": 0,
                "against_majority": 0,
                "against_majority_week": 0,
                "banned_until": None,
                "reward_eligible": True,
            },
        )

    def poll(self, request: httpx.Request) -> httpx.Response:
        self.polls_left -= 1
        if self.polls_left <= 0 and self.agent is not None:
            self.agent.stop()
        # Like the indexer: every open task whose seat this checker has not filled.
        open_tasks = [t for t in self.tasks if t.check_id not in self.reports]
        body = {"epoch": 4, "epoch_s": 10.0, "tasks": [t.model_dump() for t in open_tasks]}
        return httpx.Response(200, json=body)

    def report(self, request: httpx.Request) -> httpx.Response:
        check_id = request.url.path.split("/")[3]
        self.reports[check_id] = CheckResultIn.model_validate_json(request.content)
        body = {"check_id": check_id, "accepted": True, "state": "open", "verdict": None}
        return httpx.Response(200, json=body)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def agent_for(
    indexer: ScriptedIndexer,
    account: LocalAccount,
    clock: FakeClock,
    runner: Callable[[CheckTask], CheckOutcome],
) -> CheckerAgent:
    client = Client(BASE_URL, account, transport=httpx.MockTransport(indexer))
    agent = CheckerAgent(
        client,
        account,
        runner,
        poll_wait_s=0,
        clock=clock,
        sleep=clock.sleep,
        executor=InlineExecutor(),
    )
    indexer.agent = agent
    return agent


def honest_runner(task: CheckTask) -> CheckOutcome:
    if task.kind == "capacity":
        return failed("answered in 2.31 s, deadline 1.20 s", elapsed_s=2.31, deadline_s=1.2)
    return passed("answered in 3 ms (attempt 1 of 3)", attempts=[{"rtt_ms": 3.0}])


def tasks(operator: str) -> list[CheckTask]:
    return [
        make_task(operator, "liveness", check_id="c-000000000000000a", due_at=NOW + 60),
        make_task(operator, "capacity", check_id="c-000000000000000b", due_at=NOW + 60),
    ]


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock(NOW)


def test_registers_polls_and_reports_signed_results(
    checker_key: LocalAccount, operator: LocalAccount, wall: FakeClock
) -> None:
    indexer = ScriptedIndexer(tasks(operator.address))
    agent = agent_for(indexer, checker_key, wall, honest_runner)

    agent.run()

    assert indexer.paths()[:4] == [
        "POST /v1/checkers",
        "GET /v1/checkers/me/tasks",
        "POST /v1/checks/c-000000000000000a/results",
        "POST /v1/checks/c-000000000000000b/results",
    ]
    assert json.loads(indexer.requests[0].content)["agent_version"]
    for request in indexer.requests:
        now = float(request.headers["x-gpunet-timestamp"])
        target = request.url.raw_path.decode()
        signed = verify_request(request.headers, request.method, target, request.content, now)
        assert signed.address == checker_key.address
    assert {c: r.verdict for c, r in indexer.reports.items()} == {
        "c-000000000000000a": "pass",
        "c-000000000000000b": "fail",
    }
    assert agent.state is CheckerState.STOPPED
    assert agent.health().reported == 2


def test_each_result_is_signed_over_the_vote_and_its_evidence(
    checker_key: LocalAccount, operator: LocalAccount, wall: FakeClock
) -> None:
    indexer = ScriptedIndexer(tasks(operator.address))

    agent_for(indexer, checker_key, wall, honest_runner).run()

    for task in tasks(operator.address):
        result = indexer.reports[task.check_id]
        message = result_message(
            task.check_id, task.node_id, task.kind, result.verdict, evidence_digest(result.evidence)
        )
        signer = Account.recover_message(encode_defunct(text=message), signature=result.signature)
        assert signer == checker_key.address
    capacity = indexer.reports["c-000000000000000b"]
    assert capacity.detail == "answered in 2.31 s, deadline 1.20 s"
    assert capacity.evidence == {"elapsed_s": 2.31, "deadline_s": 1.2}


def test_backs_off_on_503_and_carries_on(
    checker_key: LocalAccount, operator: LocalAccount, wall: FakeClock
) -> None:
    indexer = ScriptedIndexer(tasks(operator.address), poll=[503, 503])
    agent = agent_for(indexer, checker_key, wall, honest_runner)
    states: list[CheckerState] = []
    sleep = wall.sleep

    def watch(seconds: float) -> None:
        states.append(agent.state)
        sleep(seconds)

    agent._sleep = watch  # observe the state at each pause

    agent.run()

    backoffs = wall.slept[1:3]
    assert 0.8 <= backoffs[0] <= 1.2 and 1.6 <= backoffs[1] <= 2.4  # 1 s, then 2 s, jittered
    assert CheckerState.RETRYING in states
    assert len(indexer.reports) == 2  # it went on once the indexer was back
    assert agent.health().consecutive_failures == 0


def test_stops_on_403_with_a_clear_error(
    checker_key: LocalAccount, operator: LocalAccount, wall: FakeClock
) -> None:
    indexer = ScriptedIndexer(tasks(operator.address), poll=[403])
    agent = agent_for(indexer, checker_key, wall, honest_runner)

    with pytest.raises(CheckerRefused, match="refused to give this checker tasks") as caught:
        agent.run()

    assert caught.value.error.status_code == 403
    assert agent.state is CheckerState.FAILED
    assert indexer.reports == {}


def test_stops_when_registration_is_refused(
    checker_key: LocalAccount, operator: LocalAccount, wall: FakeClock
) -> None:
    indexer = ScriptedIndexer([], register=[401])
    agent = agent_for(indexer, checker_key, wall, honest_runner)

    with pytest.raises(CheckerRefused, match="refused to register this checker"):
        agent.run()


def test_registers_again_when_the_indexer_forgot_it(
    checker_key: LocalAccount, operator: LocalAccount, wall: FakeClock
) -> None:
    indexer = ScriptedIndexer([], poll=[404])

    agent_for(indexer, checker_key, wall, honest_runner).run()

    assert indexer.paths()[:3] == [
        "POST /v1/checkers",
        "GET /v1/checkers/me/tasks",
        "POST /v1/checkers",
    ]


def test_a_task_repeated_while_it_runs_runs_once(
    checker_key: LocalAccount, operator: LocalAccount, wall: FakeClock
) -> None:
    ran: list[str] = []

    def no_vote(task: CheckTask) -> CheckOutcome:
        ran.append(task.check_id)
        raise CheckNotRun("the indexer is away")

    indexer = ScriptedIndexer(tasks(operator.address), polls=4)
    agent_for(indexer, checker_key, wall, no_vote).run()

    assert ran == ["c-000000000000000a", "c-000000000000000b"]
    assert indexer.reports == {}  # no vote without a check
    # After register and the first poll, only tasks it has: it polls again after a pause.
    assert wall.slept[:2] == [0.0, 0.0]
    assert all(pause >= 0.8 for pause in wall.slept[2:4])


def test_an_overdue_task_is_not_run(
    checker_key: LocalAccount, operator: LocalAccount, wall: FakeClock
) -> None:
    ran: list[str] = []

    def runner(task: CheckTask) -> CheckOutcome:
        ran.append(task.check_id)
        return honest_runner(task)

    late = make_task(operator.address, check_id="c-00000000000000ff", due_at=NOW - 1)
    agent_for(ScriptedIndexer([late]), checker_key, wall, runner).run()

    assert ran == []


def test_a_result_the_indexer_no_longer_takes_is_dropped(
    checker_key: LocalAccount, operator: LocalAccount, wall: FakeClock
) -> None:
    indexer = ScriptedIndexer(tasks(operator.address), report=[409])
    agent = agent_for(indexer, checker_key, wall, honest_runner)

    agent.run()

    assert list(indexer.reports) == ["c-000000000000000b"]
    assert agent.state is CheckerState.STOPPED


def test_a_result_refused_as_malformed_stops_the_checker(
    checker_key: LocalAccount, operator: LocalAccount, wall: FakeClock
) -> None:
    indexer = ScriptedIndexer(tasks(operator.address), report=[422])
    agent = agent_for(indexer, checker_key, wall, honest_runner)

    with pytest.raises(CheckerRefused, match="take the result of liveness check"):
        agent.run()

    assert agent.state is CheckerState.FAILED


def test_a_report_meeting_an_outage_is_retried(
    checker_key: LocalAccount, operator: LocalAccount, wall: FakeClock
) -> None:
    indexer = ScriptedIndexer(tasks(operator.address), report=[503, 502])

    agent_for(indexer, checker_key, wall, honest_runner).run()

    reports = [p for p in indexer.paths() if p.endswith("c-000000000000000a/results")]
    assert len(reports) == 3
    assert set(indexer.reports) == {"c-000000000000000a", "c-000000000000000b"}


def test_a_crashing_runner_costs_one_check_not_the_loop(
    checker_key: LocalAccount, operator: LocalAccount, wall: FakeClock
) -> None:
    def buggy(task: CheckTask) -> CheckOutcome:
        if task.kind == "liveness":
            raise RuntimeError("bug")
        return honest_runner(task)

    indexer = ScriptedIndexer(tasks(operator.address))
    agent_for(indexer, checker_key, wall, buggy).run()

    assert list(indexer.reports) == ["c-000000000000000b"]


def test_stop_from_another_thread_ends_the_loop(
    checker_key: LocalAccount, operator: LocalAccount
) -> None:
    polled = threading.Event()
    registrar = ScriptedIndexer([])

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/tasks"):
            polled.set()
            return httpx.Response(200, json={"epoch": 1, "epoch_s": 10.0, "tasks": []})
        return registrar.register(request)

    client = Client(BASE_URL, checker_key, transport=httpx.MockTransport(answer))
    agent = CheckerAgent(client, checker_key, honest_runner, poll_wait_s=0)
    loop = threading.Thread(target=agent.run)
    loop.start()
    try:
        assert polled.wait(5)
    finally:
        agent.stop()
        loop.join(5)

    assert not loop.is_alive()
    assert agent.state is CheckerState.STOPPED
    health = agent.health()
    assert health.seconds_since_poll is not None and health.seconds_since_poll < 5


def test_results_from_a_thread_pool_are_reported(
    checker_key: LocalAccount, operator: LocalAccount
) -> None:
    all_in = threading.Event()
    due = time.time() + 60
    indexer = ScriptedIndexer(
        [
            make_task(operator.address, "liveness", check_id="c-000000000000000a", due_at=due),
            make_task(operator.address, "capacity", check_id="c-000000000000000b", due_at=due),
        ],
        polls=10**6,
    )
    report = indexer.report

    def counting_report(request: httpx.Request) -> httpx.Response:
        answer = report(request)
        if len(indexer.reports) == 2:
            all_in.set()
        return answer

    indexer.report = counting_report  # type: ignore[method-assign]
    client = Client(BASE_URL, checker_key, transport=httpx.MockTransport(indexer))
    agent = CheckerAgent(client, checker_key, honest_runner, poll_wait_s=0, workers=2)
    loop = threading.Thread(target=agent.run)
    loop.start()
    try:
        assert all_in.wait(5)
    finally:
        agent.stop()
        loop.join(5)

    assert set(indexer.reports) == {"c-000000000000000a", "c-000000000000000b"}


def test_a_check_running_at_stop_finishes_and_reports(
    checker_key: LocalAccount, operator: LocalAccount
) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(task: CheckTask) -> CheckOutcome:
        started.set()
        release.wait(5)
        return honest_runner(task)

    due = time.time() + 60
    indexer = ScriptedIndexer(
        [make_task(operator.address, check_id="c-000000000000000a", due_at=due)], polls=10**6
    )
    client = Client(BASE_URL, checker_key, transport=httpx.MockTransport(indexer))
    agent = CheckerAgent(client, checker_key, slow, poll_wait_s=0, stop_grace_s=5)
    loop = threading.Thread(target=agent.run)
    loop.start()
    try:
        assert started.wait(5)
        agent.stop()
        loop.join(0.3)
        assert loop.is_alive()  # it waits for the running check
        assert agent.state is CheckerState.STOPPING
    finally:
        release.set()
        loop.join(5)

    assert not loop.is_alive()
    assert list(indexer.reports) == ["c-000000000000000a"]
    assert agent.state is CheckerState.STOPPED


def test_stop_does_not_wait_for_the_long_poll(
    checker_key: LocalAccount, operator: LocalAccount
) -> None:
    polling, hang = threading.Event(), threading.Event()
    registrar = ScriptedIndexer([])

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/tasks"):
            polling.set()
            hang.wait(10)  # the indexer holds the poll
            return httpx.Response(200, json={"epoch": 1, "epoch_s": 10.0, "tasks": []})
        return registrar.register(request)

    client = Client(BASE_URL, checker_key, transport=httpx.MockTransport(answer))
    agent = CheckerAgent(client, checker_key, honest_runner, poll_wait_s=20)
    loop = threading.Thread(target=agent.run)
    loop.start()
    try:
        assert polling.wait(5)
        stopped_at = time.monotonic()
        agent.stop()
        loop.join(5)
        assert time.monotonic() - stopped_at < 3
        assert not loop.is_alive()
    finally:
        hang.set()


def test_a_bug_in_the_poll_loop_is_raised_by_run(
    checker_key: LocalAccount, operator: LocalAccount, wall: FakeClock
) -> None:
    indexer = ScriptedIndexer([])
    agent = agent_for(indexer, checker_key, wall, honest_runner)
    agent._poll = lambda: 1 / 0  # type: ignore[method-assign,assignment,return-value]

    with pytest.raises(ZeroDivisionError):
        agent.run()

    assert agent.state is CheckerState.FAILED
