# cython: language_level=3
"""The few-ids ``rfm()`` fold (``fewids.py`` documents the method), compiled at build time:
as Numba kernels its loops were seconds of JIT compilation on a first large ``rfm()`` call in
a fresh process (#11). The loops are C (``fewids_fold.h``); this module owns each thread's
state and runs the workers without the GIL.

Threads: each worker claims blocks of rows through an atomic counter
(``kernels.common.launch.run_threaded``) and folds them into a state of its own; ``merge``
then adds up the records of one id across the states (exact integer sums, min, max and
bitwise or), so the records never depend on the thread count or on which thread took which
block.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc

cimport numpy as cnp

cnp.import_array()


cdef extern from "../common/atomic.h" nogil:
    long long fe_fetch_add(long long* p, long long v)

cdef extern from "fewids_fold.h" nogil:
    ctypedef struct fe_rfm_record:
        pass
    ctypedef struct fe_fewids_state:
        int64_t room
        int64_t n_codes
        int64_t after_rows
        int64_t return_rows
    int64_t fe_flag_load(const int64_t* p)
    void fe_flag_store(int64_t* p, int64_t v)
    int fe_fewids_init(fe_fewids_state* s, int64_t room, int64_t words)
    int fe_fewids_grow(fe_fewids_state* s, int64_t words)
    void fe_fewids_free(fe_fewids_state* s)
    int64_t fe_fewids_fold_block(const uint64_t* keys0, const uint64_t* keys1, int two_words,
                                 const int64_t* times, const double* amounts, int64_t lo,
                                 int64_t hi, int64_t limit_us, int exclude_returns,
                                 int64_t first_day, int64_t words, int64_t prefetch_rows,
                                 fe_fewids_state* s)
    int64_t fe_fewids_merge(fe_fewids_state** states, int64_t n_states, int64_t words,
                            int two_words, int is_signed, fe_rfm_record* out, uint64_t* ids0,
                            uint64_t* ids1)


cdef class ThreadState:
    """One worker's table, records and day bitmaps (C memory, freed with the object)."""
    cdef fe_fewids_state state
    cdef bint ready

    def __dealloc__(self):
        if self.ready:
            fe_fewids_free(&self.state)

    @property
    def rows(self):
        """(rows after the cut, return rows) this worker folded."""
        return self.state.after_rows, self.state.return_rows

    @property
    def n_ids(self):
        return self.state.n_codes


def fold_worker(const uint64_t[::1] keys0, const uint64_t[::1] keys1, bint two_words,
                const int64_t[::1] times, const double[::1] amounts, int64_t limit_us,
                bint exclude_returns, int64_t first_day, int64_t words, int64_t block_rows,
                int64_t room, int64_t max_ids, int64_t prefetch_rows, int64_t[::1] next_block,
                int64_t[::1] gave_up):
    """Fold the claimed blocks of rows (block b is rows ``[b block_rows, (b + 1) block_rows)``)
    into a new state with room for ``room`` ids, doubled as needed; returns it, or None when
    it would need room for more than ``max_ids`` ids (then ``gave_up[0]`` is set and every
    worker stops at its next block)."""
    cdef int64_t n = keys0.shape[0], n_blocks = (n + block_rows - 1) // block_rows, b, start, stop
    cdef long long* counter = <long long*> &next_block[0]
    cdef int64_t* flag = &gave_up[0]
    cdef const uint64_t* k0 = &keys0[0]
    cdef const uint64_t* k1 = &keys1[0] if keys1.shape[0] else NULL
    cdef const int64_t* t = &times[0]
    cdef const double* a = &amounts[0]
    cdef ThreadState result = ThreadState()
    cdef int failed = 0  # 1: too many ids, 2: out of memory
    if fe_fewids_init(&result.state, room, words):
        raise MemoryError("rfm: no memory for the few-ids fold")
    result.ready = True
    with nogil:
        while not failed and not fe_flag_load(flag):
            b = fe_fetch_add(counter, 1)
            if b >= n_blocks:
                break
            start = b * block_rows
            stop = min(n, start + block_rows)
            while start < stop:
                start = fe_fewids_fold_block(k0, k1, two_words, t, a, start, stop, limit_us,
                                             exclude_returns, first_day, words, prefetch_rows,
                                             &result.state)
                if start == stop:
                    break
                if result.state.room >= max_ids:
                    failed = 1
                    fe_flag_store(flag, 1)
                    break
                if fe_fewids_grow(&result.state, words):
                    failed = 2
                    fe_flag_store(flag, 1)
                    break
    if failed == 2:
        raise MemoryError("rfm: no memory for the few-ids fold")
    return None if failed else result


def merge(list states, int64_t words, bint two_words, bint signed, uint8_t[::1] out,
          uint64_t[::1] ids0, uint64_t[::1] ids1):
    """The states' records merged by id into ``out`` (rfm.STATE_DTYPE bytes, room for every
    state's ids), in ascending id order, and their key words into ``ids0``/``ids1``; returns
    how many ids there are."""
    cdef int64_t n_states = len(states), t, d
    cdef fe_fewids_state** pointers = <fe_fewids_state**> malloc(max(n_states, 1) * sizeof(void*))
    if pointers == NULL:
        raise MemoryError("rfm: no memory to merge the few-ids states")
    cdef ThreadState s
    for t in range(n_states):
        s = states[t]
        pointers[t] = &s.state
    cdef fe_rfm_record* records = <fe_rfm_record*> &out[0] if out.shape[0] else NULL
    cdef uint64_t* i1 = &ids1[0] if ids1.shape[0] else NULL
    cdef uint64_t* i0 = &ids0[0] if ids0.shape[0] else NULL
    with nogil:
        d = fe_fewids_merge(pointers, n_states, words, two_words, signed, records, i0, i1)
    free(pointers)
    if d < 0:
        raise MemoryError("rfm: no memory to merge the few-ids states")
    return d
