"""Bayesian Personalised Ranking by SGD (Rendle et al. 2009, "BPR: Bayesian personalized
ranking from implicit feedback", eq. 4 and Algorithm 1 "LearnBPR").

Each step samples a stored (u, i) pair uniformly and a random item j, and ascends
``ln sigma(x_u^T (y_i - y_j)) - lambda (|x_u|^2 + |y_i|^2 + |y_j|^2)``. As in implicit, the last
factor column carries an item bias (users hold a constant 1 there) and, when
``verify_negative`` is set, a j the user has seen is skipped. Threads update factors
lock-free ("Hogwild", Niu et al. 2011); with one thread an epoch is exactly reproducible.
"""
import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from ..common.launch import parallel_kernel
from .csr import contains_sorted



@njit(**NJIT)
def _next(state):
    # xorshift64*: a tiny per-chunk generator, so each chunk's stream depends only on the seed
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    return x * np.uint64(2685821657736338717)


@parallel_kernel(fastmath=True)
def bpr_epoch(indptr, indices, nnz_rows, X, Y, learning_rate, regularization, verify_negative,
              seed, n_chunks):
    """One epoch of ``nnz`` SGD samples; updates ``X`` (users) and ``Y`` (items) in place.

    Parameters
    ----------
    indptr, indices : CSR of the seen items (sorted indices), int64
    nnz_rows : int64[nnz]
        Row of every stored entry (sampling a stored entry uniformly samples (u, i)).
    X : float[n_users, f + 1]  (last column fixed at 1)
    Y : float[n_items, f + 1]  (last column is the item bias)
    seed : uint64
        Seed of this epoch; chunk ``c`` uses a stream derived from ``seed`` and ``c``.

    Returns
    -------
    (correct, skipped) : int64, int64
        Samples where x_u^T (y_i - y_j) > 0 before the update, and negatives skipped.
    """
    nnz = indices.size
    n_items, f1 = Y.shape
    f = f1 - 1
    per = (nnz + n_chunks - 1) // n_chunks
    correct = 0
    skipped = 0
    for ch in prange(n_chunks):
        state = np.empty(1, np.uint64)
        state[0] = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(ch + 1) * np.uint64(0xBF58476D1CE4E5B9)
        if state[0] == 0:
            state[0] = np.uint64(1)
        n_samples = min(per, nnz - ch * per)
        for _ in range(n_samples):
            k = _next(state) % np.uint64(nnz)
            u = nnz_rows[k]
            i = indices[k]
            j = np.int64(_next(state) % np.uint64(n_items))
            if verify_negative and contains_sorted(indices, indptr[u], indptr[u + 1], j):
                skipped += 1
                continue
            x = X[u]
            yi = Y[i]
            yj = Y[j]
            score = 0.0
            for a in range(f1):
                score += x[a] * (yi[a] - yj[a])
            if score > 0:
                correct += 1
            z = 1.0 / (1.0 + np.exp(score))
            for a in range(f):
                xa = x[a]
                x[a] += learning_rate * (z * (yi[a] - yj[a]) - regularization * xa)
                yi[a] += learning_rate * (z * xa - regularization * yi[a])
                yj[a] += learning_rate * (-z * xa - regularization * yj[a])
            # bias column: the user side is the constant 1
            yi[f] += learning_rate * (z - regularization * yi[f])
            yj[f] += learning_rate * (-z - regularization * yj[f])
    return correct, skipped
