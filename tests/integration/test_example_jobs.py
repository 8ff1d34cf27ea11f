"""The example jobs run as a node runs them, without the sandbox.

Each spec is parsed, its inputs are copied into a fresh work dir, and its command runs
there with this interpreter in place of ``python`` (the node agent puts its own first on
PATH), with the spec's env and, on Linux, its memory as an address-space limit. The
outputs are then checked by content against an independent computation.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gpunet.protocol.jobspec import JobSpec, parse_job_spec

EXAMPLES = Path(__file__).parents[2] / "examples" / "jobs"

pytestmark = pytest.mark.slow


def _memory_limit(spec: JobSpec) -> Callable[[], None] | None:
    if sys.platform != "linux":
        return None
    limit = spec.resources.memory_mib * 1024 * 1024

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def run_example(name: str, work: Path) -> tuple[JobSpec, subprocess.CompletedProcess[str]]:
    folder = EXAMPLES / name
    spec = parse_job_spec((folder / "job.yaml").read_text(), source=str(folder / "job.yaml"))
    for item in spec.inputs:
        target = work / item.target
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / item.source, target)
    program, *args = spec.command
    command = [sys.executable if program in ("python", "python3") else program, *args]
    result = subprocess.run(
        command,
        cwd=work,
        env={**os.environ, **spec.env},
        capture_output=True,
        text=True,
        timeout=spec.max_duration_s,
        preexec_fn=_memory_limit(spec),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return spec, result


def collected(spec: JobSpec, work: Path) -> set[str]:
    """What the node would upload: every file matching the spec's output patterns."""
    return {
        path.relative_to(work).as_posix()
        for pattern in spec.outputs
        for path in work.glob(pattern)
        if path.is_file()
    }


def written(spec: JobSpec, work: Path) -> set[str]:
    """Every file the job left in its work dir, other than its inputs."""
    inputs = {item.target for item in spec.inputs}
    files = {path.relative_to(work).as_posix() for path in work.rglob("*") if path.is_file()}
    return files - inputs


def test_matrix_benchmark_reports_gflops_and_a_correct_product(tmp_path: Path) -> None:
    spec, run = run_example("matrix-cpu", tmp_path)

    assert collected(spec, tmp_path) == written(spec, tmp_path) == {"result.json"}
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["gflops"] > 0
    assert f"{result['gflops']:.2f} GFLOPS" in run.stdout
    assert result["best_seconds"] <= result["median_seconds"]
    assert {"size", "repeats", "seed", "dtype", "numpy", "machine", "checksum"} <= set(result)
    rng = np.random.default_rng(result["seed"])
    a = rng.standard_normal((result["size"], result["size"]))
    b = rng.standard_normal((result["size"], result["size"]))
    assert result["checksum"] == pytest.approx(float((a @ b).sum()), rel=1e-9, abs=1e-6)


def test_data_job_summary_matches_an_independent_computation(tmp_path: Path) -> None:
    spec, _ = run_example("data-job", tmp_path)

    assert collected(spec, tmp_path) == written(spec, tmp_path)
    assert collected(spec, tmp_path) == {"out/summary.csv", "out/report.json"}
    orders = pd.read_csv(EXAMPLES / "data-job" / "data" / "orders.csv")
    assert len(orders) == 1000
    orders["revenue"] = orders["gpu_hours"] * orders["price_usd_per_hour"]
    expected = orders.groupby(["region", "gpu_model"]).agg(
        orders=("order_id", "count"),
        gpu_hours=("gpu_hours", "sum"),
        revenue_usd=("revenue", "sum"),
        price_mean=("price_usd_per_hour", "mean"),
        price_median=("price_usd_per_hour", "median"),
        price_min=("price_usd_per_hour", "min"),
        price_max=("price_usd_per_hour", "max"),
        price_stdev=("price_usd_per_hour", "std"),
    )
    with (tmp_path / "out" / "summary.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))

    assert [(r["region"], r["gpu_model"]) for r in rows] == sorted(expected.index)
    for row in rows:
        want = expected.loc[(row["region"], row["gpu_model"])]
        for column in expected.columns:
            assert float(row[column]) == pytest.approx(float(want[column]), abs=1e-6), column

    report = json.loads((tmp_path / "out" / "report.json").read_text())
    revenue_by_region = orders.groupby("region")["revenue"].sum()
    assert (report["rows"], report["groups"]) == (1000, len(expected))
    assert report["total"]["revenue_usd"] == pytest.approx(orders["revenue"].sum(), abs=1e-6)
    assert report["total"]["price_median"] == statistics.median(orders["price_usd_per_hour"])
    assert report["top_revenue_region"] == revenue_by_region.idxmax()
    for region, figures in report["by_region"].items():
        assert figures["revenue_usd"] == pytest.approx(revenue_by_region[region], abs=1e-6)


@pytest.mark.inference
@pytest.mark.skipif(
    find_spec("sentence_transformers") is None,
    reason="needs the inference extra: pip install -e '.[inference]'",
)
def test_embeddings_job_finds_the_semantically_nearest_sentence(tmp_path: Path) -> None:
    spec, _ = run_example("embeddings", tmp_path)

    assert collected(spec, tmp_path) == written(spec, tmp_path)
    assert collected(spec, tmp_path) == {"out/embeddings.npy", "out/similar.json"}
    sentences = [
        line
        for line in (tmp_path / "sentences.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    vectors: np.ndarray = np.load(tmp_path / "out" / "embeddings.npy")
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(sentences), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)

    cat = sentences.index("A cat sits on the mat.")
    kitten = sentences.index("A kitten rests on a rug.")
    finance = sentences.index("The central bank raised interest rates by a quarter point.")
    assert float(vectors[cat] @ vectors[kitten]) > float(vectors[cat] @ vectors[finance]) + 0.3

    report = json.loads((tmp_path / "out" / "similar.json").read_text())
    nearest = {pair["sentence"]: pair["nearest"] for pair in report["pairs"]}
    assert nearest["A cat sits on the mat."] == "A kitten rests on a rug."
    # The file lists sentences in topic pairs (cats, dogs, finance, weather, cooking,
    # GPUs); a sound embedding puts each sentence nearest to its partner.
    assert [sentences.index(nearest[s]) for s in sentences] == [
        i ^ 1 for i in range(len(sentences))
    ]
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    assert [pair["nearest_index"] for pair in report["pairs"]] == list(similarity.argmax(axis=1))
