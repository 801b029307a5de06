"""Numba twin of the Cython ``Int64IdMap.encode`` (same hash, probing and growth policy).

Kept as the measured alternative: ``bench/bench_idmap.py`` times both on the same ids, and the
Cython map is the one fastengage uses because it wins (its software prefetch has no Numba
equivalent). Also a readable statement of the algorithm the tests check both against.
"""
import numpy as np
from numba import njit

from ._config import NJIT
from .pairset import mix64 as _mix64


@njit(**NJIT)
def encode_int64(values):
    """Dense codes of ``values`` in first-seen order.

    Returns
    -------
    codes : int64[n]
    keys : int64[n_distinct]   the distinct ids in code order
    """
    capacity = 16
    slot_key = np.empty(capacity, np.int64)
    slot_code = np.full(capacity, -1, np.int64)
    keys = np.empty(16, np.int64)
    size = 0
    out = np.empty(values.shape[0], np.int64)
    for i in range(values.shape[0]):
        if 2 * (size + 1) > capacity:  # keep the load <= 1/2, as the Cython map does
            new_cap = capacity * 2
            new_key = np.empty(new_cap, np.int64)
            new_code = np.full(new_cap, -1, np.int64)
            new_mask = np.uint64(new_cap - 1)
            for s in range(capacity):
                if slot_code[s] >= 0:
                    j = np.int64(_mix64(slot_key[s]) & new_mask)
                    while new_code[j] >= 0:
                        j = (j + 1) & (new_cap - 1)
                    new_key[j] = slot_key[s]
                    new_code[j] = slot_code[s]
            slot_key, slot_code, capacity = new_key, new_code, new_cap
        if size == keys.shape[0]:
            grown = np.empty(2 * size, np.int64)
            grown[:size] = keys
            keys = grown
        key = values[i]
        mask = capacity - 1
        j = np.int64(_mix64(key) & np.uint64(mask))
        while True:
            if slot_code[j] < 0:
                slot_key[j] = key
                slot_code[j] = size
                keys[size] = key
                out[i] = size
                size += 1
                break
            if slot_key[j] == key:
                out[i] = slot_code[j]
                break
            j = (j + 1) & mask
    return out, keys[:size]
