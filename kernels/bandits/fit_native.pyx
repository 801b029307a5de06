# cython: language_level=3
"""The fit path of the ridge-based bandit policies, compiled at build time (issues #11, #12).

What it replaces: Numba kernels (``ridge.block_sums``, ``add_task_sums``, ``solve_arms``,
``add_one`` and their helpers) that a cold process compiled on its first ``update()`` (~5 s of
CPU), and whose rank-1 Gram updates (one load and one store of ``G`` per multiply-add, which
Numba would not tile) were ~60% of a fit. Here the per-task sums are C (``fit_gram.h``): rows
sorted by arm a block at a time, then added tile by tile with the sums held in SIMD registers.

Every loop runs without the GIL. A fit is split into fixed tasks of consecutive rows; workers
(:func:`kernels.common.launch.run_threaded`) claim tasks through an atomic counter and each task
is summed by one thread into its own slots, every entry in input row order; the caller adds the
task slots in task order (:func:`add_task_sums`). So the statistics are the same bits for any
thread count, and the same bits as the row-by-row sums of ``tests/naive_bandits.py``.
"""
from libc.math cimport sqrt
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc

import numpy as np

ctypedef fused arm_code:
    int32_t
    int64_t


cdef extern from "../common/atomic.h" nogil:
    long long fe_fetch_add(long long* p, long long v)


cdef extern from "fit_gram.h" nogil:
    ctypedef struct fe_fit_problem:
        const double* const* cols
        const int64_t* codes
        const int32_t* codes32
        const double* rewards
        int64_t n, d, K, rows_per_task, block
        double* part_G
        double* part_g
        double* part_s
    int64_t fe_fit_scratch_doubles(int64_t d, int64_t K, int64_t block)
    int64_t fe_fit_scratch_slots(int64_t d, int64_t K, int64_t block)
    void fe_fit_scratch_init(double* scratch, int64_t d, int64_t K, int64_t block)
    void fe_fit_task(const fe_fit_problem* pb, int64_t t, double* scratch, int64_t* iscratch)
    int fe_fit_task_with(int bits, const fe_fit_problem* pb, int64_t t, double* scratch,
                         int64_t* iscratch)
    int fe_fit_vector_bits()


def vector_bits():
    """Vector width (bits) of the task body this CPU runs: 512 (AVX-512), 256 (AVX2) or 128."""
    return fe_fit_vector_bits()


def block_sums_worker(const int64_t[::1] addresses, int64_t n, const arm_code[::1] codes,
                      const double[::1] rewards, int64_t rows_per_task, int64_t block_rows,
                      double[:, :, :, ::1] part_G, double[:, :, ::1] part_g,
                      double[:, :, ::1] part_s, int64_t[::1] next_task, int bits=0):
    """One worker of :func:`kernels.bandits.ridge.block_sums`: claims tasks ``t`` (rows
    ``t * rows_per_task`` onwards) through ``next_task[0]`` until none are left and writes
    their sums (``part_G[t]``, ``part_g[t]``, ``part_s[t]``; overwritten). Feature column ``j``
    is ``n`` float64 values at address ``addresses[j]``; ``0 <= codes < K``, int32 (what
    Arrow's ``index_in`` gives, no conversion needed) or int64. ``bits``: 0 the CPU's body,
    else 512 / 256 / 128 to force one (tests); returns False if it cannot run."""
    cdef int64_t T = part_s.shape[0], K = part_s.shape[1], d = part_g.shape[2]
    cdef fe_fit_problem pb
    pb.cols = <const double* const*> &addresses[0] if d else NULL
    pb.codes = NULL
    pb.codes32 = NULL
    if n:
        if arm_code is int32_t:
            pb.codes32 = &codes[0]
        else:
            pb.codes = &codes[0]
    pb.rewards = &rewards[0] if n else NULL
    pb.n = n
    pb.d = d
    pb.K = K
    pb.rows_per_task = rows_per_task
    pb.block = block_rows
    pb.part_G = &part_G[0, 0, 0, 0] if d and T and K else NULL
    pb.part_g = &part_g[0, 0, 0] if d and T and K else NULL
    pb.part_s = &part_s[0, 0, 0] if T and K else NULL
    if T == 0 or K == 0:
        return True
    cdef double* scratch = <double*> malloc(fe_fit_scratch_doubles(d, K, block_rows)
                                            * sizeof(double))
    cdef int64_t* iscratch = <int64_t*> malloc(fe_fit_scratch_slots(d, K, block_rows)
                                               * sizeof(int64_t))
    if scratch == NULL or iscratch == NULL:
        free(scratch)
        free(iscratch)
        raise MemoryError()
    fe_fit_scratch_init(scratch, d, K, block_rows)
    cdef long long* counter = <long long*> &next_task[0]
    cdef int64_t t
    cdef int ok = 1
    with nogil:
        t = fe_fetch_add(counter, 1)
        while t < T and ok:
            if bits == 0:
                fe_fit_task(&pb, t, scratch, iscratch)
            else:
                ok = fe_fit_task_with(bits, &pb, t, scratch, iscratch)
            t = fe_fetch_add(counter, 1)
    free(scratch)
    free(iscratch)
    return bool(ok)


