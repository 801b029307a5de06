"""RFM of a whole in-memory table whose customers are few against its rows (many rows each):
one pass that folds every row straight into its customer's record, without partitioning.

At 100 rows per customer, 5M rows hold 50k customers: their records, day bitmaps and a hash
table fit in the caches, so scattering the rows into id-range partitions first (``hashed.py``
then ``oneshot.fold``: every row written and read twice more) costs more than it saves. Here
each thread takes blocks of rows, numbers the ids it meets in an open-addressing table of its
own (the record holds the id's key words: equal words mean equal ids, exactly as in
``hashed.py``) and folds each row into that record: the money as exact fixed point, first and
last purchase, row counts, and one bit per purchase day.

Each thread then sorts its records by id, and the sorted runs are merged, the records of one
id added up (money sums are integer additions, the rest min, max, sums and bitwise or: exact
whatever the order), numbered in ascending id order and written as ``rfm.STATE_DTYPE``
records: the same for any thread count and block size, and the same as the partitioned
path's (tests compare them bit for bit). At 100 rows a customer over 5M rows this takes
~0.10 s on 2 threads where the partitions took ~0.20 s (scatter 0.09, numbering 0.055, fold
0.057).

Only without an order column: distinct orders need the grouping of ``oneshot.fold``.
"""
import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic

from ..common.config import (NJIT, RFM_FEW_IDS_BLOCK_ROWS, RFM_FEW_IDS_MAX_BYTES,
                             RFM_FEW_IDS_MAX_ESTIMATE, RFM_FEW_IDS_MAX_IDS,
                             RFM_FEW_IDS_MIN_ROWS_PER_ID, RFM_FEW_IDS_PREFETCH_ROWS)
from ..common.launch import resolve_threads, run_threaded
from .hashed import SIGN, lex_order, sort_key
from .pairset import mix64
from .rfm import INT64_MAX, NO_DAY, STATE_DTYPE, US_PER_DAY, fixed_words

#: A thread's record of one id is one 64-byte row of uint64 words (a Numba record dtype was
#: 1.6x slower to update): the id's key words, first and last purchase (biased by SIGN, so
#: that unsigned order is time order), the fixed-point money, and the two row counts.
KEY0, KEY1, FIRST, LAST, FRAC, LOW, HIGH, ROWS = range(8)
RECORD_WORDS = 8

