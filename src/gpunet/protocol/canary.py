"""Canary jobs: ordinary-looking small data jobs whose right answer the network knows.

A canary is the shipped data-job example (``examples/jobs/data-job``): the same
``summarize.py`` script, run on a fresh table of GPU rental orders drawn from a seed,
under a spec like the example's (1 core, 512 MiB, 1.00 USD per node-hour, 5 minutes).
The indexer leases it to a node like any buyer's job. The script's outputs are a pure
function of the table, so the checker computes them here, in-process, byte for byte,
and a node that skips the work and reports made-up outputs is caught.

Detection: if a node skips a fraction f of its jobs and cannot tell canaries from
other jobs, each canary catches it with probability f, so k canaries per epoch catch
it within e epochs with probability ``1 - (1 - f) ** (k * e)``. At the default rate of
``DEFAULT_CANARIES_PER_EPOCH`` = 2, a node skipping 10% of jobs is caught with 99%
probability within 22 epochs (``epochs_to_detect(0.1, 2)``).

The expected hashes assume the node runs the script with the project's Python (3.11,
the interpreter the bwrap runtime uses): Python 3.12 changed how ``sum`` adds floats,
which can move a last digit of the summary.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import random
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from gpunet.errors import ValidationError
from gpunet.protocol.jobspec_io import job_spec_from_dict, job_spec_to_dict

DEFAULT_CANARIES_PER_EPOCH = 2
MIN_SEED_BYTES = 16
SEED_DOMAIN = b"gpunet-canary-v1"
SCRIPT_PATH = "summarize.py"
OUTPUT_DIR = "out"
SUMMARY_PATH = f"{OUTPUT_DIR}/summary.csv"
REPORT_PATH = f"{OUTPUT_DIR}/report.json"
JOB_NAMES = ("data-job", "orders-summary", "gpu-orders", "rental-report", "summarize-orders")
DATA_PATHS = ("data/orders.csv", "data/rentals.csv", "data/gpu-orders.csv", "orders.csv")
REGIONS = ("us-east", "us-west", "eu-west", "eu-central", "ap-south", "ap-northeast", "sa-east")
# A typical hourly price per model in cents; each order's price varies around it.
BASE_PRICE_CENTS = {
    "H200": 310,
    "H100": 245,
    "A100-80GB": 133,
    "A100-40GB": 115,
    "L40S": 95,
    "A10G": 60,
    "RTX4090": 56,
    "L4": 46,
    "T4": 30,
}
CSV_COLUMNS = ("order_id", "region", "gpu_model", "gpu_hours", "price_usd_per_hour")
# The columns summarize.py writes, in its order.
SUMMARY_COLUMNS = (
    "region",
    "gpu_model",
    "orders",
    "gpu_hours",
    "revenue_usd",
    "price_mean",
    "price_median",
    "price_min",
    "price_max",
    "price_stdev",
)

# examples/jobs/data-job/summarize.py, byte for byte (a test keeps the two equal).
SUMMARIZE_SCRIPT = r'''
"""Summarize GPU rental orders per region and GPU model, with the standard library only.

Reads a CSV of orders (order_id, region, gpu_model, gpu_hours, price_usd_per_hour) and
writes two files:

- out/summary.csv: one row per (region, gpu_model) with the order count, GPU-hours,
  revenue, and the mean, median, minimum, maximum and sample standard deviation of the
  hourly price;
- out/report.json: totals, the same figures per region, and the region with the most
  revenue.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from collections import defaultdict
from pathlib import Path

SUMMARY_COLUMNS = [
    "region",
    "gpu_model",
    "orders",
    "gpu_hours",
    "revenue_usd",
    "price_mean",
    "price_median",
    "price_min",
    "price_max",
    "price_stdev",
]


