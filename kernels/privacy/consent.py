"""Consent as a point-in-time join: per customer, a timeline of consent states built from the
consent records, then the state at each event's time looked up by binary search.

A record says "from ``valid_from`` (inclusive) until ``valid_to`` (exclusive) consent was granted
/ withdrawn". Where records overlap, the one that started last decides; at equal starts a
withdrawal wins (the conservative reading). Where no record covers a time there is no consent.
"""
import numpy as np
from numba import njit, prange

from ..common.config import NJIT
from ..common.launch import parallel_kernel

__all__ = ["NONE", "GRANTED", "WITHDRAWN", "KEPT", "NO_CONSENT", "WITHDRAWN_AT_EVENT",
           "NOT_CONSENTED_AS_OF", "consent_timeline", "consent_reasons", "mark_customers"]

NONE, GRANTED, WITHDRAWN = 0, 1, 2
#: Per-row outcome codes (also bit positions in :func:`mark_customers`'s flags).
KEPT, NO_CONSENT, WITHDRAWN_AT_EVENT, NOT_CONSENTED_AS_OF = 0, 1, 2, 3
_OPEN_END = np.iinfo(np.int64).max


@njit(**NJIT)
def _state_at(rec_from, rec_to, rec_granted, a, b, t):
    best_from = np.iinfo(np.int64).min
    state = NONE
    for r in range(a, b):
        if rec_from[r] <= t < rec_to[r]:
            s = GRANTED if rec_granted[r] else WITHDRAWN
            if state == NONE or rec_from[r] > best_from or (rec_from[r] == best_from
                                                             and s == WITHDRAWN):
                best_from = rec_from[r]
                state = s
    return state


@njit(**NJIT)
def consent_timeline(rec_start, rec_from, rec_to, rec_granted):
    """Timelines of all customers: records of customer c are ``rec_start[c]:rec_start[c+1]``.

    Returns ``(seg_start, seg_time, seg_state)``: customer c's state is ``seg_state[k]`` from
    ``seg_time[k]`` until ``seg_time[k+1]`` for k in ``seg_start[c]:seg_start[c+1]`` (and none
    before the first), with equal neighbouring states merged.
    """
    n_customers = rec_start.size - 1
    n_records = rec_from.size
    seg_start = np.zeros(n_customers + 1, np.int64)
    seg_time = np.empty(2 * n_records, np.int64)
    seg_state = np.empty(2 * n_records, np.int8)
    k = 0
    for c in range(n_customers):
        a, b = rec_start[c], rec_start[c + 1]
        points = np.empty(2 * (b - a), np.int64)
        m = 0
        for r in range(a, b):
            points[m] = rec_from[r]
            m += 1
            if rec_to[r] != _OPEN_END:
                points[m] = rec_to[r]
                m += 1
        points = np.sort(points[:m])
        previous = NONE
        for j in range(m):
            if j > 0 and points[j] == points[j - 1]:
                continue
            state = _state_at(rec_from, rec_to, rec_granted, a, b, points[j])
            if state != previous:
                seg_time[k] = points[j]
                seg_state[k] = state
                k += 1
                previous = state
        seg_start[c + 1] = k
    return seg_start, seg_time[:k], seg_state[:k]


@njit(**NJIT)
def _lookup(seg_start, seg_time, seg_state, c, t):
    if c < 0 or c >= seg_start.size - 1:
        return NONE
    lo, hi = seg_start[c], seg_start[c + 1]
    # last k in [lo, hi) with seg_time[k] <= t
    while lo < hi:
        mid = (lo + hi) // 2
        if seg_time[mid] <= t:
            lo = mid + 1
        else:
            hi = mid
    if lo == seg_start[c]:
        return NONE
    return seg_state[lo - 1]


@parallel_kernel
def consent_reasons(seg_start, seg_time, seg_state, codes, times, use_as_of, as_of, out):
    """``out[i]``: KEPT if customer ``codes[i]`` had consent at ``times[i]`` (and, when
    ``use_as_of``, also at ``as_of``); otherwise the reason it is excluded."""
    for i in prange(codes.size):
        c = codes[i]
        state = _lookup(seg_start, seg_time, seg_state, c, times[i])
        if state == GRANTED:
            if use_as_of and _lookup(seg_start, seg_time, seg_state, c, as_of) != GRANTED:
                out[i] = NOT_CONSENTED_AS_OF
            else:
                out[i] = KEPT
        elif state == WITHDRAWN:
            out[i] = WITHDRAWN_AT_EVENT
        else:
            out[i] = NO_CONSENT


@njit(**NJIT)
def mark_customers(codes, reasons, flags):
    """``flags[c] |= 1 << reason`` for every row: which outcomes each customer had."""
    for i in range(codes.size):
        flags[codes[i]] |= np.uint8(1) << np.uint8(reasons[i])
