"""Implicit-feedback ALS kernels (Hu, Koren & Volinsky 2008), one half-step at a time.

Conventions follow the ``implicit`` library so that the same hyper-parameters give the same
model: the stored value ``c`` of entry (u, i) is the confidence (already multiplied by alpha),
the preference is ``p_ui = 1`` for every stored entry and 0 elsewhere, and unstored entries have
confidence 1. For user u the normal equations (paper eq. 4) are

    (Y^T Y + lambda I + sum_{i in I(u)} (c_ui - 1) y_i y_i^T) x_u = sum_{i in I(u)} c_ui y_i,

solved either exactly (Cholesky) or by a few warm-started conjugate-gradient steps (Takacs,
Pilaszy & Tikk 2011, "Applications of the conjugate gradient method for implicit feedback
collaborative filtering"). The same kernels solve the item side with the transposed matrix.

Rows are processed in chunks of about equal cost, claimed dynamically by the workers
(:mod:`rec_sched`), with the scratch vectors allocated once per worker. The row loops index the
factor matrices as ``Y[i, a]`` and inline every helper: a row view (``Y[i]``) or a call taking an
array would increment and decrement the reference count of the array's shared meminfo, an atomic
on one cache line that both cores then fight over, several times per row.
"""
import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from ..common.launch import parallel_kernel, resolve_threads
from ..common.sched import CHUNKS_PER_WORKER, cost_chunks, fetch_add

# Reassociation lets LLVM vectorise the length-f dot products and axpys; the result differs from
# the strict-order sum only by rounding, well inside the CG-vs-Cholesky tolerance.
_INLINE = dict(NJIT, fastmath=True, inline="always")


