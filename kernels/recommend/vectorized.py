"""Pure-NumPy (no Numba) versions of the recommend kernels: the documented fallback selected
with ``use_native=False``.

They are vectorised over all rows at once (lock-step CG over every customer, batched Cholesky
solves, lexsort top-N) so they stay usable on small and medium data, and they are the second
opinion the native kernels are tested against. Same arguments and results as the native kernels
(``n_threads`` is accepted and ignored: NumPy runs on the calling thread). NumPy only: sparse
products are segment sums over the CSR rows (``np.add.reduceat``).
"""
import numpy as np

#: Entries of the (pairs x f x f) products formed at once by the Cholesky fallback.
_CHOLESKY_BUDGET = 4_000_000


def _rows(indptr):
    return np.repeat(np.arange(indptr.size - 1), np.diff(indptr))


def _row_sums(indptr, values):
    """``out[u] = sum(values[indptr[u]:indptr[u + 1]])`` along axis 0 (zeros for empty rows)."""
    out = np.zeros((indptr.size - 1,) + values.shape[1:], np.float64)
    nonempty = np.diff(indptr) > 0
    if nonempty.any():
        out[nonempty] = np.add.reduceat(values, indptr[:-1][nonempty], axis=0)
    return out


def gram(Y):
    """``Y^T Y`` in float64 (NumPy's BLAS)."""
    return Y.T.astype(np.float64) @ Y.astype(np.float64)


def als_cg_half(indptr, indices, conf, X, Y, A0, cg_steps, n_threads=None):
    """Lock-step version of :func:`fastengage.kernels.recommend.als.als_cg_half` (updates X)."""
    cm1 = (conf - 1).astype(np.float64)
    rows = _rows(indptr)
    Yd = Y.astype(np.float64)
    Yn = Yd[indices]

    def apply(V):
        # sum_i (c_ui - 1) (y_i . v_u) y_i for every row u, without forming Y^T C_u Y
        d = cm1 * np.einsum("ij,ij->i", Yn, V[rows])
        return _row_sums(indptr, d[:, None] * Yn)

    A0d = A0.astype(np.float64)
    x = X.astype(np.float64)
    r = _row_sums(indptr, conf.astype(np.float64)[:, None] * Yn) - x @ A0d - apply(x)
    p = r.copy()
    rsold = np.einsum("ij,ij->i", r, r)
    active = rsold >= 1e-20
    for _ in range(cg_steps):
        if not active.any():
            break
        ap = p @ A0d + apply(p)
        pap = np.einsum("ij,ij->i", p, ap)
        alpha = np.where(active, rsold / np.where(active, pap, 1.0), 0.0)
        x += alpha[:, None] * p
        r -= alpha[:, None] * ap
        rsnew = np.einsum("ij,ij->i", r, r)
        still = active & (rsnew >= 1e-20)
        beta = np.where(still, rsnew / np.where(active, rsold, 1.0), 0.0)
        p = np.where(still[:, None], r + beta[:, None] * p, p)
        rsold = np.where(still, rsnew, rsold)
        active = still
    x[np.diff(indptr) == 0] = 0.0  # empty rows: exact solution 0, as the native kernel
    X[:] = x.astype(X.dtype)


def als_cholesky_half(indptr, indices, conf, X, Y, A0, n_threads=None):
    """Batched exact solve of every row's normal equations (updates X)."""
    n_rows, f = X.shape
    Yd = Y.astype(np.float64)
    c = conf.astype(np.float64)
    s = 0
    while s < n_rows:
        # rows s..e-1, holding at most _CHOLESKY_BUDGET / f^2 pairs (at least one row)
        limit = indptr[s] + max(1, _CHOLESKY_BUDGET // (f * f))
        e = max(s + 1, int(np.searchsorted(indptr, limit, side="right")) - 1)
        e = min(e, n_rows)
        a, b = indptr[s], indptr[e]
        local = indptr[s:e + 1] - a
        Yn = Yd[indices[a:b]]
        outer = (c[a:b] - 1)[:, None, None] * Yn[:, :, None] * Yn[:, None, :]
        A = A0.astype(np.float64)[None] + _row_sums(local, outer)
        rhs = _row_sums(local, c[a:b, None] * Yn)
        X[s:e] = np.linalg.solve(A, rhs[..., None])[..., 0].astype(X.dtype)
        s = e


def als_loss(indptr, indices, conf, X, Y, YtY, regularization, n_threads=None):
    """Same objective as :func:`fastengage.kernels.recommend.als.als_loss`."""
    Xd = X.astype(np.float64)
    Yd = Y.astype(np.float64)
    rows = _rows(indptr)
    s = np.einsum("ij,ij->i", Xd[rows], Yd[indices])
    c = conf.astype(np.float64)
    total = np.einsum("ij,jk,ik->", Xd, YtY.astype(np.float64), Xd)
    total += np.sum(c * (1 - s) ** 2 - s * s)
    return float(total + regularization * (np.sum(Xd * Xd) + np.sum(Yd * Yd)))


def topn_block(scores, rows, seen_indptr, seen_indices, allowed, use_allowed, tb, n,
               out_idx, out_score, out_count):
    """Lexsort version of :func:`fastengage.kernels.recommend.topn.topn_block`."""
    B, I = scores.shape
    valid = ~np.isnan(scores)
    if use_allowed:
        valid &= allowed.astype(bool)[None, :]
    has = np.nonzero(rows >= 0)[0]
    if has.size:
        starts = seen_indptr[rows[has]]
        lens = seen_indptr[rows[has] + 1] - starts
        owner = np.repeat(has, lens)
        offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        valid[owner, seen_indices[np.repeat(starts, lens) + offs]] = False
    key = np.where(valid, scores.astype(np.float64), -np.inf)
    order = np.lexsort((np.broadcast_to(tb, (B, I)), -key), axis=-1)[:, :n]
    count = np.minimum(valid.sum(axis=1), n)
    m = order.shape[1]
    keep = np.arange(m)[None, :] < count[:, None]
    out_idx[:] = -1
    out_score[:] = np.nan
    out_idx[:, :m] = np.where(keep, order, -1)
    out_score[:, :m] = np.where(keep, np.take_along_axis(scores, order, axis=1), np.nan)
    out_count[:] = count
