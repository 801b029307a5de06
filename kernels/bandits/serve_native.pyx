# cython: language_level=3
"""The compiled serving path of a bandit policy (``Policy.decide_one`` / ``decide_rows``).

Design: a policy builds one :class:`Server` per snapshot (immutable, like the snapshot) and
keeps one :class:`ServiceStream` for its life. A server binds everything a decision reads once,
at construction, in one C struct (raw pointers into the snapshot's arrays, which it keeps
alive; the arm ids). :class:`ServingBase` is the policy's compiled base class: it holds the
published snapshot and ``decide_one`` -- the policy's method itself, no Python frame in between
-- which checks ``x``, the mask and the seed, runs the decision and returns the arm id in one C
call. Anything it cannot take as it is (a list, float32, a bad seed, non-finite ``x``) goes to
the policy's ``_decide_one_checked``, which converts or raises the clear error.

Threads: each thread keeps a small cache (:class:`_ThreadCache`, in its thread-state dict) of
the servers it used, holding a reference to each, and takes unseeded rows of the service
stream in blocks. A call compares the policy's published server pointer with its cached one
(the cache's reference keeps that address from being reused) and touches no object another
thread writes to. That matters on a free-threaded CPython (3.14t), where reading the snapshot
through attributes (an atomic reference count on shared objects, twice per call) and one shared
row counter made two threads decide no faster than one at 10 arms x 20 features; with the cache
they scale like plain Python code does. A cache holds at most ``_SLOTS`` servers per thread: a
replaced policy's last server lives until the slot is reused or the thread ends.

The GIL (CPython with one): a decision is ``fe_decide_single`` of ``decide_core.h`` (the code of
every row of a batch ``decide``: same arithmetic, same decisions), which needs no GIL and keeps
no state. The server releases the GIL around it when the decision is long enough for another
thread to use the time (``BANDIT_SERVE_NOGIL_WORK``; ``BANDIT_SERVE_NOGIL_ROWS_WORK`` for
``decide_rows``): handing the GIL to a waiting thread and back costs a futex wake-up and a
sleep, ~1 us on these VMs, more than a small model's whole decision (10 arms x 20 features:
~0.2 us). Releasing it there made two threads decide at 0.5-0.75x the rate of one; holding it,
~1x. Larger models (and every Thompson-sampling decision, with its propensity draws) release
it, and two threads decide up to ~1.9x as fast as one.
"""
cimport cython
cimport numpy as cnp
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.list cimport PyList_GET_ITEM
from cpython.long cimport PyLong_CheckExact
from cpython.object cimport PyObject
from libc.stdint cimport int64_t, uint8_t, uint64_t

import numpy as np
from sys import intern

cnp.import_array()

cdef extern from "Python.h":
    PyObject* PyThreadState_GetDict()  # borrowed; this thread's own dict

cdef extern from "../common/atomic.h" nogil:
    long long fe_fetch_add(long long *p, long long v)

cdef extern from *:
    """
    /* The published server pointer: written under the policy's critical section, read without
     * a lock by deciding threads, which only compare it with the server they hold. */
    static inline void *fe_load_ptr(void *const *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline void fe_store_ptr(void **p, void *v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    static unsigned long long fe_serving_uids = 0;
    /* 3.14+: references from the interpreter's stack to obj stop touching its reference count
     * (free-threaded builds; a no-op elsewhere). */
    static int fe_defer_refcount(PyObject *obj) {
    #if PY_VERSION_HEX >= 0x030E0000
        return PyUnstable_Object_EnableDeferredRefcount(obj);
    #else
        (void)obj;
        return 0;
    #endif
    }
    """
    int fe_defer_refcount(object obj)
    void* fe_load_ptr(void* const* p) nogil
    void fe_store_ptr(void** p, void* v) nogil
    unsigned long long fe_serving_uids

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

# What ``Server.decide_one`` returns when it cannot decide from its arguments as they are: ``x``
# or ``eligible`` not a contiguous float64 / uint8 vector of the right length, a seed that is
# not an int in [0, 2^64), or a non-finite ``x``. The caller converts and checks, then calls
# again.
cdef object _UNREADY = object()
#: The same marker, for Python callers.
UNREADY = _UNREADY
cdef object _NAN = float("nan")
cdef object _CACHE_KEY = intern("fastengage.bandits.serving_cache")

cdef enum:
    _SLOTS = 4          # servers one thread's cache holds
    _ROW_BLOCK = 4096   # unseeded rows a thread takes from a service stream at once


