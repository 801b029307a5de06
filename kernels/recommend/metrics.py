"""Ranking metrics of top-K lists against held-out items, per customer, in one parallel pass.

Definitions are those of ``implicit.evaluation.ranking_metrics_at_k`` so results can be compared
number for number: for a customer with held-out set T (|T| > 0) and recommendations r_1..r_K,

* hits = #{k : r_k in T}; precision is aggregated as sum(hits) / sum(min(K, |T|));
* recall@K = hits / |T|;
* AP@K = sum_{k: r_k in T} (hits up to k) / k, divided by min(K, |T|);
* NDCG@K = sum_{k: r_k in T} 1/log2(k+1), divided by the ideal sum over min(K, |T|) positions;
* AUC (limited to the top K): hits rank above the misses seen so far, and the unseen
  remainder is counted as half-ranked, as in implicit. A list shorter than K (fewer candidate
  items than K; ``-1`` pads it) ends where its items end: padding is not a miss, so the AUC of a
  list does not depend on how far it is padded (issue #9, bug 2).
"""
import numpy as np
from numba import njit, prange

from ..common.launch import parallel_kernel
from .csr import contains_sorted


@parallel_kernel
def ranking_metrics(recs, rows, test_indptr, test_indices, n_items, out):
    """Per-customer metric parts.

    Parameters
    ----------
    recs : int64[U, K]
        Recommended item codes, best first; -1 pads short lists.
    rows : int64[U]
        Row of each customer in the test CSR.
    test_indptr : int64[n_rows + 1], test_indices : int64[nnz]
        Held-out items (sorted within rows).
    n_items : int
        Number of items in the catalogue (for AUC's negatives).
    out : float64[U, 6]  # OUT
        Columns: n_test, hits, precision denominator min(K, n_test), AP, NDCG, AUC.
        Rows with no held-out items get n_test = 0 and must be skipped by the caller.
    """
    U, K = recs.shape
    for b in prange(U):
        r = rows[b]
        a = test_indptr[r]
        e = test_indptr[r + 1]
        n_pos = e - a
        out[b, 0] = n_pos
        for c in range(1, 6):
            out[b, c] = 0.0
        if n_pos == 0:
            continue
        denom = min(K, n_pos)
        idcg = 0.0
        for k in range(denom):
            idcg += 1.0 / np.log2(k + 2.0)
        hit = 0.0
        miss = 0.0
        ap = 0.0
        ndcg = 0.0
        auc = 0.0
        for k in range(K):
            item = recs[b, k]
            if item < 0:  # padding: the list has ended
                break
            if contains_sorted(test_indices, a, e, item):
                hit += 1.0
                ap += hit / (k + 1.0)
                ndcg += 1.0 / np.log2(k + 2.0) / idcg
            else:
                miss += 1.0
                auc += hit
        n_neg = n_items - n_pos
        auc += ((hit + n_pos) / 2.0) * (n_neg - miss)
        out[b, 1] = hit
        out[b, 2] = denom
        out[b, 3] = ap / denom
        out[b, 4] = ndcg
        out[b, 5] = auc / (n_pos * n_neg) if n_neg > 0 else 1.0
