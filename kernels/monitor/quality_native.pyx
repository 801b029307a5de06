# cython: language_level=3
"""Model-quality metrics per group (time window x segment) from one sort of the scores,
compiled at build time (issue #11: a first ``quality()`` call compiles nothing).

Design: ``fastengage/monitor/quality.py`` argsorts the scores (stable), then calls
:func:`group_order` to bucket the rows by group, keeping each group ascending by score with
ties in input order; :func:`group_metrics` then walks the groups, each claimed by one thread
from a shared counter (:func:`fastengage.kernels.common.launch.run_threaded`), so a group's sums
never depend on the thread count. Per group: AUC from tie-averaged ranks, log loss, Brier
score, reliability bins, decile lift and precision / recall at top-k (descending score; ties
broken by reversed input order). The NumPy reference is ``tests/naive_monitor.py``.
"""
cimport numpy as cnp
from libc.math cimport ceil, fabs, log, NAN
from libc.stdint cimport int64_t

import numpy as np

cnp.import_array()

cdef extern from "../common/atomic.h" nogil:
    long long fe_fetch_add(long long* p, long long v)

#: Columns of ``out_stats``, in order.
STATS = ("n", "positives", "auc", "log_loss", "brier", "ece", "precision_at_k", "recall_at_k",
         "k")


def group_order(const int64_t[::1] by_score, const int64_t[::1] groups, Py_ssize_t n_groups):
    """Stable counting sort of ``by_score`` (row indices in score order) by ``groups``
    (codes in ``0..n_groups-1``, checked by the caller). Returns ``(rows, starts)`` with group
    ``g`` at ``rows[starts[g]:starts[g + 1]]``."""
    cdef Py_ssize_t n = by_score.shape[0], i, g
    starts_arr = np.zeros(n_groups + 1, dtype=np.int64)
    rows_arr = np.empty(n, dtype=np.int64)
    fill_arr = np.empty(max(n_groups, 1), dtype=np.int64)
    cdef int64_t[::1] starts = starts_arr, rows = rows_arr, fill = fill_arr
    cdef int64_t r
    with nogil:
        for i in range(groups.shape[0]):
            starts[groups[i] + 1] += 1
        for g in range(n_groups):
            starts[g + 1] += starts[g]
            fill[g] = starts[g]
        for i in range(n):
            r = by_score[i]
            g = groups[r]
            rows[fill[g]] = r
            fill[g] += 1
    return rows_arr, starts_arr


def group_metrics(const int64_t[::1] rows, const int64_t[::1] starts,   # IN
                  const double[::1] labels, const double[::1] scores,   # IN
                  const double[:, ::1] edges, double top_k_frac, double clip,  # IN
                  double[:, ::1] out_stats,                              # OUT
                  double[:, ::1] bin_count, double[:, ::1] bin_pred,     # OUT
                  double[:, ::1] bin_true,                               # OUT
                  double[:, ::1] lift_count, double[:, ::1] lift_pos,    # OUT (zeroed)
                  int64_t[::1] next_group):                              # IN/OUT counter
    """One worker: claims groups from ``next_group[0]`` until none is left. For group ``g``,
    ``out_stats[g]`` holds :data:`STATS`; reliability sums per bin (``edges[g]`` are the
    ``n_bins + 1`` bin edges; a score ``p`` goes to the bin counting the inner edges ``< p``);
    decile counts and positives. The bin and lift outputs must be zero on entry."""
    cdef Py_ssize_t n_groups = starts.shape[0] - 1
    cdef Py_ssize_t n_bins = bin_count.shape[1], n_dec = lift_count.shape[1]
    cdef long long* counter = <long long*> &next_group[0]
    cdef Py_ssize_t g, lo, hi, t, u, b, d, k
    cdef int64_t r
    cdef double n, pos, loss, brier, rank_sum, block_pos, p, y, pc, neg, auc, ece, hits, s
    with nogil:
        g = fe_fetch_add(counter, 1)
        while g < n_groups:
            lo = starts[g]
            hi = starts[g + 1]
            n = <double>(hi - lo)
            pos = 0.0
            loss = 0.0
            brier = 0.0
            rank_sum = 0.0
            t = lo
            while t < hi:  # a block of tied scores shares its average rank
                u = t
                block_pos = 0.0
                s = scores[rows[t]]
                while u < hi and scores[rows[u]] == s:
                    block_pos += labels[rows[u]]
                    u += 1
                rank_sum += block_pos * ((t - lo + 1) + (u - lo)) / 2.0
                pos += block_pos
                t = u
            for t in range(lo, hi):
                r = rows[t]
                p = scores[r]
                y = labels[r]
                pc = min(max(p, clip), 1.0 - clip)
                loss -= y * log(pc) + (1.0 - y) * log(1.0 - pc)
                brier += (y - p) * (y - p)
                b = 0
                while b < n_bins - 1 and edges[g, b + 1] < p:
                    b += 1
                bin_count[g, b] += 1.0
                bin_pred[g, b] += p
                bin_true[g, b] += y
                d = (hi - 1 - t) * n_dec // (hi - lo)  # descending rank (0 = highest score)
                lift_count[g, d] += 1.0
                lift_pos[g, d] += y
            neg = n - pos
            auc = ((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
                   if pos > 0 and neg > 0 else NAN)
            ece = 0.0
            for b in range(n_bins):
                if bin_count[g, b] > 0:
                    ece += fabs(bin_pred[g, b] - bin_true[g, b]) / n
            if top_k_frac <= 1.0:
                k = <Py_ssize_t>ceil(top_k_frac * n - 1e-9)
            else:
                k = min(<Py_ssize_t>top_k_frac, hi - lo)
            hits = 0.0
            for t in range(hi - k, hi):
                hits += labels[rows[t]]
            out_stats[g, 0] = n
            out_stats[g, 1] = pos
            out_stats[g, 2] = auc
            out_stats[g, 3] = loss / n if n > 0 else NAN
            out_stats[g, 4] = brier / n if n > 0 else NAN
            out_stats[g, 5] = ece if n > 0 else NAN
            out_stats[g, 6] = hits / k if k > 0 else NAN
            out_stats[g, 7] = hits / pos if pos > 0 else NAN
            out_stats[g, 8] = <double>k
            g = fe_fetch_add(counter, 1)
