"""Top-N selection with seen-item filtering, for one customer or a block of customers.

Each row of scores is scanned once with a size-n min-heap ("worst kept item on top"), so the
cost is O(n_items + k log n) per row and no score array is sorted or copied. Seen items come as
a sorted CSR row and are skipped by a merge walk (one comparison per item, no scratch mask),
so a seen item can never be returned, and every other allowed item is a candidate whatever its
score: a row always gets ``min(n, n_candidates)`` results (the implicit #736 failure mode, where
filtered items ate into the n slots, cannot happen).

Order: higher score first; equal scores by lower ``tiebreak[item]`` (the models pass the item's
popularity rank in the training data, so that a customer with no history, whose scores are all
equal, gets the most popular items rather than the lowest codes). NaN scores are never returned.
"""
import numpy as np
from numba import njit, prange

from ..common.config import NJIT, RECOMMEND_SERIAL_MAX
from ..common.launch import dual_kernel, parallel_kernel
from .csr import contains_sorted


@njit(**NJIT)
def _worse(s1, i1, s2, i2, tb):
    return s1 < s2 or (s1 == s2 and tb[i1] > tb[i2])


@njit(**NJIT)
def _swap(hs, hi, a, b):
    ts = hs[a]
    ti = hi[a]
    hs[a] = hs[b]
    hi[a] = hi[b]
    hs[b] = ts
    hi[b] = ti


@njit(**NJIT)
def _sift_down(hs, hi, pos, size, tb):
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        child = left
        right = left + 1
        if right < size and _worse(hs[right], hi[right], hs[left], hi[left], tb):
            child = right
        if not _worse(hs[child], hi[child], hs[pos], hi[pos], tb):
            return
        _swap(hs, hi, pos, child)
        pos = child


@njit(**NJIT)
def _sift_up(hs, hi, pos, tb):
    while pos > 0:
        parent = (pos - 1) // 2
        if not _worse(hs[pos], hi[pos], hs[parent], hi[parent], tb):
            return
        _swap(hs, hi, pos, parent)
        pos = parent


@njit(**NJIT)
def drain_heap(hs, hi, size, tb, n, out_idx, out_score):
    """Empty a min-heap of ``size`` (score, item) entries best-first into ``out_idx[:size]`` /
    ``out_score[:size]`` and pad up to ``n`` with -1 / NaN; returns ``size``. Destroys the heap.
    """
    # pop the worst repeatedly, writing from the back: best ends up first
    count = size
    for k in range(count - 1, -1, -1):
        out_score[k] = hs[0]
        out_idx[k] = hi[0]
        size -= 1
        hs[0] = hs[size]
        hi[0] = hi[size]
        _sift_down(hs, hi, 0, size, tb)
    for k in range(count, n):
        out_idx[k] = -1
        out_score[k] = np.nan
    return count


@njit(**NJIT)
def topn_row(scores, seen, seen_start, seen_end, allowed, use_allowed, tb, n, out_idx,
             out_score):
    """Best ``n`` items of one score row; returns how many were written.

    Parameters
    ----------
    scores : float[n_items]
    seen : int64[:]
        Sorted item codes to skip are ``seen[seen_start:seen_end]`` (an empty range skips none).
    allowed : uint8[n_items] or uint8[1]
        When ``use_allowed``, only items with ``allowed[j] != 0`` are candidates.
    tb : int64[n_items]
        Tie-break rank of each item (lower wins among equal scores).
    n : int
    out_idx : int64[n]   # OUT, best first, -1 beyond the returned count
    out_score : float[n] # OUT
    """
    n_items = scores.size
    hs = np.empty(n, scores.dtype)
    hi = np.empty(n, np.int64)
    size = 0
    q = seen_start
    j = 0
    # phase 1: the first n candidates fill the heap (seen items skipped by a merge walk)
    while j < n_items and size < n:
        ok = not (use_allowed and allowed[j] == 0)
        if ok:
            while q < seen_end and seen[q] < j:
                q += 1
            if q < seen_end and seen[q] == j:
                ok = False
        s = scores[j]
        if ok and s == s:
            hs[size] = s
            hi[size] = j
            _sift_up(hs, hi, size, tb)
            size += 1
        j += 1
    # phase 2: almost every score loses to the worst kept one, so that comparison comes first
    # and the candidate checks (mask, binary search in the seen row) run only for winners.
    # NaN never compares greater; an equal score wins only on a better tie-break rank.
    if size == n:
        thr = hs[0]
        for jj in range(j, n_items):
            s = scores[jj]
            if s > thr or (s == thr and tb[jj] < tb[hi[0]]):
                if use_allowed and allowed[jj] == 0:
                    continue
                if seen_end > seen_start and contains_sorted(seen, seen_start, seen_end, jj):
                    continue
                hs[0] = s
                hi[0] = jj
                _sift_down(hs, hi, 0, size, tb)
                thr = hs[0]
    return drain_heap(hs, hi, size, tb, n, out_idx, out_score)


