"""Array routines of the fast matcher: ranges, per-owner minima, sorted lookups.

Kept apart from the index so that the index module reads as the search it performs;
each routine here works on plain NumPy arrays and knows nothing of offers or demands.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
# Bounds and gains are compared with this margin, so that rounding never prunes the winner.
SLACK = 1e-9


def ranges(starts: IntArray, ends: IntArray) -> tuple[IntArray, IntArray]:
    """The positions of the ranges ``[starts[i], ends[i])``, concatenated, and each one's i."""
    lengths = np.maximum(ends - starts, 0)
    owners = np.repeat(np.arange(lengths.size), lengths)
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return np.arange(owners.size, dtype=np.int64) + offsets, owners


def lowest_of(values: FloatArray, owners: IntArray, size: int) -> FloatArray:
    """Per owner (0 to ``size - 1``), its lowest value; infinite for an owner without any."""
    lowest = np.full(size, math.inf)
    np.minimum.at(lowest, owners, values)
    return lowest


def kth_lowest(scores: FloatArray, owners: IntArray, rivals: IntArray) -> FloatArray:
    """Per owner, its ``rivals + 1``-th lowest finite score (its highest if it has fewer);
    infinite for an owner without any."""
    if not rivals.any():
        return lowest_of(scores, owners, rivals.size)
    finite = scores < math.inf
    scores, owners = scores[finite], owners[finite]
    order = by_owner(owners, scores)
    scores, owners = scores[order], owners[order]
    starts = np.searchsorted(owners, np.arange(rivals.size))
    ends = np.searchsorted(owners, np.arange(rivals.size), side="right")
    if scores.size == 0:
        return np.full(rivals.size, math.inf)
    at = np.clip(np.minimum(starts + rivals, ends - 1), 0, scores.size - 1)
    return np.where(ends > starts, scores[at], math.inf)


def within(sorted_keys: IntArray, codes: IntArray, base: int) -> IntArray:
    """Indices of ``sorted_keys`` equal to ``base`` plus one of ``codes`` (sorted)."""
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64)
    if codes[-1] - codes[0] == codes.size - 1:
        lo = int(np.searchsorted(sorted_keys, base + codes[0], side="left"))
        hi = int(np.searchsorted(sorted_keys, base + codes[-1], side="right"))
        return np.arange(lo, hi)
    return np.flatnonzero(np.isin(sorted_keys, base + codes))


def by_owner(owners: IntArray, values: FloatArray) -> IntArray:
    """An order by owner, then by value, for finite values; near-equal values may come
    in either order, which is all a threshold or a short list needs."""
    if not values.size:
        return np.zeros(0, dtype=np.int64)
    low = values.min()
    width = float(values.max() - low) + 1.0
    return np.argsort(owners * width + (values - low))


def all_columns(table: BoolArray) -> BoolArray:
    """Per row of ``table``, whether all its columns are true: ``table.all(axis=1)``.

    NumPy reduces each short row of a row-major table on its own; reducing a
    column-major copy goes column by column over all rows at once, ten times faster.
    """
    all_true: BoolArray = np.logical_and.reduce(np.asfortranarray(table), axis=1)
    return all_true


def lex_order(minor: FloatArray, major: IntArray) -> IntArray:
    """The order ``np.lexsort((minor, major))`` gives: by ``major``, then ``minor``.

    Two stable sorts give the same order, faster: NumPy radix-sorts a major key of
    small non-negative integers once it is narrowed to 16 bits.
    """
    order = np.argsort(minor, kind="stable")
    major = major[order]
    if major.size and major.min() >= 0 and major.max() < 2**15:
        major = major.astype(np.int16)
    ordered: IntArray = order[np.argsort(major, kind="stable")]
    return ordered
