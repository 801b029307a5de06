"""Dense customer codes for a whole in-memory table, without a global hash map, in id order.

A hash map over a million ids is tens of megabytes, so probing it costs a cache miss per row,
one row after the other. Here the rows are first scattered into partitions of consecutive id
ranges (a sequential, streaming write, as in ``oneshot.partition``; the range bounds are
quantiles of a sample of the ids, so partitions are even whatever the ids look like); each
partition then holds a few thousand distinct ids, numbers them with a small open-addressing
table inside the core's cache, and renumbers them in id order. Partitions work independently
and in parallel; partition ``p`` owns the codes ``bases[p] .. bases[p+1] - 1``, which is the
layout ``oneshot.fold`` consumes directly, and the codes ascend with the ids: the records come
out in id order without a global sort of the ids or a permuted read of the records (at one row
per customer those were half of an ``rfm()`` call).

Exactness
---------
Rows carry their id itself, never only a hash: an integer id is one 64-bit key word, a string of
at most :data:`MAX_SHORT` bytes is packed into two words (its bytes and its length, so "a" and
"a\\0" differ). Equal words mean equal ids, so the codes are exact. Longer strings take the
hash map of ``kernels/idmap.pyx`` instead.
"""
import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from ..common.launch import parallel_kernel
from .pairset import mix64  # splitmix64 finaliser: a bijection of 64-bit words
from .oneshot import partition_starts

#: Rows per partition the partition count aims at. 20M rows make 128 partitions: few enough
#: write streams for the scatter to stay fast (with 1,024 it took ~0.7 s, not 0.2-0.4 s), and
#: at ~20 rows a customer ~8,000 ids each, whose table and 64-byte records fit in L2.
ROWS_PER_PARTITION = 1 << 18
MAX_BITS = 10

#: Longest string id packed into two key words (15 bytes + 1 length byte).
MAX_SHORT = 15


def partition_bits(n_rows: int) -> int:
    """log2 of the number of hash partitions for ``n_rows`` rows (at least 1: a shift by 64
    bits, which one partition would need, is undefined)."""
    bits = 1
    while bits < MAX_BITS and (n_rows >> bits) > ROWS_PER_PARTITION:
        bits += 1
    return bits


@njit(**NJIT)
def _hash(keys0, keys1, two_words, i):
    if two_words:
        return mix64(keys0[i] ^ mix64(keys1[i]))
    return mix64(keys0[i])


@njit(**NJIT)
def _low_bytes(word, n_bytes):
    # The n_bytes (0..8) least significant bytes of word.
    if n_bytes >= 8:
        return word
    return word & ((np.uint64(1) << np.uint64(8 * n_bytes)) - np.uint64(1))


@njit(**NJIT)
def _word_at(aligned, byte):
    # The 8 bytes from ``byte`` on, little-endian, from two aligned loads.
    a = byte >> 3
    r = np.uint64(8 * (byte & 7))
    if r == 0:
        return aligned[a]
    return (aligned[a] >> r) | (aligned[a + 1] << (np.uint64(64) - r))


@parallel_kernel
def pack_short_strings(offsets,  # IN  int32/int64[n + 1] Arrow string offsets (lengths <= 15)
                       data,     # IN  uint8[...] Arrow string bytes
                       aligned,  # IN  uint64 view of data's whole words (empty if unaligned)
                       words0,   # OUT uint64[n] bytes 0..7, little-endian, zero-padded
                       words1):  # OUT uint64[n] bytes 8..14, and the length in the top byte
    """Pack each string of at most MAX_SHORT bytes into two words, injectively.

    Returns how many strings it could not pack: longer than MAX_SHORT, or offsets that do not
    lie in order inside ``data`` (a corrupt column, which the caller then reports; nothing is
    read outside ``data``: the column may not have been validated yet). Their words are 0.
    """
    n_bad = 0
    for i in prange(words0.shape[0]):
        start = offsets[i]
        length = offsets[i + 1] - start
        if start < 0 or length < 0 or length > MAX_SHORT or start + length > data.shape[0]:
            words0[i] = 0
            words1[i] = 0
            n_bad += 1
            continue
        if (start >> 3) + 2 < aligned.shape[0]:
            w0 = _low_bytes(_word_at(aligned, start), min(length, 8))
            w1 = _low_bytes(_word_at(aligned, start + 8), max(length - 8, 0))
        else:  # the last few strings: the two loads could run past the buffer
            w0 = np.uint64(0)
            w1 = np.uint64(0)
            for k in range(min(length, 8)):
                w0 |= np.uint64(data[start + k]) << np.uint64(8 * k)
            for k in range(8, length):
                w1 |= np.uint64(data[start + k]) << np.uint64(8 * (k - 8))
        words0[i] = w0
        words1[i] = w1 | (np.uint64(length) << np.uint64(56))
    return n_bad


