"""Ways a node can lie, switched on with ``gpunet node start --misbehave MODE``.

These modes exist only to demonstrate and test the checkers: each one is a cheat a
dishonest operator might try, and the checks of issue 4 must catch every one of them.
An honest node never sets any (the default, ``HONEST``). The modes::

    claim-faster      register a claim 4x the machine's (GPU count and benchmark x4,
                      CPU nodes: benchmark x4) and compute at the real speed
    random-outputs    commit to and open random tiles for capacity challenges; replace
                      every job output with random bytes of the same size
    replay            answer every capacity challenge with the first commitment made
    impersonate       sign pings and commitments with a fresh key, not the operator's
    offline-idle      leave the check endpoint silent while the node runs no job
    skip-jobs=F       for a fraction F (0 < F <= 1) of jobs, do not run the command:
                      write random bytes to each declared output and report success

Modes combine (``--misbehave replay --misbehave skip-jobs=0.5``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from gpunet.errors import ConfigError
from gpunet.node import workdir
from gpunet.node.runtime.base import Outcome, RunResult

if TYPE_CHECKING:
    from gpunet.node.capacity import ProvenChallenge
    from gpunet.protocol.challenge import ChallengeSpec

log = logging.getLogger("gpunet.node")

CLAIM_FACTOR = 4
SKIPPED_RUN_S = 1.0  # the run time a skipping node reports
RANDOM_OUTPUT_BYTES = (64, 4096)  # size range of an output a skipping node makes up
_GLOB_CHARS = frozenset("*?[")


class Mode(StrEnum):
    """One way of lying; the value is how ``--misbehave`` spells it."""

    CLAIM_FASTER = "claim-faster"
    RANDOM_OUTPUTS = "random-outputs"
    REPLAY = "replay"
    IMPERSONATE = "impersonate"
    OFFLINE_IDLE = "offline-idle"
    SKIP_JOBS = "skip-jobs"


@dataclass(frozen=True)
class Misbehaviour:
    """The lies one node tells; the default tells none."""

    claim_faster: bool = False
    random_outputs: bool = False
    replay: bool = False
    impersonate: bool = False
    offline_idle: bool = False
    skip_fraction: float = 0.0

    @property
    def honest(self) -> bool:
        return self == HONEST

    def describe(self) -> str:
        """The modes as ``--misbehave`` spells them, comma-separated ("" when honest)."""
        names = [mode.value for mode in Mode if mode is not Mode.SKIP_JOBS and self._has(mode)]
        if self.skip_fraction > 0:
            names.append(f"{Mode.SKIP_JOBS.value}={self.skip_fraction:g}")
        return ", ".join(names)

    def skips_job(self, rng: random.Random) -> bool:
        """Whether to skip the next job: true for a fraction ``skip_fraction`` of draws."""
        return self.skip_fraction > 0 and rng.random() < self.skip_fraction

    def tamper_output(self, data: bytes, rng: random.Random) -> bytes:
        """A job output as this node uploads it: random bytes of the same size, or as is."""
        return rng.randbytes(len(data)) if self.random_outputs else data

    def _has(self, mode: Mode) -> bool:
        return bool(getattr(self, _field(mode)))


HONEST = Misbehaviour()


def parse_misbehaviour(values: Iterable[str]) -> Misbehaviour:
    """The ``--misbehave`` values as one ``Misbehaviour``; ConfigError names a bad one."""
    lies = HONEST
    for value in values:
        name, _, argument = value.strip().partition("=")
        mode = _mode(name, value)
        if mode is Mode.SKIP_JOBS:
            lies = replace(lies, skip_fraction=_skip_fraction(argument, value))
        elif argument:
            raise ConfigError(f"--misbehave {value!r}: {mode.value} takes no '=' value")
        else:
            lies = replace(lies, **{_field(mode): True})
    return lies


def random_commitment(spec: ChallengeSpec) -> ProvenChallenge:
    """random-outputs: a consistent commitment to a random product, made at no cost."""
    import numpy as np

    from gpunet.node.capacity import ProvenChallenge
    from gpunet.protocol.challenge import tile_leaves
    from gpunet.protocol.merkle import MerkleTree

    bound = 4 * spec.k  # the range an honest product's entries fall in
    product = np.random.default_rng().integers(-bound, bound, (spec.n, spec.n), dtype=np.int32)
    tree = MerkleTree(tile_leaves(spec, product))
    return ProvenChallenge(root=tree.root, tree=tree, product=product)


def skipped_run(work_dir: Path, patterns: Iterable[str], rng: random.Random) -> RunResult:
    """A job "run" without running it: made-up outputs and a clean exit (skip-jobs).

    The result says nothing of the skip, as a cheater's would not; the node's own log does.
    """
    written = skipped_outputs(work_dir, patterns, rng)
    log.warning("job skipped on purpose (--misbehave skip-jobs), %d made-up outputs", len(written))
    return RunResult(
        outcome=Outcome.SUCCEEDED,
        exit_code=0,
        signal=None,
        wall_time_s=SKIPPED_RUN_S,
        cpu_time_s=0.0,
        max_rss_mib=0.0,
        message="",
    )


def skipped_outputs(work_dir: Path, patterns: Iterable[str], rng: random.Random) -> list[str]:
    """Write random bytes at each output a job declares by name; return the paths written.

    Glob patterns (``out/*.csv``) name no file, so a skipping node cannot guess one and
    writes nothing for them.
    """
    written: list[str] = []
    for pattern in patterns:
        if _GLOB_CHARS & set(pattern):
            continue
        target = work_dir.joinpath(*workdir.relative_parts(pattern))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(rng.randbytes(rng.randint(*RANDOM_OUTPUT_BYTES)))
        written.append(pattern)
    return written


def _field(mode: Mode) -> str:
    return mode.value.replace("-", "_")


def _mode(name: str, value: str) -> Mode:
    try:
        return Mode(name.strip().lower())
    except ValueError:
        known = ", ".join(
            f"{mode.value}=F" if mode is Mode.SKIP_JOBS else mode.value for mode in Mode
        )
        raise ConfigError(
            f"--misbehave {value!r} is not a known mode; known modes: {known} "
            "(for demos and tests of the checkers only)"
        ) from None


def _skip_fraction(argument: str, value: str) -> float:
    try:
        fraction = float(argument)
    except ValueError:
        fraction = float("nan")
    if not 0 < fraction <= 1:  # also refuses nan
        raise ConfigError(
            f"--misbehave {value!r}: skip-jobs needs a fraction of jobs to skip, "
            "above 0 and at most 1, like skip-jobs=0.5"
        )
    return fraction
