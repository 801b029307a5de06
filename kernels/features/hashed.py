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

The loops are compiled ahead of time (``partition_native.pyx``: no JIT compilation on a first
call, #11); this module holds their plans. Workers claim row chunks or partitions from an
atomic counter (``run_threaded``), each writing its own outputs: the results never depend on
the thread count.
"""
import numpy as np

from ..common.launch import resolve_threads, run_threaded
from . import partition_native as _native
from .partition_native import short_string_order, unpack_short_strings  # noqa: F401 (API)

#: Rows per partition the partition count aims at. 20M rows make 128 partitions: few enough
#: write streams for the scatter to stay fast (with 1,024 it took ~0.7 s, not 0.2-0.4 s), and
#: at ~20 rows a customer ~8,000 ids each, whose table and 64-byte records fit in L2.
ROWS_PER_PARTITION = 1 << 18
MAX_BITS = 10

#: Longest string id packed into two key words (15 bytes + 1 length byte).
MAX_SHORT = 15
#: Rows per chunk of the packing plan.
PACK_CHUNK_ROWS = 1 << 16


def partition_bits(n_rows: int) -> int:
    """log2 of the number of hash partitions for ``n_rows`` rows (at least 1: a shift by 64
    bits, which one partition would need, is undefined)."""
    bits = 1
    while bits < MAX_BITS and (n_rows >> bits) > ROWS_PER_PARTITION:
        bits += 1
    return bits


def pack_short_strings(offsets,  # IN  int32/int64[n + 1] Arrow string offsets (lengths <= 15)
                       data,     # IN  uint8[...] Arrow string bytes
                       aligned,  # IN  uint64 view of data's whole words (empty if unaligned)
                       words0,   # OUT uint64[n] bytes 0..7, little-endian, zero-padded
                       words1,   # OUT uint64[n] bytes 8..14, and the length in the top byte
                       n_threads=None):
    """Pack each string of at most MAX_SHORT bytes into two words, injectively.

    Returns how many strings it could not pack: longer than MAX_SHORT, or offsets that do not
    lie in order inside ``data`` (a corrupt column, which the caller then reports; nothing is
    read outside ``data``: the column may not have been validated yet). Their words are 0.
    """
    n_chunks = max(1, -(-words0.shape[0] // PACK_CHUNK_ROWS))
    bad = np.zeros(n_chunks, np.int64)
    next_chunk = np.zeros(1, np.int64)
    offsets = np.ascontiguousarray(offsets)
    if offsets.dtype not in (np.int32, np.int64):
        offsets = offsets.astype(np.int64)
    run_threaded(lambda: _native.pack_worker(offsets, data, aligned, words0, words1, MAX_SHORT,
                                             PACK_CHUNK_ROWS, bad, next_chunk),
                 min(resolve_threads(n_threads), n_chunks))
    return int(bad.sum())


#: A partition's id table starts with room for this many rows' ids (2**14 slots: 192 KiB, in L2).
NUMBER_TABLE_ROWS = 1 << 13
#: Rows sampled to choose the partitions' id ranges (and their number).
SAMPLE_ROWS = 1 << 14
#: Distinct ids per partition the partition count aims at (tables and records in L2).
IDS_PER_PARTITION = 1 << 12


def estimated_ids(keys0, keys1, two_words, signed) -> float:
    """Estimated number of distinct ids among the rows, from an evenly spaced sample of them
    (a few ms): Chao's estimate d + f1 (f1 - 1) / (2 (f2 + 1)) from the sample's distinct ids
    d, those seen once (f1) and twice (f2), capped at the row count."""
    return _native.sample_keys(np.ascontiguousarray(keys0, np.uint64),
                               np.ascontiguousarray(keys1, np.uint64), bool(two_words),
                               bool(signed), SAMPLE_ROWS)[2]


def _splitters(keys0, keys1, two_words, signed, min_bits):
    """Ascending splitters (high, low words of the ids' sort keys) of the partitions' id
    ranges: quantiles of the ids of an evenly spaced sample of rows, so partitions hold
    similar numbers of rows whatever the ids look like.

    There are at least ``2**min_bits`` partitions, more (up to ``2**MAX_BITS``) when the sample
    shows many distinct ids: about :data:`IDS_PER_PARTITION` each, so that a partition's table
    and records stay in cache when most customers have one or two rows.
    """
    high, low, estimate = _native.sample_keys(keys0, keys1, bool(two_words), bool(signed),
                                              SAMPLE_ROWS)
    m = high.shape[0]
    bits = min_bits
    while bits < MAX_BITS and estimate > IDS_PER_PARTITION << bits:
        bits += 1
    n_parts = 1 << bits
    at = (np.arange(1, n_parts, dtype=np.int64) * m) // n_parts
    return high[at], low[at]


def partition(keys0,      # IN  uint64[n] id key words (an int64 id viewed as uint64)
              keys1,      # IN  uint64[n] second key words (empty unless two_words)
              two_words,  # IN  bool: ids are packed short strings
              signed,     # IN  bool: integer ids are signed (int64 viewed as uint64)
              times,      # IN  int64[n] µs UTC
              amounts,    # IN  float64[n]
              orders,     # IN  int64[n] order codes (or empty when not has_order)
              has_order,  # IN  bool
              bits,       # IN  log2 of the least number of partitions (partition_bits)
              n_chunks,   # IN  row chunks of the plan (results do not depend on it)
              n_threads=None):
    """Stable scatter of the rows into at least ``2**bits`` partitions of consecutive id ranges
    (every id of partition p sorts before every id of partition p + 1; see _splitters).

    Returns
    -------
    part_offsets : int64[n_parts + 1]   rows of partition p are [part_offsets[p], part_offsets[p+1])
    keys0, keys1 : uint64[n]            permuted copies of the key words (keys1 empty unless two_words)
    times, amounts, orders : permuted copies of the inputs (orders empty when not has_order)
    """
    keys0, keys1 = np.ascontiguousarray(keys0, np.uint64), np.ascontiguousarray(keys1, np.uint64)
    n = keys0.shape[0]
    two_words, signed, has_order = bool(two_words), bool(signed), bool(has_order)
    split_high, split_low = _splitters(keys0, keys1, two_words, signed, bits)
    n_parts = split_high.shape[0] + 1
    n_chunks = max(1, int(n_chunks))
    workers = min(resolve_threads(n_threads), n_chunks)
    step = (n + n_chunks - 1) // n_chunks
    part = np.empty(n, np.int32)
    hist = np.zeros((n_chunks, n_parts), np.int64)
    counter = np.zeros(1, np.int64)
    run_threaded(lambda: _native.key_histogram_worker(keys0, keys1, two_words, signed, split_high,
                                                      split_low, step, part, hist, counter),
                 workers)
    cursors, part_offsets = _native.partition_starts(hist)  # stable: input order kept
    out_keys0 = np.empty(n, np.uint64)
    out_keys1 = np.empty(n if two_words else 0, np.uint64)
    out_times = np.empty(n, np.int64)
    out_amounts = np.empty(n, np.float64)
    out_orders = np.empty(n if has_order else 0, np.int64)
    args = (keys0, keys1, two_words, part, np.ascontiguousarray(times, np.int64),
            np.ascontiguousarray(amounts, np.float64), np.ascontiguousarray(orders, np.int64),
            has_order, step, cursors, out_keys0, out_keys1, out_times, out_amounts, out_orders,
            np.zeros(1, np.int64))
    run_threaded(lambda: _native.key_scatter_worker(*args), workers)
    return part_offsets, out_keys0, out_keys1, out_times, out_amounts, out_orders


def encode_partitions(part_offsets,  # IN  int64[n_parts + 1] from partition()
                      keys0, keys1,  # IN  uint64[n] partitioned key words, from partition()
                      two_words,     # IN  bool
                      signed,        # IN  bool: integer ids are signed
                      n_threads=None):
    """Dense codes, partition by partition, ascending with the ids (the partitions are id
    ranges in order, and each numbers its ids in order: ``number_ids.h``).

    Returns
    -------
    local : int32[n]             code - bases[p] of each partitioned row
    bases : int64[n_parts + 1]   partition p owns codes [bases[p], bases[p+1])
    ids0, ids1 : uint64[n_codes] key words of each code (ids1 empty unless two_words)
    """
    keys0, keys1 = np.ascontiguousarray(keys0, np.uint64), np.ascontiguousarray(keys1, np.uint64)
    n = keys0.shape[0]
    two_words, signed = bool(two_words), bool(signed)
    part_offsets = np.ascontiguousarray(part_offsets, np.int64)
    n_parts = part_offsets.shape[0] - 1
    workers = min(resolve_threads(n_threads), max(n_parts, 1))
    local = np.empty(n, np.int32)
    scratch0 = np.empty(n, np.uint64)
    scratch1 = np.empty(n if two_words else 0, np.uint64)
    counts = np.zeros(n_parts, np.int64)
    counter = np.zeros(1, np.int64)
    run_threaded(lambda: _native.number_worker(part_offsets, keys0, keys1, two_words, signed,
                                               NUMBER_TABLE_ROWS, local, scratch0, scratch1,
                                               counts, counter), workers)
    bases = np.zeros(n_parts + 1, np.int64)
    np.cumsum(counts, out=bases[1:])
    ids0 = np.empty(bases[n_parts], np.uint64)
    ids1 = np.empty(bases[n_parts] if two_words else 0, np.uint64)
    counter = np.zeros(1, np.int64)
    run_threaded(lambda: _native.copy_ids_worker(part_offsets, bases, scratch0, scratch1,
                                                 two_words, ids0, ids1, counter), workers)
    return local, bases, ids0, ids1
