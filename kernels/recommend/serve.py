"""Single-customer serving for the matrix-factorisation models: one nogil call per request.

A service answering one customer per request from many threads needs the whole request to run
without the GIL, or its threads queue behind each other. :func:`mf_topn_int` and
:func:`mf_topn_str` do everything in one compiled call: find the customer's code from the id
(binary search in a sorted copy of the ids), score the items, skip the seen ones and keep the
best ``n`` — the caller only converts the id and wraps the result.

One customer's scores are a matrix-vector product that has to read every item factor (5 MB
for 20k items x 64 float32 factors), so a plain scan is bound by memory bandwidth, which the
cores share. :func:`mf_topn_row` reads a compact bound per item (k + 1 floats) and scores
exactly only the items whose bound can reach the top n (see its docstring). Order and
candidates are those of :mod:`rec_topn` (higher score first, equal scores by lower
``tiebreak``, NaN never returned, seen items never returned).
"""
import numpy as np
from numba import njit

from ..common.config import NJIT
from .csr import contains_sorted
from .topn import _sift_down, _sift_up, drain_heap

_FAST = dict(NJIT, fastmath=True)

#: Bounds are computed in slices of this many items (a slice stays in L1).
SLICE = 256


@njit(**NJIT)
def find_int(sorted_keys, key_codes, key):
    """Code of integer id ``key`` (-1 if absent): binary search in ``sorted_keys`` (int64,
    ascending), ``key_codes[k]`` being the code of ``sorted_keys[k]``."""
    lo = 0
    hi = sorted_keys.size
    while lo < hi:
        mid = (lo + hi) >> 1
        v = sorted_keys[mid]
        if v < key:
            lo = mid + 1
        elif v > key:
            hi = mid
        else:
            return key_codes[mid]
    return -1


@njit(**NJIT)
def _compare_bytes(data, start, end, key):
    # -1, 0, 1 as data[start:end] is below, equal to or above key (unsigned bytes, then length)
    m = min(end - start, key.size)
    for k in range(m):
        a = data[start + k]
        b = key[k]
        if a != b:
            return -1 if a < b else 1
    if end - start == key.size:
        return 0
    return -1 if end - start < key.size else 1


@njit(**NJIT)
def find_str(offsets, data, order, key):
    """Code of string id ``key`` (its UTF-8 bytes, uint8) or -1: binary search over the ids
    ``data[offsets[c]:offsets[c + 1]]``, visited in ``order`` (codes sorted by their bytes)."""
    lo = 0
    hi = order.size
    while lo < hi:
        mid = (lo + hi) >> 1
        c = order[mid]
        cmp = _compare_bytes(data, offsets[c], offsets[c + 1], key)
        if cmp < 0:
            lo = mid + 1
        elif cmp > 0:
            hi = mid
        else:
            return c
    return -1


