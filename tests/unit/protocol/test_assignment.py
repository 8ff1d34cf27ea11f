from __future__ import annotations

import hashlib
import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpunet.errors import ValidationError
from gpunet.protocol.assignment import assign_panels

ENTROPY = bytes(range(32))


def entropy(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(4, "big")).digest()


def fleet(nodes: int, checkers: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Nodes each run by its own operator; checkers with no operator."""
    return (
        [(f"n-{i:03d}", f"0xop{i:03d}") for i in range(nodes)],
        [(f"0xc{i:03d}", "") for i in range(checkers)],
    )


def test_load_is_balanced_and_every_node_gets_a_full_panel() -> None:
    nodes, checkers = fleet(100, 10)
    panels = assign_panels(nodes, checkers, ENTROPY, 3)
    assert set(panels) == {node_id for node_id, _ in nodes}
    assert all(len(p) == 3 and len(set(p)) == 3 for p in panels.values())
    load = Counter(c for p in panels.values() for c in p)
    assert set(load.values()) == {30}


def test_load_differs_by_at_most_one_when_it_does_not_divide() -> None:
    nodes, checkers = fleet(37, 7)
    load = Counter(c for p in assign_panels(nodes, checkers, ENTROPY, 3).values() for c in p)
    assert sum(load.values()) == 111
    assert max(load.values()) - min(load.values()) <= 1


def test_same_entropy_same_panels_whatever_the_input_order() -> None:
    nodes, checkers = fleet(50, 12)
    first = assign_panels(nodes, checkers, ENTROPY, 3)
    shuffled_nodes, shuffled_checkers = nodes[:], checkers[:]
    random.Random(1).shuffle(shuffled_nodes)
    random.Random(2).shuffle(shuffled_checkers)
    assert assign_panels(shuffled_nodes, shuffled_checkers, ENTROPY, 3) == first


def test_different_entropy_gives_different_panels() -> None:
    nodes, checkers = fleet(20, 9)
    draws = [assign_panels(nodes, checkers, entropy(i), 3) for i in range(20)]
    assert len({tuple(sorted(d.items())) for d in draws}) == 20


@given(
    operators=st.lists(st.sampled_from(["0xa", "0xb", "0xc", "0xd"]), min_size=1, max_size=15),
    checker_operators=st.lists(st.sampled_from(["", "0xa", "0xB", "0xc"]), max_size=8),
    panel=st.integers(1, 5),
    seed=st.binary(min_size=16, max_size=16),
)
def test_a_checker_never_checks_a_node_of_its_own_operator(
    operators: list[str], checker_operators: list[str], panel: int, seed: bytes
) -> None:
    nodes = [(f"n-{i}", op) for i, op in enumerate(operators)]
    checkers = [(f"0xc{i}", op) for i, op in enumerate(checker_operators)]
    panels = assign_panels(nodes, checkers, seed, panel)
    own = dict(checkers)
    for node_id, operator in nodes:
        eligible = [c for c, op in checkers if op.lower() != operator.lower()]
        assert len(panels[node_id]) == min(panel, len(eligible))
        assert all(own[c].lower() != operator.lower() for c in panels[node_id])


def test_a_checker_whose_address_is_the_node_operator_is_excluded() -> None:
    nodes = [("n-1", "0xAbC")]
    checkers = [("0xabc", ""), ("0xother1", ""), ("0xother2", "")]
    assert assign_panels(nodes, checkers, ENTROPY, 3) == {"n-1": ("0xother1", "0xother2")}


def test_fewer_eligible_checkers_give_a_smaller_panel() -> None:
    nodes, checkers = fleet(4, 2)
    assert all(len(p) == 2 for p in assign_panels(nodes, checkers, ENTROPY, 3).values())
    assert assign_panels(nodes, [], ENTROPY, 3) == {node_id: () for node_id, _ in nodes}


def test_a_node_cannot_steer_its_panel_with_its_operator() -> None:
    """The draw depends on nothing a node controls but its id (and the conflict rule)."""
    nodes, checkers = fleet(30, 8)
    before = assign_panels(nodes, checkers, ENTROPY, 3)
    nodes[5] = (nodes[5][0], "0xsomeone-else")
    assert assign_panels(nodes, checkers, ENTROPY, 3) == before


def test_every_checker_is_equally_likely_on_a_given_node() -> None:
    """Over many epochs' fresh entropy no checker is favoured for a node, so the node
    cannot predict its panel better than chance."""
    nodes, checkers = fleet(10, 6)
    epochs = 3000
    seen = Counter(
        c for i in range(epochs) for c in assign_panels(nodes, checkers, entropy(i), 3)["n-004"]
    )
    expected = epochs * 3 / 6
    # Each count is binomial(3000, 1/2): sd ~27; 5 sd leaves no room for flakiness.
    assert all(abs(seen[c] - expected) < 140 for c, _ in checkers)


@pytest.mark.parametrize(
    ("panel", "seed", "field"),
    [(0, ENTROPY, "panel"), (True, ENTROPY, "panel"), (3, b"short", "entropy")],
)
def test_bad_draw_arguments_are_refused(panel: int, seed: bytes, field: str) -> None:
    nodes, checkers = fleet(2, 3)
    with pytest.raises(ValidationError) as caught:
        assign_panels(nodes, checkers, seed, panel)
    assert caught.value.field == field


def test_repeated_nodes_or_checkers_are_refused() -> None:
    with pytest.raises(ValidationError, match="twice"):
        assign_panels([("n-1", "0xa"), ("n-1", "0xb")], [], ENTROPY, 3)
    with pytest.raises(ValidationError, match="twice"):
        assign_panels([("n-1", "0xa")], [("0xC1", ""), ("0xc1", "")], ENTROPY, 3)
