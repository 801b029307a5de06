"""Pure-NumPy (no Numba) versions of the recommend kernels, used with ``use_native=False``.

They are vectorised over all rows at once (lock-step CG over every customer, batched Cholesky
solves, lexsort top-N) so they stay usable on small and medium data, and they are the second
opinion the native kernels are tested against. Same arguments and results as the native kernels.
"""
import numpy as np
import scipy.sparse as sp


def _rows(indptr):
    return np.repeat(np.arange(indptr.size - 1), np.diff(indptr))


def als_cg_half(indptr, indices, conf, X, Y, A0, cg_steps):
    """Lock-step version of :func:`fastengage.kernels.recommend.als.als_cg_half` (updates X)."""
    n_rows = X.shape[0]
    shape = (n_rows, Y.shape[0])
    Cm1 = sp.csr_matrix(((conf - 1).astype(np.float64), indices, indptr), shape=shape)
    C = sp.csr_matrix((conf.astype(np.float64), indices, indptr), shape=shape)
    rows = _rows(indptr)
    Yd = Y.astype(np.float64)
    Yn = Yd[indices]

    def apply(V):
        # sum_i (c_ui - 1) (y_i . v_u) y_i for every row u, without forming Y^T C_u Y
        d = Cm1.data * np.einsum("ij,ij->i", Yn, V[rows])
        return sp.csr_matrix((d, indices, indptr), shape=shape) @ Yd

    A0d = A0.astype(np.float64)
    x = X.astype(np.float64)
    r = C @ Yd - x @ A0d - apply(x)
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


def als_cholesky_half(indptr, indices, conf, X, Y, A0):
    """Batched exact solve of every row's normal equations (updates X)."""
    n_rows, f = X.shape
    shape = (n_rows, Y.shape[0])
    Yd = Y.astype(np.float64)
    YY = np.einsum("if,ig->ifg", Yd, Yd).reshape(Y.shape[0], f * f)
    Cm1 = sp.csr_matrix(((conf - 1).astype(np.float64), indices, indptr), shape=shape)
    C = sp.csr_matrix((conf.astype(np.float64), indices, indptr), shape=shape)
    step = max(1, 2_000_000 // (f * f))
    for s in range(0, n_rows, step):
        e = min(n_rows, s + step)
        A = A0.astype(np.float64)[None] + np.asarray(Cm1[s:e] @ YY).reshape(e - s, f, f)
        b = np.asarray(C[s:e] @ Yd)
        X[s:e] = np.linalg.solve(A, b[..., None])[..., 0].astype(X.dtype)


def als_loss(indptr, indices, conf, X, Y, YtY, regularization):
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
