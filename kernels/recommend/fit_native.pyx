# cython: language_level=3
"""The recommender's fit path compiled at build time: ALS conjugate-gradient rows and the
event-to-CSR sort.

Why Cython here (issue #11): with Numba, the parallel CG half-step alone cost ~30 s of CPU of JIT
compilation on a cold ``ALS.fit`` (a serial twin still ~19 s) and the CSR build ~6-13 s, for code
that then runs in milliseconds on small data. Compiled ahead of time they cost nothing at the
first call. Every loop runs without the GIL, so the launch rule
(:func:`kernels.common.launch.run_threaded`) spreads a half-step over Python threads: each worker
claims chunks of rows with an atomic fetch-and-add and each row is solved by one thread only, so
the factors are bit-identical for any thread count.

Floating-point order is fixed in the source (no fast-math): the row solver is C with vector
extensions (``cg_row.h``), which sums every dot product in eight lanes and a fixed tree, and is
compiled twice, for AVX2 and for baseline x86-64, both giving the same bits.
"""
from cython cimport floating
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

import numpy as np

cimport numpy as cnp

cnp.import_array()

include "_dense.pxi"



cdef extern from "cg_row.h" nogil:
    # the row solver in C (vector extensions, compiled for AVX2 and baseline x86-64)
    void fe_cg_row_f32(float* Xu, const float* Y, const float* A0, const int64_t* idx,
                       const float* conf, int64_t start, int64_t end, int cg_steps,
                       float* scratch, Py_ssize_t f)
    void fe_cg_row_f64(double* Xu, const double* Y, const double* A0, const int64_t* idx,
                       const double* conf, int64_t start, int64_t end, int cg_steps,
                       double* scratch, Py_ssize_t f)
    void fe_gram_f32(const float* Y, int64_t start, int64_t end, Py_ssize_t f, double* G,
                     double* rows)
    void fe_gram_f64(const double* Y, int64_t start, int64_t end, Py_ssize_t f, double* G,
                     double* rows)


cdef inline void _cg_row(floating* Xu, const floating* Y, const floating* A0, const int64_t* idx,
                         const floating* conf, int64_t start, int64_t end, int cg_steps,
                         floating* scratch, Py_ssize_t f) noexcept nogil:
    if floating is float:
        fe_cg_row_f32(Xu, Y, A0, idx, conf, start, end, cg_steps, scratch, f)
    else:
        fe_cg_row_f64(Xu, Y, A0, idx, conf, start, end, cg_steps, scratch, f)


def cg_half_worker(const int64_t[::1] indptr, const int64_t[::1] indices,
                   const floating[::1] conf, floating[:, ::1] X, const floating[:, ::1] Y,
                   const floating[:, ::1] A0, int cg_steps, const int64_t[::1] bounds,
                   const int64_t[::1] order, int64_t[::1] next_chunk):
    """One worker of a CG half-step: claims chunks ``order[c]`` (rows ``bounds[ch]`` to
    ``bounds[ch + 1]``) through the shared counter ``next_chunk[0]`` until none are left and
    updates those rows of ``X`` in place (see :func:`kernels.recommend.als.als_cg_half`)."""
    cdef Py_ssize_t f = X.shape[1]
    cdef Py_ssize_t n_chunks = order.shape[0]
    if n_chunks == 0 or f == 0:
        return
    cdef floating* scratch = <floating*> malloc(4 * f * sizeof(floating))
    if scratch == NULL:
        raise MemoryError()
    cdef floating* Xp = &X[0, 0]
    cdef const floating* Yp = &Y[0, 0] if Y.shape[0] else NULL
    cdef const int64_t* idx = &indices[0] if indices.shape[0] else NULL
    cdef const floating* cp = &conf[0] if conf.shape[0] else NULL
    cdef long long* counter = <long long*> &next_chunk[0]
    cdef int64_t c, ch, u
    with nogil:
        c = fe_fetch_add(counter, 1)
        while c < n_chunks:
            ch = order[c]
            for u in range(bounds[ch], bounds[ch + 1]):
                _cg_row(Xp + u * f, Yp, &A0[0, 0], idx, cp, indptr[u], indptr[u + 1], cg_steps,
                        scratch, f)
            c = fe_fetch_add(counter, 1)
    free(scratch)


