"""Contribution-bounded per-segment aggregates, the input of differentially private reports.

Amounts are clamped to ``[lower, upper]`` and rounded to integer multiples of ``resolution``
("units"), and sums are kept in int64: integer sums are exact in any order, so the sensitivity
of the released sums is exactly ``max_rows * max(|lower|, |upper|)`` units -- the rounding
errors of floating-point sums (which make their true sensitivity data-dependent) never arise.
"""
import numpy as np
from numba import njit

from ..common.config import NJIT

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


@njit(**NJIT)
def bounded_aggregates(segments, customers, amounts, has_amounts, lower_units, upper_units,
                       resolution, taken, max_rows, counts, sums):
    """Add each row to its segment's ``counts`` (and ``sums`` of its amount in units) unless its
    customer already gave ``max_rows`` rows (``taken[c]`` counts them, across calls: batches of
    a stream).

    A segment code < 0 marks a row outside the reported segments: it still uses up one of its
    customer's rows, so the bound holds for whatever key set is reported. ``max_rows`` <= 0
    means no cap (each row is its own privacy unit; ``customers``/``taken`` are unused).
    Returns the number of rows dropped by the cap.
    """
    lo = lower_units * resolution
    hi = upper_units * resolution
    dropped = 0
    for i in range(segments.size):
        if max_rows > 0:
            c = customers[i]
            if taken[c] >= max_rows:
                dropped += 1
                continue
            taken[c] += 1
        s = segments[i]
        if s < 0:
            continue
        counts[s] += 1
        if has_amounts:
            sums[s] += _units(amounts[i], lower_units, upper_units, lo, hi, resolution)
    return dropped
