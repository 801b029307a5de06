"""Open-addressing hash set of (customer code, value) pairs packed into one int64.

Used to count distinct values per customer (purchase days, orders) exactly and incrementally: a
pair counts once however many batches, merges or out-of-order events bring it again. The table
is an int64 array whose length is a power of two, ``EMPTY`` marks a free slot, and the load
factor stays at or below 7/10 (callers grow through :func:`grow_for`). Linear probing over
8-byte keys keeps probe runs within a cache line or two at that load, and the set is the
largest thing a streamed RFM keeps (one key per customer-day), so the denser the better.
"""
import numpy as np
from numba import njit

from ..common.config import NJIT

EMPTY = np.int64(-1)
_LOW32 = np.int64(0xFFFFFFFF)
#: Largest customer code a key holds (31 bits: keys stay non-negative, EMPTY stays free).
MAX_CODE = (1 << 31) - 1
#: Largest value (order code) a key holds without colliding with another (32 bits).
MAX_VALUE = (1 << 32) - 1


@njit(**NJIT)
def pair_key(code, value):
    """Pack a customer code (< 2**31) and the low 32 bits of ``value`` into one non-negative key."""
    return (np.int64(code) << np.int64(32)) | (np.int64(value) & _LOW32)


@njit(**NJIT)
def mix64(key):
    """splitmix64 finaliser (the same as the Cython id maps'); uint64 arithmetic wraps."""
    x = np.uint64(key)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


@njit(**NJIT)
def _slot(key, mask):
    return np.int64(mix64(key) & np.uint64(mask))


@njit(**NJIT)
def insert(table, key):
    """Insert ``key``; True when it was not there before. The caller keeps the load <= 7/10."""
    mask = table.shape[0] - 1
    j = _slot(key, mask)
    while True:
        k = table[j]
        if k == EMPTY:
            table[j] = key
            return True
        if k == key:
            return False
        j = (j + 1) & mask


@njit(**NJIT)
def rehash(table, capacity):
    """A new table of ``capacity`` slots (a power of two) holding every key of ``table``."""
    out = np.full(capacity, EMPTY, dtype=np.int64)
    for k in table:
        if k != EMPTY:
            insert(out, k)
    return out


@njit(**NJIT)
def rebuilt(keys, capacity):
    """(table of ``capacity`` slots holding ``keys``, number of distinct keys)."""
    out = np.full(capacity, EMPTY, dtype=np.int64)
    n = 0
    for k in keys:
        if insert(out, k):
            n += 1
    return out, n


@njit(**NJIT)
def occupied(table):
    """The keys held by ``table``, in slot order."""
    n = 0
    for k in table:
        if k != EMPTY:
            n += 1
    out = np.empty(n, dtype=np.int64)
    n = 0
    for k in table:
        if k != EMPTY:
            out[n] = k
            n += 1
    return out


#: Largest load factor, as a fraction MAX_LOAD_NUM / MAX_LOAD_DEN.
MAX_LOAD_NUM, MAX_LOAD_DEN = 7, 10


def capacity_for(n_keys: int) -> int:
    """Smallest power-of-two capacity (>= 16) that keeps ``n_keys`` at load <= 7/10."""
    cap = 16
    while cap * MAX_LOAD_NUM < n_keys * MAX_LOAD_DEN:
        cap *= 2
    return cap


def grow_for(table: np.ndarray, size: int, n_more: int) -> np.ndarray:
    """``table`` itself, or a rehashed larger copy, able to take ``n_more`` further keys."""
    if (size + n_more) * MAX_LOAD_DEN <= table.shape[0] * MAX_LOAD_NUM:
        return table
    return rehash(table, capacity_for(size + n_more))
