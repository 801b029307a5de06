# cython: language_level=3
"""The compiled serving path of one bandit policy snapshot (``Policy.decide_one`` /
``decide_rows``).

Design: a policy builds one :class:`Server` per snapshot (immutable, like the snapshot) and
keeps one :class:`ServiceStream` for its life. Everything a decision reads is bound once, at
construction (raw pointers into the snapshot's arrays, which it keeps alive; the arm ids), so
:func:`decide_one` -- the policy's method itself, no Python frame in between -- checks ``x``,
the mask and the seed, runs the decision and returns the arm id in one C call. Anything it
cannot take as it is (a list, float32, a bad seed, non-finite ``x``) goes to the policy's
``_decide_one_checked``, which converts or raises the clear error.

The GIL: a decision is ``fe_decide_single`` of ``decide_core.h`` (the code of every row of a
batch ``decide``: same arithmetic, same decisions), which needs no GIL and keeps no state. The
server releases the GIL around it when the decision is long enough for another thread to use
the time (``BANDIT_SERVE_NOGIL_WORK``; ``BANDIT_SERVE_NOGIL_ROWS_WORK`` for ``decide_rows``):
handing the GIL to a waiting thread and back costs a futex wake-up and a sleep, ~1 us on these VMs, more than a small model's whole decision
(10 arms x 20 features: ~0.2 us). Releasing it there made two threads decide at 0.5-0.75x the
rate of one; holding it, ~1x. Larger models (and every Thompson-sampling decision, with its
propensity draws) release it, and two threads decide up to ~1.9x as fast as one.
"""
cimport numpy as cnp
from cpython.long cimport PyLong_CheckExact
from libc.stdint cimport int64_t, uint8_t, uint64_t

import numpy as np
from sys import intern

cnp.import_array()

cdef extern from "../common/atomic.h" nogil:
    long long fe_fetch_add(long long *p, long long v)

cdef extern from "decide_core.h" nogil:
    enum:
        FE_GREEDY
        FE_GAUSS_TS
        FE_BETA_TS
    int64_t fe_decide_single(const double *x, const uint8_t *elig, const double *theta,
                             const double *L_inv, const double *arm_params, int64_t K,
                             int64_t d, double scale, int64_t kind, double epsilon,
                             uint64_t seed, int64_t row, int64_t draws, double slack,
                             int64_t rowwise_below, double *prop)

cdef extern from "decide_core.h" nogil:
    int64_t fe_decide_matrix(const double *X, int64_t m, const uint8_t *mask,
                             const double *theta, const double *L_inv, const double *arm_params,
                             const uint8_t *everyone, int64_t K, int64_t d, double scale,
                             int64_t kind, double epsilon, uint64_t seed, int64_t row0,
                             int64_t draws, double slack, int64_t rowwise_below, int64_t *arms,
                             double *props)

# What Server.decide_one returns when it cannot decide from its arguments as they are: ``x`` or
# ``eligible`` not a contiguous float64 / uint8 vector of the right length, a seed that is not
# an int in [0, 2^64), or a non-finite ``x``. The caller converts and checks, then calls again.
cdef object _UNREADY = object()
#: The same marker, for Python callers.
UNREADY = _UNREADY
cdef object _NAN = float("nan")


cdef class ServiceStream:
    """A policy's service random stream: its seed and the next unused row. ``decide_one`` without
    a seed decides as row ``take()`` of the stream; a row is taken by one atomic add, so two
    threads never share one, with or without a GIL (free-threaded CPython)."""
    cdef readonly uint64_t seed
    cdef long long next_row

    def __cinit__(self, uint64_t seed):
        self.seed, self.next_row = seed, 0

    cpdef int64_t take(self):
        return fe_fetch_add(&self.next_row, 1)


def decide_one(policy, x=None, eligible=None, seed=None):
    """One decision for a service: ``(arm id, propensity)``; ``(None, nan)`` when no arm is
    eligible. ``x``: the row's features (a float64 NumPy vector in ``features`` order; other
    array-likes are converted); ``eligible``: an optional boolean vector in ``arms`` order;
    ``seed``: an integer to decide as row 0 of that seed's stream (what ``decide`` gives its
    first row); without it each call takes the next row of the policy's service stream.

    One call into compiled code that reads the policy's current snapshot (immutable) and never
    takes the policy's lock: safe from any number of threads, concurrent with ``update``. The
    decision runs without the GIL when it is long enough for another thread to use the time
    (large models, Thompson sampling); a small model's decision (~0.2 us at 10 arms x 20
    features) is shorter than handing the GIL over, so it keeps it. For throughput from several
    threads on a small model, :meth:`decide_rows` decides a few rows per call."""
    cdef Server server = policy._snapshot.server
    out = server.serve_one(x, eligible, seed)
    if out is _UNREADY:
        return policy._decide_one_checked(x, eligible, seed)
    return out


