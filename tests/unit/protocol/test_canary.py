from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpunet.errors import ValidationError
from gpunet.protocol.canary import (
    DEFAULT_CANARIES_PER_EPOCH,
    SUMMARIZE_SCRIPT,
    CanaryJob,
    canary_job,
    detection_probability,
    epochs_to_detect,
    summarize,
)
from gpunet.protocol.jobspec import parse_job_spec
from gpunet.protocol.jobspec_io import job_spec_from_dict

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "jobs" / "data-job"
SEEDS = [hashlib.sha256(bytes([i])).digest() for i in range(4)]
seeds = st.binary(min_size=16, max_size=64)


def run_canary(canary: CanaryJob, work: Path) -> dict[str, str]:
    """Run the canary's command with this Python in ``work``; sha256 of each output."""
    for path, data in canary.inputs.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_bytes(data)
    command = list(canary.spec_dict["command"])
    assert command[0] == "python"
    subprocess.run([sys.executable, *command[1:]], cwd=work, check=True, capture_output=True)
    return {
        path: hashlib.sha256((work / path).read_bytes()).hexdigest()
        for path in canary.spec_dict["outputs"]
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_running_the_canary_gives_the_expected_outputs(seed: bytes, tmp_path: Path) -> None:
    canary = canary_job(seed)
    assert run_canary(canary, tmp_path) == canary.expected_outputs


def test_the_in_process_summary_matches_the_script_on_the_example_data(tmp_path: Path) -> None:
    table = (EXAMPLE / "data" / "orders.csv").read_text(encoding="utf-8")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "orders.csv").write_text(table, encoding="utf-8")
    (tmp_path / "summarize.py").write_text(SUMMARIZE_SCRIPT, encoding="utf-8")
    subprocess.run([sys.executable, "summarize.py"], cwd=tmp_path, check=True, capture_output=True)
    for path, data in summarize(table, "data/orders.csv").items():
        assert (tmp_path / path).read_bytes() == data


def test_the_canary_script_is_the_shipped_example() -> None:
    assert (EXAMPLE / "summarize.py").read_text(encoding="utf-8") == SUMMARIZE_SCRIPT


def test_a_canary_asks_for_what_the_example_asks_for() -> None:
    example = parse_job_spec((EXAMPLE / "job.yaml").read_text(encoding="utf-8"))
    spec = job_spec_from_dict(canary_job(SEEDS[0]).spec_dict)
    assert spec.resources == example.resources
    assert spec.resources.gpu_count == 0
    assert (spec.max_price_micros, spec.max_duration_s, spec.deadline_s) == (1_000_000, 300, 3600)
    assert spec.outputs == example.outputs
    assert spec.command[:2] == example.command[:2] == ("python", "summarize.py")
    assert (spec.kind, spec.runtime, spec.network, spec.redundancy) == ("job", "bwrap", False, 1)


@settings(max_examples=30, deadline=None)
@given(seeds)
def test_every_canary_is_a_valid_job_with_matching_files(seed: bytes) -> None:
    canary = canary_job(seed)
    spec = job_spec_from_dict(canary.spec_dict)
    assert {item.target for item in spec.inputs} == set(canary.inputs)
    assert set(canary.expected_outputs) == set(spec.outputs)
    assert all(len(digest) == 64 for digest in canary.expected_outputs.values())
    assert canary.inputs["summarize.py"] == SUMMARIZE_SCRIPT.encode()


def test_the_same_seed_gives_the_same_canary_and_others_differ() -> None:
    assert canary_job(SEEDS[0]) == canary_job(SEEDS[0])
    tables = {canary_job(seed).expected_outputs["out/report.json"] for seed in SEEDS}
    assert len(tables) == len(SEEDS)


def test_a_short_seed_is_refused() -> None:
    with pytest.raises(ValidationError, match="seed"):
        canary_job(b"short")


def test_ten_percent_skipping_is_caught_within_22_epochs_at_the_default_rate() -> None:
    assert DEFAULT_CANARIES_PER_EPOCH == 2
    assert epochs_to_detect(0.1, DEFAULT_CANARIES_PER_EPOCH) == 22
    assert detection_probability(0.1, 2, 22) == pytest.approx(1 - 0.9**44)
    assert detection_probability(0.1, 2, 22) >= 0.99 > detection_probability(0.1, 2, 21)


@pytest.mark.parametrize(
    ("fraction", "rate", "epochs"),
    [(0.1, 2, 1), (0.1, 2, 10), (0.1, 2, 22), (0.02, 3, 15), (0.5, 1, 3)],
)
def test_detection_formula_matches_a_simulation(fraction: float, rate: int, epochs: int) -> None:
    """A node that skips each job with probability f, among canaries it cannot tell apart."""
    trials = 40_000
    rng = np.random.default_rng(epochs * 1000 + rate)
    skipped = rng.random((trials, rate * epochs)) < fraction
    caught = float(np.mean(skipped.any(axis=1)))
    expected = detection_probability(fraction, rate, epochs)
    tolerance = 5 * (expected * (1 - expected) / trials) ** 0.5 + 1e-3
    assert abs(caught - expected) < tolerance


@given(
    fraction=st.floats(0.001, 0.999),
    rate=st.integers(1, 10),
    confidence=st.floats(0.5, 0.9999),
)
def test_epochs_to_detect_is_the_fewest_that_reach_the_confidence(
    fraction: float, rate: int, confidence: float
) -> None:
    epochs = epochs_to_detect(fraction, rate, confidence)
    assert detection_probability(fraction, rate, epochs) >= confidence
    assert epochs == 1 or detection_probability(fraction, rate, epochs - 1) < confidence


def test_detection_edges() -> None:
    assert detection_probability(0.1, 2, 0) == 0.0
    assert detection_probability(0.0, 2, 100) == 0.0
    assert epochs_to_detect(1.0, 1) == 1


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: detection_probability(1.5, 2, 1), "skip_fraction"),
        (lambda: detection_probability(0.1, 0, 1), "canaries_per_epoch"),
        (lambda: detection_probability(0.1, 2, -1), "epochs"),
        (lambda: epochs_to_detect(0.0, 2), "skip_fraction"),
        (lambda: epochs_to_detect(0.1, 2, 1.0), "confidence"),
    ],
)
def test_detection_refuses_nonsense(call: Callable[[], object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        call()
    assert caught.value.field == field
