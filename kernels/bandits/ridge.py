"""Per-arm sufficient statistics of the bandit policies and the ridge solves built on them.

Every policy keeps, per arm ``a``: the count ``n[a]``, the reward sum ``s[a]`` and the sum of
squared rewards ``s2[a]``; contextual policies also keep the Gram matrix ``G[a] = sum x x^T`` and
``g[a] = sum r x`` over the rows logged for that arm. The ridge model of an arm is
``A = G + lambda I``, ``theta = A^-1 g``. Statistics add, so two policies merge by adding them.

Accumulation is parallel over tasks of ``rows_per_task`` consecutive input rows; each task sums
every arm's rows into its own slots and the slots of an arm are added in task order afterwards,
so the result does not depend on the thread count.
"""
import numpy as np

from ..common.config import BANDIT_SORT_BLOCK
from ..common.launch import resolve_threads, run_threaded
from . import fit_native as _native
from .fit_native import add_one, add_task_sums, solve_arms

__all__ = ["block_sums", "add_task_sums", "add_one", "solve_arms", "hybrid_joint"]


def block_sums(addresses, n, codes, rewards, rows_per_task, part_G, part_g, part_s,
               n_threads=None):
    """Per task ``t`` (rows ``t * rows_per_task ...`` in input order) and arm ``a``:
    ``part_G[t, a]`` (sum x x^T), ``part_g[t, a]`` (sum r x) and ``part_s[t, a] = (count,
    sum r, sum r^2)`` over the task's rows of arm ``a``, each entry summed in row order
    (overwritten; the arrays are C-contiguous float64 of shapes (T, K, d, d), (T, K, d),
    (T, K, 3) with ``T = ceil(n / rows_per_task)``, at least 1).

    One pass over the input (``kernels/bandits/fit_native.pyx``, ``fit_gram.h``): feature
    column ``j`` is read at ``addresses[j]`` (see :mod:`..common.columns`)
    ``BANDIT_SORT_BLOCK`` rows at a time; the block's rows are sorted by arm into a local
    buffer and added to their arm's sums tile by tile. The order of every addition follows the
    input and the task layout, not the threads: each task is summed by one of the
    ``n_threads`` workers.
    """
    T = part_s.shape[0]
    next_task = np.zeros(1, dtype=np.int64)

    def worker():
        _native.block_sums_worker(addresses, n, codes, rewards, rows_per_task,
                                  BANDIT_SORT_BLOCK, part_G, part_g, part_s, next_task)

    run_threaded(worker, min(resolve_threads(n_threads), max(T, 1)))


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
