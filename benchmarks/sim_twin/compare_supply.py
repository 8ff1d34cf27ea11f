"""Compare gpunet.protocol's supply rules with the independent radCAD twin, and time both.

Runs ``supply_twin.py`` in the twin's own virtualenv (radCAD pins an old NumPy), then
computes the same series with ``gpunet.protocol`` in this process and checks that every
value agrees to float rounding of tokens. Exit status 0 when they agree, 1 when not.

    .venv/bin/python benchmarks/sim_twin/compare_supply.py [--months 120]
        [--twin-python benchmarks/sim_twin/.venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gpunet.protocol.allocation import DEFAULT_ALLOCATION, circulating_at_month, unlock_table
from gpunet.protocol.emissions import (
    DEFAULT_CHECKER_EMISSION,
    DEFAULT_PROVIDER_EMISSION,
    checker_cumulative,
    cumulative_emission,
    emission_curve,
    emitted_at_day,
)
from gpunet.protocol.units import ONE_TOKEN
from gpunet.protocol.vesting import first_day_of_month

HERE = Path(__file__).resolve().parent
DEFAULT_TWIN_PYTHON = HERE / ".venv" / "bin" / "python"
# Float sums of thousands of daily flows drift by ~1e-13 relative; base-unit flooring
# by 1e-18 tokens. Anything past these bounds is a real disagreement.
RELATIVE_TOLERANCE = 1e-9
ABSOLUTE_TOLERANCE_TOKENS = 1e-6

Series = dict[str, list[float]]


def run_twin(twin_python: Path, months: int, decay: float) -> tuple[dict[str, Any], float]:
    """The twin's JSON output and the wall time of its process."""
    command = [str(twin_python), str(HERE / "supply_twin.py"), "--months", str(months)]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--decay", repr(decay)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout), time.perf_counter() - started


def gpunet_series(months: int) -> tuple[Series, list[float]]:
    """Month-start supply per pool and the provider's daily emission, in tokens."""
    provider, checkers = DEFAULT_PROVIDER_EMISSION, DEFAULT_CHECKER_EMISSION
    table = unlock_table(DEFAULT_ALLOCATION, months)
    names = [key for key in table[0] if key not in ("month", "vested")]
    monthly: Series = {name: [row[name] / ONE_TOKEN for row in table] for name in names}
    days = [first_day_of_month(month) for month in range(months + 1)]
    released = [checker_cumulative(checkers, day) for day in days]
    monthly["provider"] = [cumulative_emission(provider, day) / ONE_TOKEN for day in days]
    monthly["checker_base"] = [r.base / ONE_TOKEN for r in released]
    monthly["checker_bonus"] = [r.bonus / ONE_TOKEN for r in released]
    monthly["circulating"] = [
        circulating_at_month(DEFAULT_ALLOCATION, m, emitted_at_day(provider, checkers, d))
        / ONE_TOKEN
        for m, d in enumerate(days)
    ]
    return monthly, emission_curve(provider, days[-1]).tolist()


def worst_difference(ours: list[float], theirs: list[float]) -> tuple[float, bool]:
    """Largest absolute difference in tokens, and whether every pair is within tolerance."""
    if len(ours) != len(theirs):
        return float("inf"), False
    worst, agree = 0.0, True
    for a, b in zip(ours, theirs, strict=True):
        gap = abs(a - b)
        worst = max(worst, gap)
        agree &= gap <= ABSOLUTE_TOLERANCE_TOKENS + RELATIVE_TOLERANCE * max(abs(a), abs(b))
    return worst, agree


def compare(ours: Series, theirs: Series) -> list[tuple[str, float, bool]]:
    """Per series: name, worst difference in tokens, agreement."""
    names = sorted(set(ours) | set(theirs))
    return [(name, *worst_difference(ours.get(name, []), theirs.get(name, []))) for name in names]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=120)
    default_python = os.environ.get("TWIN_PYTHON", str(DEFAULT_TWIN_PYTHON))
    parser.add_argument("--twin-python", type=Path, default=Path(default_python))
    args = parser.parse_args()
    decay = DEFAULT_PROVIDER_EMISSION.annual_decay_bps / 10_000
    twin, twin_wall = run_twin(args.twin_python, args.months, decay)
    started = time.perf_counter()
    monthly, daily = gpunet_series(args.months)
    ours_seconds = time.perf_counter() - started
    rows = compare(monthly, twin["monthly"])
    rows += compare({"provider_daily": daily}, {"provider_daily": twin["provider_daily"]})
    print(f"{'series':<16} {'max |diff| (tokens)':>20}  agree")
    for name, worst, agree in rows:
        print(f"{name:<16} {worst:>20.3e}  {'yes' if agree else 'NO'}")
    print(f"gpunet.protocol: {ours_seconds:.3f} s for {args.months} months")
    print(f"radCAD twin: {twin['run_seconds']:.3f} s simulating, {twin_wall:.3f} s with start-up")
    return 0 if all(agree for _, _, agree in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
