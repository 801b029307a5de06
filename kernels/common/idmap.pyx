# cython: language_level=3
"""Dense id encoding: map int64 or byte-string ids to codes 0, 1, 2, ... in first-seen order.

Open-addressing hash tables (linear probing, power-of-two capacity, load factor <= 1/2) kept in
C memory, so that an encoder can live for the whole life of a streaming state and be fed batch
after batch. Every loop over values runs without the GIL.

These objects are *not* safe for concurrent mutation: callers that share one map between threads
hold a lock around ``encode`` (``fastengage._ids.IdEncoder`` does). ``lookup`` does not mutate
and may run concurrently with other lookups.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy

cdef extern from *:
    # GCC/Clang builtin: start loading a cache line we will probe a few keys later.
    void __builtin_prefetch(const void* addr) nogil

cdef extern from *:
    """
    #include <stdlib.h>
    #include <sys/mman.h>
    /* Tables of 2 MiB and more: 2 MiB-aligned and advised to the kernel for transparent huge
       pages. Probes land at random in a table far larger than the caches, and with 4 KiB pages
       nearly every probe also misses the TLB; where the kernel hands out huge pages only on
       request (THP "madvise", Debian's default) malloc'd tables never got them. A hint: without
       huge pages the table works the same. free() releases either allocation. */
    static void* fe_table_alloc(size_t n) {
    #if defined(MADV_HUGEPAGE)
        if (n >= ((size_t)2 << 20)) {
            void* p = NULL;
            if (posix_memalign(&p, (size_t)2 << 20, n) != 0) return NULL;
            madvise(p, n, MADV_HUGEPAGE);
            return p;
        }
    #endif
        return malloc(n);
    }
    """
    void* fe_table_alloc(size_t n) nogil

# Keys hashed and prefetched ahead of probing: enough misses in flight to hide memory latency.
DEF BLOCK = 16

import numpy as np

cimport numpy as cnp

cnp.import_array()

ctypedef fused offset_t:
    int32_t
    int64_t

cdef struct Slot:
    uint64_t key   # the id's bits (Int64IdMap) or the string's hash (BytesIdMap)
    int64_t code   # -1 marks an empty slot


cdef inline uint64_t mix64(uint64_t x) noexcept nogil:
    # splitmix64 finaliser: consecutive ids (the common case) spread over the whole table.
    x ^= x >> 30
    x *= <uint64_t>0xbf58476d1ce4e5b9
    x ^= x >> 27
    x *= <uint64_t>0x94d049bb133111eb
    x ^= x >> 31
    return x


cdef inline uint64_t hash_bytes(const uint8_t* data, int64_t n) noexcept nogil:
    # Word-at-a-time multiply/rotate hash (FxHash style) with a splitmix finaliser; ids are short.
    cdef uint64_t h = <uint64_t>n * <uint64_t>0x9e3779b97f4a7c15
    cdef uint64_t word
    cdef int64_t i = 0
    while i + 8 <= n:
        memcpy(&word, data + i, 8)
        h = ((h << 5) | (h >> 59)) ^ word
        h *= <uint64_t>0x517cc1b727220a95
        i += 8
    word = 0
    if i < n:
        memcpy(&word, data + i, n - i)
        h = ((h << 5) | (h >> 59)) ^ word
        h *= <uint64_t>0x517cc1b727220a95
    return mix64(h)


cdef inline int64_t _capacity_for(int64_t n_keys) noexcept nogil:
    cdef int64_t cap = 16
    while cap < 2 * n_keys:
        cap *= 2
    return cap


cdef Slot* _empty_slots(int64_t capacity) noexcept nogil:
    """A table of ``capacity`` empty slots (NULL when out of memory)."""
    cdef Slot* slots = <Slot*>fe_table_alloc(capacity * sizeof(Slot))
    cdef int64_t i
    if slots != NULL:
        for i in range(capacity):
            slots[i].code = -1
    return slots


cdef Slot* _table_for(int64_t expected, int64_t* capacity) noexcept nogil:
    """An empty table with room for ``expected`` keys; its size goes to ``*capacity``."""
    capacity[0] = _capacity_for(expected)
    return _empty_slots(capacity[0])


cdef Slot* _rehash(Slot* slots, int64_t capacity, int64_t new_capacity,
                   bint mix_key) except NULL nogil:
    """Move every used slot into a new table; frees the old one. Int ids are placed by
    ``mix64(key)``; strings by their stored hash (``mix_key`` false)."""
    cdef Slot* new_slots = _empty_slots(new_capacity)
    cdef int64_t i, j, mask = new_capacity - 1
    if new_slots == NULL:
        with gil:
            raise MemoryError()
    for i in range(capacity):
        if slots[i].code >= 0:
            j = <int64_t>((mix64(slots[i].key) if mix_key else slots[i].key) & <uint64_t>mask)
            while new_slots[j].code >= 0:
                j = (j + 1) & mask
            new_slots[j] = slots[i]
    free(slots)
    return new_slots


cdef int _grow_slots(Slot** slots, int64_t* capacity, int64_t need,
                     bint mix_key) except -1 nogil:
    """Rehash ``*slots`` into a larger table when ``need`` keys would pass the load factor."""
    cdef int64_t new_capacity
    if 2 * need > capacity[0]:
        new_capacity = _capacity_for(need)
        slots[0] = _rehash(slots[0], capacity[0], new_capacity, mix_key)
        capacity[0] = new_capacity
    return 0


cdef int _check_allocated(const void* slots, const void* first, const void* second) except -1:
    """MemoryError unless a map's table and buffers were allocated (``__dealloc__`` frees them)."""
    if slots == NULL or first == NULL or second == NULL:
        raise MemoryError()
    return 0


