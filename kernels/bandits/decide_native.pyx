# cython: language_level=3
"""Batch bandit decisions compiled at build time: the worker of :func:`.decide.decide_rows`.

Why Cython/C (issue #11): the Numba kernels of the decision path cost ~40 s of CPU of JIT
compilation on a cold first ``decide`` (92 specialisations). The arithmetic is C in
``decide_core.h`` (the same operations in the same order as those kernels; see its header);
this module binds arrays to it and runs it without the GIL.

Threads follow the launch rule (:func:`kernels.common.launch.run_threaded`): every worker
claims chunks of rows from one atomic counter, and each row's decision depends only on its
features, the policy and its (seed, row) stream, so the outputs are the same bits on any
thread count.
"""
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc

import numpy as np

cdef extern from "decide_core.h" nogil:
    ctypedef struct fe_policy:
        const double *theta
        const double *L_inv
        const double *base_mean
        const double *base_var
        const double *bounds
        const double *beta_a
        const double *beta_b
        double scale, epsilon, slack
        int64_t K, d, kind, draws, rowwise_below
        uint64_t seed
    ctypedef struct fe_outputs:
        int64_t *arm
        double *prop
        double *mean
        double *dist
    ctypedef struct fe_scratch:
        pass
    size_t fe_scratch_doubles(int64_t d, int64_t K, int64_t B)
    void fe_scratch_bind(fe_scratch *s, double *buf, int64_t *ints, int64_t d, int64_t K,
                         int64_t B)
    int64_t fe_decide_block(const double *XC, Py_ssize_t ld, int64_t m, const uint8_t *mask,
                            const fe_policy *p, int prune, const uint8_t *everyone,
                            fe_scratch *s, int64_t i0, int64_t row0, const fe_outputs *out)
    int64_t fe_decide_single(const double *x, const uint8_t *elig, const double *theta,
                             const double *L_inv, const double *arm_params, int64_t K,
                             int64_t d, double scale, int64_t kind, double epsilon,
                             uint64_t seed, int64_t row, int64_t draws, double slack,
                             int64_t rowwise_below, double *prop)
    long long fe_fetch_add(long long *p, long long v)
    double fe_next_uniform(uint64_t *state)
    double fe_next_normal(uint64_t *state)
    double fe_next_beta(uint64_t *state, double a, double b)
    int64_t fe_next_index(uint64_t *state, int64_t n)
    uint64_t fe_stream_base(uint64_t seed, uint64_t row)

GREEDY = 0
UCB = 1
GAUSS_TS = 2
BETA_TS = 3


def decide_worker(const int64_t[::1] addresses, Py_ssize_t n, const uint8_t[:, ::1] mask,
                  const double[:, ::1] theta, const double[:, :, ::1] L_inv,
                  const double[::1] base_mean, const double[::1] base_var, double scale,
                  const double[:, ::1] bounds, const double[::1] beta_a,
                  const double[::1] beta_b, int64_t kind, double epsilon, uint64_t seed,
                  int64_t row0, int64_t draws, int64_t[::1] out_arm, double[::1] out_prop,
                  double[:, ::1] out_mean, double[:, ::1] out_dist, int64_t[::1] out_bad,
                  int64_t[::1] next_chunk, Py_ssize_t chunk, double slack,
                  int64_t rowwise_below):
    """One worker of a batch decision (arguments as :func:`.decide.decide_rows`): claims chunks
    ``c`` (rows ``c * chunk`` to ``(c + 1) * chunk``) through the shared counter
    ``next_chunk[0]`` until none are left, copies each chunk's feature columns into a
    features x rows block and decides it; ``out_bad[c]`` receives the chunk's count of rows
    whose means are not finite."""
    cdef Py_ssize_t K = theta.shape[0], d = theta.shape[1]
    cdef Py_ssize_t n_chunks = (n + chunk - 1) // chunk
    if n == 0 or K == 0:
        return
    cdef fe_policy pol
    cdef double zero = 0.0
    pol.theta = &theta[0, 0] if d else &zero
    pol.L_inv = &L_inv[0, 0, 0] if d else &zero
    pol.base_mean, pol.base_var = &base_mean[0], &base_var[0]
    pol.bounds = &bounds[0, 0]
    pol.beta_a, pol.beta_b = &beta_a[0], &beta_b[0]
    pol.scale, pol.epsilon, pol.slack = scale, epsilon, slack
    pol.K, pol.d, pol.kind, pol.draws, pol.rowwise_below = K, d, kind, draws, rowwise_below
    pol.seed = seed
    cdef fe_outputs out
    out.arm, out.prop = &out_arm[0], &out_prop[0]
    out.mean = &out_mean[0, 0] if out_mean.shape[0] else NULL
    out.dist = &out_dist[0, 0] if out_dist.shape[0] else NULL
    cdef const uint8_t* mask_p = &mask[0, 0] if mask.shape[0] else NULL
    cdef bint prune = kind == UCB and mask_p == NULL
    cdef size_t n_doubles = fe_scratch_doubles(d, K, chunk) + d * chunk  # + the block XC
    cdef double* buf = <double*> malloc(n_doubles * sizeof(double))
    cdef int64_t* ints = <int64_t*> malloc(3 * chunk * sizeof(int64_t))
    cdef uint8_t* everyone = <uint8_t*> malloc(K)
    if buf == NULL or ints == NULL or everyone == NULL:
        free(buf)
        free(ints)
        free(everyone)
        raise MemoryError()
    cdef fe_scratch scratch
    fe_scratch_bind(&scratch, buf, ints, d, K, chunk)
    cdef double* XC = buf + fe_scratch_doubles(d, K, chunk)
    cdef long long* counter = <long long*> &next_chunk[0]
    cdef Py_ssize_t c, lo, m, j, r
    cdef const double* col
    with nogil:
        for j in range(K):
            everyone[j] = 1
        c = fe_fetch_add(counter, 1)
        while c < n_chunks:
            lo = c * chunk
            m = min(n, lo + chunk) - lo
            for j in range(d):
                col = <const double*> <size_t> addresses[j]
                for r in range(m):
                    XC[j * chunk + r] = col[lo + r]
            # The block's rows are rows lo.. of the outputs, the mask and the random streams.
            out_bad[c] = fe_decide_block(XC, chunk, m,
                                         mask_p + lo * K if mask_p != NULL else NULL,
                                         &pol, prune, everyone, &scratch, lo, row0 + lo, &out)
            c = fe_fetch_add(counter, 1)
    free(buf)
    free(ints)
    free(everyone)


