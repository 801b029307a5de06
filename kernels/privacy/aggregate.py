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

__all__ = ["cap_rows", "bounded_aggregates"]


@njit(**NJIT, inline="always")
def units(a, lower_units, upper_units, lo, hi, resolution):
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
def cap_rows(customers, taken, max_rows, keep):
    """``keep[i]``: whether row i is among its customer's first ``max_rows`` rows, counting the
    rows of earlier calls (``taken[c]``, so batches of a stream continue where they stopped).
    One serial pass: the decision for a row depends on every earlier row of its customer.
    Returns the number of rows dropped."""
    dropped = 0
    for i in range(customers.size):
        c = customers[i]
        t = taken[c]
        ok = t < max_rows
        keep[i] = ok
        taken[c] = t + 1 if ok else t  # saturates at max_rows: no overflow
        dropped += 0 if ok else 1
    return dropped


@parallel_kernel
def bounded_aggregates(segments, keep, use_keep, amounts, has_amounts, lower_units,
                       upper_units, resolution, counts, sums):
    """Per segment, the count of the kept rows and the sum of their amounts in units (clamped,
    see :func:`units`). ``keep`` (when ``use_keep``) is :func:`cap_rows`' mask.

    Rows are split into ``P = counts.shape[0]`` blocks, each adding into its own row of
    ``counts``/``sums``; the caller sums the rows. Counts and sums are integers, so the totals
    are the same for any split and thread count. A segment code < 0 marks a row outside the
    reported segments (it still used up one of its customer's rows in :func:`cap_rows`).
    """
    n = segments.size
    n_parts = counts.shape[0]
    lo = lower_units * resolution
    hi = upper_units * resolution
    size = (n + n_parts - 1) // n_parts
    for p in prange(n_parts):
        for i in range(min(n, p * size), min(n, (p + 1) * size)):
            s = segments[i]
            if s < 0 or (use_keep and not keep[i]):
                continue
            counts[p, s] += 1
            if has_amounts:
                sums[p, s] += units(amounts[i], lower_units, upper_units, lo, hi, resolution)
