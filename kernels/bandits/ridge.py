"""Per-arm sufficient statistics of the bandit policies and the ridge solves built on them.

Every policy keeps, per arm ``a``: the count ``n[a]``, the reward sum ``s[a]`` and the sum of
squared rewards ``s2[a]``; contextual policies also keep the Gram matrix ``G[a] = sum x x^T`` and
``g[a] = sum r x`` over the rows logged for that arm. The ridge model of an arm is
``A = G + lambda I``, ``theta = A^-1 g``. Statistics add, so two policies merge by adding them.

Accumulation is parallel over tasks of ``rows_per_task`` consecutive input rows; each task sums
every arm's rows into its own slots and the slots of an arm are added in task order afterwards,
so the result does not depend on the thread count.
"""
import math

import numpy as np
from numba import njit, prange

from ..common.config import BANDIT_SORT_BLOCK as SUB_BLOCK
from ..common.config import NJIT
from ..common.launch import parallel_kernel
from ..common.columns import column_view


@njit(**NJIT)
def _sort_block(codes, lo, m, starts, pos):
    """Stable counting sort of rows ``lo .. lo+m-1`` by arm: ``pos[i]`` is row ``lo + i``'s
    slot, ``starts[a]:starts[a+1]`` arm ``a``'s slots."""
    K = starts.shape[0] - 1
    starts[:] = 0
    for i in range(m):
        starts[codes[lo + i] + 1] += 1
    for a in range(K):
        starts[a + 1] += starts[a]
    fill = starts[:K].copy()
    for i in range(m):
        a = codes[lo + i]
        pos[i] = fill[a]
        fill[a] += 1


@njit(**NJIT)
def _add_outer(G, g, x, r):
    """``G += x x^T`` and ``g += r x`` for one row (every row of ``G`` an element-wise SIMD
    loop over the contiguous ``x``; each entry adds its rows in order)."""
    d = x.shape[0]
    for p in range(d):
        xp = x[p]
        Gp = G[p]
        for q in range(d):
            Gp[q] += xp * x[q]
    for p in range(d):
        g[p] += r * x[p]


@njit(**NJIT)
def _add_outer2(G, g, x, y, r, w):
    """Two rows ``x`` then ``y`` (rewards ``r``, ``w``): per entry ``(G + x_p x_q) + y_p y_q``,
    the same additions in the same order as two calls of :func:`_add_outer`, with half the
    loads and stores of ``G``."""
    d = x.shape[0]
    for p in range(d):
        xp = x[p]
        yp = y[p]
        Gp = G[p]
        for q in range(d):
            Gp[q] = (Gp[q] + xp * x[q]) + yp * y[q]
    for p in range(d):
        g[p] = (g[p] + r * x[p]) + w * y[p]


@parallel_kernel
def block_sums(addresses, n, codes, rewards, rows_per_task, part_G, part_g, part_s):
    """Per task ``t`` (rows ``t * rows_per_task ...`` in input order) and arm ``a``:
    ``part_G[t, a]`` (sum x x^T), ``part_g[t, a]`` (sum r x) and ``part_s[t, a] = (count,
    sum r, sum r^2)`` over the task's rows of arm ``a``, each entry summed in row order.

    One pass over the input: feature column ``j`` is read at ``addresses[j]`` (see
    :mod:`.columns`) ``SUB_BLOCK`` rows at a time; the block's rows are sorted by arm into a
    local row-major buffer and added to their arm's sums one row at a time (rank-1 updates of
    a task-owned ``d x d`` block that stays in cache). The order of every addition follows the
    input and the task layout, not the threads.
    """
    d = addresses.shape[0]
    T, K = part_G.shape[0], part_G.shape[1]
    for t in prange(T):
        xb = np.empty((SUB_BLOCK, d))
        rb = np.empty(SUB_BLOCK)
        pos = np.empty(SUB_BLOCK, dtype=np.int64)
        starts = np.empty(K + 1, dtype=np.int64)
        stop = min(n, (t + 1) * rows_per_task)
        for lo in range(t * rows_per_task, stop, SUB_BLOCK):
            m = min(SUB_BLOCK, stop - lo)
            _sort_block(codes, lo, m, starts, pos)
            for j in range(d):
                col = column_view(addresses[j], n)
                for i in range(m):
                    xb[pos[i], j] = col[lo + i]
            for i in range(m):
                rb[pos[i]] = rewards[lo + i]
            for a in range(K):
                G, g, s = part_G[t, a], part_g[t, a], part_s[t, a]
                k, end = starts[a], starts[a + 1]
                while k + 2 <= end:
                    _add_outer2(G, g, xb[k], xb[k + 1], rb[k], rb[k + 1])
                    k += 2
                if k < end:
                    _add_outer(G, g, xb[k], rb[k])
                for k in range(starts[a], end):
                    s[0] += 1.0
                    s[1] += rb[k]
                    s[2] += rb[k] * rb[k]


