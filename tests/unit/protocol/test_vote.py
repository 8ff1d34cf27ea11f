from __future__ import annotations

import hashlib
import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpunet.errors import ValidationError
from gpunet.protocol.vote import (
    DAY_S,
    CheckerStanding,
    Verdict,
    checker_standing,
    evidence_digest,
    panel_size,
    result_message,
    tally,
)

PASS, FAIL, INCONCLUSIVE = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE
WEEK_S = 7 * DAY_S
MONTH_S = 30 * DAY_S
DIGEST = "ab" * 32


def test_panel_size_is_two_n_plus_one() -> None:
    assert [panel_size(n) for n in (0, 1, 2, 5)] == [1, 3, 5, 11]


@pytest.mark.parametrize("n", [-1, True, 1.0])
def test_panel_size_refuses_what_is_not_a_count(n: object) -> None:
    with pytest.raises(ValidationError):
        panel_size(n)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [3, 5])
def test_tally_over_every_split_of_the_panel(size: int) -> None:
    panel = [f"c{i}" for i in range(size)]
    for cast in itertools.product((PASS, FAIL, None), repeat=size):
        votes = {c: v for c, v in zip(panel, cast, strict=True) if v is not None}
        passes = [c for c in panel if votes.get(c) is PASS]
        fails = [c for c in panel if votes.get(c) is FAIL]
        result = tally(panel, votes)
        if len(passes) > size // 2:
            assert (result.verdict, result.majority, result.dissenters) == (
                PASS,
                tuple(passes),
                tuple(fails),
            )
        elif len(fails) > size // 2:
            assert (result.verdict, result.majority, result.dissenters) == (
                FAIL,
                tuple(fails),
                tuple(passes),
            )
        else:
            assert (result.verdict, result.majority, result.dissenters) == (INCONCLUSIVE, (), ())
        assert (result.votes_for, result.votes_against) == (len(passes), len(fails))
        assert result.missing == tuple(c for c in panel if c not in votes)


@given(
    n=st.integers(1, 4),
    truth=st.sampled_from([PASS, FAIL]),
    data=st.data(),
)
def test_up_to_n_colluders_cannot_change_the_verdict(
    n: int, truth: Verdict, data: st.DataObject
) -> None:
    panel = [f"c{i}" for i in range(panel_size(n))]
    colluders = data.draw(st.sets(st.sampled_from(panel), max_size=n))
    lie = FAIL if truth is PASS else PASS
    honest = {c: truth for c in panel if c not in colluders}
    result = tally(panel, {**honest, **dict.fromkeys(colluders, lie)})
    assert result.verdict is truth
    assert set(result.dissenters) == colluders
    # Honest checkers that fail to report can make the check inconclusive, never a lie.
    absent = data.draw(st.sets(st.sampled_from(sorted(honest))))
    votes = {c: v for c, v in honest.items() if c not in absent}
    assert tally(panel, {**votes, **dict.fromkeys(colluders, lie)}).verdict is not lie


def test_a_vote_from_outside_the_panel_is_refused() -> None:
    with pytest.raises(ValidationError, match="not on this check's panel"):
        tally(["a", "b", "c"], {"a": PASS, "mallory": FAIL})


def test_an_inconclusive_vote_is_refused() -> None:
    with pytest.raises(ValidationError, match="pass or fail"):
        tally(["a", "b", "c"], {"a": INCONCLUSIVE})


def test_a_panel_naming_a_checker_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match="twice"):
        tally(["a", "a", "b"], {})


def test_votes_given_as_text_count() -> None:
    result = tally(["a", "b", "c"], {"a": "pass", "b": "pass"})  # type: ignore[dict-item]
    assert result.verdict is PASS


def test_a_short_panel_needs_a_majority_of_the_full_seats() -> None:
    assert tally(["a", "b"], {"a": PASS, "b": PASS}, seats=3).verdict is PASS
    assert tally(["a", "b"], {"a": PASS, "b": FAIL}, seats=3).verdict is INCONCLUSIVE
    assert tally(["a"], {"a": FAIL}, seats=3).verdict is INCONCLUSIVE
    assert tally([], {}, seats=3).verdict is INCONCLUSIVE


