"""Kernels that build the customer x item CSR matrix of the recommender from coded events.

Events arrive as three parallel arrays (customer code, item code, weight). A counting sort by
customer followed by a per-row stable sort by item gives CSR rows with sorted column indices,
which every other recommend kernel relies on (binary search, linear merge with seen items).
"""
import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from ..common.launch import parallel_kernel


@parallel_kernel
def coo_to_csr(rows, cols, weights, n_rows):
    """Group events by (row, col): summed weights and event counts, as CSR with sorted indices.

    Parameters
    ----------
    rows, cols : int64[n]
        Customer and item codes of each event (``0 <= rows < n_rows``).
    weights : float64[n]
        Weight of each event.
    n_rows : int
        Number of customers.

    Returns
    -------
    indptr : int64[n_rows + 1]
    indices : int64[nnz]
        Item codes, sorted within each row.
    sums : float64[nnz]
        Sum of ``weights`` per (row, col).
    counts : int64[nnz]
        Number of events per (row, col).
    """
    n = rows.size
    start = np.zeros(n_rows + 1, np.int64)
    for k in range(n):
        start[rows[k] + 1] += 1
    for r in range(n_rows):
        start[r + 1] += start[r]
    fill = start[:-1].copy()
    pc = np.empty(n, np.int64)
    pw = np.empty(n, np.float64)
    for k in range(n):
        r = rows[k]
        p = fill[r]
        pc[p] = cols[k]
        pw[p] = weights[k]
        fill[r] = p + 1
    uniq = np.zeros(n_rows, np.int64)
    for r in prange(n_rows):
        a = start[r]
        b = start[r + 1]
        if b - a > 1:
            # stable, so the summation order of duplicate weights is the input order
            order = np.argsort(pc[a:b], kind="mergesort")
            c2 = pc[a:b][order]
            w2 = pw[a:b][order]
            pc[a:b] = c2
            pw[a:b] = w2
        u = 0
        prev = -1
        for p in range(a, b):
            if pc[p] != prev:
                u += 1
                prev = pc[p]
        uniq[r] = u
    indptr = np.zeros(n_rows + 1, np.int64)
    for r in range(n_rows):
        indptr[r + 1] = indptr[r] + uniq[r]
    nnz = indptr[n_rows]
    indices = np.empty(nnz, np.int64)
    sums = np.zeros(nnz, np.float64)
    counts = np.zeros(nnz, np.int64)
    for r in prange(n_rows):
        q = indptr[r] - 1
        prev = -1
        for p in range(start[r], start[r + 1]):
            if pc[p] != prev:
                q += 1
                indices[q] = pc[p]
                prev = pc[p]
            sums[q] += pw[p]
            counts[q] += 1
    return indptr, indices, sums, counts


@njit(**NJIT)
def row_of_nnz(indptr):
    """Row index of every stored entry of a CSR matrix (int64[nnz])."""
    n_rows = indptr.size - 1
    out = np.empty(indptr[n_rows], np.int64)
    for r in range(n_rows):
        for p in range(indptr[r], indptr[r + 1]):
            out[p] = r
    return out


@njit(**NJIT)
def contains_sorted(indices, a, b, value):
    """True when ``value`` is in the sorted slice ``indices[a:b]`` (binary search)."""
    lo = a
    hi = b
    while lo < hi:
        mid = (lo + hi) >> 1
        v = indices[mid]
        if v < value:
            lo = mid + 1
        elif v > value:
            hi = mid
        else:
            return True
    return False


@parallel_kernel
def csr_difference_mask(a_indptr, a_indices, b_indptr, b_indices):
    """For each entry of CSR ``a``: 1 when the same (row, col) is *not* stored in ``b``.

    Both matrices have the same number of rows and sorted indices (uint8[nnz_a]).
    """
    n_rows = a_indptr.size - 1
    keep = np.ones(a_indices.size, np.uint8)
    for r in prange(n_rows):
        q = b_indptr[r]
        qe = b_indptr[r + 1]
        for p in range(a_indptr[r], a_indptr[r + 1]):
            c = a_indices[p]
            while q < qe and b_indices[q] < c:
                q += 1
            if q < qe and b_indices[q] == c:
                keep[p] = 0
    return keep