@njit(**NJIT)
def unpack_short_strings(words0, words1):
    """Inverse of :func:`pack_short_strings`: (int64 offsets[m + 1], uint8 data) of the strings."""
    m = words0.shape[0]
    offsets = np.empty(m + 1, np.int64)
    offsets[0] = 0
    for i in range(m):
        offsets[i + 1] = offsets[i] + np.int64(words1[i] >> np.uint64(56))
    data = np.empty(offsets[m], np.uint8)
    for i in range(m):
        for k in range(offsets[i + 1] - offsets[i]):
            word = words0[i] if k < 8 else words1[i]
            data[offsets[i] + k] = np.uint8((word >> np.uint64(8 * (k & 7))) & np.uint64(0xFF))
    return offsets, data


SIGN = np.uint64(1) << np.uint64(63)
#: A partition's id table starts with room for this many rows' ids (2**14 slots: 192 KiB, in L2).
NUMBER_TABLE_ROWS = 1 << 13
#: Rows sampled to choose the partitions' id ranges (and their number).
SAMPLE_ROWS = 1 << 14
#: Distinct ids per partition the partition count aims at (tables and records in L2).
IDS_PER_PARTITION = 1 << 12


@njit(**NJIT)
def _bswap(x):
    # byte reversal of a 64-bit word (LLVM makes it one bswap)
    x = ((x & np.uint64(0x00FF00FF00FF00FF)) << np.uint64(8)) | \
        ((x >> np.uint64(8)) & np.uint64(0x00FF00FF00FF00FF))
    x = ((x & np.uint64(0x0000FFFF0000FFFF)) << np.uint64(16)) | \
        ((x >> np.uint64(16)) & np.uint64(0x0000FFFF0000FFFF))
    return (x << np.uint64(32)) | (x >> np.uint64(32))


@njit(**NJIT)
def sort_key(keys0, keys1, two_words, signed, i):
    """(high, low) words of row i whose lexicographic order is the ids' order: an integer (the
    sign bit flipped when signed), or a packed short string in byte order (its bytes
    big-endian, zero padded, then its length: a prefix sorts first)."""
    if two_words:
        return _bswap(keys0[i]), _bswap(keys1[i])
    if signed:
        return keys0[i] ^ SIGN, np.uint64(0)
    return keys0[i], np.uint64(0)


@njit(**NJIT)
def _partition_of(split_high, split_low, high, low):
    # number of splitters <= (high, low) (equal ids always land in the same partition), by a
    # branch-free descent: there are 2**bits - 1 splitters and bits halving steps
    pos = 0
    step = (split_high.shape[0] + 1) >> 1
    while step > 0:
        k = pos + step - 1
        below = (split_high[k] < high) | ((split_high[k] == high) & (split_low[k] <= low))
        pos += step * np.int64(below)
        step >>= 1
    return pos


@njit(**NJIT)
def lex_order(high, low):
    """Permutation sorting (high, low) pairs: one sort on high, runs of equal high by low."""
    order = np.argsort(high)
    n = order.shape[0]
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and high[order[stop]] == high[order[start]]:
            stop += 1
        if stop - start > 1:
            run = order[start:stop].copy()
            order[start:stop] = run[np.argsort(low[run])]
        start = stop
    return order


