"""Sufficient statistics of many metric columns per group (segment x variant) in one pass.

Every readout (z-test, Welch, delta method, CUPED, SRM) needs only, per group, the count and, per
column, the sum and the sum of squares, plus the sum of products for some column pairs (a
metric and its pre-period covariate, a ratio's numerator and denominator). Tasks (one per column
and one per pair) run in parallel; each task adds its rows in row order, so results do not depend
on the thread count.
"""
import numpy as np
from numba import prange

from ..common.launch import parallel_kernel


@parallel_kernel
def group_sums(groups, n_groups, columns, shift, pairs, counts, sums, squares, cross, nonbinary):
    """``columns`` is (n_cols, n_rows) float64; ``pairs`` (n_pairs, 2) int64 column indices.
    Fills counts[g] and, on values minus ``shift[c]`` (e.g. the column mean, which keeps the
    sums of squares free of cancellation), sums[g, c], squares[g, c], cross[g, p]."""
    n_cols = columns.shape[0]
    n_tasks = 1 + n_cols + pairs.shape[0]
    for task in prange(n_tasks):
        if task == 0:
            for i in range(groups.shape[0]):
                counts[groups[i]] += 1
        elif task <= n_cols:
            c = task - 1
            other = 0
            for i in range(groups.shape[0]):
                raw = columns[c, i]
                if raw != 0.0 and raw != 1.0:
                    other += 1
                v = raw - shift[c]
                sums[groups[i], c] += v
                squares[groups[i], c] += v * v
            nonbinary[c] = other
        else:
            p = task - 1 - n_cols
            a = pairs[p, 0]
            b = pairs[p, 1]
            for i in range(groups.shape[0]):
                cross[groups[i], p] += (columns[a, i] - shift[a]) * (columns[b, i] - shift[b])
