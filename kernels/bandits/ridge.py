"""Per-arm sufficient statistics of the bandit policies and the ridge solves built on them.

Every policy keeps, per arm ``a``: the count ``n[a]``, the reward sum ``s[a]`` and the sum of
squared rewards ``s2[a]``; contextual policies also keep the Gram matrix ``G[a] = sum x x^T`` and
``g[a] = sum r x`` over the rows logged for that arm. The ridge model of an arm is
``A = G + lambda I``, ``theta = A^-1 g``. Statistics add, so two policies merge by adding them.

Accumulation is parallel over tasks of at most ``rows_per_task`` rows of one arm (rows grouped by
arm in their original order); each task sums into its own slot and the slots of an arm are added
in task order afterwards, so the result does not depend on the thread count.
"""
import math

import numpy as np
from numba import njit, prange

from ..common.config import BANDIT_UPDATE_BLOCK, NJIT
from ..common.launch import parallel_kernel


@njit(**NJIT)
def plan_tasks(arms, n_arms, rows_per_task):
    """Group row indices by arm (stable) and cut each arm's rows into tasks.

    Returns ``(order, task_arm, task_start, task_stop, starts)``: ``order`` lists row indices arm
    by arm (arm ``a``'s at ``starts[a]:starts[a+1]``); task ``t`` covers
    ``order[task_start[t]:task_stop[t]]``, all rows of arm ``task_arm[t]``.
    """
    n = arms.shape[0]
    counts = np.zeros(n_arms, dtype=np.int64)
    for i in range(n):
        counts[arms[i]] += 1
    starts = np.zeros(n_arms + 1, dtype=np.int64)
    n_tasks = 0
    for a in range(n_arms):
        starts[a + 1] = starts[a] + counts[a]
        n_tasks += (counts[a] + rows_per_task - 1) // rows_per_task
    order = np.empty(n, dtype=np.int64)
    fill = starts[:-1].copy()
    for i in range(n):
        a = arms[i]
        order[fill[a]] = i
        fill[a] += 1
    task_arm = np.empty(n_tasks, dtype=np.int64)
    task_start = np.empty(n_tasks, dtype=np.int64)
    task_stop = np.empty(n_tasks, dtype=np.int64)
    t = 0
    for a in range(n_arms):
        lo = starts[a]
        while lo < starts[a + 1]:
            hi = min(lo + rows_per_task, starts[a + 1])
            task_arm[t] = a
            task_start[t] = lo
            task_stop[t] = hi
            t += 1
            lo = hi
    return order, task_arm, task_start, task_stop, starts


@njit(**NJIT)
def _lane_products(lanes, u, v):
    """``lanes[r] += u[r] * v[r]``: products of one block of rows kept per row position, so the
    loop is element-wise (SIMD) instead of a reduction the compiler may not reorder."""
    for r in range(u.shape[0]):
        lanes[r] += u[r] * v[r]


@njit(**NJIT)
def _lane_sum(lanes):
    """The lanes of one entry added in lane order (a fixed order, whatever the threads)."""
    s = 0.0
    for r in range(lanes.shape[0]):
        s += lanes[r]
    return s


@njit(**NJIT)
def scatter_plan(arms, starts, rows_per_range):
    """``offsets[r, a]``: where the first row of arm ``a`` in range ``r`` (rows
    ``r * rows_per_range ...``) goes when rows are grouped by arm, stably (``starts`` from
    :func:`plan_tasks`). The ranges then scatter independently (:func:`scatter_rows`), and the
    grouped order is the same for any range size."""
    n = arms.shape[0]
    K = starts.shape[0] - 1
    R = max(1, (n + rows_per_range - 1) // rows_per_range)
    offsets = np.empty((R, K), dtype=np.int64)
    fill = starts[:K].copy()
    for r in range(R):
        offsets[r] = fill
        for i in range(r * rows_per_range, min(n, (r + 1) * rows_per_range)):
            fill[arms[i]] += 1
    return offsets


@parallel_kernel
def scatter_rows(src, arms, offsets, rows_per_range, dst):
    """``dst[k] = src[order[k]]`` for one feature column (rows grouped by arm, stably): read
    straight from the input column (no copy of the feature matrix first), written through one
    sequential stream per arm and range, ranges in parallel."""
    n = arms.shape[0]
    for r in prange(offsets.shape[0]):
        fill = offsets[r].copy()
        for i in range(r * rows_per_range, min(n, (r + 1) * rows_per_range)):
            a = arms[i]
            dst[fill[a]] = src[i]
            fill[a] += 1


@parallel_kernel
def task_sums(XG, rewards, order, task_start, task_stop, part_G, part_g, part_s):
    """Per task: ``part_G[t]`` (upper triangle of sum x x^T), ``part_g[t]`` (sum r x) and
    ``part_s[t] = (count, sum r, sum r^2)`` over the task's rows. ``XG`` is features x rows in
    ``order`` (see :func:`scatter_rows`), so a task's rows are contiguous.

    Rows are taken ``BANDIT_UPDATE_BLOCK`` at a time; every entry of the triangle keeps one
    running sum per row position of the block ("lanes", element-wise SIMD products over
    contiguous rows), and the lanes are added in lane order at the end of the task. The order of
    every addition follows the task layout, not the threads.
    """
    d = XG.shape[0]
    L = BANDIT_UPDATE_BLOCK
    for t in prange(task_start.shape[0]):
        rb = np.empty(L)
        lanes = np.zeros((d * (d + 1) // 2, L))
        lanes_g = np.zeros((d, L))
        s1 = 0.0
        s2 = 0.0
        for k0 in range(task_start[t], task_stop[t], L):
            m = min(L, task_stop[t] - k0)
            for r in range(m):
                rb[r] = rewards[order[k0 + r]]
                s1 += rb[r]
                s2 += rb[r] * rb[r]
            e = 0
            for p in range(d):
                xp = XG[p, k0:k0 + m]
                _lane_products(lanes_g[p], xp, rb[:m])
                for q in range(p, d):
                    _lane_products(lanes[e], xp, XG[q, k0:k0 + m])
                    e += 1
        G = part_G[t]
        e = 0
        for p in range(d):
            part_g[t, p] = _lane_sum(lanes_g[p])
            for q in range(p, d):
                G[p, q] = _lane_sum(lanes[e])
                e += 1
        part_s[t, 0] = task_stop[t] - task_start[t]
        part_s[t, 1] = s1
        part_s[t, 2] = s2


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