def read_orders(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def group_stats(rows: list[dict[str, str]]) -> dict[str, float]:
    hours = [float(row["gpu_hours"]) for row in rows]
    prices = [float(row["price_usd_per_hour"]) for row in rows]
    return {
        "orders": len(rows),
        "gpu_hours": round(sum(hours), 6),
        "revenue_usd": round(sum(h * p for h, p in zip(hours, prices, strict=True)), 6),
        "price_mean": round(statistics.fmean(prices), 6),
        "price_median": round(statistics.median(prices), 6),
        "price_min": min(prices),
        "price_max": max(prices),
        "price_stdev": round(statistics.stdev(prices), 6) if len(prices) > 1 else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default="data/orders.csv", help="orders CSV to read")
    parser.add_argument("--out", default="out", help="folder for summary.csv and report.json")
    args = parser.parse_args()

    orders = read_orders(Path(args.input))
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    regions: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in orders:
        groups[(row["region"], row["gpu_model"])].append(row)
        regions[row["region"]].append(row)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "summary.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for (region, model), rows in sorted(groups.items()):
            writer.writerow({"region": region, "gpu_model": model, **group_stats(rows)})

    by_region = {
        region: {key: group_stats(rows)[key] for key in ("orders", "gpu_hours", "revenue_usd")}
        for region, rows in sorted(regions.items())
    }
    report = {
        "input": args.input,
        "rows": len(orders),
        "groups": len(groups),
        "total": group_stats(orders),
        "by_region": by_region,
        "top_revenue_region": max(by_region, key=lambda r: by_region[r]["revenue_usd"]),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"{len(orders)} orders in {len(groups)} groups; revenue "
        f"{report['total']['revenue_usd']:.2f} USD, most in {report['top_revenue_region']}"
    )


if __name__ == "__main__":
    main()
'''.removeprefix("\n")


@dataclass(frozen=True)
class CanaryJob:
    """A canary: the job spec (canonical dict, as the SDK submits one), its input files
    by target path, and the sha256 (hex) of each output an honest node returns."""

    spec_dict: dict[str, Any]
    inputs: dict[str, bytes] = field(default_factory=dict)
    expected_outputs: dict[str, str] = field(default_factory=dict)


def canary_job(seed: bytes) -> CanaryJob:
    """The canary drawn from ``seed``; the same seed always gives the same job."""
    if not isinstance(seed, bytes) or len(seed) < MIN_SEED_BYTES:
        raise ValidationError(
            "seed",
            seed,
            f"pass at least {MIN_SEED_BYTES} random bytes, like secrets.token_bytes(32)",
        )
    rng = random.Random(int.from_bytes(hashlib.sha256(SEED_DOMAIN + seed).digest(), "big"))
    name = rng.choice(JOB_NAMES)
    data_path = rng.choice(DATA_PATHS)
    table = orders_csv(rng)
    outputs = summarize(table, data_path)
    return CanaryJob(
        spec_dict=_spec(name, data_path),
        inputs={SCRIPT_PATH: SUMMARIZE_SCRIPT.encode("utf-8"), data_path: table.encode("utf-8")},
        expected_outputs={path: hashlib.sha256(data).hexdigest() for path, data in outputs.items()},
    )


def _spec(name: str, data_path: str) -> dict[str, Any]:
    written = {
        "name": name,
        "command": f"python {SCRIPT_PATH} --input {data_path} --out {OUTPUT_DIR}",
        "inputs": [SCRIPT_PATH, {"source": data_path, "target": data_path}],
        "outputs": [SUMMARY_PATH, REPORT_PATH],
        "resources": {"gpu_count": 0, "cpu_cores": 1, "memory": "512MiB", "disk": "1GiB"},
        "max_price": "1.00",
        "max_duration": "5m",
        "deadline": "1h",
    }
    return job_spec_to_dict(job_spec_from_dict(written, source="canary job"))


def orders_csv(rng: random.Random) -> str:
    """A table of GPU rental orders like the example's, drawn from ``rng``."""
    regions = rng.sample(REGIONS, rng.randint(3, 5))
    models = rng.sample(sorted(BASE_PRICE_CENTS), rng.randint(3, 5))
    lines = [",".join(CSV_COLUMNS)]
    for number in range(1, rng.randint(300, 1200) + 1):
        model = rng.choice(models)
        # Order lengths are skewed like real rentals: most a few hours, a few days long.
        hours = min(4800, max(10, round(100 * rng.lognormvariate(math.log(2.8), 0.8))))
        price = max(1, round(BASE_PRICE_CENTS[model] * rng.uniform(0.78, 1.24)))
        cells = (f"o-{number:04d}", rng.choice(regions), model, _cents(hours), _cents(price))
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def _cents(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"


def summarize(table: str, input_arg: str) -> dict[str, bytes]:
    """The bytes ``summarize.py --input <input_arg> --out out`` writes for ``table``.

    Mirrors the script's ``main`` step by step (same parsing, same float operations in
    the same order, same writers), so the bytes match what the script writes.
    """
    orders = list(csv.DictReader(io.StringIO(table, newline="")))
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    regions: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in orders:
        groups[(row["region"], row["gpu_model"])].append(row)
        regions[row["region"]].append(row)
    summary = io.StringIO(newline="")
    writer = csv.DictWriter(summary, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for (region, model), rows in sorted(groups.items()):
        writer.writerow({"region": region, "gpu_model": model, **_group_stats(rows)})
    by_region = {
        region: {key: _group_stats(rows)[key] for key in ("orders", "gpu_hours", "revenue_usd")}
        for region, rows in sorted(regions.items())
    }
    report = {
        "input": input_arg,
        "rows": len(orders),
        "groups": len(groups),
        "total": _group_stats(orders),
        "by_region": by_region,
        "top_revenue_region": max(by_region, key=lambda r: by_region[r]["revenue_usd"]),
    }
    return {
        SUMMARY_PATH: summary.getvalue().encode("utf-8"),
        REPORT_PATH: (json.dumps(report, indent=2) + "\n").encode("utf-8"),
    }


def _group_stats(rows: list[dict[str, str]]) -> dict[str, float]:
    hours = [float(row["gpu_hours"]) for row in rows]
    prices = [float(row["price_usd_per_hour"]) for row in rows]
    return {
        "orders": len(rows),
        "gpu_hours": round(sum(hours), 6),
        "revenue_usd": round(sum(h * p for h, p in zip(hours, prices, strict=True)), 6),
        "price_mean": round(statistics.fmean(prices), 6),
        "price_median": round(statistics.median(prices), 6),
        "price_min": min(prices),
        "price_max": max(prices),
        "price_stdev": round(statistics.stdev(prices), 6) if len(prices) > 1 else 0.0,
    }


def detection_probability(skip_fraction: float, canaries_per_epoch: float, epochs: int) -> float:
    """Probability that a node skipping ``skip_fraction`` of its jobs runs into at least
    one canary within ``epochs`` epochs: ``1 - (1 - f) ** (k * e)``."""
    _check_fraction("skip_fraction", skip_fraction)
    _check_rate(canaries_per_epoch)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValidationError("epochs", epochs, "must be a whole number of epochs, 0 or more")
    return 1.0 - math.pow(1.0 - skip_fraction, canaries_per_epoch * epochs)


def epochs_to_detect(
    skip_fraction: float, canaries_per_epoch: float, confidence: float = 0.99
) -> int:
    """The fewest epochs after which a node skipping ``skip_fraction`` of its jobs has
    been caught with at least ``confidence`` probability."""
    _check_fraction("skip_fraction", skip_fraction)
    if skip_fraction == 0:
        raise ValidationError(
            "skip_fraction", skip_fraction, "a node that skips nothing is never caught"
        )
    _check_rate(canaries_per_epoch)
    if not (math.isfinite(confidence) and 0 < confidence < 1):
        raise ValidationError("confidence", confidence, "must be above 0 and below 1, like 0.99")
    if skip_fraction == 1:
        return 1
    guess = math.log1p(-confidence) / (canaries_per_epoch * math.log1p(-skip_fraction))
    epochs = max(1, math.ceil(guess))
    # The closed form can be off by one in floating point; settle on the exact edge.
    while (
        epochs > 1
        and detection_probability(skip_fraction, canaries_per_epoch, epochs - 1) >= confidence
    ):
        epochs -= 1
    while detection_probability(skip_fraction, canaries_per_epoch, epochs) < confidence:
        epochs += 1
    return epochs


def _check_fraction(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ValidationError(name, value, "must be a fraction from 0 to 1, like 0.1")


def _check_rate(canaries_per_epoch: float) -> None:
    if not (math.isfinite(canaries_per_epoch) and canaries_per_epoch > 0):
        raise ValidationError(
            "canaries_per_epoch", canaries_per_epoch, "must be above 0, like 2 canaries an epoch"
        )