def decide_single(const double[::1] x, const uint8_t[::1] elig, const double[:, ::1] theta,
                  const double[:, :, ::1] L_inv, const double[:, ::1] arm_params, double scale,
                  int64_t kind, double epsilon, uint64_t seed, int64_t row, int64_t draws,
                  double slack, int64_t rowwise_below):
    """One decision as ``decide_one`` makes it (for tests; the server calls the C function
    itself): ``(arm, propensity)``, arm ``-1`` none eligible, ``-2`` non-finite ``x``."""
    cdef Py_ssize_t K = theta.shape[0], d = theta.shape[1]
    cdef double zero = 0.0, prop = 0.0
    cdef int64_t arm
    if x.shape[0] != d or elig.shape[0] != K or arm_params.shape[0] != 8 \
            or arm_params.shape[1] != K or K == 0:
        raise ValueError("decide_single: shapes do not agree")
    with nogil:
        arm = fe_decide_single(&x[0] if d else &zero, &elig[0], &theta[0, 0] if d else &zero,
                               &L_inv[0, 0, 0] if d else &zero, &arm_params[0, 0], K, d,
                               scale, kind, epsilon, seed, row, draws, slack, rowwise_below,
                               &prop)
    if arm == -4:
        raise MemoryError()
    return arm, prop


# -- the random streams, for tests (the kernels call the C functions) -----------------------
def uniforms(uint64_t seed, int64_t row, Py_ssize_t count):
    """The first ``count`` uniforms of stream ``(seed, row)``."""
    out = np.empty(count)
    cdef double[::1] o = out
    cdef uint64_t state = fe_stream_base(seed, <uint64_t>row)
    cdef Py_ssize_t k
    for k in range(count):
        o[k] = fe_next_uniform(&state)
    return out


def normals(uint64_t seed, int64_t row, Py_ssize_t count):
    """The first ``count`` standard normals of stream ``(seed, row)`` (two uniforms each)."""
    out = np.empty(count)
    cdef double[::1] o = out
    cdef uint64_t state = fe_stream_base(seed, <uint64_t>row)
    cdef Py_ssize_t k
    for k in range(count):
        o[k] = fe_next_normal(&state)
    return out


def betas(uint64_t seed, int64_t row, double a, double b, Py_ssize_t count):
    """``count`` successive Beta(a, b) draws of stream ``(seed, row)``."""
    out = np.empty(count)
    cdef double[::1] o = out
    cdef uint64_t state = fe_stream_base(seed, <uint64_t>row)
    cdef Py_ssize_t k
    for k in range(count):
        o[k] = fe_next_beta(&state, a, b)
    return out


def indices(uint64_t seed, int64_t row, int64_t n, Py_ssize_t count):
    """``count`` successive uniform integers in ``0..n-1`` of stream ``(seed, row)``."""
    out = np.empty(count, np.int64)
    cdef int64_t[::1] o = out
    cdef uint64_t state = fe_stream_base(seed, <uint64_t>row)
    cdef Py_ssize_t k
    for k in range(count):
        o[k] = fe_next_index(&state, n)
    return out
