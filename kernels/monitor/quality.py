"""Model-quality metrics per group (time window x segment) from one sort of the scores.

Rows are first put in ascending score order (a stable argsort by the caller), then stably
bucketed by group (:func:`group_order`), so each group's rows are contiguous and ascending by
score with ties in input order. :func:`group_metrics` then walks every group in parallel: AUC
from tie-averaged ranks, log loss, Brier score, reliability bins, decile lift and precision /
recall at top-k (descending score; ties broken by reversed input order).
"""
import math

import numpy as np
from numba import prange

from ..common.config import NJIT
from ..common.launch import parallel_kernel
from numba import njit


@njit(**NJIT)
def group_order(by_score, groups, n_groups):
    """Stable counting sort of ``by_score`` (row indices in score order) by ``groups``.
    Returns (rows, starts) with group g at rows[starts[g]:starts[g + 1]]."""
    counts = np.zeros(n_groups + 1, dtype=np.int64)
    for i in range(groups.shape[0]):
        counts[groups[i] + 1] += 1
    for g in range(n_groups):
        counts[g + 1] += counts[g]
    starts = counts.copy()
    fill = counts[:n_groups].copy()
    rows = np.empty(by_score.shape[0], dtype=np.int64)
    for t in range(by_score.shape[0]):
        r = by_score[t]
        g = groups[r]
        rows[fill[g]] = r
        fill[g] += 1
    return rows, starts


@parallel_kernel
def group_metrics(rows, starts, labels, scores, edges, top_k_frac, clip,
                  out_stats, bin_count, bin_pred, bin_true, lift_count, lift_pos):
    """Per group g: ``out_stats[g] = (n, positives, auc, log_loss, brier, ece, precision_at_k,
    recall_at_k, k)``; reliability sums per bin (``edges[g]`` are the n_bins + 1 bin edges, a
    score p goes to the bin counting the inner edges < p); decile counts/positives."""
    n_bins = bin_count.shape[1]
    n_dec = lift_count.shape[1]
    for g in prange(starts.shape[0] - 1):
        lo = starts[g]
        hi = starts[g + 1]
        n = hi - lo
        pos = 0.0
        loss = 0.0
        brier = 0.0
        rank_sum = 0.0
        t = lo
        while t < hi:  # blocks of tied scores share their average rank
            u = t
            block_pos = 0.0
            while u < hi and scores[rows[u]] == scores[rows[t]]:
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
            loss -= y * math.log(pc) + (1.0 - y) * math.log(1.0 - pc)
            brier += (y - p) * (y - p)
            b = 0
            while b < n_bins - 1 and edges[g, b + 1] < p:
                b += 1
            bin_count[g, b] += 1.0
            bin_pred[g, b] += p
            bin_true[g, b] += y
            # descending rank of this row (0 = highest score)
            d = (hi - 1 - t) * n_dec // n
            lift_count[g, d] += 1.0
            lift_pos[g, d] += y
        neg = n - pos
        auc = (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg) if pos > 0 and neg > 0 else np.nan
        ece = 0.0
        for b in range(n_bins):
            if bin_count[g, b] > 0:
                ece += abs(bin_pred[g, b] - bin_true[g, b]) / n
        k = int(math.ceil(top_k_frac * n - 1e-9)) if top_k_frac <= 1.0 else min(int(top_k_frac), n)
        hits = 0.0
        for t in range(hi - k, hi):
            hits += labels[rows[t]]
        out_stats[g, 0] = n
        out_stats[g, 1] = pos
        out_stats[g, 2] = auc
        out_stats[g, 3] = loss / n if n > 0 else np.nan
        out_stats[g, 4] = brier / n if n > 0 else np.nan
        out_stats[g, 5] = ece if n > 0 else np.nan
        out_stats[g, 6] = hits / k if k > 0 else np.nan
        out_stats[g, 7] = hits / pos if pos > 0 else np.nan
        out_stats[g, 8] = k
