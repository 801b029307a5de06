# cython: language_level=3
"""Arm ids -> arm codes (positions in a policy's arm list), compiled at build time (issue #12).

Design: ``fastengage/bandits/_columns.py:arm_codes`` builds an :class:`ArmTable` from the
policy's arms (a few to a few thousand ids, int64 or strings) and maps every logged arm column
with it: ``update()`` once per batch, the OPE on its action column, eligibility lists. The table
and its probing are ``arm_lookup.h``; the loops here run without the GIL, ``chunk`` rows at a
time claimed by the workers of :func:`kernels.common.launch.run_threaded` through an atomic
counter, each row's code written by one thread (the result does not depend on the thread
count). The table is immutable once built, so concurrent lookups need no lock.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

import numpy as np

ctypedef fused offset_t:
    int32_t
    int64_t

ctypedef fused code_t:
    int32_t
    int64_t


cdef extern from "../common/atomic.h" nogil:
    long long fe_fetch_add(long long* p, long long v)


cdef extern from "arm_lookup.h" nogil:
    int FE_ARM_SLOT_WORDS
    void fe_arm_words(const uint8_t* s, int64_t length, int64_t room, uint64_t* w0,
                      uint64_t* w1)
    uint64_t fe_arm_rest(const uint8_t* s, int64_t length)
    int64_t fe_arm_table_capacity(int64_t k)
    void fe_arm_table_put(int64_t* table, int64_t cap, uint64_t w0, uint64_t w1,
                          uint64_t length, uint64_t rest, int64_t code)
    int64_t fe_arm_find_string(const int64_t* table, int64_t cap, const uint8_t* s,
                               int64_t length, int64_t room, const int64_t* arm_offsets,
                               const uint8_t* arm_data)
    int64_t fe_arm_find_int(const int64_t* table, int64_t cap, int64_t value)
    void fe_arm_gather(const int64_t* codes, int64_t n, const int64_t* arm_offsets,
                       const uint8_t* arm_data, int32_t* offsets, uint8_t* data)


cdef const uint8_t EMPTY_BYTES[1]


cdef class ArmTable:
    """A read-only hash table of a policy's arm ids (all int64 or all strings, unique: the
    caller, ``_columns.arm_array``, validated them). ``strings`` tells which."""
    cdef readonly bint strings
    cdef readonly int64_t n_arms, capacity
    cdef object table          # int64[capacity * FE_ARM_SLOT_WORDS]
    cdef object arm_offsets    # int64[n_arms + 1] (strings)
    cdef object arm_data       # uint8[...] (strings)
    cdef object int_ids        # int64[n_arms] (integer ids)
    cdef const int64_t* table_p          # the three arrays' data (kept alive above)
    cdef const int64_t* arm_offsets_p
    cdef const uint8_t* arm_data_p

    def __cinit__(self):
        self.strings = False
        self.n_arms = 0
        self.capacity = 0

    @staticmethod
    def of_ints(const int64_t[::1] ids):
        cdef ArmTable t = ArmTable()
        cdef int64_t k = ids.shape[0], cap = fe_arm_table_capacity(ids.shape[0]), a
        cdef int64_t[::1] table = np.full(cap * FE_ARM_SLOT_WORDS, -1, dtype=np.int64)
        for a in range(k):
            fe_arm_table_put(&table[0], cap, <uint64_t>ids[a], 0, 0, 0, a)
        t.table, t.n_arms, t.capacity = table.base, k, cap
        t.table_p = &table[0]
        t.int_ids = np.array(ids, dtype=np.int64)  # by code, for take()
        return t

    @staticmethod
    def of_strings(const offset_t[::1] offsets, const uint8_t[::1] data):
        """From an Arrow string array's offsets (length k + 1, already sliced to the array)
        and value bytes."""
        cdef ArmTable t = ArmTable()
        cdef int64_t k = offsets.shape[0] - 1, cap = fe_arm_table_capacity(k), a, start, length
        cdef int64_t[::1] table = np.full(cap * FE_ARM_SLOT_WORDS, -1, dtype=np.int64)
        cdef int64_t[::1] own_offsets = np.zeros(k + 1, dtype=np.int64)
        # 16 zero bytes past the last id: fe_arm_gather copies short ids as two 8-byte words
        cdef uint8_t[::1] own = np.zeros(offsets[k] - offsets[0] + 16, dtype=np.uint8)
        cdef uint64_t w0, w1
        for a in range(k):
            start, length = offsets[a], offsets[a + 1] - offsets[a]
            own_offsets[a + 1] = own_offsets[a] + length
            own[own_offsets[a]:own_offsets[a + 1]] = data[start:start + length]
        for a in range(k):
            start, length = own_offsets[a], own_offsets[a + 1] - own_offsets[a]
            fe_arm_words(&own[start], length, own.shape[0] - start, &w0, &w1)
            fe_arm_table_put(&table[0], cap, w0, w1, length,
                             fe_arm_rest(&own[start], length) if length > 16 else 0, a)
        t.strings = True
        t.table, t.n_arms, t.capacity = table.base, k, cap
        t.arm_offsets, t.arm_data = own_offsets.base, own.base
        t.table_p, t.arm_offsets_p, t.arm_data_p = &table[0], &own_offsets[0], &own[0]
        return t

    def take(self, const int64_t[::1] codes):
        """The arm ids of ``codes`` (positions; -1 gives a null) as an Arrow array of the arms'
        type: what ``arms.take(codes)`` gives, in one pass after a checking one."""
        import pyarrow as pa

        cdef int64_t n = codes.shape[0], i, total = 0, nulls = 0, code, bad = -1
        cdef int64_t k = self.n_arms
        cdef const int64_t[::1] arm_offsets = self.arm_offsets if self.strings else None
        with nogil:  # every code is checked before any is used as an index
            for i in range(n):
                code = codes[i]
                if code < 0:
                    nulls += 1
                elif code >= k:
                    bad = code
                    break
                elif self.strings:
                    total += arm_offsets[code + 1] - arm_offsets[code]
        if bad >= 0:
            raise IndexError(f"arm code {bad} out of range for {k} arms")
        valid = np.asarray(codes) >= 0 if nulls else None
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
        if not self.strings:
            values = self.int_ids[np.maximum(codes, 0)] if n else np.zeros(0, np.int64)
            return pa.Array.from_buffers(pa.int64(), n, [bitmap, pa.py_buffer(values)],
                                         null_count=nulls)
        if total > 2**31 - 1:  # past what int32 offsets hold
            return pa.array(self.arm_strings()).cast(pa.large_string()).take(
                pa.array(np.asarray(codes), mask=None if valid is None else ~valid))
        cdef int32_t[::1] offsets = np.empty(n + 1, dtype=np.int32)
        cdef uint8_t[::1] data = np.empty(total + 16, dtype=np.uint8)
        cdef const uint8_t[::1] arm_data = self.arm_data
        with nogil:
            fe_arm_gather(&codes[0] if n else NULL, n, &arm_offsets[0], &arm_data[0],
                          &offsets[0], &data[0])
        return pa.Array.from_buffers(pa.string(), n, [bitmap, pa.py_buffer(offsets.base),
                                                      pa.py_buffer(data.base)[:total]],
                                     null_count=nulls)

    def arm_strings(self):
        """The arm ids (strings), in code order."""
        offs, raw = np.asarray(self.arm_offsets), bytes(np.asarray(self.arm_data))
        return [raw[offs[a]:offs[a + 1]].decode() for a in range(self.n_arms)]

    def lookup_worker(self, const offset_t[::1] values,  # IN  int64 ids, or Arrow offsets
                      const uint8_t[::1] data,           # IN  Arrow value bytes (strings)
                      code_t[::1] out,                   # OUT code, -1 unknown
                      int64_t chunk, int64_t[::1] counters):  # IN/OUT [next chunk, unknown]
        """One worker: claims ``chunk`` rows at a time through ``counters[0]`` and adds its
        unknown ids to ``counters[1]``. Integer tables read the ids ``values`` (int64);
        string tables read the strings ``data[values[i]:values[i + 1]]``."""
        cdef int64_t n = values.shape[0] - (1 if self.strings else 0), c, misses
        if offset_t is int32_t and not self.strings:
            raise TypeError("integer arm ids are int64")
        cdef long long* next_chunk = <long long*>&counters[0]
        cdef long long* unknown = <long long*>&counters[1]
        with nogil:
            c = fe_fetch_add(next_chunk, 1)
            while c * chunk < n:
                if self.strings:
                    misses = self._strings(values, data, c * chunk, min(n, (c + 1) * chunk),
                                           out)
                else:
                    misses = self._ints(values, c * chunk, min(n, (c + 1) * chunk), out)
                fe_fetch_add(unknown, misses)
                c = fe_fetch_add(next_chunk, 1)

    cdef int64_t _ints(self, const offset_t[::1] values, int64_t lo, int64_t hi,
                       code_t[::1] out) noexcept nogil:
        cdef const int64_t* table = <const int64_t*> self.table_p
        cdef int64_t i, misses = 0
        for i in range(lo, hi):
            out[i] = <code_t>fe_arm_find_int(table, self.capacity, values[i])
            misses += out[i] < 0
        return misses

    cdef int64_t _strings(self, const offset_t[::1] offsets, const uint8_t[::1] data,
                          int64_t lo, int64_t hi, code_t[::1] out) noexcept nogil:
        cdef const int64_t* table = <const int64_t*> self.table_p
        cdef int64_t i, start, length, misses = 0, nbytes = data.shape[0]
        cdef const uint8_t* base = &data[0] if nbytes else EMPTY_BYTES
        for i in range(lo, hi):
            start = offsets[i]
            length = offsets[i + 1] - start
            if length < 0 or start < 0 or start + length > nbytes:
                out[i] = -1  # malformed offsets: never read outside the buffer
            else:
                out[i] = <code_t>fe_arm_find_string(table, self.capacity, base + start, length,
                                                    nbytes - start, self.arm_offsets_p,
                                                    self.arm_data_p)
            misses += out[i] < 0
        return misses
