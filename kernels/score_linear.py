"""Fused linear scoring straight from per-column arrays: ``raw[k, i] = b[k] + sum_j w[k, j] x_j[i]``.

The columns arrive as a tuple of 1-D float64 arrays (the Arrow buffers, zero-copy when the
column is float64 without nulls), so no ``n x F`` matrix is ever built. Rows are processed in
blocks: for each block and output, the running sums stay in L1 while each column's slice is
streamed through once, and the inner loop over rows is a contiguous multiply-add that LLVM
vectorises.
"""
import numpy as np
from numba import njit, prange

from ._config import NJIT, NJIT_PARALLEL

BLOCK = 2048


@njit(**NJIT)
def linear_block(cols, coef, intercept, lo, hi, out):
    """``out[k, lo:hi] = intercept[k] + sum_j coef[k, j] * cols[j][lo:hi]``.

    Parameters
    ----------
    cols : tuple of F (n,) float64 arrays
    coef : (K, F) float64
    intercept : (K,) float64
    out : (K, n) float64   # OUT
    """
    n_out = coef.shape[0]
    for k in range(n_out):
        b = intercept[k]
        for i in range(lo, hi):
            out[k, i] = b
        for j in range(len(cols)):
            c = cols[j]
            w = coef[k, j]
            for i in range(lo, hi):
                out[k, i] += w * c[i]


@njit(**NJIT_PARALLEL)
def linear_parallel(cols, coef, intercept, out):
    """:func:`linear_block` over all rows, blocks spread over threads."""
    n = out.shape[1]
    nb = (n + BLOCK - 1) // BLOCK
    for b in prange(nb):
        lo = b * BLOCK
        linear_block(cols, coef, intercept, lo, min(n, lo + BLOCK), out)


@njit(**NJIT)
def linear_serial(cols, coef, intercept, out):
    """Serial :func:`linear_parallel`, for a few rows."""
    linear_block(cols, coef, intercept, 0, out.shape[1], out)
