from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from gpunet.errors import ValidationError
from gpunet.protocol.liveness import (
    DEFAULT_PROBE_POLICY,
    LivenessFinding,
    ProbePolicy,
    false_fail_probability,
    liveness_finding,
    ping_message,
    probe_verdict,
)
from gpunet.protocol.vote import Verdict, tally

PASS, FAIL, INCONCLUSIVE = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE
CHECKS = 10_000
PANEL = ("c0", "c1", "c2")
LOSS = 0.05  # per packet, each way


def test_default_policy_is_three_attempts_of_five_seconds_two_apart() -> None:
    assert ProbePolicy(attempts=3, timeout_s=5.0, spacing_s=2.0) == DEFAULT_PROBE_POLICY
    assert DEFAULT_PROBE_POLICY.duration_s == 19.0


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"attempts": 2.5}, {"timeout_s": 0}, {"spacing_s": -1}, {"timeout_s": 1e9}],
)
def test_policy_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        ProbePolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rtts", "verdict"),
    [
        ([0.05, None, None], PASS),
        ([None, None, 4.99], PASS),
        ([None, None, None], FAIL),
        ([5.01, 7.0, None], FAIL),
        ([None, None, None, None], FAIL),
        ([None, None], INCONCLUSIVE),
        ([], INCONCLUSIVE),
        ([0.2], PASS),
    ],
)
def test_probe_verdict(rtts: list[float | None], verdict: Verdict) -> None:
    assert probe_verdict(rtts) is verdict


def test_probe_verdict_refuses_negative_times() -> None:
    with pytest.raises(ValidationError, match=r"rtts\[1\]"):
        probe_verdict([None, -0.1, None])


@pytest.mark.parametrize(
    ("verdict", "lease", "finding"),
    [
        (PASS, False, LivenessFinding.ONLINE),
        (PASS, True, LivenessFinding.ONLINE),
        (FAIL, False, LivenessFinding.OFFLINE_IDLE),
        (FAIL, True, LivenessFinding.OFFLINE_DURING_LEASE),
        (INCONCLUSIVE, True, None),
        (INCONCLUSIVE, False, None),
    ],
)
def test_liveness_finding_tells_idle_from_leased_downtime(
    verdict: Verdict, lease: bool, finding: LivenessFinding | None
) -> None:
    assert liveness_finding(verdict, lease) == finding


def test_ping_message() -> None:
    assert ping_message("n-3fa2c1", "00ff" * 8) == "gpunet-check-ping-v1\nn-3fa2c1\n" + "00ff" * 8


@pytest.mark.parametrize(
    ("node_id", "nonce"), [("n-1\nx", "00" * 8), ("n-1", "zz" * 8), ("n-1", "0a")]
)
def test_ping_message_refuses_bad_fields(node_id: str, nonce: str) -> None:
    with pytest.raises(ValidationError):
        ping_message(node_id, nonce)


def test_false_fail_probability_of_a_three_checker_panel() -> None:
    p = 0.1**3
    assert false_fail_probability(0.1) == pytest.approx(3 * p**2 * (1 - p) + p**3)
    assert false_fail_probability(0.0) == 0.0
    assert false_fail_probability(1.0) == 1.0
    assert false_fail_probability(0.1, panel=5) < false_fail_probability(0.1, panel=3)


def jittery_rtts(rng: np.random.Generator, shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
    """Round-trip times over a bad network; NaN where the request or the answer was lost.

    Each way: a lognormal delay (median 40 ms, a long right tail), plus for 2% of
    packets a Pareto spike of 0.5 s x Lomax(1.5) (a stalled route or buffer), and 5% loss.
    """
    ways = (*shape, 2)
    delay = rng.lognormal(np.log(0.04), 0.8, ways)
    delay += (rng.random(ways) < 0.02) * 0.5 * rng.pareto(1.5, ways)
    rtt: npt.NDArray[np.float64] = delay.sum(axis=-1)
    rtt[(rng.random(ways) < LOSS).any(axis=-1)] = np.nan
    return rtt


def panel_verdicts(rtts: npt.NDArray[np.float64]) -> list[Verdict]:
    """Each check's panel verdict from (checks, checkers, attempts) round-trip times."""
    verdicts = []
    for check in rtts:
        votes = {
            checker: probe_verdict([None if np.isnan(t) else float(t) for t in attempts])
            for checker, attempts in zip(PANEL, check, strict=True)
        }
        verdicts.append(tally(PANEL, votes).verdict)
    return verdicts


def test_jitter_never_fails_an_honest_node() -> None:
    rng = np.random.default_rng(20_251_125)
    rtts = jittery_rtts(rng, (CHECKS, len(PANEL), DEFAULT_PROBE_POLICY.attempts))
    verdicts = panel_verdicts(rtts)
    assert verdicts.count(FAIL) == 0
    # The network really is bad: about 1 attempt in 10 fails, and some checkers do
    # report a false FAIL; only the panel majority keeps the verdict right.
    attempt_failure = float(np.mean(np.isnan(rtts) | (rtts > DEFAULT_PROBE_POLICY.timeout_s)))
    assert 0.09 < attempt_failure < 0.11
    checker_fails = np.all(np.isnan(rtts) | (rtts > DEFAULT_PROBE_POLICY.timeout_s), axis=-1)
    assert checker_fails.sum() > 0
    assert CHECKS * false_fail_probability(attempt_failure) < 0.1


def test_a_node_that_is_down_always_fails() -> None:
    rtts = np.full((CHECKS, len(PANEL), DEFAULT_PROBE_POLICY.attempts), np.nan)
    assert set(panel_verdicts(rtts)) == {FAIL}


def test_a_node_that_answers_only_after_the_timeout_fails() -> None:
    rng = np.random.default_rng(7)
    rtts = jittery_rtts(rng, (1000, len(PANEL), DEFAULT_PROBE_POLICY.attempts)) + 6.0
    assert set(panel_verdicts(rtts)) == {FAIL}