def gram(const floating[:, ::1] Y):
    """``Y^T Y`` as float64[f, f]: every product exact in double, added in row order.

    Why not BLAS: the Gram matrix of every ALS half-step through a multi-threaded BLAS took
    0.75 s of CPU (2.6 s wall) for 50,000 x 64 on a busy 2-core machine against 8 ms on one
    thread, and limiting the BLAS's threads is process-wide state a library must not touch.
    This loop is single-threaded, GIL-free and gives the same bits everywhere.
    """
    cdef Py_ssize_t n = Y.shape[0], f = Y.shape[1]
    G_arr = np.zeros((f, f), np.float64)
    if n == 0 or f == 0:
        return G_arr
    cdef double[:, ::1] G = G_arr
    cdef double* rows = <double*> malloc(4 * f * sizeof(double))
    if rows == NULL:
        raise MemoryError()
    with nogil:
        if floating is float:
            fe_gram_f32(&Y[0, 0], 0, n, f, &G[0, 0], rows)
        else:
            fe_gram_f64(&Y[0, 0], 0, n, f, &G[0, 0], rows)
    free(rows)
    return G_arr


# -- events to CSR ------------------------------------------------------------------------------
def coo_to_csr(const int64_t[::1] rows, const int64_t[::1] cols, const double[::1] weights,
               Py_ssize_t n_rows):
    """Group events by (row, col): summed weights and event counts, as CSR with sorted indices.

    Two stable counting sorts (by column, then by row), so equal (row, col) events are summed
    in input order. ``0 <= rows < n_rows`` and ``cols >= 0`` (the caller's codes).
    Returns ``indptr`` int64[n_rows + 1], ``indices`` int64[nnz], ``sums`` float64[nnz],
    ``counts`` int64[nnz].
    """
    cdef Py_ssize_t n = rows.shape[0], k, r
    cdef int64_t n_cols = 0, p, prev, q
    for k in range(n):
        if cols[k] + 1 > n_cols:
            n_cols = cols[k] + 1
    by_col = np.zeros(n_cols + 1, np.int64)
    start_arr = np.zeros(n_rows + 1, np.int64)
    tmp_arr = np.empty(n, np.int64)
    perm_arr = np.empty(n, np.int64)
    indptr_arr = np.zeros(n_rows + 1, np.int64)
    cdef int64_t[::1] cstart = by_col, start = start_arr, tmp = tmp_arr, perm = perm_arr
    cdef int64_t[::1] indptr = indptr_arr
    with nogil:
        for k in range(n):
            cstart[cols[k] + 1] += 1
        for p in range(n_cols):
            cstart[p + 1] += cstart[p]
        for k in range(n):  # events in column order, input order among equal columns
            tmp[cstart[cols[k]]] = k
            cstart[cols[k]] += 1
        for k in range(n):
            start[rows[k] + 1] += 1
        for r in range(n_rows):
            start[r + 1] += start[r]
        for k in range(n):  # then stably by row: (row, col, input position) order
            p = tmp[k]
            perm[start[rows[p]]] = p
            start[rows[p]] += 1
        # start[r] is now the end of row r; count distinct columns per row
        p = 0
        for r in range(n_rows):
            prev = -1
            q = 0
            while p < start[r]:
                if cols[perm[p]] != prev:
                    q += 1
                    prev = cols[perm[p]]
                p += 1
            indptr[r + 1] = indptr[r] + q
    nnz = indptr_arr[n_rows]
    indices_arr = np.empty(nnz, np.int64)
    sums_arr = np.zeros(nnz, np.float64)
    counts_arr = np.zeros(nnz, np.int64)
    cdef int64_t[::1] indices = indices_arr, counts = counts_arr
    cdef double[::1] sums = sums_arr
    with nogil:
        p = 0
        for r in range(n_rows):
            q = indptr[r] - 1
            prev = -1
            while p < start[r]:
                k = perm[p]
                if cols[k] != prev:
                    q += 1
                    indices[q] = cols[k]
                    prev = cols[k]
                sums[q] += weights[k]
                counts[q] += 1
                p += 1
    return indptr_arr, indices_arr, sums_arr, counts_arr
