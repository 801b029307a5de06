"""Kernels that build the customer x item CSR matrix of the recommender from coded events.

Events arrive as three parallel arrays (customer code, item code, weight). A stable counting
sort by item, then by customer, gives CSR rows with sorted column indices, which every other
recommend kernel relies on (binary search, linear merge with seen items).
"""
import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from ..common.launch import parallel_kernel
from .fit_native import coo_to_csr as _coo_to_csr


def coo_to_csr(rows, cols, weights, n_rows, n_threads=None):
    """Group events by (row, col): summed weights and event counts, as CSR with sorted indices.

    Parameters
    ----------
    rows, cols : int64[n]
        Customer and item codes of each event (``0 <= rows < n_rows``, ``cols >= 0``).
    weights : float64[n]
        Weight of each event.
    n_rows : int
        Number of customers.
    n_threads : int, optional
        Accepted for the common vocabulary; the sort is serial (two counting sorts: on 2 cores
        as fast as the former parallel kernel, and compiled ahead of time, see
        :mod:`kernels.recommend.fit_native`).

    Returns
    -------
    indptr : int64[n_rows + 1]
    indices : int64[nnz]
        Item codes, sorted within each row.
    sums : float64[nnz]
        Sum of ``weights`` per (row, col), added in input order.
    counts : int64[nnz]
        Number of events per (row, col).
    """
    return _coo_to_csr(np.ascontiguousarray(rows, np.int64), np.ascontiguousarray(cols, np.int64),
                       np.ascontiguousarray(weights, np.float64), int(n_rows))


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
