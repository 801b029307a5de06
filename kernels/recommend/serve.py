"""Top-n serving for the matrix-factorisation models (ALS, BPR): batch requests and one nogil
call per single-customer request.

A service answering one customer per request from many threads needs the whole request to run
without the GIL, or its threads queue behind each other. :class:`Server` (one per
model state) finds the customer's code from the id (binary search in a sorted copy of the ids),
then scores the items, skips the seen ones and keeps the best ``n`` in one GIL-free compiled
call; the caller only passes the id and two output arrays.

One customer's scores are a matrix-vector product that has to read every item factor (5 MB
for 20k items x 64 float32 factors), so a plain scan is bound by memory bandwidth, which the
cores share. The top-n kernel (:mod:`kernels.recommend.serve_native`, compiled ahead of time so
that a service's first request compiles nothing) reads a compact bound per item and scores
exactly only the items whose bound can reach the top n. Items are visited in decreasing-norm
order, a slice at a time; both bounds are exact (an item they skip could not enter the top n):

* before a slice: no later item can score above ``|x| * norm * slack``, so the scan stops once
  the n-th best kept score beats that;
* per item: with ``P`` the top principal directions of the item factors, ``x . y`` is at most
  ``(P^T x) . (P^T y) + |x - P P^T x| * |y - P P^T y|`` (Cauchy-Schwarz on the residuals), plus
  ``(slack - 1) |x| |y|`` for rounding; the bound reads ``k + 1`` floats per item instead of f.

Order and candidates are those of :mod:`kernels.recommend.topn` (higher score first, equal
scores by lower ``tiebreak``, NaN never returned, seen items never returned).
"""
import numpy as np
from numba import prange

from ..common.config import MF_SERVE_CHUNK, RECOMMEND_SERIAL_MAX
from ..common.launch import dual_kernel, run_threaded
from ..common.sched import fetch_add
from .serve_native import Server, find_int, find_str, topn_block_worker
from .topn import topn_row as _scores_topn_row

__all__ = ["Server", "find_int", "find_str", "mf_topn_block", "mf_similar"]

#: "every item allowed" (a mask of one entry that is never read)
_ALL = np.ones(1, np.uint8)


def mf_topn_block(U, urows, seen_rows, seen_indptr, seen_indices, V, proj, proj_T, resid,
                  sorted_norms, perm, slack, allowed, use_allowed, tb, out_idx, out_score,
                  out_count, workers, n_threads=None):
    """Batch top-n for customer factors ``U[urows[b]]`` with seen-CSR row ``seen_rows[b]``
    (-1: nothing seen), for every ``b``; item codes to ``out_idx[b]``, scores to
    ``out_score[b]``, counts to ``out_count[b]``.

    Parameters (model side)
    -----------------------
    V : float[n_items, f]
        Item factors, rows by item code (same dtype as ``U``).
    proj : float64[f, k]
        Orthonormal columns ``P``.
    proj_T : float[k, n_items], resid : float[n_items]
        ``P^T y`` and ``|y - P P^T y|`` (rounded up) of every item, in decreasing-norm order.
    sorted_norms : float64[n_items], perm : int64[n_items]
        ``|y|`` in decreasing-norm order and the item code at each position of that order.
    slack : float
        ``1 + relative margin`` of the bounds (covers float rounding of the scores).
    allowed : uint8[n_items] or uint8[1]
        When ``use_allowed``, only items with ``allowed[item] != 0`` are candidates.
    tb : int64[n_items]
        Tie-break rank of each item code (lower wins among equal scores).
    workers : int
        Kept for the callers; the thread count is ``resolve_threads(n_threads)``.

    Scoring is done here, not by a BLAS gemm, so no process-wide BLAS thread setting is
    touched, and a customer's scores are bit-identical to :meth:`Server.topn_int`'s whatever the
    thread count. Customers cost very different amounts (the pruning stops early for some), so
    the threads claim chunks of ``MF_SERVE_CHUNK`` customers dynamically. Small requests (at
    most ``RECOMMEND_SERIAL_MAX`` customers, or ``n_threads=1``) run on the calling thread only.
    """
    next_chunk = np.zeros(1, np.int64)

    def worker():
        topn_block_worker(U, urows, seen_rows, seen_indptr, seen_indices, V, proj, proj_T,
                          resid, sorted_norms, perm, slack, allowed, use_allowed, tb, out_idx,
                          out_score, out_count, next_chunk, MF_SERVE_CHUNK)

    if urows.size <= RECOMMEND_SERIAL_MAX:
        worker()
    else:
        run_threaded(worker, n_threads)


@dual_kernel(2, RECOMMEND_SERIAL_MAX + 1)
def mf_similar(V, norms, codes, allowed, use_allowed, tb, out_idx, out_score, out_count,
               workers):
    """Cosine top-n of item factors: for each query ``codes[b]``, the items ``j`` with the
    highest ``V[q] . V[j] / (norms[q] norms[j])`` (the item itself included), among the items
    with ``allowed[j] != 0`` when ``use_allowed``, codes to ``out_idx[b]``. Each query's scores
    are computed on one thread (no reductions across threads)."""
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
                out_count[b] = _scores_topn_row(scores, no_seen, 0, 0, allowed, use_allowed,
                                                tb, n, out_idx[b], out_score[b])
            c = fetch_add(next_chunk, 1)