def add_task_sums(const int64_t[::1] task_arm, const double[:, :, :] part_G,
                  const double[:, :] part_g, const double[:, :] part_s, double[:, :, :] G,
                  double[:, :] g, double[:] counts, double[:] sums, double[:] sums2):
    """Add the task slots into the statistics arm by arm in task order (the upper triangle of
    each ``part_G`` slot), then mirror the triangles of the arms that got a slot."""
    cdef Py_ssize_t n_slots = task_arm.shape[0], K = G.shape[0], d = G.shape[1]
    cdef Py_ssize_t t, a, p, q
    cdef char* touched = <char*> malloc(K + 1)
    if touched == NULL:
        raise MemoryError()
    with nogil:
        for a in range(K):
            touched[a] = 0
        for t in range(n_slots):
            a = task_arm[t]
            touched[a] = 1
            counts[a] += part_s[t, 0]
            sums[a] += part_s[t, 1]
            sums2[a] += part_s[t, 2]
            for p in range(d):
                g[a, p] += part_g[t, p]
                for q in range(p, d):
                    G[a, p, q] += part_G[t, p, q]
        for a in range(K):
            if touched[a]:
                for p in range(d):
                    for q in range(p + 1, d):
                        G[a, q, p] = G[a, p, q]
    free(touched)


def add_one(const double[:] x, double reward, int64_t arm, double[:, :, :] G, double[:, :] g,
            double[:] counts, double[:] sums, double[:] sums2):
    """Add one logged row to the statistics (the single-event update of a service)."""
    cdef Py_ssize_t d = x.shape[0], p, q
    with nogil:
        counts[arm] += 1.0
        sums[arm] += reward
        sums2[arm] += reward * reward
        for p in range(d):
            g[arm, p] += reward * x[p]
            for q in range(d):
                G[arm, p, q] += x[p] * x[q]


def solve_arms(const double[:, :, :] G, const double[:, :] g, double lam, double[:, :] theta,
               double[:, :, :] A_inv, double[:, :, :] L_inv):
    """``A_inv[a] = (G[a] + lam I)^-1``, ``theta[a] = A_inv[a] g[a]`` and ``L_inv[a]``, the
    inverse of the Cholesky factor (lower triangular; ``A_inv = L_inv^T L_inv``).

    Returns the index of the first arm whose matrix is not positive definite, or -1.
    """
    cdef Py_ssize_t K = G.shape[0], d = G.shape[1]
    cdef double* L = <double*> malloc((d * d + 1) * sizeof(double))
    if L == NULL:
        raise MemoryError()
    cdef Py_ssize_t a
    cdef int64_t bad = -1
    with nogil:
        for a in range(K):
            if not _solve_one(G, g, lam, theta, A_inv, L_inv, a, d, L):
                bad = a
                break
    free(L)
    return bad


cdef bint _solve_one(const double[:, :, :] G, const double[:, :] g, double lam,
                     double[:, :] theta, double[:, :, :] A_inv, double[:, :, :] L_inv,
                     Py_ssize_t a, Py_ssize_t d, double* L) noexcept nogil:
    """Arm ``a`` of :func:`solve_arms` (``L``: d x d scratch); False if not positive definite."""
    cdef Py_ssize_t i, j, k
    cdef double s
    # Cholesky A = L L^T.
    for i in range(d):
        for j in range(i + 1):
            s = G[a, i, j] + (lam if i == j else 0.0)
            for k in range(j):
                s -= L[i * d + k] * L[j * d + k]
            if i == j:
                if not s > 0.0:
                    return False
                L[i * d + i] = sqrt(s)
            else:
                L[i * d + j] = s / L[j * d + j]
    # L^-1 (lower triangular), then A^-1 = L^-T L^-1.
    for j in range(d):
        for i in range(d):
            L_inv[a, i, j] = 0.0
        L_inv[a, j, j] = 1.0 / L[j * d + j]
        for i in range(j + 1, d):
            s = 0.0
            for k in range(j, i):
                s -= L[i * d + k] * L_inv[a, k, j]
            L_inv[a, i, j] = s / L[i * d + i]
    for i in range(d):
        for j in range(i, d):
            s = 0.0
            for k in range(j, d):
                s += L_inv[a, k, i] * L_inv[a, k, j]
            A_inv[a, i, j] = s
            A_inv[a, j, i] = s
    for i in range(d):
        s = 0.0
        for j in range(d):
            s += A_inv[a, i, j] * g[a, j]
        theta[a, i] = s
    return True
