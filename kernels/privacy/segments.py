"""Dictionary codes for a string column with few distinct values (segment names), in parallel.

Each block of rows numbers its own distinct strings with a small open-addressing table that
stays in L1, remembering the first row of each. The hash mixes the length and the first and
last 8 bytes (one 8-byte load each, not a byte-by-byte chain); a candidate matches when
(length, first 8, last 8 bytes) are equal, which for strings up to 16 bytes means every byte,
and longer ones are then compared byte by byte, so a weak hash only costs probes, never a wrong
code. The caller unifies the blocks' few representatives into global codes, then
:func:`remap_codes` rewrites the rows -- or, for a report over one segment column, the
counts and sums per local code made in the same pass are all it needs. Blocks are fixed by the row count, so the result does not depend on the
thread count. A block that meets more than ``capacity`` distinct strings reports overflow (-1)
and the caller takes a general path instead.
"""
import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from ..common.launch import parallel_kernel
from .aggregate import units
from .words import load_upto8

__all__ = ["block_bounds", "small_dictionary", "remap_codes"]

_MIX = np.uint64(0x9E3779B97F4A7C15)


@njit(**NJIT)
def block_bounds(n, n_blocks, block):
    size = (n + n_blocks - 1) // n_blocks
    lo = min(n, block * size)
    return lo, min(n, lo + size)


@njit(**NJIT, inline="always")
def _hash(length, head, tail, shift):
    """Fibonacci hashing of (length, first 8 bytes, last 8 bytes): the top bits of a product
    depend on every bit of its operand (the low bits would ignore the high bytes, e.g. the
    digits ending "segment-07")."""
    h = np.uint64(length) * _MIX
    h = (h ^ head) * _MIX
    h = (h ^ tail) * _MIX
    return h >> shift


@njit(**NJIT)
def _same(data, a0, a1, b0, b1):
    if a1 - a0 != b1 - b0:
        return False
    for k in range(a1 - a0):
        if data[a0 + k] != data[b0 + k]:
            return False
    return True


@njit(**NJIT, inline="always")
def _table_shape(capacity):
    """(slots, shift, mask) of an open-addressing table at most half full at ``capacity``."""
    table_size, bits = 1, 0
    while table_size < 2 * capacity:
        table_size *= 2
        bits += 1
    return table_size, np.uint64(64 - bits), np.uint64(table_size - 1)


@njit(**NJIT, inline="always")
def _code_of(offsets, data, i, table, seen, first_rows, b, count, capacity, shift, mask):
    """(local code of row i's string, new distinct count) in block ``b``'s table, adding the
    string if new; (-1, -1) when it would be distinct number ``capacity + 1``."""
    start, end = offsets[i], offsets[i + 1]
    length = np.uint64(end - start)
    head = load_upto8(data, start, end)
    tail = load_upto8(data, max(start, end - 8), end)
    slot = _hash(length, head, tail, shift)
    while True:
        code = table[slot]
        if code < 0:
            if count == capacity:
                return -1, -1
            table[slot] = count
            first_rows[b, count] = i
            seen[count, 0], seen[count, 1], seen[count, 2] = length, head, tail
            return count, count + 1
        # (length, first 8 bytes, last 8 bytes) cover every byte of strings up to 16 bytes
        if seen[code, 0] == length and seen[code, 1] == head and seen[code, 2] == tail:
            row = first_rows[b, code]
            if length <= 16 or _same(data, offsets[row], offsets[row + 1], start, end):
                return code, count
        slot = (slot + np.uint64(1)) & mask


@parallel_kernel
def small_dictionary(offsets, data, capacity, local_codes, keep, amounts, lower_units,
                     upper_units, resolution, first_rows, n_distinct, counts, sums):
    """Per block b of ``n_distinct.size`` blocks, the block's distinct strings numbered in
    first-seen order ("local codes"): ``first_rows[b, k]`` is the first row of local code k,
    ``n_distinct[b]`` their count (-1: more than ``capacity``; the block's outputs are then
    incomplete). In the same pass:

    * ``local_codes[i]`` := the local code of row i, unless ``local_codes`` is empty;
    * ``counts[b, k]``/``sums[b, k]`` add the rows of local code k that ``keep`` keeps (all
      when it is empty) and their amounts in units (:func:`.aggregate.units`; no sums when
      ``amounts`` is empty). A report over one segment column needs only these: no per-row
      code is written or read back. The caller maps local codes to segments through
      ``first_rows`` and adds the blocks in block order (integers: the totals do not depend
      on the split or the thread count).
    """
    n = offsets.size - 1
    n_blocks = n_distinct.size
    table_size, shift, mask = _table_shape(capacity)
    write_codes, use_keep, has_amounts = local_codes.size > 0, keep.size > 0, amounts.size > 0
    lo_amount = lower_units * resolution
    hi_amount = upper_units * resolution
    for b in prange(n_blocks):
        lo, hi = block_bounds(n, n_blocks, b)
        table = np.full(table_size, -1, np.int32)
        seen = np.empty((capacity, 3), np.uint64)
        count = 0
        for i in range(lo, hi):
            code, count = _code_of(offsets, data, i, table, seen, first_rows, b, count,
                                   capacity, shift, mask)
            if code < 0:
                break
            if write_codes:
                local_codes[i] = code
            if use_keep and not keep[i]:
                continue  # a capped row: its segment is seen, its values not counted
            counts[b, code] += 1
            if has_amounts:
                sums[b, code] += units(amounts[i], lower_units, upper_units, lo_amount,
                                       hi_amount, resolution)
        n_distinct[b] = count


@parallel_kernel
def remap_codes(local_codes, translation, out):
    """``out[i] = translation[b, local_codes[i]]`` for the rows of every block b."""
    n = local_codes.size
    n_blocks = translation.shape[0]
    for b in prange(n_blocks):
        lo, hi = block_bounds(n, n_blocks, b)
        for i in range(lo, hi):
            out[i] = translation[b, local_codes[i]]