cdef int _reserve(void** buffer, int64_t* capacity, int64_t need,
                  size_t item_size) except -1 nogil:
    """Grow ``*buffer`` (``*capacity`` items) by doubling until it holds ``need`` items."""
    cdef int64_t new_capacity = capacity[0]
    cdef void* grown
    if need <= new_capacity:
        return 0
    while new_capacity < need:
        new_capacity *= 2
    grown = realloc(buffer[0], new_capacity * item_size)
    if grown == NULL:
        with gil:
            raise MemoryError()
    buffer[0] = grown
    capacity[0] = new_capacity
    return 0


cdef class Int64IdMap:
    """Hash map from int64 id to dense int64 code (first-seen order)."""

    cdef Slot* slots
    cdef int64_t capacity
    cdef int64_t size
    cdef int64_t* keys_by_code
    cdef int64_t keys_capacity

    def __cinit__(self, int64_t expected=0):
        self.keys_capacity = max(16, expected)
        self.keys_by_code = <int64_t*>malloc(self.keys_capacity * sizeof(int64_t))
        self.slots = _table_for(expected, &self.capacity)
        self.size = 0
        _check_allocated(self.slots, self.keys_by_code, self.keys_by_code)

    def __dealloc__(self):
        free(self.slots)
        free(self.keys_by_code)

    def __len__(self):
        return self.size

    cdef int _grow(self, int64_t n_more) except -1 nogil:
        """Make room for n_more new keys without any resize inside the probing loop."""
        cdef int64_t need = self.size + n_more
        _reserve(<void**>&self.keys_by_code, &self.keys_capacity, need, sizeof(int64_t))
        _grow_slots(&self.slots, &self.capacity, need, True)
        return 0

    def encode(self, const int64_t[::1] values,  # IN  ids, any order, repeats allowed
               int64_t[::1] out):                # OUT dense code of each id
        """Encode ``values`` into ``out``, adding unseen ids. Returns the number of new ids."""
        cdef int64_t n = values.shape[0]
        cdef int64_t i, b, end, j, key, mask, before
        cdef int64_t slot_of[BLOCK]
        with nogil:
            before = self.size
            for b in range(0, n, BLOCK):
                end = min(b + BLOCK, n)
                # Room for the whole block up front, so no resize happens between the
                # prefetch and the probe of a key (a resize would move the slots).
                self._grow(end - b)
                mask = self.capacity - 1
                for i in range(b, end):
                    slot_of[i - b] = <int64_t>(mix64(<uint64_t>values[i]) & <uint64_t>mask)
                    __builtin_prefetch(&self.slots[slot_of[i - b]])
                for i in range(b, end):
                    key = values[i]
                    j = slot_of[i - b]
                    while True:
                        if self.slots[j].code < 0:
                            self.slots[j].key = <uint64_t>key
                            self.slots[j].code = self.size
                            self.keys_by_code[self.size] = key
                            out[i] = self.size
                            self.size += 1
                            break
                        if self.slots[j].key == <uint64_t>key:
                            out[i] = self.slots[j].code
                            break
                        j = (j + 1) & mask
        return self.size - before

    def lookup(self, const int64_t[::1] values,  # IN  ids
               int64_t[::1] out):                # OUT code, or -1 for an unknown id
        """Codes of known ids without inserting; -1 where the id is unknown."""
        cdef int64_t n = values.shape[0]
        cdef int64_t i, j, key, mask = self.capacity - 1
        with nogil:
            for i in range(n):
                key = values[i]
                j = <int64_t>(mix64(<uint64_t>key) & <uint64_t>mask)
                while True:
                    if self.slots[j].code < 0:
                        out[i] = -1
                        break
                    if self.slots[j].key == <uint64_t>key:
                        out[i] = self.slots[j].code
                        break
                    j = (j + 1) & mask

    def keys(self):
        """The ids in code order, as a new int64 NumPy array of length ``len(self)``."""
        cdef cnp.ndarray[cnp.int64_t, ndim=1] result = np.empty(self.size, dtype=np.int64)
        if self.size:
            memcpy(&result[0], self.keys_by_code, self.size * sizeof(int64_t))
        return result


