# cython: language_level=3
"""The loops of off-policy evaluation, compiled at build time (issue #11: a first
``evaluate()`` compiles nothing).

Design: :mod:`.ope` (the kernel API that ``fastengage/bandits/evaluate.py`` calls) runs each
worker below on ``n_threads`` threads through
:func:`fastengage.kernels.common.launch.run_threaded`. A worker claims fixed pieces of work from
a shared atomic counter - chunks of ``chunk`` rounds, or whole bootstrap replicates - and every
float sum stays inside one piece, so the results do not depend on the thread count. The
estimators' formulas are in :mod:`.ope`'s docstring; the bootstrap draws from the decisions'
counter-based splitmix64 streams (``decide_rng.h``).
"""
from libc.math cimport fabs, INFINITY
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free

cdef extern from "decide_rng.h" nogil:
    uint64_t fe_stream_base(uint64_t seed, uint64_t row)
    int64_t fe_next_index(uint64_t* state, int64_t n)

cdef extern from "../common/atomic.h" nogil:
    long long fe_fetch_add(long long* p, long long v)

# Estimator codes (the order of ``ope.py``'s table).
cpdef enum Estimator:
    IPW = 0
    SNIPW = 1
    DM = 2
    DR = 3
    SNDR = 4
    SWITCH_DR = 5
    DR_OS = 6


def round_terms_worker(const int64_t[::1] action, const int64_t[::1] position,    # IN
                       const double[::1] pscore, const double[:, :, ::1] pi_e,    # IN
                       const double[:, :, ::1] q_hat, double tol, Py_ssize_t chunk,  # IN
                       double[::1] out_w, double[::1] out_dm, double[::1] out_qf,  # OUT
                       uint8_t[::1] out_bad, double[:, ::1] chunk_w,              # OUT
                       int64_t[::1] next_chunk):                                  # IN/OUT
    """Per round: ``w``, ``dm``, ``qf`` (the last two only when ``q_hat`` has rows) and
    ``out_bad = 1`` when the round's target probabilities at its position are negative, do not
    sum to 1 within ``tol``, its logged propensity is not in (0, 1], or a reward-model value at
    its position is not finite. ``chunk_w[c] = (sum w, sum w^2)`` over chunk ``c``."""
    cdef Py_ssize_t n = action.shape[0], K = pi_e.shape[1]
    cdef Py_ssize_t n_chunks = (n + chunk - 1) // chunk, c, i, b, a, p
    cdef bint has_q = q_hat.shape[0] > 0, bad
    cdef long long* counter = <long long*> &next_chunk[0]
    cdef double ps, total, num, pb, qb, w, sw, sw2
    with nogil:
        c = fe_fetch_add(counter, 1)
        while c < n_chunks:
            sw = 0.0
            sw2 = 0.0
            for i in range(c * chunk, min(n, (c + 1) * chunk)):
                a = action[i]
                p = position[i]
                ps = pscore[i]
                bad = not (ps > 0.0 and ps <= 1.0)
                total = 0.0
                num = 0.0
                for b in range(K):
                    pb = pi_e[i, b, p]
                    if not pb >= 0.0:
                        bad = True
                    total = total + pb
                    if has_q:
                        qb = q_hat[i, b, p]
                        if not fabs(qb) < INFINITY:
                            bad = True
                        num = num + pb * qb
                if fabs(total - 1.0) > tol:
                    bad = True
                out_bad[i] = bad
                w = pi_e[i, a, p] / ps
                out_w[i] = w
                sw = sw + w
                sw2 = sw2 + w * w
                if has_q:
                    out_dm[i] = num / total
                    out_qf[i] = q_hat[i, a, p]
            chunk_w[c, 0] = sw
            chunk_w[c, 1] = sw2
            c = fe_fetch_add(counter, 1)


def round_rewards_worker(const double[::1] reward, const double[::1] w,            # IN
                         const double[::1] dm, const double[::1] qf, double mean_w,  # IN
                         double clip, double tau, double lam,                      # IN
                         const int64_t[::1] estimators, Py_ssize_t chunk,           # IN
                         double[:, ::1] out, double[:, ::1] chunk_sums,            # OUT
                         int64_t[::1] next_chunk):                                 # IN/OUT
    """``out[i, e]``: round reward of estimator ``estimators[e]`` for round ``i`` (not filled
    when ``out`` has no rows); ``chunk_sums[c, e]``: their sum over chunk ``c``."""
    cdef Py_ssize_t n = reward.shape[0], E = estimators.shape[0]
    cdef Py_ssize_t n_chunks = (n + chunk - 1) // chunk, c, i, e
    cdef bint store = out.shape[0] > 0
    cdef long long* counter = <long long*> &next_chunk[0]
    cdef double wi, r, v, den, shrunk
    cdef int64_t code
    with nogil:
        c = fe_fetch_add(counter, 1)
        while c < n_chunks:
            for e in range(E):
                chunk_sums[c, e] = 0.0
            for i in range(c * chunk, min(n, (c + 1) * chunk)):
                wi = w[i]
                r = reward[i]
                for e in range(E):
                    code = estimators[e]
                    if code == IPW:
                        v = min(wi, clip) * r
                    elif code == SNIPW:
                        v = wi * r / mean_w
                    elif code == DM:
                        v = dm[i]
                    elif code == DR:
                        v = dm[i] + min(wi, clip) * (r - qf[i])
                    elif code == SNDR:
                        v = dm[i] + wi * (r - qf[i]) / mean_w
                    elif code == SWITCH_DR:
                        v = dm[i] + (wi * (r - qf[i]) if wi <= tau else 0.0)
                    else:  # DR with optimistic shrinkage
                        den = wi * wi + lam
                        if lam < INFINITY:
                            shrunk = lam * wi / den if den > 0.0 else 0.0
                        else:
                            shrunk = wi
                        v = dm[i] + shrunk * (r - qf[i])
                    if store:
                        out[i, e] = v
                    chunk_sums[c, e] = chunk_sums[c, e] + v
            c = fe_fetch_add(counter, 1)


def bootstrap_worker(const double[:, ::1] values, uint64_t seed,                   # IN
                     double[:, ::1] out, int64_t[::1] next_replicate):             # OUT, IN/OUT
    """``out[b, e]``: mean of ``values[:, e]`` over ``n`` rounds drawn with replacement from
    the stream ``(seed, b)``; one replicate per claim, so any thread count gives the same bits."""
    cdef Py_ssize_t n = values.shape[0], E = values.shape[1], B = out.shape[0], b, e, t
    cdef long long* counter = <long long*> &next_replicate[0]
    cdef uint64_t state
    cdef int64_t j
    cdef double* acc = <double*> calloc(max(E, 1), sizeof(double))
    if acc == NULL:
        raise MemoryError()
    with nogil:
        b = fe_fetch_add(counter, 1)
        while b < B:
            state = fe_stream_base(seed, <uint64_t>b)
            for e in range(E):
                acc[e] = 0.0
            for t in range(n):
                j = fe_next_index(&state, n)
                for e in range(E):
                    acc[e] = acc[e] + values[j, e]
            for e in range(E):
                out[b, e] = acc[e] / n
            b = fe_fetch_add(counter, 1)
    free(acc)