@njit(**NJIT)
def add_task_sums(task_arm, part_G, part_g, part_s, G, g, counts, sums, sums2):
    """Add the task slots into the statistics arm by arm in task order; mirror the triangles."""
    d = G.shape[1]
    touched = np.zeros(G.shape[0], dtype=np.bool_)
    for t in range(task_arm.shape[0]):
        a = task_arm[t]
        touched[a] = True
        counts[a] += part_s[t, 0]
        sums[a] += part_s[t, 1]
        sums2[a] += part_s[t, 2]
        for p in range(d):
            g[a, p] += part_g[t, p]
            for q in range(p, d):
                G[a, p, q] += part_G[t, p, q]
    for a in range(G.shape[0]):
        if touched[a]:
            for p in range(d):
                for q in range(p + 1, d):
                    G[a, q, p] = G[a, p, q]


@njit(**NJIT)
def add_one(x, reward, arm, G, g, counts, sums, sums2):
    """Add one logged row to the statistics (the single-event update of a service)."""
    d = x.shape[0]
    counts[arm] += 1.0
    sums[arm] += reward
    sums2[arm] += reward * reward
    for p in range(d):
        g[arm, p] += reward * x[p]
        for q in range(d):
            G[arm, p, q] += x[p] * x[q]


@njit(**NJIT)
def solve_arms(G, g, lam, theta, A_inv, L_inv):
    """``A_inv[a] = (G[a] + lam I)^-1``, ``theta[a] = A_inv[a] g[a]`` and ``L_inv[a]``, the
    inverse of the Cholesky factor (lower triangular; ``A_inv = L_inv^T L_inv``).

    Returns the index of the first arm whose matrix is not positive definite, or -1.
    """
    K = G.shape[0]
    d = G.shape[1]
    L = np.empty((d, d))
    for a in range(K):
        Linv = L_inv[a]
        # Cholesky A = L L^T.
        for i in range(d):
            for j in range(i + 1):
                s = G[a, i, j] + (lam if i == j else 0.0)
                for k in range(j):
                    s -= L[i, k] * L[j, k]
                if i == j:
                    if not s > 0.0:
                        return a
                    L[i, i] = math.sqrt(s)
                else:
                    L[i, j] = s / L[j, j]
        # L^-1 (lower triangular), then A^-1 = L^-T L^-1.
        for j in range(d):
            for i in range(d):
                Linv[i, j] = 0.0
            Linv[j, j] = 1.0 / L[j, j]
            for i in range(j + 1, d):
                s = 0.0
                for k in range(j, i):
                    s -= L[i, k] * Linv[k, j]
                Linv[i, j] = s / L[i, i]
        for i in range(d):
            for j in range(i, d):
                s = 0.0
                for k in range(j, d):
                    s += Linv[k, i] * Linv[k, j]
                A_inv[a, i, j] = s
                A_inv[a, j, i] = s
        for i in range(d):
            s = 0.0
            for j in range(d):
                s += A_inv[a, i, j] * g[a, j]
            theta[a, i] = s
    return -1


def hybrid_joint(G, g, k, lam):
    """The per-arm joint ridge system of hybrid LinUCB (Li et al. 2010, Algorithm 2).

    ``G[a]`` and ``g[a]`` are arm ``a``'s sums of ``w w^T`` and ``r w`` over its rows, with
    ``w = [z; x]``: ``k`` shared features ``z`` first, then the arm's own features ``x``. In the
    paper's notation ``A_a = lam I + sum x x^T``, ``B_a = sum x z^T``, ``b_a = sum r x``, and
    ``A_0 = lam I + sum_all z z^T - sum_a B_a^T A_a^-1 B_a``,
    ``b_0 = sum_all r z - sum_a B_a^T A_a^-1 b_a`` (what the paper's incremental updates hold).

    Returns ``(P, c)`` with ``P[a] = [[A_0 + B_a^T A_a^-1 B_a, B_a^T], [B_a, A_a]]`` and
    ``c[a] = [b_0 + B_a^T A_a^-1 b_a; b_a]``: then ``P[a]^-1 c[a] = [beta; theta_a]`` (the
    paper's ``beta = A_0^-1 b_0``, ``theta_a = A_a^-1 (b_a - B_a beta)``) and
    ``w^T P[a]^-1 w`` is the paper's ``s_{t,a}`` (block inverse with Schur complement ``A_0``),
    so :func:`solve_arms` on ``P`` (with ``lam = 0``) gives exactly what disjoint decisions
    read. Per-arm linear algebra on K small matrices, no loop over rows.
    """
    K, D = G.shape[0], G.shape[1]
    A = G[:, k:, k:] + lam * np.eye(D - k)
    B = G[:, k:, :k]
    b = g[:, k:]
    Bt = B.transpose(0, 2, 1)
    AinvB = np.linalg.solve(A, B)
    Ainvb = np.linalg.solve(A, b[:, :, None])
    BtAinvB = Bt @ AinvB
    BtAinvb = (Bt @ Ainvb)[:, :, 0]
    A0 = lam * np.eye(k) + G[:, :k, :k].sum(axis=0) - BtAinvB.sum(axis=0)
    b0 = g[:, :k].sum(axis=0) - BtAinvb.sum(axis=0)
    P = np.empty((K, D, D))
    P[:, :k, :k] = A0[None] + BtAinvB
    P[:, :k, k:] = Bt
    P[:, k:, :k] = B
    P[:, k:, k:] = A
    P = 0.5 * (P + P.transpose(0, 2, 1))  # exactly symmetric for the Cholesky
    c = np.empty((K, D))
    c[:, :k] = b0[None] + BtAinvb
    c[:, k:] = b
    return P, c
