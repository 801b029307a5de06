# cython: language_level=3
"""Row partitions and id numbering of the one-shot ``rfm()`` pass, compiled at build time (#11).

A large ``rfm()`` call first scatters its rows into partitions: by customer code when the ids
are dense integers (``oneshot.partition``), else by id range, each partition then numbering
its own ids in id order (``hashed.partition``, ``hashed.encode_partitions``); short string ids
are packed into two key words first (``pack_short_strings``). As Numba kernels these were
3-20 s of JIT compilation on a first large call in a fresh process; compiled ahead of time
they cost nothing then. The loops are C (``partition_rows.h``, ``number_ids.h``,
``sort_keys.h``); ``oneshot.py`` and ``hashed.py`` hold the plans.

Threads: every ``*_worker`` function releases the GIL and claims pieces of a fixed plan
(row chunks, partitions) through an atomic counter (``kernels.common.launch.run_threaded``);
each piece writes its own outputs, so results never depend on the thread count.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

import numpy as np

cimport numpy as cnp

cnp.import_array()


cdef extern from "../common/atomic.h" nogil:
    long long fe_fetch_add(long long* p, long long v)

cdef extern from "sort_keys.h" nogil:
    ctypedef struct fe_pair:
        uint64_t high
        uint64_t low
        int64_t index
    void fe_sort_pairs(fe_pair* v, int64_t n)

cdef extern from "partition_rows.h" nogil:
    fe_pair fe_sort_key(const uint64_t* keys0, const uint64_t* keys1, int two_words,
                        int is_signed, int64_t i)
    void fe_code_histogram(const int64_t* codes, int64_t lo, int64_t hi, int64_t shift,
                           int64_t* counts)
    void fe_code_scatter(const int64_t* codes, const int64_t* times, const double* amounts,
                         const int64_t* orders, int has_order, int64_t lo, int64_t hi,
                         int64_t shift, int64_t* cursor, int32_t* out_local, int64_t* out_times,
                         double* out_amounts, int64_t* out_orders)
    void fe_partition_starts(const int64_t* hist, int64_t n_chunks, int64_t n_parts,
                             int64_t* cursors, int64_t* part_offsets)
    void fe_sample_keys(const uint64_t* keys0, const uint64_t* keys1, int two_words,
                        int is_signed, int64_t n, int64_t m, fe_pair* sample)
    double fe_id_estimate(const fe_pair* sample, int64_t m, int64_t n)
    void fe_key_histogram(const uint64_t* keys0, const uint64_t* keys1, int two_words,
                          int is_signed, const uint64_t* split_high, const uint64_t* split_low,
                          int64_t n_splitters, int64_t lo, int64_t hi, int32_t* part,
                          int64_t* counts)
    void fe_key_scatter(const uint64_t* keys0, const uint64_t* keys1, int two_words,
                        const int32_t* part, const int64_t* times, const double* amounts,
                        const int64_t* orders, int has_order, int64_t lo, int64_t hi,
                        int64_t* cursor, uint64_t* out_keys0, uint64_t* out_keys1,
                        int64_t* out_times, double* out_amounts, int64_t* out_orders)

cdef extern from "number_ids.h" nogil:
    int64_t fe_number_partition(const uint64_t* keys0, const uint64_t* keys1, int two_words,
                                int is_signed, int64_t lo, int64_t hi, int64_t table_rows,
                                int32_t* local, uint64_t* ids0, uint64_t* ids1)

ctypedef fused offset_t:
    int32_t
    int64_t


cdef inline const uint64_t* _u64(const uint64_t[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] else NULL


cdef inline const int64_t* _i64(const int64_t[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] else NULL


# -- by customer code (oneshot.partition) -------------------------------------------------------

def code_histogram_worker(const int64_t[::1] codes, int64_t shift, int64_t step,
                          int64_t[:, ::1] hist, int64_t[::1] next_chunk):
    """Per-chunk partition sizes: ``hist[t, p]`` = rows of chunk t (rows ``[t step, (t+1)
    step)``) whose code is in partition p (``code >> shift``)."""
    cdef int64_t n = codes.shape[0], n_chunks = hist.shape[0], t
    cdef long long* counter = <long long*> &next_chunk[0]
    with nogil:
        t = fe_fetch_add(counter, 1)
        while t < n_chunks:
            fe_code_histogram(&codes[0], min(n, t * step), min(n, (t + 1) * step), shift,
                              &hist[t, 0])
            t = fe_fetch_add(counter, 1)


def code_scatter_worker(const int64_t[::1] codes, const int64_t[::1] times,
                        const double[::1] amounts, const int64_t[::1] orders, bint has_order,
                        int64_t shift, int64_t step, int64_t[:, ::1] cursors,
                        int32_t[::1] out_local, int64_t[::1] out_times, double[::1] out_amounts,
                        int64_t[::1] out_orders, int64_t[::1] next_chunk):
    """Stable scatter of each chunk's rows from its cursors (``partition_starts``)."""
    cdef int64_t n = codes.shape[0], n_chunks = cursors.shape[0], t
    cdef long long* counter = <long long*> &next_chunk[0]
    cdef int64_t* out_ord = <int64_t*> _i64(out_orders)
    with nogil:
        t = fe_fetch_add(counter, 1)
        while t < n_chunks:
            fe_code_scatter(&codes[0], &times[0], &amounts[0], _i64(orders), has_order,
                            min(n, t * step), min(n, (t + 1) * step), shift, &cursors[t, 0],
                            &out_local[0], &out_times[0], &out_amounts[0], out_ord)
            t = fe_fetch_add(counter, 1)


