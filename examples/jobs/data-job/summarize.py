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
