# cython: language_level=3
"""Cost-balanced chunks of CSR rows (the work plan of the ALS half-steps), compiled at build time.

Compiled ahead of time rather than by Numba: the plan is computed before every half-step of a
first ``ALS.fit``, and a JIT-compiled version cost ~3 s of compilation (with its stable argsort)
on a cold start for a loop that runs in microseconds (issue #11).
"""
from libc.stdint cimport int64_t

import numpy as np

cimport numpy as cnp

cnp.import_array()


def cost_chunks(const int64_t[::1] indptr, int64_t row_cost, int64_t n_chunks):
    """Cut rows into about ``n_chunks`` contiguous chunks of equal cost.

    Parameters
    ----------
    indptr : int64[n_rows + 1]
        CSR row pointers; a row costs ``indptr[u + 1] - indptr[u] + row_cost``.
    row_cost : int
        Fixed cost of a row in units of one stored entry (the dense per-row work).
    n_chunks : int
        Target number of chunks (>= 1).

    Returns
    -------
    bounds : int64[m + 1]
        Chunk c holds rows ``bounds[c]`` to ``bounds[c + 1]`` (exclusive). A chunk closes as
        soon as it reaches the target cost, so only its last row can overshoot it.
    order : int64[m]
        Chunks by decreasing cost (ties by position), the order workers should claim them.
    """
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1
    cdef int64_t total = indptr[n_rows] - indptr[0] + row_cost * n_rows
    cdef int64_t target = max(1, (total + n_chunks - 1) // max(1, n_chunks))
    bounds_arr = np.empty(n_rows + 1, np.int64)
    cost_arr = np.empty(n_rows, np.int64)
    cdef int64_t[::1] bounds = bounds_arr
    cdef int64_t[::1] cost = cost_arr
    cdef Py_ssize_t u, m = 0
    cdef int64_t acc = 0
    with nogil:
        bounds[0] = 0
        for u in range(n_rows):
            acc += indptr[u + 1] - indptr[u] + row_cost
            if acc >= target or u == n_rows - 1:
                cost[m] = acc
                m += 1
                bounds[m] = u + 1
                acc = 0
    order = np.argsort(-cost_arr[:m], kind="stable").astype(np.int64)
    return bounds_arr[:m + 1].copy(), order
