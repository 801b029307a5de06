"""Contribution-bounded per-segment aggregates, the input of differentially private reports.

Amounts are clamped to ``[lower, upper]`` and rounded to integer multiples of ``resolution``
("units"), and sums are kept in int64: integer sums are exact in any order, so the sensitivity
of the released sums is exactly ``max_rows * max(|lower|, |upper|)`` units -- the rounding
errors of floating-point sums (which make their true sensitivity data-dependent) never arise.
"""
import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from ..common.launch import parallel_kernel

__all__ = ["bounded_aggregates"]


@njit(**NJIT, inline="always")
def _units(a, lower_units, upper_units, lo, hi, resolution):
    """``clamp(rint(a / resolution), lower_units, upper_units)``: the amount in whole units of
    ``resolution``, clamped in integers (so the bounds are exact). ``lo``/``hi`` are the bounds
    in amount units: clamping first keeps rint of a huge float from overflowing int64."""
    if a <= lo:
        return lower_units
    if a >= hi:
        return upper_units
    u = np.int64(np.rint(a / resolution))
    return min(max(u, lower_units), upper_units)


@parallel_kernel
def bounded_aggregates(segments, customers, amounts, has_amounts, lower_units, upper_units,
                       resolution, taken, max_rows, counts, sums, dropped):
    """Add each row to its segment's count (and sum of its amount in units) unless its customer
    already gave ``max_rows`` rows (``taken[c]`` counts them, across calls: batches of a
    stream).

    The work is split into ``P = counts.shape[0]`` parts (a power of two), each with its own
    row of ``counts``/``sums``/``dropped`` (added to, so the caller sums the rows): with a cap,
    part p takes the customers with ``c & (P-1) == p`` and reads every row in order, so each
    customer's first rows are kept exactly as a serial pass would; without a cap
    (``max_rows`` <= 0, each row its own privacy unit) part p takes a block of rows. Counts and
    sums are integers, so the totals are the same for any split and thread count.

    A segment code < 0 marks a row outside the reported segments: it still uses up one of its
    customer's rows, so the bound holds for whatever key set is reported.
    """
    n = segments.size
    n_parts = counts.shape[0]
    mask = n_parts - 1
    lo = lower_units * resolution
    hi = upper_units * resolution
    for p in prange(n_parts):
        if max_rows > 0:
            start, stop = 0, n
        else:
            size = (n + n_parts - 1) // n_parts
            start, stop = min(n, p * size), min(n, (p + 1) * size)
        for i in range(start, stop):
            if max_rows > 0:
                c = customers[i]
                if (c & mask) != p:
                    continue
                if taken[c] >= max_rows:
                    dropped[p] += 1
                    continue
                taken[c] += 1
            s = segments[i]
            if s < 0:
                continue
            counts[p, s] += 1
            if has_amounts:
                sums[p, s] += _units(amounts[i], lower_units, upper_units, lo, hi, resolution)