@njit(**_INLINE)
def _row_cost(f):
    """Dense work of one row (the f x f products with A0) in units of one stored entry."""
    return max(1, f // 4)


@njit(**_INLINE)
def _dot(a, b):
    s = a.dtype.type(0.0)
    for k in range(a.size):
        s += a[k] * b[k]
    return s


@njit(**_INLINE)
def _symv(A, v, out):
    # A is symmetric: out = A v accumulated column by column (vertical FMAs, no horizontal
    # reductions)
    f = v.size
    for a in range(f):
        out[a] = 0
    for b in range(f):
        vb = v[b]
        for a in range(f):
            out[a] += vb * A[b, a]


@njit(**_INLINE)
def _weight(c, d, residual):
    return c - (c - 1) * d if residual else (c - 1) * d


@njit(**_INLINE)
def _sparse_apply(Y, indices, conf, start, end, v, out, residual):
    """``out += sum_k w_k y_k`` over the row's stored entries, with
    ``w_k = (c_k - 1) (y_k . v)`` (the CG product) or, when ``residual``,
    ``w_k = c_k - (c_k - 1) (y_k . v)`` (the right-hand side minus the product).

    Entries go eight (then four) at a time: the dot products are independent chains, so their
    horizontal reductions and the cache misses on the rows of ``Y`` overlap instead of
    serialising, and ``out`` is loaded and stored once per group instead of once per entry.
    """
    f = v.size
    k = start
    while k + 8 <= end:
        i0 = indices[k]
        i1 = indices[k + 1]
        i2 = indices[k + 2]
        i3 = indices[k + 3]
        i4 = indices[k + 4]
        i5 = indices[k + 5]
        i6 = indices[k + 6]
        i7 = indices[k + 7]
        d0 = d1 = d2 = d3 = d4 = d5 = d6 = d7 = v.dtype.type(0.0)
        for a in range(f):
            va = v[a]
            d0 += Y[i0, a] * va
            d1 += Y[i1, a] * va
            d2 += Y[i2, a] * va
            d3 += Y[i3, a] * va
            d4 += Y[i4, a] * va
            d5 += Y[i5, a] * va
            d6 += Y[i6, a] * va
            d7 += Y[i7, a] * va
        w0 = _weight(conf[k], d0, residual)
        w1 = _weight(conf[k + 1], d1, residual)
        w2 = _weight(conf[k + 2], d2, residual)
        w3 = _weight(conf[k + 3], d3, residual)
        w4 = _weight(conf[k + 4], d4, residual)
        w5 = _weight(conf[k + 5], d5, residual)
        w6 = _weight(conf[k + 6], d6, residual)
        w7 = _weight(conf[k + 7], d7, residual)
        for a in range(f):
            out[a] += (w0 * Y[i0, a] + w1 * Y[i1, a] + w2 * Y[i2, a] + w3 * Y[i3, a]) + \
                (w4 * Y[i4, a] + w5 * Y[i5, a] + w6 * Y[i6, a] + w7 * Y[i7, a])
        k += 8
    while k + 4 <= end:
        i0 = indices[k]
        i1 = indices[k + 1]
        i2 = indices[k + 2]
        i3 = indices[k + 3]
        d0 = d1 = d2 = d3 = v.dtype.type(0.0)
        for a in range(f):
            va = v[a]
            d0 += Y[i0, a] * va
            d1 += Y[i1, a] * va
            d2 += Y[i2, a] * va
            d3 += Y[i3, a] * va
        w0 = _weight(conf[k], d0, residual)
        w1 = _weight(conf[k + 1], d1, residual)
        w2 = _weight(conf[k + 2], d2, residual)
        w3 = _weight(conf[k + 3], d3, residual)
        for a in range(f):
            out[a] += w0 * Y[i0, a] + w1 * Y[i1, a] + w2 * Y[i2, a] + w3 * Y[i3, a]
        k += 4
    while k < end:
        i0 = indices[k]
        d = v.dtype.type(0.0)
        for a in range(f):
            d += Y[i0, a] * v[a]
        w = _weight(conf[k], d, residual)
        for a in range(f):
            out[a] += w * Y[i0, a]
        k += 1


@njit(**_INLINE)
def _cg_row(X, u, Y, A0, indices, conf, start, end, cg_steps, x, r, p, ap):
    """``cg_steps`` conjugate-gradient steps on row u's normal equations, from ``X[u]``."""
    f = x.size
    if start == end:
        # no interactions: the exact solution is 0 (b = 0), which is also what implicit stores
        for a in range(f):
            X[u, a] = 0
        return
    for a in range(f):
        x[a] = X[u, a]
    # r = b - A x with A = A0 + sum (c-1) y y^T and b = sum c y
    _symv(A0, x, r)
    for a in range(f):
        r[a] = -r[a]
    _sparse_apply(Y, indices, conf, start, end, x, r, True)
    for a in range(f):
        p[a] = r[a]
    rsold = _dot(r, r)
    if rsold >= 1e-20:
        for _ in range(cg_steps):
            _symv(A0, p, ap)
            _sparse_apply(Y, indices, conf, start, end, p, ap, False)
            alpha = rsold / _dot(p, ap)
            for a in range(f):
                x[a] += alpha * p[a]
                r[a] -= alpha * ap[a]
            rsnew = _dot(r, r)
            if rsnew < 1e-20:
                break
            beta = rsnew / rsold
            for a in range(f):
                p[a] = r[a] + beta * p[a]
            rsold = rsnew
    for a in range(f):
        X[u, a] = x[a]


def als_cg_half(indptr, indices, conf, X, Y, A0, cg_steps, n_threads=None):
    """One conjugate-gradient half-step: update every row of ``X`` in place.

    Parameters
    ----------
    indptr : int64[n_rows + 1], indices : int64[nnz], conf : float[nnz]
        CSR rows of confidences (alpha already applied), one row per row of ``X``.
    X : float[n_rows, f]
        Factors being solved for; the current value is the CG starting point (warm start).
    Y : float[n_cols, f]
        Fixed factors of the other side.
    A0 : float[f, f]
        ``Y^T Y + lambda I``.
    cg_steps : int
        Conjugate-gradient steps per row (implicit uses 3).
    n_threads : int, optional
        Threads (see :func:`kernels.common.launch.resolve_threads`); rows are solved
        independently, so the result does not depend on it.
    """
    _cg_half(indptr, indices, conf, X, Y, A0, cg_steps, resolve_threads(n_threads),
             n_threads=n_threads)


@parallel_kernel(fastmath=True)
def _cg_half(indptr, indices, conf, X, Y, A0, cg_steps, workers):
    n_rows, f = X.shape
    bounds, order = cost_chunks(indptr, _row_cost(f), workers * CHUNKS_PER_WORKER)
    n_chunks = order.size
    next_chunk = np.zeros(1, np.int64)
    for _w in prange(workers):
        x = np.empty(f, X.dtype)
        r = np.empty(f, X.dtype)
        p = np.empty(f, X.dtype)
        ap = np.empty(f, X.dtype)
        c = fetch_add(next_chunk, 1)
        while c < n_chunks:
            ch = order[c]
            for u in range(bounds[ch], bounds[ch + 1]):
                _cg_row(X, u, Y, A0, indices, conf, indptr[u], indptr[u + 1], cg_steps,
                        x, r, p, ap)
            c = fetch_add(next_chunk, 1)


@njit(**_INLINE)
def _cholesky_solve(A, b, x):
    # In-place Cholesky A = L L^T (lower triangle of A), then two triangular solves into x.
    f = b.size
    for j in range(f):
        s = A[j, j]
        for k in range(j):
            s -= A[j, k] * A[j, k]
        d = np.sqrt(s)
        A[j, j] = d
        for i in range(j + 1, f):
            s = A[i, j]
            for k in range(j):
                s -= A[i, k] * A[j, k]
            A[i, j] = s / d
    for i in range(f):
        s = b[i]
        for k in range(i):
            s -= A[i, k] * x[k]
        x[i] = s / A[i, i]
    for i in range(f - 1, -1, -1):
        s = x[i]
        for k in range(i + 1, f):
            s -= A[k, i] * x[k]
        x[i] = s / A[i, i]


def als_cholesky_half(indptr, indices, conf, X, Y, A0, n_threads=None):
    """Exact half-step: solve the normal equations of every row of ``X`` by Cholesky.

    Same arguments as :func:`als_cg_half`; the current ``X`` is ignored and overwritten.
    Linear algebra runs in float64 whatever the factor dtype, so that this is the reference
    the CG solver is compared with.
    """
    _cholesky_half(indptr, indices, conf, X, Y, A0, resolve_threads(n_threads),
                   n_threads=n_threads)


@parallel_kernel(fastmath=True)
def _cholesky_half(indptr, indices, conf, X, Y, A0, workers):
    n_rows, f = X.shape
    # forming A costs about f^2 / 2 per stored entry and the solve f^3 / 3 per row
    bounds, order = cost_chunks(indptr, max(1, (2 * f) // 3), workers * CHUNKS_PER_WORKER)
    n_chunks = order.size
    next_chunk = np.zeros(1, np.int64)
    for _w in prange(workers):
        A = np.empty((f, f), np.float64)
        b = np.empty(f, np.float64)
        x = np.empty(f, np.float64)
        y = np.empty(f, np.float64)
        c = fetch_add(next_chunk, 1)
        while c < n_chunks:
            ch = order[c]
            for u in range(bounds[ch], bounds[ch + 1]):
                for i in range(f):
                    b[i] = 0.0
                    for j in range(f):
                        A[i, j] = A0[i, j]
                for k in range(indptr[u], indptr[u + 1]):
                    cu = np.float64(conf[k])
                    item = indices[k]
                    for i in range(f):
                        y[i] = Y[item, i]
                    for i in range(f):
                        ci = (cu - 1.0) * y[i]
                        b[i] += cu * y[i]
                        for j in range(i + 1):
                            A[i, j] += ci * y[j]
                _cholesky_solve(A, b, x)
                for i in range(f):
                    X[u, i] = x[i]
            c = fetch_add(next_chunk, 1)


@parallel_kernel(fastmath=True)
def als_loss(indptr, indices, conf, X, Y, YtY, regularization):
    """The objective of paper eq. 3 with implicit's confidence convention (float64 sum).

    ``sum_{u,i} c_ui (p_ui - x_u^T y_i)^2 + lambda (sum |x_u|^2 + sum |y_i|^2)``, where the
    sum over all (u, i) is ``x_u^T (Y^T Y) x_u`` plus a correction on stored entries.
    """
    n_rows, f = X.shape
    n_cols = Y.shape[0]
    # per-row parts, summed serially in row order below: the same bits for any thread count
    row_parts = np.empty(n_rows)
    col_parts = np.empty(n_cols)
    for u in prange(n_rows):
        # X[u, a] and Y[i, a], not row views: a view per row would be an atomic reference
        # count update on memory shared by all threads
        part = 0.0
        for a in range(f):
            s = 0.0
            for b in range(f):
                s += np.float64(YtY[a, b]) * np.float64(X[u, b])
            part += s * np.float64(X[u, a])
            part += regularization * np.float64(X[u, a]) * np.float64(X[u, a])
        for k in range(indptr[u], indptr[u + 1]):
            i = indices[k]
            s = 0.0
            for a in range(f):
                s += np.float64(X[u, a]) * np.float64(Y[i, a])
            c = np.float64(conf[k])
            part += c * (1.0 - s) * (1.0 - s) - s * s
        row_parts[u] = part
    for i in prange(n_cols):
        s = 0.0
        for a in range(f):
            s += np.float64(Y[i, a]) * np.float64(Y[i, a])
        col_parts[i] = s
    total = 0.0
    for u in range(n_rows):
        total += row_parts[u]
    reg_items = 0.0
    for i in range(n_cols):
        reg_items += col_parts[i]
    return total + regularization * reg_items