@dual_kernel(0, RECOMMEND_SERIAL_MAX + 1)
def topn_block(scores, rows, seen_indptr, seen_indices, allowed, use_allowed, tb, n,
               out_idx, out_score, out_count):
    """:func:`topn_row` for every row of ``scores`` (float[B, n_items]), rows spread over
    threads (serial twin for a few rows or ``n_threads=1``; each row on one thread).

    ``rows[b]`` is the CSR row of seen items of score row ``b`` (-1: nothing seen).
    Outputs: ``out_idx`` int64[B, n], ``out_score`` float[B, n], ``out_count`` int64[B].
    """
    for b in prange(scores.shape[0]):
        r = rows[b]
        a = seen_indptr[r] if r >= 0 else 0
        e = seen_indptr[r + 1] if r >= 0 else 0
        out_count[b] = topn_row(scores[b], seen_indices, a, e, allowed, use_allowed, tb, n,
                                out_idx[b], out_score[b])


#: One-thread :func:`topn_block`.
topn_block_serial = topn_block.serial


@njit(**NJIT)
def _knn_scores_row(u_indptr, u_indices, u_data, r, sim_indptr, sim_indices, sim_data, acc):
    for k in range(u_indptr[r], u_indptr[r + 1]):
        i = u_indices[k]
        w = u_data[k]
        for p in range(sim_indptr[i], sim_indptr[i + 1]):
            acc[sim_indices[p]] += w * sim_data[p]


@parallel_kernel
def knn_topn(rows, hist_indptr, hist_indices, hist_data, seen_indptr, seen_indices,
             sim_indptr, sim_indices, sim_data, n_items, allowed, use_allowed, tb, n,
             out_idx, out_score, out_count):
    """Item-item scoring ``score_j = sum_{i in history} r_ui sim(i, j)`` fused with top-N.

    ``hist_*`` is the CSR of histories used for scoring (row ``rows[b]``); ``seen_*`` the CSR of
    items to exclude (same rows; pass an empty-row CSR to exclude none).
    """
    B = rows.size
    for b in prange(B):
        acc = np.zeros(n_items, np.float64)
        r = rows[b]
        _knn_scores_row(hist_indptr, hist_indices, hist_data, r, sim_indptr, sim_indices,
                        sim_data, acc)
        out_count[b] = topn_row(acc, seen_indices, seen_indptr[r], seen_indptr[r + 1], allowed,
                                use_allowed, tb, n, out_idx[b], out_score[b])


@njit(**NJIT)
def knn_topn_serial(rows, hist_indptr, hist_indices, hist_data, seen_indptr, seen_indices,
                    sim_indptr, sim_indices, sim_data, n_items, allowed, use_allowed, tb, n,
                    out_idx, out_score, out_count):
    """One-thread :func:`knn_topn` (for single-customer requests from service threads)."""
    acc = np.zeros(n_items, np.float64)
    for b in range(rows.size):
        acc[:] = 0.0
        r = rows[b]
        _knn_scores_row(hist_indptr, hist_indices, hist_data, r, sim_indptr, sim_indices,
                        sim_data, acc)
        out_count[b] = topn_row(acc, seen_indices, seen_indptr[r], seen_indptr[r + 1], allowed,
                                use_allowed, tb, n, out_idx[b], out_score[b])
