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
from numba import njit, prange

from ..common.config import MF_SERVE_CHUNK, NJIT, RECOMMEND_SERIAL_MAX
from ..common.launch import dual_kernel
from ..common.sched import fetch_add
from .csr import contains_sorted
from .topn import _sift_down, _sift_up, drain_heap, topn_row

_FAST = dict(NJIT, fastmath=True)

#: Bounds are computed in slices of this many items (a slice stays in L1).
SLICE = 256
#: "every item allowed" (a mask of one entry that is never read)
_ALL = np.ones(1, np.uint8)


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
def mf_topn_vec(x_in, V, proj, proj_T, resid, sorted_norms, perm, slack, seen_indices, a, e,
                allowed, use_allowed, tb, out_idx, out_score):
    """Exact top-n item codes for customer factors ``x``; returns how many were written
    (n = out size).

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
    x : float[f]
        The customer's factors (float32 or float64; scores are computed in this type).
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
    seen_indices : int64[:], a, e : int
        Sorted item codes never to return are ``seen_indices[a:e]`` (an empty range: none).
    allowed : uint8[n_items] or uint8[1]
        When ``use_allowed``, only items with ``allowed[item] != 0`` are candidates.
    tb : int64[n_items]
        Tie-break rank of each item code (lower wins among equal scores).
    out_idx : int64[n], out_score : float32[n]   # OUT: item codes and scores, best first,
        -1/NaN beyond the count
    """
    f = x_in.shape[0]
    kp = proj.shape[1]
    n_items = perm.size
    n = out_idx.size
    x = np.empty(f, V.dtype)
    unorm = 0.0
    for k in range(f):
        x[k] = x_in[k]
        unorm += np.float64(x[k]) * np.float64(x[k])
    unorm = np.sqrt(unorm)
    # z = P^T x and the norm of x's residual, in float64
    z = np.empty(kp, V.dtype)
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
    hs = np.empty(n, V.dtype)
    hi = np.empty(n, np.int64)
    bound = np.empty(SLICE, V.dtype)
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
            if use_allowed and allowed[item] == 0:
                continue
            sc = V.dtype.type(0.0)
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
    return drain_heap(hs, hi, size, tb, n, out_idx, out_score)




@njit(**NJIT)
def mf_topn_row(row, U, V, proj, proj_T, resid, sorted_norms, perm, slack, seen_indptr,
                seen_indices, tb, item_out, exclude_seen, out_idx, out_score):
    """:func:`mf_topn_vec` for the model's customer ``row`` (row of ``U`` and of the seen CSR
    ``seen_indptr``/``seen_indices``), every item allowed; writes ``item_out[code]`` (the item
    ids, or ``arange``) to ``out_idx`` and returns the count."""
    a = seen_indptr[row] if exclude_seen else 0
    e = seen_indptr[row + 1] if exclude_seen else 0
    count = mf_topn_vec(U[row], V, proj, proj_T, resid, sorted_norms, perm, slack, seen_indices,
                        a, e, _ALL, False, tb, out_idx, out_score)
    for k in range(count):
        out_idx[k] = item_out[out_idx[k]]
    return count


@dual_kernel(1, RECOMMEND_SERIAL_MAX + 1)
def mf_topn_block(U, urows, seen_rows, seen_indptr, seen_indices, V, proj, proj_T, resid,
                  sorted_norms, perm, slack, allowed, use_allowed, tb, out_idx, out_score,
                  out_count, workers):
    """Batch top-n: :func:`mf_topn_vec` for customer factors ``U[urows[b]]`` with seen-CSR row
    ``seen_rows[b]`` (-1: nothing seen), for every ``b``; item codes to ``out_idx[b]``.

    Scoring is done here, not by a BLAS gemm, so no process-wide BLAS thread setting is
    touched, and a customer's scores are bit-identical to :func:`mf_topn_row`'s whatever the
    thread count. Customers cost very different amounts (the pruning stops early for some), so
    ``workers`` threads claim chunks of ``MF_SERVE_CHUNK`` customers dynamically. Small
    requests (or ``n_threads=1``) run the serial twin on the calling thread: no parallel launch
    for a service answering a few customers per request from many threads.
    """
    B = urows.size
    n_chunks = (B + MF_SERVE_CHUNK - 1) // MF_SERVE_CHUNK
    next_chunk = np.zeros(1, np.int64)
    for _w in prange(workers):
        c = fetch_add(next_chunk, 1)
        while c < n_chunks:
            for b in range(c * MF_SERVE_CHUNK, min(B, (c + 1) * MF_SERVE_CHUNK)):
                sr = seen_rows[b]
                a = seen_indptr[sr] if sr >= 0 else 0
                e = seen_indptr[sr + 1] if sr >= 0 else 0
                out_count[b] = mf_topn_vec(U[urows[b]], V, proj, proj_T, resid, sorted_norms,
                                           perm, slack, seen_indices, a, e, allowed,
                                           use_allowed, tb, out_idx[b], out_score[b])
            c = fetch_add(next_chunk, 1)


@dual_kernel(2, RECOMMEND_SERIAL_MAX + 1)
def mf_similar(V, norms, codes, tb, out_idx, out_score, out_count, workers):
    """Cosine top-n of item factors: for each query ``codes[b]``, the items ``j`` with the
    highest ``V[q] . V[j] / (norms[q] norms[j])`` (the item itself included), codes to
    ``out_idx[b]``. Each query's scores are computed on one thread (no reductions across
    threads)."""
    B = codes.size
    n_items, f = V.shape
    n_chunks = (B + MF_SERVE_CHUNK - 1) // MF_SERVE_CHUNK
    next_chunk = np.zeros(1, np.int64)
    no_seen = np.zeros(1, np.int64)
    n = out_idx.shape[1]
    for _w in prange(workers):
        scores = np.empty(n_items, V.dtype)
        c = fetch_add(next_chunk, 1)
        while c < n_chunks:
            for b in range(c * MF_SERVE_CHUNK, min(B, (c + 1) * MF_SERVE_CHUNK)):
                q = codes[b]
                for j in range(n_items):
                    s = V.dtype.type(0.0)
                    for k in range(f):
                        s += V[q, k] * V[j, k]
                    scores[j] = s / (norms[q] * norms[j])
                out_count[b] = topn_row(scores, no_seen, 0, 0, _ALL, False, tb, n, out_idx[b],
                                        out_score[b])
            c = fetch_add(next_chunk, 1)


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