cdef class Server:
    """One snapshot's decisions: ``decide_one(x, eligible, seed)`` -> ``(arm id, propensity)``
    or :data:`UNREADY`; ``decide_rows``. ``slack`` and ``rowwise_below`` are
    ``BANDIT_BOUND_SLACK`` and ``BANDIT_ROWWISE_BELOW``."""
    cdef object _arrays           # keeps every array below alive
    cdef const double* theta
    cdef const double* L_inv
    cdef const double* arm_params
    cdef const uint8_t* everyone
    cdef const double* no_context
    cdef double zero
    cdef Py_ssize_t K, d
    cdef double scale, epsilon, slack
    cdef int64_t kind, draws, rowwise_below
    cdef bint contextual
    cdef list arm_ids
    cdef ServiceStream stream
    cdef readonly bint releases_gil
    cdef readonly int64_t work, nogil_rows_work

    def __cinit__(self, theta, L_inv, arm_params, everyone, double scale, int64_t kind,
                  double epsilon, int64_t draws, double slack, int64_t rowwise_below,
                  list arm_ids, ServiceStream stream not None, bint contextual,
                  int64_t nogil_work, int64_t nogil_rows_work):
        cdef const double[:, ::1] theta_ = theta
        cdef const double[:, :, ::1] L_inv_ = L_inv
        cdef const double[:, ::1] params_ = arm_params
        cdef const uint8_t[::1] everyone_ = everyone
        self.K, self.d = theta_.shape[0], theta_.shape[1]
        if (L_inv_.shape[0] != self.K or L_inv_.shape[1] != self.d or L_inv_.shape[2] != self.d
                or params_.shape[0] != 8 or params_.shape[1] != self.K
                or everyone_.shape[0] != self.K or self.K == 0):
            raise ValueError("the snapshot's arrays do not agree in shape")
        self._arrays = (theta, L_inv, arm_params, everyone)
        self.theta = &theta_[0, 0] if self.d else &self.zero
        self.L_inv = &L_inv_[0, 0, 0] if self.d else &self.zero
        self.arm_params, self.everyone = &params_[0, 0], &everyone_[0]
        self.no_context = &self.zero
        self.scale, self.kind, self.epsilon, self.draws = scale, kind, epsilon, draws
        self.slack, self.rowwise_below = slack, rowwise_below
        if len(arm_ids) != self.K:
            raise ValueError("the snapshot's arrays do not agree in shape")
        # Interned: on a free-threaded CPython an interned string is immortal, so handing the
        # same arm id to many threads costs no shared reference-count traffic.
        arm_ids = [intern(a) if type(a) is str else a for a in arm_ids]
        self.arm_ids, self.stream, self.contextual = arm_ids, stream, contextual
        self.work = decision_work(self.K, self.d, kind, draws)
        self.nogil_rows_work = nogil_rows_work
        self.releases_gil = self.work >= nogil_work

    def decide_one(self, x, eligible, seed):
        """``(arm id, propensity)`` of one decision (see the module's :func:`decide_one`), or
        an internal marker when ``x``, ``eligible`` or ``seed`` need converting or checking (or
        ``x`` is not finite): the caller then goes the checked way."""
        return self.serve_one(x, eligible, seed)

    cdef object serve_one(self, x, eligible, seed):
        # A C call from the module's decide_one: no method lookup or argument packing.
        cdef const double* xp = self.no_context
        cdef const uint8_t* ep = self.everyone
        cdef double prop = 0.0
        cdef int64_t arm, row = 0
        cdef uint64_t seed_
        if self.contextual:
            if not _is_vector(x, cnp.NPY_DOUBLE, self.d):
                return _UNREADY
            xp = <const double*>cnp.PyArray_DATA(<cnp.ndarray>x)
        if eligible is not None:
            if not _is_vector(eligible, cnp.NPY_UINT8, self.K):
                return _UNREADY
            ep = <const uint8_t*>cnp.PyArray_DATA(<cnp.ndarray>eligible)
        if seed is None:
            seed_, row = self.stream.seed, self.stream.take()
        elif PyLong_CheckExact(seed) and 0 <= seed < 2 ** 64:
            seed_ = seed
        else:
            return _UNREADY
        if self.releases_gil:
            with nogil:
                arm = self._decide(xp, ep, seed_, row, &prop)
        else:
            arm = self._decide(xp, ep, seed_, row, &prop)
        if arm >= 0:
            return self.arm_ids[arm], prop
        if arm == -1:
            return None, _NAN
        if arm == -4:
            raise MemoryError()
        return _UNREADY  # -2: x holds NaN or infinity; the checked way names the problem

    def decide_rows(self, const double[:, ::1] X,  # IN  (m, d) contexts
                    eligible,                       # IN  None, or (m, K) C-contiguous uint8
                    uint64_t seed, int64_t row0):
        """Rows ``i`` of ``X`` decided as rows ``row0 + i`` of the stream of ``seed`` (exactly
        ``decide``'s rows, by the same block code), in one call without the GIL. Returns
        ``(arm codes int64 (-1: none eligible), propensities, rows with non-finite means)``;
        the caller finds the bad features when the count is not 0."""
        cdef Py_ssize_t m = X.shape[0]
        cdef const uint8_t[:, ::1] mask
        cdef const uint8_t* mask_p = NULL
        cdef int64_t n_bad = 0
        if X.shape[1] != self.d and m:
            raise ValueError("decide_rows: X has the wrong number of features")
        if eligible is not None:
            mask = eligible
            if mask.shape[0] != m or mask.shape[1] != self.K:
                raise ValueError("decide_rows: eligible has the wrong shape")
            if m:
                mask_p = &mask[0, 0]
        arms_ = np.empty(m, dtype=np.int64)
        props_ = np.empty(m, dtype=np.float64)
        cdef int64_t[::1] arms = arms_
        cdef double[::1] props = props_
        if m and m * self.work >= self.nogil_rows_work:
            with nogil:
                n_bad = self._decide_matrix(&X[0, 0] if self.d else self.no_context, m, mask_p,
                                            seed, row0, &arms[0], &props[0])
        elif m:
            n_bad = self._decide_matrix(&X[0, 0] if self.d else self.no_context, m, mask_p, seed,
                                        row0, &arms[0], &props[0])
        if n_bad == -4:
            raise MemoryError()
        return arms_, props_, n_bad

    cdef inline int64_t _decide_matrix(self, const double* X, int64_t m, const uint8_t* mask,
                                       uint64_t seed, int64_t row0, int64_t* arms,
                                       double* props) noexcept nogil:
        return fe_decide_matrix(X, m, mask, self.theta, self.L_inv, self.arm_params,
                                self.everyone, self.K, self.d, self.scale, self.kind,
                                self.epsilon, seed, row0, self.draws, self.slack,
                                self.rowwise_below, arms, props)

    cdef inline int64_t _decide(self, const double* xp, const uint8_t* ep, uint64_t seed,
                                int64_t row, double* prop) noexcept nogil:
        return fe_decide_single(xp, ep, self.theta, self.L_inv, self.arm_params, self.K, self.d,
                                self.scale, self.kind, self.epsilon, seed, row, self.draws,
                                self.slack, self.rowwise_below, prop)