def test_seats_below_the_panel_are_refused() -> None:
    with pytest.raises(ValidationError, match="smaller than"):
        tally(["a", "b", "c"], {}, seats=1)


def test_result_message_is_one_field_a_line() -> None:
    text = result_message("chk-12", "n-3fa2c1", "capacity", "fail", DIGEST)
    assert text == f"gpunet-check-result-v1\nchk-12\nn-3fa2c1\ncapacity\nfail\n{DIGEST}"


@pytest.mark.parametrize(
    ("check_id", "verdict", "digest"),
    [
        ("chk\n12", "pass", DIGEST),
        ("", "pass", DIGEST),
        ("chk-12", "inconclusive", DIGEST),
        ("chk-12", "pass", "AB" * 32),
        ("chk-12", "pass", "ab" * 31),
    ],
)
def test_result_message_refuses_fields_that_could_be_confused(
    check_id: str, verdict: str, digest: str
) -> None:
    with pytest.raises(ValidationError):
        result_message(check_id, "n-1", "liveness", verdict, digest)


def test_evidence_digest_is_sha256_of_canonical_json() -> None:
    expected = hashlib.sha256(b'{"a":1,"b":[2.5,"x"]}').hexdigest()
    assert evidence_digest({"b": [2.5, "x"], "a": 1}) == expected


@given(
    st.dictionaries(
        st.text(max_size=8),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=8),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner),
            max_leaves=8,
        ),
        max_size=5,
    )
)
def test_evidence_digest_survives_the_wire(evidence: dict[str, object]) -> None:
    assert evidence_digest(json.loads(json.dumps(evidence))) == evidence_digest(evidence)


@pytest.mark.parametrize(
    "evidence", [{"x": float("nan")}, {"x": float("inf")}, {"x": object()}, {1: "a", "b": 2}]
)
def test_evidence_digest_refuses_what_is_not_plain_json(evidence: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        evidence_digest(evidence)


def test_one_dissent_bars_nothing() -> None:
    assert checker_standing([100.0], 200.0) == CheckerStanding(None, 1)


def test_two_dissents_in_a_week_bar_rewards_for_a_month_from_the_second() -> None:
    standing = checker_standing([0.0, WEEK_S - 1], WEEK_S - 1)
    assert standing == CheckerStanding(WEEK_S - 1 + MONTH_S, 2)


def test_two_dissents_exactly_a_week_apart_bar_nothing() -> None:
    assert checker_standing([0.0, WEEK_S], WEEK_S).banned_until is None


def test_the_bar_ends_exactly_a_month_after_the_second_dissent() -> None:
    times = [0.0, 10.0]
    assert checker_standing(times, 10.0 + MONTH_S - 1).banned_until == 10.0 + MONTH_S
    assert checker_standing(times, 10.0 + MONTH_S).banned_until is None


def test_a_later_pair_extends_the_bar() -> None:
    times = [0.0, 10.0, 20 * DAY_S, 20 * DAY_S + 5]
    assert checker_standing(times, 21 * DAY_S).banned_until == 20 * DAY_S + 5 + MONTH_S


def test_dissents_after_now_are_ignored() -> None:
    assert checker_standing([0.0, 50.0], 40.0) == CheckerStanding(None, 1)


def test_the_dissent_window_is_half_open() -> None:
    now = 10 * WEEK_S
    assert checker_standing([now - WEEK_S], now).dissents_in_window == 0
    assert checker_standing([now - WEEK_S + 1], now).dissents_in_window == 1
    assert checker_standing([now], now).dissents_in_window == 1


def test_standing_thresholds_are_configurable() -> None:
    assert checker_standing([0.0, 1.0], 2.0, threshold=3).banned_until is None
    assert checker_standing([0.0, 1.0, 2.0], 2.0, threshold=3, ban_s=100).banned_until == 102.0


@pytest.mark.parametrize(
    "kwargs", [{"window_s": 0}, {"threshold": 0}, {"ban_s": -1}, {"window_s": float("inf")}]
)
def test_standing_refuses_nonsense_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        checker_standing([], 0.0, **kwargs)  # type: ignore[arg-type]


def test_standing_refuses_times_that_are_not_finite() -> None:
    with pytest.raises(ValidationError):
        checker_standing([float("-inf")], 0.0)