_TAG = np.uint64(0xFFFFFFFF00000000)
_CODE = np.uint64(0xFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
#: purchase rows count in the low half of the ROWS word, return rows in the high half
_RETURN_ROW = np.uint64(1) << np.uint64(32)


@njit(**NJIT)
def _hash(k0, k1):
    # table slot from the low bits, a 32-bit tag (kept in the slot) from the high ones
    return mix64(k0 ^ (k1 * _GOLDEN))


@njit(**NJIT)
def _popcount(x):
    # SWAR bit count (LLVM emits popcnt for it where the CPU has one)
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int32((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@intrinsic
def _prefetch(typingctx, array, index):
    """Ask for the cache line of ``array[index]`` (1-D) without waiting for it."""
    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, [args[1]])
        hint = ir.FunctionType(ir.VoidType(), [ir.PointerType(ir.IntType(8)), ir.IntType(32),
                                               ir.IntType(32), ir.IntType(32)])
        function = cgutils.get_or_insert_function(builder.module, hint, "llvm.prefetch.p0")
        i32 = ir.IntType(32)
        builder.call(function, [builder.bitcast(pointer, ir.PointerType(ir.IntType(8))),
                                ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return types.void(array, index), codegen


@njit(**NJIT)
def _find(table, records, k0, k1, h):
    """Slot of key (k0, k1) in ``table``: the slot holding its code, or the empty one where it
    goes. A slot is 0 when empty, else the hash's high 32 bits (tag) | (code + 1)."""
    mask = np.uint64(table.shape[0] - 1)
    tag = h & _TAG
    j = h & mask
    while True:
        entry = table[j]
        if entry == 0:
            return j
        if (entry & _TAG) == tag:
            c = np.int64(entry & _CODE) - 1
            if records[c, KEY0] == k0 and records[c, KEY1] == k1:
                return j
        j = (j + _ONE) & mask


@njit(**NJIT)
def _sum(frac, low, high, frac2, low2, high2):
    # (frac, low, high) + (frac2, low2, high2): 192-bit addition, as rfm.add_money
    s0 = frac + frac2
    c0 = _ONE if s0 < frac2 else _ZERO
    s1 = low + low2
    c1 = _ONE if s1 < low2 else _ZERO
    s1 += c0
    if c0 == _ONE and s1 == 0:
        c1 = _ONE
    return s0, s1, high + high2 + c1


@njit(**NJIT)
def _add_money(records, c, frac, low, high):
    # records[c]'s total += (frac, low, high)
    records[c, FRAC], records[c, LOW], records[c, HIGH] = _sum(
        records[c, FRAC], records[c, LOW], records[c, HIGH], frac, low, high)


@njit(**NJIT)
def grown(table, records, bitmap, words):
    """Copies of the table (rehashed), the records and the day bitmaps with twice the room."""
    n = records.shape[0]
    new_records = np.empty((2 * n, RECORD_WORDS), np.uint64)
    new_records[:n] = records
    new_bitmap = np.zeros(2 * n * words, np.uint64)
    new_bitmap[:n * words] = bitmap
    new_table = np.zeros(2 * table.shape[0], np.uint64)
    for c in range(n):
        h = _hash(records[c, KEY0], records[c, KEY1])
        new_table[_find(new_table, new_records, records[c, KEY0], records[c, KEY1], h)] = \
            (h & _TAG) | np.uint64(c + 1)
    return new_table, new_records, new_bitmap


#: Least room for ids a thread's state starts with (a power of two).
MIN_ROOM = 1024


def new_thread_state(expected_ids: int, words: int):
    """(table, records, day bitmaps) of one thread, with room for ``expected_ids`` ids before
    growing (zeroed pages of the bitmaps are only touched where a day is set)."""
    room = MIN_ROOM
    while room < expected_ids:
        room *= 2
    return (np.zeros(2 * room, np.uint64), np.empty((room, RECORD_WORDS), np.uint64),
            np.zeros(room * words, np.uint64))


@njit(**NJIT)
def fold_block(keys0,      # IN  uint64[n] id key words (an integer id, or packed string bytes)
               keys1,      # IN  uint64[n] second key words (empty unless two_words)
               two_words,  # IN  bool: ids are packed short strings (hashed.pack_short_strings)
               times,      # IN  int64[n] µs UTC
               amounts,    # IN  float64[n]
               lo, hi,     # IN  the block of rows [lo, hi) to fold
               limit_us,   # IN  rows with time > limit_us are only counted
               exclude_returns,  # IN bool: a return's amount is not added
               first_day, words,  # IN oneshot.day_words(min time, max time)
               table, records, bitmap,  # IN/OUT this thread's state (new_thread_state, grown)
               n_codes,    # IN  ids this thread numbered so far
               counts):    # IN/OUT int64[2]: += rows after the cut, return rows
    """Fold rows [lo, hi) into this thread's records until they are full; returns (the row it
    stopped at: ``hi`` when done, else grow the state with ``grown`` and go on from there,
    n_codes). The arrays are never replaced inside the loop: Numba then keeps their pointers
    and shapes in registers (growing them in place made the loop ~3x slower)."""
    n_after = 0
    n_ret = 0
    stop = hi
    mask = np.uint64(table.shape[0] - 1)
    flat = records.reshape(records.shape[0] * RECORD_WORDS)
    for i in range(lo, hi):
        # Software pipeline: the table slot of row i + 2 D is requested, the record and day
        # word of row i + D (found through its slot, now in cache) too, so that the misses of
        # several rows overlap instead of each row waiting for its own.
        ahead = i + 2 * RFM_FEW_IDS_PREFETCH_ROWS
        if ahead < hi:
            _prefetch(table, _hash(keys0[ahead], keys1[ahead] if two_words else _ZERO) & mask)
        near = i + RFM_FEW_IDS_PREFETCH_ROWS
        if near < hi:
            h = _hash(keys0[near], keys1[near] if two_words else _ZERO)
            entry = table[h & mask]
            if entry != 0 and (entry & _TAG) == (h & _TAG):
                c = np.int64(entry & _CODE) - 1
                _prefetch(flat, c * RECORD_WORDS)
                offset = times[near] // US_PER_DAY - first_day
                _prefetch(bitmap, c * words + (offset >> 6))
        k0 = keys0[i]
        k1 = keys1[i] if two_words else _ZERO
        h = _hash(k0, k1)
        j = _find(table, records, k0, k1, h)
        entry = table[j]
        if entry != 0:
            c = np.int64(entry & _CODE) - 1
        else:
            if 2 * (n_codes + 1) > table.shape[0] or n_codes == records.shape[0]:
                stop = i
                break
            c = n_codes
            n_codes += 1
            table[j] = (h & _TAG) | np.uint64(c + 1)
            records[c, KEY0] = k0
            records[c, KEY1] = k1
            records[c, FIRST] = np.uint64(INT64_MAX) ^ SIGN
            records[c, LAST] = np.uint64(0)  # INT64_MIN ^ SIGN
            records[c, FRAC] = _ZERO
            records[c, LOW] = _ZERO
            records[c, HIGH] = _ZERO
            records[c, ROWS] = _ZERO
        t = times[i]
        if t > limit_us:
            n_after += 1
            continue
        a = amounts[i]
        if a < 0.0:
            records[c, ROWS] += _RETURN_ROW
            n_ret += 1
            if not exclude_returns:
                frac, low, high = fixed_words(a)
                _add_money(records, c, frac, low, np.uint64(high))
            continue
        records[c, ROWS] += _ONE
        frac, low, high = fixed_words(a)
        _add_money(records, c, frac, low, np.uint64(high))
        biased = np.uint64(t) ^ SIGN
        if biased < records[c, FIRST]:
            records[c, FIRST] = biased
        if biased > records[c, LAST]:
            records[c, LAST] = biased
        offset = t // US_PER_DAY - first_day
        bitmap[c * words + (offset >> 6)] |= _ONE << np.uint64(offset & 63)
    counts[0] += n_after
    counts[1] += n_ret
    return stop, n_codes


@njit(**NJIT)
def sorted_run(records,    # IN  uint64[n, RECORD_WORDS] one thread's records (fold_block)
               bitmap,     # IN  uint64[n * words] their day bitmaps
               n_codes,    # IN  records in use
               words, two_words, signed,
               out_records, out_bitmap,  # OUT the records and bitmaps in id order ...
               offset):    # IN  ... from this row of out_records on
    """Copy one thread's records into ``out_*`` sorted by id (hashed.sort_key order)."""
    high = np.empty(n_codes, np.uint64)
    low = np.empty(n_codes, np.uint64)
    keys0 = records[:, KEY0]
    keys1 = records[:, KEY1]
    for c in range(n_codes):
        high[c], low[c] = sort_key(keys0, keys1, two_words, signed, c)
    order = lex_order(high, low) if two_words else np.argsort(high)
    for r in range(n_codes):
        c = order[r]
        for k in range(RECORD_WORDS):
            out_records[offset + r, k] = records[c, k]
        for w in range(words):
            out_bitmap[(offset + r) * words + w] = bitmap[c * words + w]


@njit(**NJIT)
def merge_runs(records,      # IN  uint64[m, RECORD_WORDS] runs of records sorted by id (sorted_run)
               bitmap,       # IN  uint64[m * words] their day bitmaps
               run_offsets,  # IN  int64[T + 1] run t is records[run_offsets[t]:run_offsets[t + 1]]
               words, two_words, signed):
    """The runs merged by id, the records of the same id added up (sums of integers, min, max,
    bitwise or of the days: exact whatever the runs' order).

    Returns (state STATE_DTYPE[d], ids0 uint64[d], ids1 uint64[d] (empty unless two_words)):
    code k is the k-th smallest id, as ``hashed.encode_partitions`` numbers them.
    """
    n_runs = run_offsets.shape[0] - 1
    m = run_offsets[n_runs]
    keys0 = records[:, KEY0]
    keys1 = records[:, KEY1]
    pos = run_offsets[:n_runs].copy()
    same = np.empty(n_runs, np.int64)  # the heads holding the smallest id
    state = np.empty(m, STATE_DTYPE)
    ids0 = np.empty(m, np.uint64)
    ids1 = np.empty(m if two_words else 0, np.uint64)
    d = 0
    while True:
        found = False
        best_high = best_low = _ZERO
        for t in range(n_runs):
            if pos[t] < run_offsets[t + 1]:
                high, low = sort_key(keys0, keys1, two_words, signed, pos[t])
                if not found or high < best_high or (high == best_high and low < best_low):
                    best_high, best_low = high, low
                    found = True
        if not found:
            break
        n_same = 0
        for t in range(n_runs):
            if pos[t] < run_offsets[t + 1]:
                high, low = sort_key(keys0, keys1, two_words, signed, pos[t])
                if high == best_high and low == best_low:
                    same[n_same] = pos[t]
                    n_same += 1
                    pos[t] += 1
        c = same[0]
        first, last, rows = records[c, FIRST], records[c, LAST], records[c, ROWS]
        frac, low, high = records[c, FRAC], records[c, LOW], records[c, HIGH]
        for k in range(1, n_same):
            c = same[k]
            first = min(first, records[c, FIRST])
            last = max(last, records[c, LAST])
            rows += records[c, ROWS]
            frac, low, high = _sum(frac, low, high, records[c, FRAC], records[c, LOW],
                                   records[c, HIGH])
        n_days = 0
        for w in range(words):
            day_bits = _ZERO
            for k in range(n_same):
                day_bits |= bitmap[same[k] * words + w]
            n_days += _popcount(day_bits)
        dst = state[d]
        dst.first_us = np.int64(first ^ SIGN)
        dst.last_us = np.int64(last ^ SIGN)
        dst.money_frac = frac
        dst.money_lo = low
        dst.money_hi = np.int64(high)
        dst.purchase_rows = np.int32(rows & _CODE)
        dst.return_rows = np.int32(rows >> np.uint64(32))
        dst.frequency = 0  # frequency counts purchase rows without an order column
        dst.purchase_days = n_days
        dst.last_day = NO_DAY  # as oneshot.fold's day bitmaps leave it
        dst.last_order = -1
        ids0[d] = keys0[same[0]]
        if two_words:
            ids1[d] = keys1[same[0]]
        d += 1
    return state[:d], ids0[:d], ids1[:d] if two_words else ids1


def takes(n_rows: int, estimated_ids: float, words: int) -> bool:
    """Whether :func:`fold` is the faster way for ``n_rows`` rows of about ``estimated_ids``
    distinct ids (``hashed.estimated_ids``) with day bitmaps of ``words`` words."""
    return (estimated_ids <= RFM_FEW_IDS_MAX_ESTIMATE
            and n_rows >= RFM_FEW_IDS_MIN_ROWS_PER_ID * estimated_ids
            and _bytes_per_id(words) * RFM_FEW_IDS_MAX_IDS <= RFM_FEW_IDS_MAX_BYTES)


def _bytes_per_id(words: int) -> int:
    # two table slots, the record, the day bitmap
    return 2 * 8 + RECORD_WORDS * 8 + words * 8


def fold(keys0, keys1, two_words, signed,  # IN  id key words (as hashed.partition takes them)
         times, amounts,                   # IN  int64 µs UTC, float64
         limit_us, exclude_returns,        # IN  as oneshot.fold
         first_day, words,                 # IN  oneshot.day_words(min time, max time)
         estimated_ids,                    # IN  hashed.estimated_ids (sizes the first tables)
         n_threads=None):
    """RFM records of every id, in ascending id order, without partitioning the rows.

    Returns (state, ids0, ids1, rows after the cut, return rows), which is what
    ``hashed.encode_partitions`` then ``oneshot.fold`` give for the same rows; or None as soon
    as a thread meets more than ``RFM_FEW_IDS_MAX_IDS`` ids (the estimate was far too low:
    the caller takes the partitioned path instead, having lost a fraction of a pass).
    """
    n = keys0.shape[0]
    block_rows = RFM_FEW_IDS_BLOCK_ROWS
    n_blocks = max(1, -(-n // block_rows))
    workers = min(resolve_threads(n_threads), n_blocks)
    blocks = list(range(n_blocks - 1, -1, -1))  # popped from the end: block 0 first
    results = []
    too_many = []

    def worker():
        # the tables start with room for twice the estimate (it is low for skewed ids)
        table, records, bitmap = new_thread_state(min(2 * int(estimated_ids), RFM_FEW_IDS_MAX_IDS),
                                                  words)
        n_codes = 0
        counts = np.zeros(2, np.int64)
        while not too_many:
            try:
                b = blocks.pop()  # under the GIL: each block goes to one thread
            except IndexError:
                break
            start, stop = b * block_rows, min(n, (b + 1) * block_rows)
            while start < stop:
                start, n_codes = fold_block(keys0, keys1, two_words, times, amounts, start,
                                            stop, limit_us, exclude_returns, first_day, words,
                                            table, records, bitmap, n_codes, counts)
                if start == stop:
                    break
                if records.shape[0] >= RFM_FEW_IDS_MAX_IDS:
                    too_many.append(b)
                    return
                table, records, bitmap = grown(table, records, bitmap, words)
        results.append((records, bitmap, n_codes, counts))

    run_threaded(worker, workers)
    if too_many:
        return None
    # each thread's records sorted by id into one array (on the threads), then merged
    run_offsets = np.zeros(len(results) + 1, np.int64)
    for t, (_, _, n_codes, _) in enumerate(results):
        run_offsets[t + 1] = run_offsets[t] + n_codes
    records = np.empty((run_offsets[-1], RECORD_WORDS), np.uint64)
    bitmap = np.empty(run_offsets[-1] * words, np.uint64)
    runs = list(range(len(results)))

    def sorter():
        t = runs.pop()
        run_records, run_bitmap, n_codes, _ = results[t]
        sorted_run(run_records, run_bitmap, n_codes, words, two_words, signed, records, bitmap,
                   run_offsets[t])

    run_threaded(sorter, len(results))
    counts = sum(c for _, _, _, c in results)
    del results
    state, ids0, ids1 = merge_runs(records, bitmap, run_offsets, words, two_words, signed)
    return state, ids0, ids1, int(counts[0]), int(counts[1])