cdef class ServiceStream:
    """A policy's service random stream: its seed and the next unused row. ``decide_one`` without
    a seed decides as a row of the stream no other call uses: each thread takes blocks of
    ``_ROW_BLOCK`` rows by one atomic add and uses them in order (one thread alone: rows 0, 1,
    2, ...); ``take()`` takes one row (``decide_rows``' blocks)."""
    cdef readonly uint64_t seed
    cdef long long next_row

    def __cinit__(self, uint64_t seed):
        self.seed, self.next_row = seed, 0

    cpdef int64_t take(self):
        return fe_fetch_add(&self.next_row, 1)


cdef struct fe_serve_params:
    const double* theta
    const double* L_inv
    const double* arm_params
    const uint8_t* everyone
    const double* no_context
    int64_t K, d, kind, draws, rowwise_below
    double scale, epsilon, slack
    bint contextual, releases_gil
    PyObject* arm_ids          # the server's list (borrowed: the server holds it)
    long long* stream_rows     # the service stream's counter (the server holds the stream)
    uint64_t stream_seed


cdef class Server:
    """One snapshot's decisions: ``decide_one(x, eligible, seed)`` -> ``(arm id, propensity)``
    or :data:`UNREADY`; ``decide_rows``. ``slack`` and ``rowwise_below`` are
    ``BANDIT_BOUND_SLACK`` and ``BANDIT_ROWWISE_BELOW``."""
    cdef object _arrays           # keeps every array below alive
    cdef fe_serve_params p
    cdef double zero
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
        cdef int64_t K = theta_.shape[0], d = theta_.shape[1]
        if (L_inv_.shape[0] != K or L_inv_.shape[1] != d or L_inv_.shape[2] != d
                or params_.shape[0] != 8 or params_.shape[1] != K
                or everyone_.shape[0] != K or K == 0 or len(arm_ids) != K):
            raise ValueError("the snapshot's arrays do not agree in shape")
        self._arrays = (theta, L_inv, arm_params, everyone)
        # Interned: on a free-threaded CPython an interned string is immortal, so handing the
        # same arm id to many threads costs no shared reference-count traffic.
        self.arm_ids = [intern(a) if type(a) is str else a for a in arm_ids]
        self.stream = stream
        self.work = decision_work(K, d, kind, draws)
        self.nogil_rows_work = nogil_rows_work
        self.releases_gil = self.work >= nogil_work
        self.p.theta = &theta_[0, 0] if d else &self.zero
        self.p.L_inv = &L_inv_[0, 0, 0] if d else &self.zero
        self.p.arm_params, self.p.everyone = &params_[0, 0], &everyone_[0]
        self.p.no_context = &self.zero
        self.p.K, self.p.d, self.p.kind, self.p.draws = K, d, kind, draws
        self.p.rowwise_below, self.p.scale, self.p.epsilon = rowwise_below, scale, epsilon
        self.p.slack, self.p.contextual, self.p.releases_gil = slack, contextual, self.releases_gil
        self.p.arm_ids = <PyObject*>self.arm_ids
        self.p.stream_rows, self.p.stream_seed = &stream.next_row, stream.seed

    def decide_one(self, x, eligible, seed):
        """``(arm id, propensity)`` of one decision (see :meth:`ServingBase.decide_one`), or
        an internal marker when ``x``, ``eligible`` or ``seed`` need converting or checking (or
        ``x`` is not finite): the caller then goes the checked way. Without a seed: the next
        row of the service stream."""
        if seed is None:
            return _serve(&self.p, x, eligible, self.p.stream_seed, self.stream.take())
        if PyLong_CheckExact(seed) and 0 <= seed < 2 ** 64:
            return _serve(&self.p, x, eligible, seed, 0)
        return _UNREADY

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
        if X.shape[1] != self.p.d and m:
            raise ValueError("decide_rows: X has the wrong number of features")
        if eligible is not None:
            mask = eligible
            if mask.shape[0] != m or mask.shape[1] != self.p.K:
                raise ValueError("decide_rows: eligible has the wrong shape")
            if m:
                mask_p = &mask[0, 0]
        arms_ = np.empty(m, dtype=np.int64)
        props_ = np.empty(m, dtype=np.float64)
        cdef int64_t[::1] arms = arms_
        cdef double[::1] props = props_
        if m and m * self.work >= self.nogil_rows_work:
            with nogil:
                n_bad = self._decide_matrix(&X[0, 0] if self.p.d else self.p.no_context, m,
                                            mask_p, seed, row0, &arms[0], &props[0])
        elif m:
            n_bad = self._decide_matrix(&X[0, 0] if self.p.d else self.p.no_context, m, mask_p,
                                        seed, row0, &arms[0], &props[0])
        if n_bad == -4:
            raise MemoryError()
        return arms_, props_, n_bad

    cdef inline int64_t _decide_matrix(self, const double* X, int64_t m, const uint8_t* mask,
                                       uint64_t seed, int64_t row0, int64_t* arms,
                                       double* props) noexcept nogil:
        return fe_decide_matrix(X, m, mask, self.p.theta, self.p.L_inv, self.p.arm_params,
                                self.p.everyone, self.p.K, self.p.d, self.p.scale, self.p.kind,
                                self.p.epsilon, seed, row0, self.p.draws, self.p.slack,
                                self.p.rowwise_below, arms, props)


