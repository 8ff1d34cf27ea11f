"""Time a dense matrix product on the CPU and report its rate in GFLOPS.

Two seeded random float64 matrices are multiplied a few times; the best time gives the
rate (a product of two n x n matrices takes 2 n^3 floating-point operations). The
product's checksum goes into result.json too, so anyone can check the node computed the
right answer: the same seed gives the same matrices everywhere.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="matrix side n (default 1024)")
    parser.add_argument("--repeats", type=int, default=5, help="products timed (default 5)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the random matrices")
    parser.add_argument("--out", default="result.json", help="where to write the result")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    a = rng.standard_normal((args.size, args.size))
    b = rng.standard_normal((args.size, args.size))
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        product = a @ b
        seconds.append(time.perf_counter() - start)

    best = min(seconds)
    gflops = 2 * args.size**3 / best / 1e9
    result = {
        "size": args.size,
        "repeats": args.repeats,
        "seed": args.seed,
        "dtype": "float64",
        "best_seconds": best,
        "median_seconds": statistics.median(seconds),
        "gflops": gflops,
        "checksum": float(product.sum()),
        "numpy": np.__version__,
        "machine": platform.machine(),
    }
    with open(args.out, "w", encoding="utf-8") as file:
        json.dump(result, file, indent=2)
        file.write("\n")
    print(
        f"{args.size} x {args.size} float64 product: {gflops:.2f} GFLOPS "
        f"(best of {args.repeats}: {best * 1000:.1f} ms)"
    )


if __name__ == "__main__":
    main()
