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

Floating-point order is fixed in the source (no fast-math): the length-f dot products use eight
independent partial sums, which the C compiler vectorises without reassociating anything.
"""
from cython cimport floating
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

import numpy as np

cimport numpy as cnp

cnp.import_array()

include "_dense.pxi"



cdef inline void _symv(const floating* A, const floating* v, floating* out,
                       Py_ssize_t f) noexcept nogil:
    # A symmetric: out = A v, column by column (vertical multiply-adds, no reductions)
    cdef Py_ssize_t a, b
    cdef floating vb
    for a in range(f):
        out[a] = 0
    for b in range(f):
        vb = v[b]
        for a in range(f):
            out[a] += vb * A[b * f + a]


cdef void _sparse_apply(const floating* Y, const int64_t* idx, const floating* conf,
                        int64_t start, int64_t end, const floating* v, floating* out,
                        Py_ssize_t f, bint residual) noexcept nogil:
    # out += sum_k w_k y_k over the row's entries, w_k = (c_k - 1)(y_k . v), or with `residual`
    # w_k = c_k - (c_k - 1)(y_k . v): per entry one vectorised dot product and one axpy
    cdef const floating* row
    cdef floating c, d, w
    cdef int64_t k
    cdef Py_ssize_t a
    for k in range(start, end):
        row = Y + idx[k] * f
        d = _dot(row, v, f)
        c = conf[k]
        w = c - (c - 1) * d if residual else (c - 1) * d
        for a in range(f):
            out[a] += w * row[a]


cdef void _cg_row(floating* Xu, const floating* Y, const floating* A0, const int64_t* idx,
                  const floating* conf, int64_t start, int64_t end, int cg_steps,
                  floating* x, floating* r, floating* p, floating* ap,
                  Py_ssize_t f) noexcept nogil:
    # cg_steps conjugate-gradient steps on one row's normal equations, warm-started from Xu
    cdef Py_ssize_t a
    cdef int step
    cdef floating rsold, rsnew, alpha, beta
    if start == end:
        for a in range(f):  # no interactions: the exact solution is 0 (b = 0), as implicit
            Xu[a] = 0
        return
    for a in range(f):
        x[a] = Xu[a]
    _symv(A0, x, r, f)  # r = b - A x, A = A0 + sum (c-1) y y^T, b = sum c y
    for a in range(f):
        r[a] = -r[a]
    _sparse_apply(Y, idx, conf, start, end, x, r, f, True)
    for a in range(f):
        p[a] = r[a]
    rsold = _dot(r, r, f)
    if rsold >= 1e-20:
        for step in range(cg_steps):
            _symv(A0, p, ap, f)
            _sparse_apply(Y, idx, conf, start, end, p, ap, f, False)
            alpha = rsold / _dot(p, ap, f)
            for a in range(f):
                x[a] += alpha * p[a]
                r[a] -= alpha * ap[a]
            rsnew = _dot(r, r, f)
            if rsnew < 1e-20:
                break
            beta = rsnew / rsold
            for a in range(f):
                p[a] = r[a] + beta * p[a]
            rsold = rsnew
    for a in range(f):
        Xu[a] = x[a]


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
                        scratch, scratch + f, scratch + 2 * f, scratch + 3 * f, f)
            c = fe_fetch_add(counter, 1)
    free(scratch)


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
