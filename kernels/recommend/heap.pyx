# cython: language_level=3
"""Compiled-ahead top-N heaps for the recommenders' serving path (no JIT warm-up: a service's
first request costs what every other one does).

Same contract and results as ``fastengage.kernels.recommend.topn.topn_update`` / ``heap_finalize``
(the Numba versions, kept as a cross-check): per-customer size-n min-heaps ("worst kept item on
top"), higher score first, equal scores by lower ``tb[item]``; seen items found by binary search
in a sorted CSR row; NaN never kept. Every loop runs without the GIL.
"""
from cython cimport floating
from libc.stdint cimport int64_t, uint8_t
from libc.math cimport NAN

# Scores tested per vectorised comparison pass before any per-item work.
DEF CHUNK = 64


cdef inline bint _worse(floating s1, int64_t i1, floating s2, int64_t i2,
                        const int64_t[::1] tb) noexcept nogil:
    return s1 < s2 or (s1 == s2 and tb[i1] > tb[i2])


cdef inline void _sift_down(floating[::1] hs, int64_t[::1] hi, Py_ssize_t pos, Py_ssize_t size,
                            const int64_t[::1] tb) noexcept nogil:
    cdef Py_ssize_t left, right, child
    cdef floating ts
    cdef int64_t ti
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        child = left
        right = left + 1
        if right < size and _worse(hs[right], hi[right], hs[left], hi[left], tb):
            child = right
        if _worse(hs[child], hi[child], hs[pos], hi[pos], tb):
            ts = hs[pos]; ti = hi[pos]
            hs[pos] = hs[child]; hi[pos] = hi[child]
            hs[child] = ts; hi[child] = ti
            pos = child
        else:
            return


cdef inline void _sift_up(floating[::1] hs, int64_t[::1] hi, Py_ssize_t pos,
                          const int64_t[::1] tb) noexcept nogil:
    cdef Py_ssize_t parent
    cdef floating ts
    cdef int64_t ti
    while pos > 0:
        parent = (pos - 1) // 2
        if _worse(hs[pos], hi[pos], hs[parent], hi[parent], tb):
            ts = hs[pos]; ti = hi[pos]
            hs[pos] = hs[parent]; hi[pos] = hi[parent]
            hs[parent] = ts; hi[parent] = ti
            pos = parent
        else:
            return


cdef inline bint _contains(const int64_t[::1] a, Py_ssize_t lo, Py_ssize_t hi,
                           int64_t value) noexcept nogil:
    cdef Py_ssize_t mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < value:
            lo = mid + 1
        elif a[mid] > value:
            hi = mid
        else:
            return True
    return False


cdef inline bint _candidate(int64_t j, const uint8_t[::1] allowed, bint use_allowed,
                            const int64_t[::1] seen, Py_ssize_t a, Py_ssize_t e) noexcept nogil:
    if use_allowed and allowed[j] == 0:
        return False
    if e > a and _contains(seen, a, e, j):
        return False
    return True


def topn_update(const floating[:, ::1] scores,      # IN  (k, m) scores of k customers
                const int64_t[::1] state_rows,      # IN  (k) heap row of each score row
                const int64_t[::1] seen_rows,       # IN  (n_state) seen-CSR row, -1 none
                const int64_t[::1] codes,           # IN  (m) item code of each column
                const int64_t[::1] seen_indptr,     # IN
                const int64_t[::1] seen_indices,    # IN  sorted within rows
                const uint8_t[::1] allowed,         # IN  (n_items) or (1,)
                bint use_allowed,
                const int64_t[::1] tb,              # IN  (n_items) tie-break rank
                floating[:, ::1] hs,                # IN/OUT (n_state, n) heap scores
                int64_t[:, ::1] hi,                 # IN/OUT (n_state, n) heap items
                int64_t[::1] size):                 # IN/OUT (n_state) heap fill
    """Feed a block of scores into the per-customer heaps."""
    cdef Py_ssize_t n = hs.shape[1], m = codes.shape[0], k = scores.shape[0]
    cdef Py_ssize_t r, c, cc, ce, q, a, e, sz
    cdef int64_t st, sr, j
    cdef floating s, thr
    cdef const floating* row
    cdef int hit
    with nogil:
        for r in range(k):
            st = state_rows[r]
            sr = seen_rows[st]
            a = seen_indptr[sr] if sr >= 0 else 0
            e = seen_indptr[sr + 1] if sr >= 0 else 0
            sz = size[st]
            c = 0
            while c < m and sz < n:
                s = scores[r, c]
                j = codes[c]
                if s == s and _candidate(j, allowed, use_allowed, seen_indices, a, e):
                    hs[st, sz] = s
                    hi[st, sz] = j
                    _sift_up(hs[st], hi[st], sz, tb)
                    sz += 1
                c += 1
            if sz == n:
                thr = hs[st, 0]
                row = &scores[r, 0]
                cc = c
                while cc < m:
                    ce = cc + CHUNK if cc + CHUNK < m else m
                    # branch-free OR of comparisons: the compiler vectorises it (a float max
                    # would need -ffast-math), and almost every chunk is skipped whole
                    hit = 0
                    for q in range(cc, ce):
                        hit |= row[q] >= thr
                    if hit:
                        for q in range(cc, ce):
                            s = row[q]
                            if s > thr or (s == thr and tb[codes[q]] < tb[hi[st, 0]]):
                                j = codes[q]
                                if not _candidate(j, allowed, use_allowed, seen_indices, a, e):
                                    continue
                                hs[st, 0] = s
                                hi[st, 0] = j
                                _sift_down(hs[st], hi[st], 0, sz, tb)
                                thr = hs[st, 0]
                    cc = ce
            size[st] = sz


def heap_finalize(floating[:, ::1] hs,              # IN (destroyed)
                  int64_t[:, ::1] hi,               # IN (destroyed)
                  const int64_t[::1] size,          # IN
                  const int64_t[::1] tb,            # IN
                  int64_t[:, ::1] out_idx,          # OUT (B, n) best first, -1 padded
                  float[:, ::1] out_score,          # OUT (B, n) NaN padded
                  int64_t[::1] out_count):          # OUT (B)
    """Sort every heap best-first into the outputs."""
    cdef Py_ssize_t n = hs.shape[1], B = hs.shape[0]
    cdef Py_ssize_t b, kk, sz, count
    with nogil:
        for b in range(B):
            sz = size[b]
            count = sz
            for kk in range(count - 1, -1, -1):
                out_score[b, kk] = <float>hs[b, 0]
                out_idx[b, kk] = hi[b, 0]
                sz -= 1
                hs[b, 0] = hs[b, sz]
                hi[b, 0] = hi[b, sz]
                _sift_down(hs[b], hi[b], 0, sz, tb)
            for kk in range(count, n):
                out_idx[b, kk] = -1
                out_score[b, kk] = NAN
            out_count[b] = count