cdef class BytesIdMap:
    """Hash map from byte strings (Arrow string buffers) to dense int64 codes (first-seen order).

    The distinct strings are kept in one growable byte arena with int64 offsets, which is exactly
    the layout of an Arrow ``large_string`` array, so decoding is a zero-parse buffer wrap.
    """

    cdef Slot* slots
    cdef int64_t capacity
    cdef int64_t size
    cdef int64_t* offsets        # size + 1 entries into arena
    cdef int64_t offsets_capacity
    cdef uint8_t* arena
    cdef int64_t arena_capacity

    def __cinit__(self, int64_t expected=0):
        self.slots = _table_for(expected, &self.capacity)
        self.offsets_capacity = max(16, expected + 1)
        self.offsets = <int64_t*>malloc(self.offsets_capacity * sizeof(int64_t))
        self.arena_capacity = 1024
        self.arena = <uint8_t*>malloc(self.arena_capacity)
        self.size = 0
        _check_allocated(self.slots, self.offsets, self.arena)
        self.offsets[0] = 0

    def __dealloc__(self):
        free(self.slots)
        free(self.offsets)
        free(self.arena)

    def __len__(self):
        return self.size

    cdef int _grow(self, int64_t n_more, int64_t bytes_more) except -1 nogil:
        """Make room for n_more new strings of bytes_more bytes in all, before probing."""
        cdef int64_t need = self.size + n_more
        _reserve(<void**>&self.offsets, &self.offsets_capacity, need + 1, sizeof(int64_t))
        _reserve(<void**>&self.arena, &self.arena_capacity, self.offsets[self.size] + bytes_more,
                 1)
        _grow_slots(&self.slots, &self.capacity, need, False)
        return 0

    cdef inline int64_t _find(self, const uint8_t* s, int64_t n, uint64_t h, bint insert) noexcept nogil:
        cdef int64_t mask = self.capacity - 1
        cdef int64_t j = <int64_t>(h & <uint64_t>mask)
        cdef int64_t code, start
        while True:
            code = self.slots[j].code
            if code < 0:
                if not insert:
                    return -1
                start = self.offsets[self.size]
                if n:
                    memcpy(self.arena + start, s, n)
                self.offsets[self.size + 1] = start + n
                self.slots[j].key = h
                self.slots[j].code = self.size
                self.size += 1
                return self.size - 1
            if self.slots[j].key == h:
                start = self.offsets[code]
                if self.offsets[code + 1] - start == n and (n == 0 or memcmp(self.arena + start, s, n) == 0):
                    return code
            j = (j + 1) & mask

    def encode(self, const offset_t[::1] offsets,  # IN  Arrow offsets, length n + 1
               const uint8_t[::1] data,            # IN  Arrow value bytes (may be empty)
               int64_t[::1] out):                  # OUT dense code of each string
        """Encode the n strings ``data[offsets[i]:offsets[i+1]]``; returns the number of new ids."""
        cdef int64_t n = offsets.shape[0] - 1
        cdef int64_t i, b, end, start, length, before, block_bytes
        cdef uint64_t hash_of[BLOCK]
        cdef const uint8_t* base = &data[0] if data.shape[0] > 0 else NULL
        with nogil:
            before = self.size
            for b in range(0, n, BLOCK):
                end = min(b + BLOCK, n)
                block_bytes = <int64_t>(offsets[end] - offsets[b])
                self._grow(end - b, block_bytes)
                for i in range(b, end):
                    start = offsets[i]
                    length = offsets[i + 1] - start
                    hash_of[i - b] = hash_bytes(base + start, length) if length else 0
                    __builtin_prefetch(&self.slots[hash_of[i - b] & <uint64_t>(self.capacity - 1)])
                for i in range(b, end):
                    start = offsets[i]
                    length = offsets[i + 1] - start
                    out[i] = self._find(base + start if length else NULL, length, hash_of[i - b], True)
        return self.size - before

    def lookup(self, const offset_t[::1] offsets,  # IN  Arrow offsets, length n + 1
               const uint8_t[::1] data,            # IN  Arrow value bytes
               int64_t[::1] out):                  # OUT code, or -1 for an unknown string
        cdef int64_t n = offsets.shape[0] - 1
        cdef int64_t i, start, length
        cdef const uint8_t* base = &data[0] if data.shape[0] > 0 else NULL
        with nogil:
            for i in range(n):
                start = offsets[i]
                length = offsets[i + 1] - start
                out[i] = self._find(base + start if length else NULL, length,
                                    hash_bytes(base + start, length) if length else 0, False)

    def buffers(self):
        """(offsets int64[len+1], data uint8[...]) copies: the large_string layout of the ids."""
        cdef cnp.ndarray[cnp.int64_t, ndim=1] offs = np.empty(self.size + 1, dtype=np.int64)
        memcpy(&offs[0], self.offsets, (self.size + 1) * sizeof(int64_t))
        cdef int64_t nbytes = self.offsets[self.size]
        cdef cnp.ndarray[cnp.uint8_t, ndim=1] data = np.empty(nbytes, dtype=np.uint8)
        if nbytes:
            memcpy(&data[0], self.arena, nbytes)
        return offs, data