@njit(**_FAST)
def mf_topn_row(row, U, V, proj, proj_T, resid, sorted_norms, perm, slack, seen_indptr,
                seen_indices, tb, item_out, exclude_seen, out_idx, out_score):
    """Exact top-n items of customer ``row``; returns how many were written (n = out size).

    Items are visited in decreasing-norm order, a slice of ``SLICE`` at a time. Two bounds
    skip work, both exact (an item they skip could not enter the top n):

    * before a slice: no later item can score above ``|x| * norm * slack``, so the scan stops
      once the n-th best kept score beats that;
    * per item: with ``P`` the top principal directions of the item factors, ``x . y`` is at
      most ``(P^T x) . (P^T y) + |x - P P^T x| * |y - P P^T y|`` (Cauchy-Schwarz on the
      residuals), plus ``(slack - 1) |x| |y|`` for rounding. Only items whose bound reaches the
      n-th best score are scored exactly; the bound reads ``k + 1`` floats per item instead of
      ``f``.

    Parameters
    ----------
    row : int
        The customer's code (row of ``U`` and of the seen CSR).
    U : float[n_customers, f]
        Customer factors (float32 or float64; scores are computed in this type).
    V : float[n_items, f]
        Item factors, rows by item code.
    proj : float64[f, k]
        Orthonormal columns ``P``.
    proj_T : float[k, n_items]
        ``P^T y`` of every item, columns in decreasing-norm order.
    resid : float[n_items]
        ``|y - P P^T y|`` of every item (rounded up), decreasing-norm order.
    sorted_norms : float64[n_items]
        ``|y|`` in decreasing-norm order (non-increasing).
    perm : int64[n_items]
        Item code at each position of the decreasing-norm order.
    slack : float
        ``1 + relative margin`` of the bounds (covers float rounding of the scores).
    seen_indptr, seen_indices : int64
        Training CSR (sorted rows) of seen items.
    tb : int64[n_items]
        Tie-break rank of each item code (lower wins among equal scores).
    item_out : int64[n_items]
        What to write to ``out_idx`` for each item code (the item ids, or ``arange``).
    exclude_seen : bool
    out_idx : int64[n], out_score : float32[n]   # OUT, best first, -1/NaN beyond the count
    """
    f = U.shape[1]
    kp = proj.shape[1]
    n_items = perm.size
    n = out_idx.size
    a = seen_indptr[row] if exclude_seen else 0
    e = seen_indptr[row + 1] if exclude_seen else 0
    x = np.empty(f, U.dtype)
    unorm = 0.0
    for k in range(f):
        x[k] = U[row, k]
        unorm += np.float64(x[k]) * np.float64(x[k])
    unorm = np.sqrt(unorm)
    # z = P^T x and the norm of x's residual, in float64
    z = np.empty(kp, U.dtype)
    zd = np.zeros(kp)
    for k in range(f):
        for q in range(kp):
            zd[q] += proj[k, q] * np.float64(x[k])
    xres = 0.0
    for k in range(f):
        d = np.float64(x[k])
        for q in range(kp):
            d -= proj[k, q] * zd[q]
        xres += d * d
    for q in range(kp):
        z[q] = zd[q]
    xres = np.sqrt(xres) * slack
    tol = (slack - 1.0) * unorm
    stop = unorm * slack
    hs = np.empty(n, U.dtype)
    hi = np.empty(n, np.int64)
    bound = np.empty(SLICE, U.dtype)
    cand = np.empty(SLICE, np.int64)
    size = 0
    # (a stepped range(0, n_items, SLICE) compiles to a loop 3x slower here)
    for sl in range((n_items + SLICE - 1) // SLICE):
        c0 = sl * SLICE
        if size == n and stop * sorted_norms[c0] < hs[0]:
            break
        m = min(SLICE, n_items - c0)
        # bounds of the slice: one independent accumulator per item (vectorised over items)
        for j in range(m):
            bound[j] = xres * resid[c0 + j] + tol * sorted_norms[c0 + j]
        for q in range(kp):
            zq = z[q]
            for j in range(m):
                bound[j] += zq * proj_T[q, c0 + j]
        # positions whose bound reaches the n-th best score so far (all, until n are kept)
        n_cand = 0
        thr = hs[0] if size == n else -np.inf
        for j in range(m):
            cand[n_cand] = j
            n_cand += bound[j] >= thr
        for t in range(n_cand):
            j = cand[t]
            if size == n and bound[j] < hs[0]:
                continue
            item = perm[c0 + j]
            sc = U.dtype.type(0.0)
            for k in range(f):
                sc += x[k] * V[item, k]
            if sc != sc:
                continue
            if size == n and not (sc > hs[0] or (sc == hs[0] and tb[item] < tb[hi[0]])):
                continue
            if e > a and contains_sorted(seen_indices, a, e, item):
                continue
            if size < n:
                hs[size] = sc
                hi[size] = item
                _sift_up(hs, hi, size, tb)
                size += 1
            else:
                hs[0] = sc
                hi[0] = item
                _sift_down(hs, hi, 0, size, tb)
    count = drain_heap(hs, hi, size, tb, n, out_idx, out_score)
    for k in range(count):
        out_idx[k] = item_out[out_idx[k]]
    return count


@njit(**NJIT)
def mf_topn_int(key, sorted_keys, key_codes, U, V, proj, proj_T, resid, sorted_norms, perm,
                slack, seen_indptr, seen_indices, tb, item_out, exclude_seen, out_idx, out_score):
    """:func:`mf_topn_row` for the customer with integer id ``key`` (see :func:`find_int`);
    returns the count, or -1 when the id is not in the model."""
    row = find_int(sorted_keys, key_codes, key)
    if row < 0:
        return -1
    return mf_topn_row(row, U, V, proj, proj_T, resid, sorted_norms, perm, slack, seen_indptr,
                       seen_indices, tb, item_out, exclude_seen, out_idx, out_score)


@njit(**NJIT)
def mf_topn_str(key, offsets, data, order, U, V, proj, proj_T, resid, sorted_norms, perm,
                slack, seen_indptr, seen_indices, tb, item_out, exclude_seen, out_idx, out_score):
    """:func:`mf_topn_row` for the customer whose string id has the UTF-8 bytes ``key`` (see
    :func:`find_str`); returns the count, or -1 when the id is not in the model."""
    row = find_str(offsets, data, order, key)
    if row < 0:
        return -1
    return mf_topn_row(row, U, V, proj, proj_T, resid, sorted_norms, perm, slack, seen_indptr,
                       seen_indices, tb, item_out, exclude_seen, out_idx, out_score)