@njit(**NJIT)
def _sample(keys0, keys1, two_words, signed):
    """(high, low, order, estimate): the sort keys of an evenly spaced sample of rows, the
    permutation sorting them, and the distinct ids of all rows it suggests (see below)."""
    n = keys0.shape[0]
    m = max(1, min(n, SAMPLE_ROWS))
    high = np.empty(m, np.uint64)
    low = np.empty(m, np.uint64)
    for j in range(m):
        high[j], low[j] = sort_key(keys0, keys1, two_words, signed, (j * n) // m)
    order = lex_order(high, low)
    # distinct ids in the sample, those seen once (f1) and twice (f2): Chao's estimate of the
    # distinct ids of all rows, d + f1 (f1 - 1) / (2 (f2 + 1)), capped at the row count
    distinct = 0
    f1 = 0
    f2 = 0
    j = 0
    while j < m:
        e = j + 1
        while e < m and high[order[e]] == high[order[j]] and low[order[e]] == low[order[j]]:
            e += 1
        distinct += 1
        f1 += e - j == 1
        f2 += e - j == 2
        j = e
    return high, low, order, min(float(n), distinct + f1 * (f1 - 1) / (2.0 * (f2 + 1)))


@njit(**NJIT)
def estimated_ids(keys0, keys1, two_words, signed):
    """Estimated number of distinct ids among the rows, from a sample of them (a few ms)."""
    return _sample(keys0, keys1, two_words, signed)[3]


@njit(**NJIT)
def _splitters(keys0, keys1, two_words, signed, min_bits):
    """Ascending splitters of the partitions' id ranges: quantiles of the ids of an evenly spaced
    sample of rows, so partitions hold similar numbers of rows whatever the ids look like.

    There are at least ``2**min_bits`` partitions, more (up to ``2**MAX_BITS``) when the sample
    shows many distinct ids: about :data:`IDS_PER_PARTITION` each, so that a partition's table
    and records stay in cache when most customers have one or two rows.
    """
    high, low, order, estimate = _sample(keys0, keys1, two_words, signed)
    m = high.shape[0]
    bits = min_bits
    while bits < MAX_BITS and estimate > IDS_PER_PARTITION << bits:
        bits += 1
    n_parts = 1 << bits
    split_high = np.empty(n_parts - 1, np.uint64)
    split_low = np.empty(n_parts - 1, np.uint64)
    for q in range(1, n_parts):
        k = order[(q * m) // n_parts]
        split_high[q - 1] = high[k]
        split_low[q - 1] = low[k]
    return split_high, split_low


@njit(**NJIT)
def _histogram(keys0, keys1, two_words, signed, split_high, split_low, lo, hi, part, counts):
    for i in range(lo, hi):
        high, low = sort_key(keys0, keys1, two_words, signed, i)
        p = _partition_of(split_high, split_low, high, low)
        part[i] = p
        counts[p] += 1


@njit(**NJIT)
def _scatter(keys0, keys1, two_words, part, times, amounts, orders, has_order, lo, hi, cursor,
             out_keys0, out_keys1, out_times, out_amounts, out_orders):
    for i in range(lo, hi):
        p = part[i]
        k = cursor[p]
        cursor[p] = k + 1
        out_keys0[k] = keys0[i]
        if two_words:
            out_keys1[k] = keys1[i]
        out_times[k] = times[i]
        out_amounts[k] = amounts[i]
        if has_order:
            out_orders[k] = orders[i]


@parallel_kernel
def partition(keys0,      # IN  uint64[n] id key words (an int64 id viewed as uint64)
              keys1,      # IN  uint64[n] second key words (empty unless two_words)
              two_words,  # IN  bool: ids are packed short strings
              signed,     # IN  bool: integer ids are signed (int64 viewed as uint64)
              times,      # IN  int64[n] µs UTC
              amounts,    # IN  float64[n]
              orders,     # IN  int64[n] order codes (or empty when not has_order)
              has_order,  # IN  bool
              bits,       # IN  log2 of the least number of partitions (partition_bits)
              n_chunks):  # IN  parallel row chunks
    """Stable scatter of the rows into at least ``2**bits`` partitions of consecutive id ranges
    (every id of partition p sorts before every id of partition p + 1; see _splitters).

    Returns
    -------
    part_offsets : int64[n_parts + 1]   rows of partition p are [part_offsets[p], part_offsets[p+1])
    keys0, keys1 : uint64[n]            permuted copies of the key words (keys1 empty unless two_words)
    times, amounts, orders : permuted copies of the inputs (orders empty when not has_order)
    """
    n = keys0.shape[0]
    split_high, split_low = _splitters(keys0, keys1, two_words, signed, bits)
    n_parts = split_high.shape[0] + 1
    part = np.empty(n, np.int32)
    hist = np.zeros((n_chunks, n_parts), np.int64)
    step = (n + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        _histogram(keys0, keys1, two_words, signed, split_high, split_low, min(n, t * step),
                   min(n, (t + 1) * step), part, hist[t])
    cursors, part_offsets = partition_starts(hist)  # stable: input order kept per partition
    out_keys0 = np.empty(n, np.uint64)
    out_keys1 = np.empty(n if two_words else 0, np.uint64)
    out_times = np.empty(n, np.int64)
    out_amounts = np.empty(n, np.float64)
    out_orders = np.empty(n if has_order else 0, np.int64)
    for t in prange(n_chunks):
        _scatter(keys0, keys1, two_words, part, times, amounts, orders, has_order,
                 min(n, t * step), min(n, (t + 1) * step), cursors[t], out_keys0, out_keys1,
                 out_times, out_amounts, out_orders)
    return part_offsets, out_keys0, out_keys1, out_times, out_amounts, out_orders


@njit(**NJIT)
def _number_partition(keys0, keys1, two_words, signed, lo, hi, local, ids0, ids1):
    """Number the distinct ids of rows [lo, hi) 0, 1, ... in first-seen order, except integer
    ids, which are numbered in ascending id order here already (see the end).

    Writes each row's number to ``local`` and the key words of number d to ``ids0[lo + d]`` and
    ``ids1[lo + d]`` (there are at most hi - lo numbers). Returns how many distinct ids there are.
    """
    # Room for every row's id up to NUMBER_TABLE_ROWS without growing: at one row per customer
    # a partition's ~5,000 ids made the table double twice (12k re-insertions for 5k ids).
    capacity = 256
    while capacity < 2 * min(hi - lo, NUMBER_TABLE_ROWS):
        capacity *= 2
    slot_key0 = np.empty(capacity, np.uint64)
    slot_key1 = np.empty(capacity if two_words else 0, np.uint64)
    slot_code = np.full(capacity, -1, np.int32)
    mask = np.uint64(capacity - 1)
    n_distinct = 0
    for i in range(lo, hi):
        j = _hash(keys0, keys1, two_words, i) & mask
        while True:
            c = slot_code[j]
            if c < 0:
                slot_key0[j] = keys0[i]
                if two_words:
                    slot_key1[j] = keys1[i]
                slot_code[j] = n_distinct
                local[i] = n_distinct
                ids0[lo + n_distinct] = keys0[i]
                if two_words:
                    ids1[lo + n_distinct] = keys1[i]
                n_distinct += 1
                break
            if slot_key0[j] == keys0[i] and (not two_words or slot_key1[j] == keys1[i]):
                local[i] = c
                break
            j = (j + np.uint64(1)) & mask
        if 2 * n_distinct > capacity:
            # Double and re-insert: the table stays at most half full, so probes stay short.
            capacity *= 2
            mask = np.uint64(capacity - 1)
            new_key0 = np.empty(capacity, np.uint64)
            new_key1 = np.empty(capacity if two_words else 0, np.uint64)
            new_code = np.full(capacity, -1, np.int32)
            for s in range(slot_code.shape[0]):
                if slot_code[s] >= 0:
                    j = _hash(slot_key0, slot_key1, two_words, s) & mask
                    while new_code[j] >= 0:
                        j = (j + np.uint64(1)) & mask
                    new_key0[j] = slot_key0[s]
                    if two_words:
                        new_key1[j] = slot_key1[s]
                    new_code[j] = slot_code[s]
            slot_key0 = new_key0
            slot_key1 = new_key1
            slot_code = new_code
    if not two_words:
        # In id order: a direct sort of the distinct ids (no argsort, whose indirect compares
        # were half the cost of encoding at one row per customer), each one's first-seen number
        # found again through the table, and the rows renumbered by rank.
        d = n_distinct
        ordered = ids0[lo:lo + d] ^ SIGN if signed else ids0[lo:lo + d].copy()
        ordered.sort()
        rank = np.empty(d, np.int32)
        for r in range(d):
            key = ordered[r] ^ SIGN if signed else ordered[r]
            j = mix64(key) & mask
            while slot_key0[j] != key:
                j = (j + np.uint64(1)) & mask
            rank[slot_code[j]] = r
            ids0[lo + r] = key
        for i in range(lo, hi):
            local[i] = rank[local[i]]
    return n_distinct


@njit(**NJIT)
def _renumber_in_order(lo, hi, d, local, ids0, ids1, two_words, signed):
    """Renumber the d ids of the partition of rows [lo, hi) (``ids*[lo:lo + d]``, numbered in
    first-seen order) in ascending id order: their records then come out in id order."""
    if two_words:
        order = short_string_order(ids0[lo:lo + d], ids1[lo:lo + d])
    elif signed:
        order = np.argsort(ids0[lo:lo + d] ^ SIGN)
    else:
        order = np.argsort(ids0[lo:lo + d])
    rank = np.empty(d, np.int32)
    for r in range(d):
        rank[order[r]] = r
    for i in range(lo, hi):
        local[i] = rank[local[i]]
    ids0[lo:lo + d] = ids0[lo:lo + d][order]
    if two_words:
        ids1[lo:lo + d] = ids1[lo:lo + d][order]


@parallel_kernel
def encode_partitions(part_offsets,  # IN  int64[n_parts + 1] from partition()
                      keys0, keys1,  # IN  uint64[n] partitioned key words, from partition()
                      two_words,     # IN  bool
                      signed):       # IN  bool: integer ids are signed
    """Dense codes, partition by partition, ascending with the ids (the partitions are id
    ranges in order, and each numbers its ids in order).

    Returns
    -------
    local : int32[n]             code - bases[p] of each partitioned row
    bases : int64[n_parts + 1]   partition p owns codes [bases[p], bases[p+1])
    ids0, ids1 : uint64[n_codes] key words of each code (ids1 empty unless two_words)
    """
    n = keys0.shape[0]
    n_parts = part_offsets.shape[0] - 1
    local = np.empty(n, np.int32)
    scratch0 = np.empty(n, np.uint64)
    scratch1 = np.empty(n if two_words else 0, np.uint64)
    counts = np.zeros(n_parts, np.int64)
    for p in prange(n_parts):
        lo = part_offsets[p]
        hi = part_offsets[p + 1]
        counts[p] = _number_partition(keys0, keys1, two_words, signed, lo, hi, local, scratch0,
                                      scratch1)
        if two_words:  # integer ids are numbered in order already
            _renumber_in_order(lo, hi, counts[p], local, scratch0, scratch1, two_words, signed)
    bases = np.zeros(n_parts + 1, np.int64)
    for p in range(n_parts):
        bases[p + 1] = bases[p] + counts[p]
    ids0 = np.empty(bases[n_parts], np.uint64)
    ids1 = np.empty(bases[n_parts] if two_words else 0, np.uint64)
    for p in prange(n_parts):
        lo = part_offsets[p]
        for d in range(counts[p]):
            ids0[bases[p] + d] = scratch0[lo + d]
            if two_words:
                ids1[bases[p] + d] = scratch1[lo + d]
    return local, bases, ids0, ids1


@njit(**NJIT)
def short_string_order(words0,  # IN  uint64[m] packed distinct strings (pack_short_strings)
                       words1):  # IN  uint64[m]
    """Permutation that sorts packed short strings in byte order (what Arrow's sort gives)."""
    m = words0.shape[0]
    high = np.empty(m, np.uint64)
    low = np.empty(m, np.uint64)
    for i in range(m):
        high[i], low[i] = sort_key(words0, words1, True, False, i)
    return lex_order(high, low)
