"""Dictionary codes for a string column with few distinct values (segment names), in parallel.

Each block of rows numbers its own distinct strings with a small open-addressing table that
stays in L1, remembering the first row of each. The hash mixes the length and the first and
last 8 bytes (independent loads, not a byte-by-byte chain); every candidate is compared byte
by byte, so a weak hash only costs probes, never a wrong code. The caller unifies the blocks' few representatives into global codes, then
:func:`remap_codes` rewrites the rows. Blocks are fixed by the row count, so the result does
not depend on the thread count. A block that meets more than ``capacity`` distinct strings
reports overflow (-1) and the caller takes a general path instead.
"""
import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from ..common.launch import parallel_kernel

__all__ = ["block_bounds", "small_dictionary", "remap_codes"]

_MIX = np.uint64(0x9E3779B97F4A7C15)


@njit(**NJIT)
def block_bounds(n, n_blocks, block):
    size = (n + n_blocks - 1) // n_blocks
    lo = min(n, block * size)
    return lo, min(n, lo + size)


@njit(**NJIT, inline="always")
def _word(data, start, end):
    """Up to 8 bytes of ``data[start:end]`` packed little-endian into a uint64."""
    w = np.uint64(0)
    for k in range(start, min(end, start + 8)):
        w |= np.uint64(data[k]) << np.uint64(8 * (k - start))
    return w


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


@parallel_kernel
def small_dictionary(offsets, data, capacity, local_codes, first_rows, n_distinct):
    """Per block b of ``n_distinct.size`` blocks: ``local_codes[i]`` numbers the distinct
    strings of the block in first-seen order, ``first_rows[b, k]`` is the first row of local
    code k, ``n_distinct[b]`` their count (-1: more than ``capacity``)."""
    n = offsets.size - 1
    n_blocks = n_distinct.size
    table_size, bits = 1, 0
    while table_size < 2 * capacity:
        table_size *= 2
        bits += 1
    shift = np.uint64(64 - bits)
    mask = np.uint64(table_size - 1)
    for b in prange(n_blocks):
        lo, hi = block_bounds(n, n_blocks, b)
        table = np.full(table_size, -1, np.int32)
        # per local code: (length, first 8 bytes, last 8 bytes); for strings of at most 16
        # bytes these cover every byte, so equal triples are equal strings
        seen = np.empty((capacity, 3), np.uint64)
        count = 0
        for i in range(lo, hi):
            start, end = offsets[i], offsets[i + 1]
            length = np.uint64(end - start)
            head = _word(data, start, end)
            tail = _word(data, max(start, end - 8), end)
            slot = _hash(length, head, tail, shift)
            while True:
                code = table[slot]
                if code < 0:
                    if count == capacity:
                        count = -1
                        break
                    table[slot] = count
                    first_rows[b, count] = i
                    seen[count, 0], seen[count, 1], seen[count, 2] = length, head, tail
                    local_codes[i] = count
                    count += 1
                    break
                if seen[code, 0] == length and seen[code, 1] == head and seen[code, 2] == tail:
                    row = first_rows[b, code]
                    if length <= 16 or _same(data, offsets[row], offsets[row + 1], start, end):
                        local_codes[i] = code
                        break
                slot = (slot + np.uint64(1)) & mask
            if count < 0:
                break
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
