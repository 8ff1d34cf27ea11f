"""Results as DataFrames."""

from __future__ import annotations

import numpy as np

from gpunet.sim import SERIES, median_frame, to_frame

from .conftest import MakeResult


def test_long_frame_has_a_row_per_path_and_step(make_result: MakeResult) -> None:
    result = make_result(paths=3, steps=4, step_days=2.0)
    frame = to_frame(result)
    assert len(frame) == 3 * 5
    assert {"path", "step", "day", "spiral_step", *SERIES} <= set(frame.columns)
    row = frame[(frame["path"] == 2) & (frame["step"] == 4)].iloc[0]
    assert row["day"] == 8.0
    assert row["price"] == result.series["price"][2, 4]


def test_median_frame_gives_medians_and_quantiles(make_result: MakeResult) -> None:
    result = make_result(paths=5, steps=3)
    frame = median_frame(result, quantiles=(0.05, 0.95))
    assert np.allclose(frame["price"], np.median(result.series["price"], axis=0))
    assert (frame["price_q0.05"] <= frame["price"]).all()
    assert (frame["price"] <= frame["price_q0.95"]).all()
    assert frame.index.name == "day"