cdef object _serve(const fe_serve_params* p, x, eligible, uint64_t seed, int64_t row):
    """One decision of the server behind ``p`` (alive for the call: the caller holds it)."""
    cdef const double* xp = p.no_context
    cdef const uint8_t* ep = p.everyone
    cdef double prop = 0.0
    cdef int64_t arm
    if p.contextual:
        if not _is_vector(x, cnp.NPY_DOUBLE, p.d):
            return _UNREADY
        xp = <const double*>cnp.PyArray_DATA(<cnp.ndarray>x)
    if eligible is not None:
        if not _is_vector(eligible, cnp.NPY_UINT8, p.K):
            return _UNREADY
        ep = <const uint8_t*>cnp.PyArray_DATA(<cnp.ndarray>eligible)
    if p.releases_gil:
        with nogil:
            arm = _decide(p, xp, ep, seed, row, &prop)
    else:
        arm = _decide(p, xp, ep, seed, row, &prop)
    if arm >= 0:
        return <object>PyList_GET_ITEM(<object>p.arm_ids, arm), prop
    if arm == -1:
        return None, _NAN
    if arm == -4:
        raise MemoryError()
    return _UNREADY  # -2: x holds NaN or infinity; the checked way names the problem


cdef inline int64_t _decide(const fe_serve_params* p, const double* xp, const uint8_t* ep,
                            uint64_t seed, int64_t row, double* prop) noexcept nogil:
    return fe_decide_single(xp, ep, p.theta, p.L_inv, p.arm_params, p.K, p.d, p.scale, p.kind,
                            p.epsilon, seed, row, p.draws, p.slack, p.rowwise_below, prop)


@cython.final
cdef class _ThreadCache:
    """One thread's servers (``_SLOTS`` of them, by policy) and its blocks of service-stream
    rows. Only its thread reads or writes it; it lives in the thread-state dict and goes with the
    thread."""
    cdef uint64_t uid[_SLOTS]            # the policy of each slot (0: empty)
    cdef void* server[_SLOTS]            # the server whose parameters the slot uses
    cdef const fe_serve_params* params[_SLOTS]
    cdef long long* rows_of[_SLOTS]      # the stream counter the row block came from
    cdef int64_t next_row[_SLOTS]
    cdef int64_t end_row[_SLOTS]
    cdef list keep                       # the slots' servers: alive while a slot points at them
    cdef int victim

    def __cinit__(self):
        self.keep = [None] * _SLOTS
        self.victim = 0
        cdef int i
        for i in range(_SLOTS):
            self.uid[i], self.server[i], self.params[i], self.rows_of[i] = 0, NULL, NULL, NULL
            self.next_row[i] = self.end_row[i] = 0

    cdef int slot(self, ServingBase policy) except -1:
        """The slot holding ``policy``'s published server (refilled when it changed)."""
        cdef void* current = fe_load_ptr(&policy._current)
        cdef int i
        for i in range(_SLOTS):
            if self.uid[i] == policy.uid:
                if self.server[i] == current and current != NULL:
                    return i
                return self._refill(i, policy)
        i = self.victim
        self.victim = (i + 1) % _SLOTS
        self.uid[i], self.server[i], self.params[i] = policy.uid, NULL, NULL
        self.keep[i] = None
        self.rows_of[i], self.next_row[i], self.end_row[i] = NULL, 0, 0
        return self._refill(i, policy)

    cdef int _refill(self, int i, ServingBase policy) except -1:
        cdef Server server = policy._published_server()
        # compared while the old server (and so its stream) is still held: no address reuse
        if server.p.stream_rows != self.rows_of[i]:
            self.rows_of[i], self.next_row[i], self.end_row[i] = server.p.stream_rows, 0, 0
        self.keep[i] = server
        self.server[i], self.params[i] = <void*>server, &server.p
        return i

    cdef inline int64_t take_row(self, int i):
        if self.next_row[i] == self.end_row[i]:
            self.next_row[i] = fe_fetch_add(self.rows_of[i], _ROW_BLOCK)
            self.end_row[i] = self.next_row[i] + _ROW_BLOCK
        self.next_row[i] += 1
        return self.next_row[i] - 1


