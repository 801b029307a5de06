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
(:mod:`kernels.common.sched`), with the scratch vectors allocated once per worker. The CG
solver, on every fit's path, is compiled ahead of time (:mod:`kernels.recommend.fit_native`);
the exact Cholesky solver (fold-in, forget, ``solver="cholesky"``) is a Numba kernel whose row
loop indexes the factor matrices as ``Y[i, a]``: a row view (``Y[i]``) would increment and
decrement the reference count of the array's shared meminfo, an atomic on one cache line that
both cores then fight over, several times per row.
"""
import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from ..common.launch import parallel_kernel, resolve_threads, run_threaded
from ..common.linalg import solve_factored
from ..common.sched import CHUNKS_PER_WORKER, cost_chunks, fetch_add
from .fit_native import cg_half_worker, gram  # noqa: F401  (gram: the API's Y^T Y)

_INLINE = dict(NJIT, fastmath=True, inline="always")


def _plan(indptr, row_cost, n_threads):
    """Chunks of rows of about equal cost and the order to claim them (see kernels.common.sched),
    for ``resolve_threads(n_threads)`` workers; returns ``(workers, bounds, order)``."""
    workers = resolve_threads(n_threads)
    bounds, order = cost_chunks(indptr, row_cost, workers * CHUNKS_PER_WORKER)
    return workers, bounds, order


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

    The row solver is compiled ahead of time (:mod:`kernels.recommend.fit_native`, no JIT on
    a first fit); a row costs its entries plus ``f / 4`` entries' worth of dense work.
    """
    _, bounds, order = _plan(indptr, max(1, X.shape[1] // 4), n_threads)
    next_chunk = np.zeros(1, np.int64)
    run_threaded(lambda: cg_half_worker(indptr, indices, conf, X, Y, A0, cg_steps, bounds,
                                        order, next_chunk), n_threads)


@njit(**_INLINE)
def _cholesky_solve(A, b, x):
    # In-place Cholesky A = L L^T (lower triangle of A), then the two triangular solves into x.
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
    solve_factored(A, b, x)


def als_cholesky_half(indptr, indices, conf, X, Y, A0, n_threads=None):
    """Exact half-step: solve the normal equations of every row of ``X`` by Cholesky.

    Same arguments as :func:`als_cg_half`; the current ``X`` is ignored and overwritten.
    Linear algebra runs in float64 whatever the factor dtype, so that this is the reference
    the CG solver is compared with.
    """
    # forming A costs about f^2 / 2 per stored entry and the solve f^3 / 3 per row
    workers, bounds, order = _plan(indptr, max(1, (2 * X.shape[1]) // 3), n_threads)
    _cholesky_half(indptr, indices, conf, X, Y, A0, bounds, order, workers, n_threads=n_threads)


@parallel_kernel(fastmath=True)
def _cholesky_half(indptr, indices, conf, X, Y, A0, bounds, order, workers):
    n_rows, f = X.shape
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
