"""Which checkers check which node this epoch.

Panels are drawn at random from entropy the indexer draws fresh for each epoch, so no
operator can choose its checkers or know them in advance: the draw depends only on that
entropy and on the sets of node ids and checker addresses, never on anything a node
controls beyond its id. Within one draw the load is balanced: each checker gets about
``panel * len(nodes) / len(checkers)`` nodes, the greedy pick below always taking the
least-loaded eligible checkers and breaking ties at random. A checker never sits on the
panel of a node run by its own operator (conflict of interest). When fewer eligible
checkers exist than seats, the node gets all of them; ``vote.tally`` still asks for a
majority of the full panel size, so such a check can only pass or fail unanimously.

The same entropy and the same sets give the same panels, whatever the input order, so
anyone holding the epoch's published entropy can recompute the draw.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from gpunet.errors import ValidationError

DRAW_DOMAIN = b"gpunet-panels-v1"
MIN_ENTROPY_BYTES = 16


def assign_panels(
    nodes: Sequence[tuple[str, str]],
    checkers: Sequence[tuple[str, str]],
    entropy: bytes,
    panel: int,
) -> dict[str, tuple[str, ...]]:
    """Draw a panel of up to ``panel`` checkers for every node.

    ``nodes`` are (node_id, operator address); ``checkers`` are (checker address,
    operator address or ""). Addresses compare case-insensitively. Returns node_id ->
    the panel's checker addresses, sorted.
    """
    _check_draw(nodes, checkers, entropy, panel)
    rng = random.Random(int.from_bytes(hashlib.sha256(DRAW_DOMAIN + entropy).digest(), "big"))
    node_order = sorted(nodes)
    rng.shuffle(node_order)
    pool = sorted(checkers)
    load = dict.fromkeys((address for address, _ in pool), 0)
    panels: dict[str, tuple[str, ...]] = {}
    for node_id, operator in node_order:
        eligible = [address for address, own in pool if _may_check(address, own, operator)]
        # One random key per candidate: among equally loaded checkers, any is as likely.
        ranked = sorted(eligible, key=lambda address: (load[address], rng.random()))
        chosen = ranked[:panel]
        for address in chosen:
            load[address] += 1
        panels[node_id] = tuple(sorted(chosen))
    return panels


def _may_check(checker: str, checker_operator: str, node_operator: str) -> bool:
    """False when the checker is, or is run by, the node's operator."""
    node_op = node_operator.lower()
    if not node_op:
        return True
    return node_op not in (checker.lower(), checker_operator.lower())


def _check_draw(
    nodes: Sequence[tuple[str, str]],
    checkers: Sequence[tuple[str, str]],
    entropy: bytes,
    panel: int,
) -> None:
    if isinstance(panel, bool) or not isinstance(panel, int) or panel < 1:
        raise ValidationError("panel", panel, "must be a whole number of seats, 1 or more")
    if not isinstance(entropy, bytes) or len(entropy) < MIN_ENTROPY_BYTES:
        raise ValidationError(
            "entropy",
            entropy,
            f"pass at least {MIN_ENTROPY_BYTES} fresh random bytes, like secrets.token_bytes(32)",
        )
    _refuse_repeats("nodes", [node_id for node_id, _ in nodes])
    _refuse_repeats("checkers", [address.lower() for address, _ in checkers])


def _refuse_repeats(name: str, keys: list[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValidationError(name, key, "is listed twice; list each once")
        seen.add(key)