def partition_starts(const int64_t[:, ::1] hist):
    """Scatter cursors and partition offsets from per-chunk histograms ``hist[chunk, part]``.

    Partition-major, chunk-minor starts: chunk t's rows of a partition follow chunk t-1's, so
    the scatter is stable. Returns (cursors int64[n_chunks, n_parts], part_offsets
    int64[n_parts + 1])."""
    cdef int64_t n_chunks = hist.shape[0], n_parts = hist.shape[1]
    cursors = np.empty((n_chunks, n_parts), np.int64)
    part_offsets = np.empty(n_parts + 1, np.int64)
    cdef int64_t[:, ::1] c = cursors
    cdef int64_t[::1] o = part_offsets
    if n_chunks and n_parts:
        fe_partition_starts(&hist[0, 0], n_chunks, n_parts, &c[0, 0], &o[0])
    else:
        part_offsets[:] = 0
    return cursors, part_offsets


# -- by id range (hashed.partition) -------------------------------------------------------------

def sample_keys(const uint64_t[::1] keys0, const uint64_t[::1] keys1, bint two_words,
                bint signed, int64_t sample_rows):
    """(high uint64[m], low uint64[m], estimate): the sorted sort keys of ``m = max(1,
    min(n, sample_rows))`` evenly spaced rows, and the distinct ids of all rows they suggest."""
    cdef int64_t n = keys0.shape[0], m = max(1, min(n, sample_rows)), j
    sample_arr = np.empty(m * 3, np.uint64)  # fe_pair: high, low, index
    high = np.empty(m, np.uint64)
    low = np.empty(m, np.uint64)
    cdef uint64_t[::1] raw = sample_arr
    cdef uint64_t[::1] h = high
    cdef uint64_t[::1] l = low
    cdef fe_pair* sample = <fe_pair*> &raw[0]
    cdef double estimate
    with nogil:
        fe_sample_keys(&keys0[0], _u64(keys1), two_words, signed, n, m, sample)
        estimate = fe_id_estimate(sample, m, n)
        for j in range(m):
            h[j] = sample[j].high
            l[j] = sample[j].low
    return high, low, estimate


def key_histogram_worker(const uint64_t[::1] keys0, const uint64_t[::1] keys1, bint two_words,
                         bint signed, const uint64_t[::1] split_high,
                         const uint64_t[::1] split_low, int64_t step, int32_t[::1] part,
                         int64_t[:, ::1] hist, int64_t[::1] next_chunk):
    """Each row's partition (``part[i]``, the splitters at or below its id) and per-chunk
    partition sizes ``hist[t, p]``."""
    cdef int64_t n = keys0.shape[0], n_chunks = hist.shape[0], t
    cdef long long* counter = <long long*> &next_chunk[0]
    with nogil:
        t = fe_fetch_add(counter, 1)
        while t < n_chunks:
            fe_key_histogram(&keys0[0], _u64(keys1), two_words, signed, _u64(split_high),
                             _u64(split_low), split_high.shape[0], min(n, t * step),
                             min(n, (t + 1) * step), &part[0], &hist[t, 0])
            t = fe_fetch_add(counter, 1)