cdef inline bint _is_vector(obj, int type_num, Py_ssize_t n):
    """``obj`` is a C-contiguous, aligned, native-byte-order 1-D NumPy array of ``n`` values of
    ``type_num``."""
    if not cnp.PyArray_Check(obj):
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>obj
    return (cnp.PyArray_NDIM(arr) == 1 and cnp.PyArray_DIM(arr, 0) == n
            and cnp.PyArray_TYPE(arr) == type_num and cnp.PyArray_ISCARRAY_RO(arr)
            and cnp.PyArray_ISNOTSWAPPED(arr))


cpdef int64_t decision_work(int64_t K, int64_t d, int64_t kind, int64_t draws):
    """A decision's cost in multiply-adds (an upper bound: UCB skips widths that cannot win):
    the K means (K d), the widths of UCB and Thompson sampling (K d (d + 1) / 2, a triangular
    solve each), and for Thompson sampling ``draws + 1`` draws per arm, counted in the time of
    the multiply-adds above (which run in SIMD registers, ~0.03 ns each here): a normal draw
    takes ~28 ns, like ~1,000 of them, a Beta draw ~90 ns, ~3,200 (GaussianTS with 2 arms
    5.7 us a decision, BetaTS 18.2 us, LinTS 10 x 20 28.8 us; LinUCB 60 x 80 5.6 us)."""
    cdef int64_t work = K * d
    if kind != FE_GREEDY:
        work += K * d * (d + 1) // 2
    if kind == FE_GAUSS_TS:
        work += (draws + 1) * K * 1000
    elif kind == FE_BETA_TS:
        work += (draws + 1) * K * 3200
    return work
