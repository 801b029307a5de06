"""Little-endian words read from a byte buffer (Arrow string/binary data), shared by the keyed
hash and the segment-name kernels.

``load_le64`` is written as eight byte loads combined with shifts: LLVM merges the pattern
into one unaligned 8-byte load on x86-64 and AArch64, which a loop over a variable number of
bytes would not allow.
"""
import numpy as np
from numba import njit

from ..common.config import NJIT

__all__ = ["load_le64", "load_tail", "load_upto8"]


@njit(**NJIT, inline="always")
def load_le64(data, pos):
    """``data[pos:pos+8]`` as a little-endian uint64 (all 8 bytes must exist)."""
    return (np.uint64(data[pos])
            | (np.uint64(data[pos + 1]) << np.uint64(8))
            | (np.uint64(data[pos + 2]) << np.uint64(16))
            | (np.uint64(data[pos + 3]) << np.uint64(24))
            | (np.uint64(data[pos + 4]) << np.uint64(32))
            | (np.uint64(data[pos + 5]) << np.uint64(40))
            | (np.uint64(data[pos + 6]) << np.uint64(48))
            | (np.uint64(data[pos + 7]) << np.uint64(56)))


@njit(**NJIT, inline="always")
def load_tail(data, pos, count):
    """``data[pos:pos+count]`` (``count`` < 8 bytes) as a little-endian uint64, high bytes 0."""
    w = np.uint64(0)
    for k in range(count):
        w |= np.uint64(data[pos + k]) << np.uint64(8 * k)
    return w


@njit(**NJIT, inline="always")
def load_upto8(data, start, end):
    """Up to 8 bytes of ``data[start:end]`` as a little-endian uint64: one load when 8 are
    there, else the bytes one by one."""
    if end - start >= 8:
        return load_le64(data, start)
    return load_tail(data, start, end - start)
