"""Item-item neighbour kernels: the K most similar items of every item, from a weighted
customer x item matrix W, with similarity ``sim(i, j) = sum_u W_ui W_uj`` (cosine when the
item columns of W are L2-normalised; BM25 when W holds BM25 weights, Robertson et al. 1995).

The similarity row of item i is accumulated over the customers of i into a dense scratch row
(touched entries tracked in a list), then the best K are kept, so memory stays O(items * K).
"""
import numpy as np
from numba import njit, prange

from ..common.launch import parallel_kernel
from .topn import topn_row

CHUNK = 32


@parallel_kernel
def item_knn(item_indptr, item_users, item_w, user_indptr, user_items, user_w, n_items, K):
    """Top-``K`` neighbours per item (the item itself included, as in implicit).

    Parameters
    ----------
    item_indptr, item_users, item_w : CSR of W^T (items x customers)
    user_indptr, user_items, user_w : CSR of W (customers x items), sorted indices
    n_items, K : int

    Returns
    -------
    Ties are broken by the lower item code.
    nbr : int64[n_items, K] (-1 padded), sim : float64[n_items, K], count : int64[n_items]
    """
    nbr = np.full((n_items, K), -1, np.int64)
    sim = np.zeros((n_items, K), np.float64)
    count = np.zeros(n_items, np.int64)
    n_chunks = (n_items + CHUNK - 1) // CHUNK
    no_seen = np.zeros(1, np.int64)
    tb = np.arange(n_items)
    for ch in prange(n_chunks):
        acc = np.zeros(n_items, np.float64)
        mark = np.zeros(n_items, np.uint8)
        touched = np.empty(n_items, np.int64)
        allowed = mark  # items never touched have similarity 0 and are not neighbours
        for i in range(ch * CHUNK, min(n_items, (ch + 1) * CHUNK)):
            nt = 0
            for p in range(item_indptr[i], item_indptr[i + 1]):
                u = item_users[p]
                wu = item_w[p]
                for q in range(user_indptr[u], user_indptr[u + 1]):
                    j = user_items[q]
                    if mark[j] == 0:
                        mark[j] = 1
                        touched[nt] = j
                        nt += 1
                    acc[j] += wu * user_w[q]
            count[i] = topn_row(acc, no_seen, 0, 0, allowed, True, tb, K, nbr[i], sim[i])
            for t in range(nt):
                acc[touched[t]] = 0.0
                mark[touched[t]] = 0
    return nbr, sim, count