def key_scatter_worker(const uint64_t[::1] keys0, const uint64_t[::1] keys1, bint two_words,
                       const int32_t[::1] part, const int64_t[::1] times,
                       const double[::1] amounts, const int64_t[::1] orders, bint has_order,
                       int64_t step, int64_t[:, ::1] cursors, uint64_t[::1] out_keys0,
                       uint64_t[::1] out_keys1, int64_t[::1] out_times, double[::1] out_amounts,
                       int64_t[::1] out_orders, int64_t[::1] next_chunk):
    """Stable scatter of each chunk's rows (key words and payload) from its cursors."""
    cdef int64_t n = keys0.shape[0], n_chunks = cursors.shape[0], t
    cdef long long* counter = <long long*> &next_chunk[0]
    cdef uint64_t* out_k1 = <uint64_t*> _u64(out_keys1)
    cdef int64_t* out_ord = <int64_t*> _i64(out_orders)
    with nogil:
        t = fe_fetch_add(counter, 1)
        while t < n_chunks:
            fe_key_scatter(&keys0[0], _u64(keys1), two_words, &part[0], &times[0], &amounts[0],
                           _i64(orders), has_order, min(n, t * step), min(n, (t + 1) * step),
                           &cursors[t, 0], &out_keys0[0], out_k1, &out_times[0],
                           &out_amounts[0], out_ord)
            t = fe_fetch_add(counter, 1)


# -- numbering (hashed.encode_partitions) -------------------------------------------------------

def number_worker(const int64_t[::1] part_offsets, const uint64_t[::1] keys0,
                  const uint64_t[::1] keys1, bint two_words, bint signed, int64_t table_rows,
                  int32_t[::1] local, uint64_t[::1] scratch0, uint64_t[::1] scratch1,
                  int64_t[::1] counts, int64_t[::1] next_part):
    """Number each claimed partition's ids in id order: ``local`` (rows), the ids in
    ``scratch*[lo:lo + counts[p]]``. Raises MemoryError when a table cannot be allocated."""
    cdef int64_t n_parts = part_offsets.shape[0] - 1, p, d = 0
    cdef long long* counter = <long long*> &next_part[0]
    cdef uint64_t* s1 = <uint64_t*> _u64(scratch1)
    with nogil:
        p = fe_fetch_add(counter, 1)
        while p < n_parts:
            if part_offsets[p + 1] > part_offsets[p]:
                d = fe_number_partition(&keys0[0], _u64(keys1), two_words, signed,
                                        part_offsets[p], part_offsets[p + 1], table_rows,
                                        &local[0], &scratch0[0], s1)
                if d < 0:
                    fe_fetch_add(counter, n_parts)  # the other workers stop too
                    break
            else:
                d = 0
            counts[p] = d
            p = fe_fetch_add(counter, 1)
    if d < 0:
        raise MemoryError("rfm: no memory for a partition's id table")


def copy_ids_worker(const int64_t[::1] part_offsets, const int64_t[::1] bases,
                    const uint64_t[::1] scratch0, const uint64_t[::1] scratch1, bint two_words,
                    uint64_t[::1] ids0, uint64_t[::1] ids1, int64_t[::1] next_part):
    """The ids of code ``bases[p] + r``: ``scratch*[part_offsets[p] + r]``."""
    cdef int64_t n_parts = part_offsets.shape[0] - 1, p, r, lo
    cdef long long* counter = <long long*> &next_part[0]
    with nogil:
        p = fe_fetch_add(counter, 1)
        while p < n_parts:
            lo = part_offsets[p]
            for r in range(bases[p + 1] - bases[p]):
                ids0[bases[p] + r] = scratch0[lo + r]
                if two_words:
                    ids1[bases[p] + r] = scratch1[lo + r]
            p = fe_fetch_add(counter, 1)


# -- short strings as two key words --------------------------------------------------------------

cdef inline uint64_t _low_bytes(uint64_t word, int64_t n_bytes) noexcept nogil:
    # the n_bytes (0..8) least significant bytes of word
    if n_bytes >= 8:
        return word
    return word & ((<uint64_t> 1 << (8 * n_bytes)) - 1)