cdef inline _ThreadCache _thread_cache():
    cdef PyObject* tdict = PyThreadState_GetDict()
    if tdict == NULL:
        return _ThreadCache()  # no thread state dict (not seen): an uncached call
    cdef PyObject* found = PyDict_GetItem(<object>tdict, _CACHE_KEY)
    if found != NULL and type(<object>found) is _ThreadCache:
        return <_ThreadCache>found
    cache = _ThreadCache()
    PyDict_SetItem(<object>tdict, _CACHE_KEY, cache)
    return cache


cdef class ServingBase:
    """The compiled base of every policy: its published snapshot (``_snapshot``, read-only once
    published) and ``decide_one``."""
    cdef object _snap
    cdef void* _current                  # _snap.server, for deciding threads to compare with
    cdef readonly uint64_t uid           # this policy among all, for the threads' caches

    def __cinit__(self, *args, **kwargs):
        self._snap, self._current = None, NULL
        self.uid = fe_fetch_add(<long long*>&fe_serving_uids, 1) + 1

    @property
    def _snapshot(self):
        with cython.critical_section(self):
            return self._snap

    @_snapshot.setter
    def _snapshot(self, snap):
        cdef Server server = snap.server
        cdef bint first
        with cython.critical_section(self):
            first = self._snap is None
            self._snap = snap
            fe_store_ptr(&self._current, <void*>server)
        if first:
            # On a free-threaded CPython every thread that loads the policy (a global, an
            # attribute, a closure's cell) would update its one reference count, atomically, on
            # each call; deferred, such loads leave it alone. The policy is then freed by the
            # garbage collector, not at its last reference.
            fe_defer_refcount(self)

    cdef Server _published_server(self):
        with cython.critical_section(self):
            snap = self._snap
        return snap.server

    def decide_one(self, x=None, eligible=None, seed=None):
        """One decision for a service: ``(arm id, propensity)``; ``(None, nan)`` when no arm is
        eligible. ``x``: the row's features (a float64 NumPy vector in ``features`` order; other
        array-likes are converted); ``eligible``: an optional boolean vector in ``arms`` order;
        ``seed``: an integer to decide as row 0 of that seed's stream (what ``decide`` gives its
        first row); without it each call decides as a row of the policy's service stream that
        no other call uses (one thread alone: rows 0, 1, 2, ... of ``decide(seed=stream
        seed)``).

        One call into compiled code that reads the policy's current snapshot (immutable) and
        never takes the policy's lock: safe from any number of threads, concurrent with
        ``update``. The decision runs without the GIL when it is long enough for another thread
        to use the time (large models, Thompson sampling); a small model's decision (~0.2 us at
        10 arms x 20 features) is shorter than handing the GIL over, so it keeps it. On a
        free-threaded CPython (3.14t) threads decide in parallel at any size. Under a GIL, for
        throughput from several threads on a small model, :meth:`decide_rows` decides a few rows
        per call."""
        cdef _ThreadCache cache = _thread_cache()
        cdef int i = cache.slot(self)
        cdef const fe_serve_params* p = cache.params[i]
        if seed is None:
            out = _serve(p, x, eligible, p.stream_seed, cache.take_row(i))
        elif PyLong_CheckExact(seed) and 0 <= seed < 2 ** 64:
            out = _serve(p, x, eligible, seed, 0)
        else:
            out = _UNREADY
        if out is _UNREADY:
            return self._decide_one_checked(x, eligible, seed)
        return out


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


def take_service_row(ServingBase policy):
    """The service-stream row this thread's next unseeded ``decide_one`` of ``policy`` would have
    used, taken (for tests: the same path)."""
    cdef _ThreadCache cache = _thread_cache()
    cdef int i = cache.slot(policy)
    return cache.take_row(i)


#: Rows a thread takes from a service stream at once.
ROW_BLOCK = _ROW_BLOCK
