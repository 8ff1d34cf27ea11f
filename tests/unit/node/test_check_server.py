"""The node's check endpoint, driven in-process: what checkers get from honest and lying nodes.

Honest answers must pass the protocol's own judges (signature recovery, ``judge_capacity``);
each lying mode must produce answers those judges fail, or no answer at all.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from starlette.testclient import TestClient

from gpunet.api.models import HardwareClaimModel
from gpunet.node.capacity import CapacityProver, ProvenChallenge
from gpunet.node.check_server import (
    KEEP_S,
    ChallengeLimits,
    CheckService,
    OpenIn,
    check_app,
    limits_for_claim,
)
from gpunet.node.misbehave import HONEST, Misbehaviour
from gpunet.protocol.challenge import (
    CPU_POLICY,
    CapacityFinding,
    ChallengeSpec,
    DeadlinePolicy,
    Opening,
    commitment_message,
    judge_capacity,
    new_challenge,
    pick_tiles,
    policy_for,
)
from gpunet.protocol.liveness import ping_message

NODE_ID = "n-0123456789ab"
CLAIM_OPS = 5e9  # a 5 GFLOPS CPU node: small challenges, answered well in time
LIMITS = ChallengeLimits(CLAIM_OPS, (CPU_POLICY,))
OPERATOR: LocalAccount = Account.create()


# -- helpers --


def spec(challenge_id: str = "c-1", claim_ops: float = CLAIM_OPS) -> ChallengeSpec:
    return new_challenge(challenge_id, NODE_ID, claim_ops, secrets.token_bytes(32), 0.0, CPU_POLICY)


def body(challenge: ChallengeSpec, **changes: Any) -> dict[str, Any]:
    fields = {
        "challenge_id": challenge.challenge_id,
        "node_id": challenge.node_id,
        "seed": challenge.seed.hex(),
        "n": challenge.n,
        "k": challenge.k,
        "tile": challenge.tile,
        "opens": challenge.opens,
        "deadline_s": challenge.deadline_s,
    }
    return fields | changes


def recover(text: str, signature: str) -> str:
    address: str = Account.recover_message(encode_defunct(text=text), signature=signature)
    return address


def openings(answer: dict[str, Any]) -> list[Opening]:
    return [
        Opening(o["index"], base64.b64decode(o["data"]), tuple(map(bytes.fromhex, o["proof"])))
        for o in answer["openings"]
    ]


Round = tuple[dict[str, Any], CapacityFinding]


def capacity_round(client: TestClient, challenge: ChallengeSpec) -> Round:
    """What a checker does: send, time the commitment, pick tiles, open, judge."""
    started = time.monotonic()
    commitment = client.post("/v1/check/capacity", json=body(challenge))
    elapsed = time.monotonic() - started
    assert commitment.status_code == 200, commitment.text
    root = bytes.fromhex(commitment.json()["root"])
    tiles = pick_tiles(challenge, root, secrets.token_bytes(32))
    opened = client.post(f"/v1/check/capacity/{challenge.challenge_id}/open", json={"tiles": tiles})
    assert opened.status_code == 200, opened.text
    finding = judge_capacity(challenge, root, elapsed, tiles, openings(opened.json()))
    return commitment.json(), finding


def service(lies: Misbehaviour = HONEST, **options: Any) -> CheckService:
    return CheckService(NODE_ID, OPERATOR, LIMITS, misbehaviour=lies, **options)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(check_app(service())) as test_client:
        yield test_client


def lying_client(lies: Misbehaviour) -> TestClient:
    return TestClient(check_app(service(lies)))


class BlockingProver:
    """A prover that waits for ``release`` before proving, so a challenge stays in flight."""

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        self._real = CapacityProver("numpy")

    def prove(self, challenge: ChallengeSpec) -> ProvenChallenge:
        self.started.set()
        assert self.release.wait(10)
        return self._real.prove(challenge)

    def open(self, proven: ProvenChallenge, indices: Sequence[int]) -> list[Opening]:
        return self._real.open(proven, indices)


# -- ping --


def test_ping_is_signed_by_the_operator(client: TestClient) -> None:
    nonce = secrets.token_hex(16)

    answer = client.get("/v1/check/ping", params={"nonce": nonce})

    assert answer.status_code == 200
    ping = answer.json()
    assert (ping["node_id"], ping["nonce"], ping["busy"]) == (NODE_ID, nonce, False)
    assert recover(ping_message(NODE_ID, nonce), ping["signature"]) == OPERATOR.address


@pytest.mark.parametrize("query", ["", "?nonce=xyz", "?nonce=abcd"])
def test_ping_without_a_hex_nonce_is_422_naming_it(client: TestClient, query: str) -> None:
    answer = client.get(f"/v1/check/ping{query}")

    assert answer.status_code == 422
    assert answer.json()["field"] == "nonce"


def test_a_node_running_a_job_answers_busy() -> None:
    with TestClient(check_app(service(running_job=lambda: True))) as test_client:
        ping = test_client.get("/v1/check/ping", params={"nonce": "ab" * 16}).json()

    assert ping["busy"] is True


# -- capacity, honest --


def test_honest_capacity_answer_passes_the_judge(client: TestClient) -> None:
    challenge = spec()

    commitment, finding = capacity_round(client, challenge)

    assert finding.passed, finding.reason
    root = bytes.fromhex(commitment["root"])
    message = commitment_message(challenge.challenge_id, NODE_ID, root)
    assert recover(message, commitment["signature"]) == OPERATOR.address
    assert (commitment["challenge_id"], commitment["node_id"]) == (challenge.challenge_id, NODE_ID)


def test_a_challenge_opens_once(client: TestClient) -> None:
    challenge = spec()
    capacity_round(client, challenge)

    again = client.post(f"/v1/check/capacity/{challenge.challenge_id}/open", json={"tiles": [0]})

    assert again.status_code == 404
    assert "already opened" in again.json()["message"]


def test_at_most_two_proven_challenges_are_kept(client: TestClient) -> None:
    for number in (1, 2, 3):
        assert client.post("/v1/check/capacity", json=body(spec(f"c-{number}"))).status_code == 200

    oldest = client.post("/v1/check/capacity/c-1/open", json={"tiles": [0]})
    newest = client.post("/v1/check/capacity/c-3/open", json={"tiles": [0]})

    assert (oldest.status_code, newest.status_code) == (404, 200)


def test_proven_challenges_expire() -> None:
    now = [1000.0]
    with TestClient(check_app(service(clock=lambda: now[0]))) as test_client:
        assert test_client.post("/v1/check/capacity", json=body(spec())).status_code == 200
        now[0] += KEEP_S + 1

        late = test_client.post("/v1/check/capacity/c-1/open", json={"tiles": [0]})

    assert late.status_code == 404


def test_pings_answer_while_a_challenge_is_proven_and_a_second_is_429() -> None:
    prover = BlockingProver()
    app = check_app(service(prover=prover))
    with TestClient(app) as test_client:
        results: list[httpx.Response] = []
        first = threading.Thread(
            target=lambda: results.append(
                test_client.post("/v1/check/capacity", json=body(spec("c-1")))
            )
        )
        first.start()
        assert prover.started.wait(10)

        ping = test_client.get("/v1/check/ping", params={"nonce": "cd" * 16})
        second = test_client.post("/v1/check/capacity", json=body(spec("c-2")))
        prover.release.set()
        first.join(10)

    assert ping.status_code == 200 and ping.json()["busy"] is True
    assert second.status_code == 429 and second.json()["error"] == "busy"
    assert [r.status_code for r in results] == [200]


# -- capacity, refused --


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "body"),
        (b"[]", "body"),
        (b'{"challenge_id": "c-1"}', "node_id"),
    ],
)
def test_bad_json_is_422_naming_the_field(client: TestClient, raw: bytes, field: str) -> None:
    answer = client.post("/v1/check/capacity", content=raw)

    assert answer.status_code == 422
    assert answer.json()["field"] == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"seed": "zz" * 32}, "seed"),
        ({"n": "256"}, "n"),
        ({"tile": 24}, "tile"),
        ({"node_id": "n-someone-else"}, "node_id"),
        ({"extra": 1}, "extra"),
        ({"deadline_s": -1.0}, "deadline_s"),
    ],
)
def test_bad_fields_are_422_naming_them(
    client: TestClient, changes: dict[str, Any], field: str
) -> None:
    answer = client.post("/v1/check/capacity", json=body(spec(), **changes))

    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field


def test_a_challenge_beyond_the_claim_is_413_naming_the_field(client: TestClient) -> None:
    big_k = client.post("/v1/check/capacity", json=body(spec(), k=65_536))
    big_n = client.post("/v1/check/capacity", json=body(spec(), n=2048, tile=32))

    assert (big_k.status_code, big_k.json()["field"]) == (413, "k")
    assert (big_n.status_code, big_n.json()["field"]) == (413, "n")
    assert "GFLOPS" in big_k.json()["message"]


def test_opening_too_many_or_unknown_tiles_is_refused(client: TestClient) -> None:
    challenge = spec()
    assert client.post("/v1/check/capacity", json=body(challenge)).status_code == 200
    url = f"/v1/check/capacity/{challenge.challenge_id}/open"

    too_many = client.post(url, json={"tiles": list(range(challenge.opens + 1))})
    out_of_range = client.post(url, json={"tiles": [challenge.tile_count]})
    not_ints = client.post(url, json={"tiles": ["a"]})

    assert (too_many.status_code, too_many.json()["field"]) == (413, "tiles")
    assert (out_of_range.status_code, out_of_range.json()["field"]) == (422, "tiles[0]")
    assert (not_ints.status_code, not_ints.json()["field"]) == (422, "tiles.0")


def test_limits_follow_the_registered_claim() -> None:
    cpu = HardwareClaimModel(
        gpu_model="CPU", gpu_count=0, vram_mib=0, cpu_cores=8, memory_mib=8192,
        disk_gib=10, benchmark_gflops=20.0,
    )  # fmt: skip
    h100 = cpu.model_copy(update={"gpu_model": "H100", "gpu_count": 1, "vram_mib": 81559})

    assert limits_for_claim(cpu) == ChallengeLimits(20e9, (CPU_POLICY,))
    gpu_limits = limits_for_claim(h100)
    assert gpu_limits.claimed_ops_per_s == 2 * 989e12
    assert gpu_limits.policies == (policy_for("H100"), CPU_POLICY)


@pytest.mark.parametrize(
    ("claim_ops", "policy"),
    [(5e9, CPU_POLICY), (2 * 989e12, policy_for("H100")), (8 * 989e12, policy_for("H100"))],
)
def test_challenges_sized_as_checkers_size_them_are_accepted(
    claim_ops: float, policy: DeadlinePolicy
) -> None:
    limits = ChallengeLimits(claim_ops, (policy, CPU_POLICY))
    challenge = new_challenge("c-1", NODE_ID, claim_ops, secrets.token_bytes(32), 0.05, policy)

    assert limits.oversize_field(challenge) is None


# -- lying modes --


def test_random_outputs_fail_on_the_opened_tiles() -> None:
    with lying_client(Misbehaviour(random_outputs=True)) as test_client:
        _, finding = capacity_round(test_client, spec())

    assert not finding.passed
    assert "differs from the recomputed product" in finding.reason


def test_replay_reuses_the_first_root_and_fails() -> None:
    with lying_client(Misbehaviour(replay=True)) as test_client:
        first, first_finding = capacity_round(test_client, spec("c-1"))
        second, second_finding = capacity_round(test_client, spec("c-2"))

    assert first_finding.passed  # the first answer is an honest one
    assert second["root"] == first["root"]
    assert not second_finding.passed


def test_impersonate_signs_with_another_key() -> None:
    nonce = "ef" * 16
    challenge = spec()
    with lying_client(Misbehaviour(impersonate=True)) as test_client:
        ping = test_client.get("/v1/check/ping", params={"nonce": nonce}).json()
        commitment, _ = capacity_round(test_client, challenge)

    assert recover(ping_message(NODE_ID, nonce), ping["signature"]) != OPERATOR.address
    root = bytes.fromhex(commitment["root"])
    message = commitment_message(challenge.challenge_id, NODE_ID, root)
    assert recover(message, commitment["signature"]) != OPERATOR.address


def test_claim_faster_computes_at_its_real_speed_and_misses_the_claimed_deadline() -> None:
    """The node answers correctly, but a challenge sized for 4x its speed takes too long.

    Proving is timed on a fake clock that runs at the node's real rate, so the test
    does not depend on this machine's speed.
    """
    real_ops = 5e9
    clock = FakeClock()
    prover = TimedProver(clock, real_ops)
    lying = service(Misbehaviour(claim_faster=True), prover=prover)
    honest_claim, lying_claim = spec("c-h", real_ops), spec("c-l", 4 * real_ops)

    assert judge_on(lying, honest_claim, clock).passed
    late = judge_on(lying, lying_claim, clock)

    assert not late.passed and "deadline" in late.reason


def test_offline_idle_is_silent_unless_a_job_runs() -> None:
    running = [False]
    app = check_app(service(Misbehaviour(offline_idle=True), running_job=lambda: running[0]))

    async def ping() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            answer = await asyncio.wait_for(client.get("/v1/check/ping?nonce=" + "ab" * 16), 0.5)
            return answer.status_code

    with pytest.raises(TimeoutError):
        asyncio.run(ping())
    running[0] = True
    assert asyncio.run(ping()) == 200


# -- fakes for claim-faster --


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TimedProver:
    """An honest prover whose work advances ``clock`` at ``ops_per_s``."""

    def __init__(self, clock: FakeClock, ops_per_s: float) -> None:
        self._clock, self._rate, self._real = clock, ops_per_s, CapacityProver("numpy")

    def prove(self, challenge: ChallengeSpec) -> ProvenChallenge:
        self._clock.now += 2 * challenge.n**2 * challenge.k / self._rate
        return self._real.prove(challenge)

    def open(self, proven: ProvenChallenge, indices: Sequence[int]) -> list[Opening]:
        return self._real.open(proven, indices)


def judge_on(node: CheckService, challenge: ChallengeSpec, clock: FakeClock) -> CapacityFinding:
    started = clock()
    commitment = node.commit(challenge)
    elapsed = clock() - started
    root = bytes.fromhex(commitment.root)
    tiles = pick_tiles(challenge, root, secrets.token_bytes(32))
    answer = node.open(challenge.challenge_id, OpenIn(tiles=list(tiles)))
    return judge_capacity(challenge, root, elapsed, tiles, openings(answer.model_dump()))