cdef inline uint64_t _word_at(const uint64_t* aligned, int64_t byte) noexcept nogil:
    # the 8 bytes from ``byte`` on, little-endian, from two aligned loads
    cdef int64_t a = byte >> 3
    cdef uint64_t r = 8 * (byte & 7)
    if r == 0:
        return aligned[a]
    return (aligned[a] >> r) | (aligned[a + 1] << (64 - r))


def pack_worker(const offset_t[::1] offsets, const uint8_t[::1] data,
                const uint64_t[::1] aligned, uint64_t[::1] words0, uint64_t[::1] words1,
                int64_t max_short, int64_t chunk_rows, int64_t[::1] bad, int64_t[::1] next_chunk):
    """Pack each string of at most ``max_short`` bytes into two words, injectively: bytes 0..7
    little-endian zero-padded, bytes 8..14 and the length in the top byte. ``bad[t]``: the
    strings of chunk t it could not pack (longer, or offsets not in order inside ``data``;
    nothing is read outside ``data``); their words are 0."""
    cdef int64_t n = words0.shape[0], n_chunks = bad.shape[0], t, i, k, start, length, n_bad
    cdef int64_t n_data = data.shape[0], n_aligned = aligned.shape[0]
    cdef const uint64_t* al = _u64(aligned)
    cdef uint64_t w0, w1
    cdef long long* counter = <long long*> &next_chunk[0]
    with nogil:
        t = fe_fetch_add(counter, 1)
        while t < n_chunks:
            n_bad = 0
            for i in range(t * chunk_rows, min(n, (t + 1) * chunk_rows)):
                start = offsets[i]
                length = offsets[i + 1] - start
                if start < 0 or length < 0 or length > max_short or start + length > n_data:
                    words0[i] = 0
                    words1[i] = 0
                    n_bad += 1
                    continue
                if (start >> 3) + 2 < n_aligned:
                    w0 = _low_bytes(_word_at(al, start), min(length, 8))
                    w1 = _low_bytes(_word_at(al, start + 8), max(length - 8, 0))
                else:  # the last few strings: the two loads could run past the buffer
                    w0 = 0
                    w1 = 0
                    for k in range(min(length, 8)):
                        w0 |= (<uint64_t> data[start + k]) << (8 * k)
                    for k in range(8, length):
                        w1 |= (<uint64_t> data[start + k]) << (8 * (k - 8))
                words0[i] = w0
                words1[i] = w1 | (<uint64_t> length << 56)
            bad[t] = n_bad
            t = fe_fetch_add(counter, 1)


def unpack_short_strings(const uint64_t[::1] words0, const uint64_t[::1] words1):
    """Inverse of the packing: (int64 offsets[m + 1], uint8 data) of the strings."""
    cdef int64_t m = words0.shape[0], i, k
    offsets_arr = np.empty(m + 1, np.int64)
    cdef int64_t[::1] offsets = offsets_arr
    offsets[0] = 0
    for i in range(m):
        offsets[i + 1] = offsets[i] + <int64_t> (words1[i] >> 56)
    data_arr = np.empty(offsets[m], np.uint8)
    cdef uint8_t[::1] data = data_arr
    cdef uint64_t word
    with nogil:
        for i in range(m):
            for k in range(offsets[i + 1] - offsets[i]):
                word = words0[i] if k < 8 else words1[i]
                data[offsets[i] + k] = <uint8_t> ((word >> (8 * (k & 7))) & 0xFF)
    return offsets_arr, data_arr


def short_string_order(const uint64_t[::1] words0, const uint64_t[::1] words1):
    """Permutation (int64) that sorts packed short strings in byte order (Arrow's sort)."""
    cdef int64_t m = words0.shape[0], i
    raw_arr = np.empty(max(m, 1) * 3, np.uint64)  # fe_pair: high, low, index
    order_arr = np.empty(m, np.int64)
    cdef uint64_t[::1] raw = raw_arr
    cdef int64_t[::1] order = order_arr
    cdef fe_pair* keys = <fe_pair*> &raw[0]
    with nogil:
        for i in range(m):
            keys[i] = fe_sort_key(&words0[0], &words1[0], 1, 0, i)
        fe_sort_pairs(keys, m)
        for i in range(m):
            order[i] = keys[i].index
    return order_arr
