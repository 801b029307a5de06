# cython: language_level=3
"""The compiled serving path of one bandit policy snapshot (``Policy.decide_one``).

Like ``kernels/recommend/serve_native.pyx``'s ``Server``: everything a decision reads is bound
once, at construction (raw pointers into the snapshot's arrays, which it keeps alive), so a call
only checks ``x`` and the mask and runs the decision with the GIL released. Why: binding the
eleven arguments of the Numba kernel and its dispatch held the GIL for ~3 us of a ~4 us call.
(At ~1 us a decision, two threads calling ``decide_one`` decide no faster than one: the
Python around the call holds the GIL for about as long as the decision runs without it.
``decide_rows`` decides a few rows per call, one GIL-free call for the lot.)

The decision itself is ``fe_decide_single`` of ``decide_core.h``, called directly (compiled
into this module at build time, no Numba): the code of every row of a batch ``decide``, so
the same arithmetic and the same decisions.
A server is immutable; a policy builds a new one with each new snapshot, so a decision never
sees a half-applied update.
"""
cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t, uint64_t

import numpy as np

cnp.import_array()

cdef extern from "decide_core.h" nogil:
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

#: What :meth:`Server.decide` returns as the arm when ``x`` or ``eligible`` is not a contiguous
#: array of the right dtype and length: the caller converts and validates, then calls again.
NOT_READY = -3


cdef class Server:
    """One snapshot's single decision. ``decide(x, eligible, seed, row)`` -> ``(arm code,
    propensity)``: code ``-1`` no eligible arm, ``-2`` non-finite ``x``, :data:`NOT_READY`
    ``x``/``eligible`` not contiguous float64/uint8 of the right length. ``slack`` and
    ``rowwise_below`` are ``BANDIT_BOUND_SLACK`` and ``BANDIT_ROWWISE_BELOW``."""
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

    def __cinit__(self, theta, L_inv, arm_params, everyone, double scale, int64_t kind,
                  double epsilon, int64_t draws, double slack, int64_t rowwise_below):
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

    def decide(self, x, eligible, uint64_t seed, int64_t row):
        cdef const double* xp = self.no_context
        cdef const uint8_t* ep = self.everyone
        cdef double prop = 0.0
        cdef int64_t arm
        # Plain NumPy checks, not a typed memoryview: binding one costs more than the checks.
        if self.d:
            if not _is_vector(x, cnp.NPY_DOUBLE, self.d):
                return NOT_READY, prop
            xp = <const double*>cnp.PyArray_DATA(<cnp.ndarray>x)
        if eligible is not None:
            if not _is_vector(eligible, cnp.NPY_UINT8, self.K):
                return NOT_READY, prop
            ep = <const uint8_t*>cnp.PyArray_DATA(<cnp.ndarray>eligible)
        with nogil:
            arm = self._decide(xp, ep, seed, row, &prop)
        if arm == -4:
            raise MemoryError()
        return arm, prop


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
        if m:
            with nogil:
                n_bad = fe_decide_matrix(&X[0, 0] if self.d else self.no_context, m, mask_p,
                                         self.theta, self.L_inv, self.arm_params,
                                         self.everyone, self.K, self.d, self.scale, self.kind,
                                         self.epsilon, seed, row0, self.draws, self.slack,
                                         self.rowwise_below, &arms[0], &props[0])
        if n_bad == -4:
            raise MemoryError()
        return arms_, props_, n_bad

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
