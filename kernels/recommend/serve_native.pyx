# cython: language_level=3
"""Exact top-n of matrix-factorisation scores compiled at build time: the batch ``recommend``
and single-customer ``recommend_one`` paths of ALS and BPR (see
:mod:`kernels.recommend.serve` for the pruning bounds, the order and the candidates).

Compiled ahead of time (issue #11): the Numba versions cost ~13 s of CPU of JIT compilation on
the first ``recommend`` / ``recommend_one`` of a fresh process (a service's first request).
A single-customer call runs entirely without the GIL; the batch worker is run by the launch rule
(:func:`kernels.common.launch.run_threaded`) on several threads, each claiming chunks of
customers; a customer's result is computed by one thread, so it is bit-identical whatever the
path and thread count.
"""
from cython cimport floating
from libc.math cimport INFINITY, NAN, sqrt
from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport free, malloc

import numpy as np

cimport numpy as cnp

cnp.import_array()

include "_dense.pxi"

#: Items are scanned in slices of this many (a slice of bounds stays in L1).
DEF SLICE = 256
#: "every item allowed" (a one-entry mask that is never read)
cdef uint8_t _EVERY = 1
#: Most principal directions a pruning bound may use (the models use 8).
DEF MAX_DIRECTIONS = 64


# Order: higher score first, equal scores by lower tie-break rank tb[item]; NaN never kept.
cdef inline bint _worse(floating s1, int64_t i1, floating s2, int64_t i2,
                        const int64_t* tb) noexcept nogil:
    return s1 < s2 or (s1 == s2 and tb[i1] > tb[i2])


cdef inline void _move(floating* hs, int64_t* hi, Py_ssize_t dst,
                       Py_ssize_t src) noexcept nogil:
    hs[dst] = hs[src]
    hi[dst] = hi[src]


cdef void _sift_down(floating* hs, int64_t* hi, Py_ssize_t pos, Py_ssize_t size,
                     const int64_t* tb) noexcept nogil:
    # the entry at pos moves down through a hole (one store per level instead of a swap)
    cdef floating s = hs[pos]
    cdef int64_t i = hi[pos]
    cdef Py_ssize_t child
    while 2 * pos + 1 < size:
        child = 2 * pos + 1
        if child + 1 < size and _worse(hs[child + 1], hi[child + 1], hs[child], hi[child], tb):
            child += 1
        if not _worse(hs[child], hi[child], s, i, tb):
            break
        _move(hs, hi, pos, child)
        pos = child
    hs[pos] = s
    hi[pos] = i


cdef void _sift_up(floating* hs, int64_t* hi, Py_ssize_t pos, const int64_t* tb) noexcept nogil:
    cdef floating s = hs[pos]
    cdef int64_t i = hi[pos]
    cdef Py_ssize_t parent
    while pos > 0:
        parent = (pos - 1) // 2
        if not _worse(s, i, hs[parent], hi[parent], tb):
            break
        _move(hs, hi, pos, parent)
        pos = parent
    hs[pos] = s
    hi[pos] = i


cdef Py_ssize_t _lower_bound(const int64_t* keys, Py_ssize_t lo, Py_ssize_t hi,
                             int64_t value) noexcept nogil:
    # first position in the sorted keys[lo:hi] whose key is >= value
    cdef Py_ssize_t mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef struct Model:
    # the model-side arguments of a top-n call, as raw pointers (one reference per call)
    const void* V
    const double* proj
    const void* proj_T
    const void* resid
    const double* sorted_norms
    const int64_t* perm
    const int64_t* tb
    const int64_t* seen
    const uint8_t* allowed
    Py_ssize_t f, kp, n_items
    double slack
    bint use_allowed


cdef Py_ssize_t _topn_vec(const floating* x, Model* m, int64_t a, int64_t e, floating* scratch,
                          int64_t* hi, Py_ssize_t n, int64_t* out_idx,
                          float* out_score) noexcept nogil:
    # Exact top n items for factors x, items visited in decreasing-norm order a slice at a
    # time, skipping what provably cannot enter (see kernels.recommend.serve). scratch holds
    # n + SLICE + kp floats; hi n codes.
    cdef const floating* V = <const floating*> m.V
    cdef const floating* proj_T = <const floating*> m.proj_T
    cdef const floating* resid = <const floating*> m.resid
    cdef Py_ssize_t f = m.f, kp = m.kp, n_items = m.n_items
    cdef floating* hs = scratch
    cdef floating* bound = scratch + n
    cdef floating* z = scratch + n + SLICE
    cdef int64_t cand[SLICE]
    cdef Py_ssize_t k, q, j, t, sl, c0, width, n_cand, size = 0
    cdef double unorm = 0.0, xres = 0.0, d
    cdef floating zq, sc, thr
    cdef int64_t item
    for k in range(f):
        unorm += <double> x[k] * <double> x[k]
    unorm = sqrt(unorm)
    cdef double zd[MAX_DIRECTIONS]
    for q in range(kp):  # z = P^T x in float64, then the norm of x's residual
        zd[q] = 0.0
    for k in range(f):
        for q in range(kp):
            zd[q] += m.proj[k * kp + q] * <double> x[k]
    for q in range(kp):
        z[q] = <floating> zd[q]
    for k in range(f):
        d = <double> x[k]
        for q in range(kp):
            d -= m.proj[k * kp + q] * zd[q]
        xres += d * d
    xres = sqrt(xres) * m.slack
    cdef double tol = (m.slack - 1.0) * unorm, stop = unorm * m.slack
    for sl in range((n_items + SLICE - 1) // SLICE):
        c0 = sl * SLICE
        if size == n and stop * m.sorted_norms[c0] < hs[0]:
            break
        width = min(SLICE, n_items - c0)
        for j in range(width):
            bound[j] = <floating> (xres * resid[c0 + j] + tol * m.sorted_norms[c0 + j])
        for q in range(kp):
            zq = z[q]
            for j in range(width):
                bound[j] += zq * proj_T[q * n_items + c0 + j]
        n_cand = 0
        thr = hs[0] if size == n else -INFINITY
        for j in range(width):
            cand[n_cand] = j
            n_cand += bound[j] >= thr
        for t in range(n_cand):
            j = cand[t]
            if size == n and bound[j] < hs[0]:
                continue
            item = m.perm[c0 + j]
            if m.use_allowed and m.allowed[item] == 0:
                continue
            sc = _dot(x, V + item * f, f)
            if sc != sc:
                continue
            if size == n and not (sc > hs[0] or (sc == hs[0] and m.tb[item] < m.tb[hi[0]])):
                continue
            if e > a:
                k = _lower_bound(m.seen, a, e, item)
                if k < e and m.seen[k] == item:
                    continue
            if size < n:
                hs[size] = sc
                hi[size] = item
                _sift_up(hs, hi, size, m.tb)
                size += 1
            else:
                hs[0] = sc
                hi[0] = item
                _sift_down(hs, hi, 0, size, m.tb)
    # drain: pop the worst repeatedly, writing from the back, so the best ends up first
    cdef Py_ssize_t count = size
    for k in range(count - 1, -1, -1):
        out_score[k] = <float> hs[0]
        out_idx[k] = hi[0]
        size -= 1
        _move(hs, hi, 0, size)
        _sift_down(hs, hi, 0, size, m.tb)
    for k in range(count, n):
        out_idx[k] = -1
        out_score[k] = NAN
    return count


cdef Model _model(const floating[:, ::1] V, const double[:, ::1] proj,
                  const floating[:, ::1] proj_T, const floating[::1] resid,
                  const double[::1] sorted_norms, const int64_t[::1] perm, double slack,
                  const int64_t[::1] seen, const uint8_t* allowed, bint use_allowed,
                  const int64_t[::1] tb):
    if proj.shape[1] > MAX_DIRECTIONS:
        raise ValueError(f"at most {MAX_DIRECTIONS} pruning directions, got {proj.shape[1]}")
    cdef Model m
    m.V = &V[0, 0] if V.shape[0] else NULL
    m.proj = &proj[0, 0] if proj.shape[1] else NULL
    m.proj_T = &proj_T[0, 0] if proj_T.shape[0] and proj_T.shape[1] else NULL
    m.resid = &resid[0] if resid.shape[0] else NULL
    m.sorted_norms = &sorted_norms[0] if sorted_norms.shape[0] else NULL
    m.perm = &perm[0] if perm.shape[0] else NULL
    m.tb = &tb[0] if tb.shape[0] else NULL
    m.seen = &seen[0] if seen.shape[0] else NULL
    m.allowed = allowed
    m.f = V.shape[1]
    m.kp = proj.shape[1]
    m.n_items = perm.shape[0]
    m.slack = slack
    m.use_allowed = use_allowed
    return m


def topn_block_worker(const floating[:, ::1] U, const int64_t[::1] urows,
                      const int64_t[::1] seen_rows, const int64_t[::1] seen_indptr,
                      const int64_t[::1] seen_indices, const floating[:, ::1] V,
                      const double[:, ::1] proj, const floating[:, ::1] proj_T,
                      const floating[::1] resid, const double[::1] sorted_norms,
                      const int64_t[::1] perm, double slack, const uint8_t[::1] allowed,
                      bint use_allowed, const int64_t[::1] tb, int64_t[:, ::1] out_idx,
                      float[:, ::1] out_score, int64_t[::1] out_count, int64_t[::1] next_chunk,
                      Py_ssize_t chunk):
    """One worker of the batch top-n: claims chunks of ``chunk`` customers through the shared
    counter ``next_chunk[0]``; customer ``b`` gets the top ``n`` of factors ``U[urows[b]]``
    without its seen row ``seen_rows[b]`` (-1: none) into ``out_idx[b]``, ``out_score[b]``,
    ``out_count[b]`` (see :func:`kernels.recommend.serve.mf_topn_block`)."""
    cdef Model m = _model(V, proj, proj_T, resid, sorted_norms, perm, slack, seen_indices,
                          &allowed[0], use_allowed, tb)
    cdef Py_ssize_t B = urows.shape[0], n = out_idx.shape[1], f = m.f
    cdef Py_ssize_t n_chunks = (B + chunk - 1) // chunk
    if B == 0 or n == 0:
        return
    cdef floating* scratch = <floating*> malloc((n + SLICE + m.kp + 1) * sizeof(floating))
    cdef int64_t* hi = <int64_t*> malloc(n * sizeof(int64_t))
    if scratch == NULL or hi == NULL:
        free(scratch)
        free(hi)
        raise MemoryError()
    cdef long long* counter = <long long*> &next_chunk[0]
    cdef int64_t c, b, sr, a, e
    with nogil:
        c = fe_fetch_add(counter, 1)
        while c < n_chunks:
            for b in range(c * chunk, min(B, (c + 1) * chunk)):
                sr = seen_rows[b]
                a = seen_indptr[sr] if sr >= 0 else 0
                e = seen_indptr[sr + 1] if sr >= 0 else 0
                out_count[b] = _topn_vec(&U[urows[b], 0], &m, a, e, scratch, hi, n,
                                         &out_idx[b, 0], &out_score[b, 0])
            c = fe_fetch_add(counter, 1)
    free(scratch)
    free(hi)


cdef int64_t _find_int(const int64_t* sorted_keys, const int64_t* key_codes, Py_ssize_t n,
                       int64_t key) noexcept nogil:
    cdef Py_ssize_t k = _lower_bound(sorted_keys, 0, n, key) if n else 0
    return key_codes[k] if k < n and sorted_keys[k] == key else -1


def find_int(const int64_t[::1] sorted_keys, const int64_t[::1] key_codes, int64_t key):
    """Code of integer id ``key`` (-1 if absent): binary search in ``sorted_keys`` (ascending),
    ``key_codes[k]`` being the code of ``sorted_keys[k]``."""
    cdef Py_ssize_t n = sorted_keys.shape[0]
    return _find_int(&sorted_keys[0] if n else NULL, &key_codes[0] if n else NULL, n, key)


cdef int _compare_bytes(const uint8_t* data, int64_t start, int64_t end, const uint8_t* key,
                        Py_ssize_t size) noexcept nogil:
    # -1, 0, 1 as data[start:end] is below, equal to or above key (unsigned bytes, then length)
    cdef Py_ssize_t k, m = min(end - start, size)
    for k in range(m):
        if data[start + k] != key[k]:
            return -1 if data[start + k] < key[k] else 1
    if end - start == size:
        return 0
    return -1 if end - start < size else 1


cdef int64_t _find_str(const int64_t* offsets, const uint8_t* data, const int64_t* order,
                       Py_ssize_t n, const uint8_t* key, Py_ssize_t size) noexcept nogil:
    cdef Py_ssize_t lo = 0, hi = n, mid
    cdef int64_t c
    cdef int cmp
    while lo < hi:
        mid = (lo + hi) >> 1
        c = order[mid]
        cmp = _compare_bytes(data, offsets[c], offsets[c + 1], key, size)
        if cmp < 0:
            lo = mid + 1
        elif cmp > 0:
            hi = mid
        else:
            return c
    return -1


def find_str(const int64_t[::1] offsets, const uint8_t[::1] data, const int64_t[::1] order,
             const uint8_t[::1] key):
    """Code of string id ``key`` (its UTF-8 bytes) or -1: binary search over the ids
    ``data[offsets[c]:offsets[c + 1]]``, visited in ``order`` (codes sorted by their bytes)."""
    return _find_str(&offsets[0] if offsets.shape[0] else NULL,
                     &data[0] if data.shape[0] else NULL,
                     &order[0] if order.shape[0] else NULL, order.shape[0],
                     &key[0] if key.shape[0] else NULL, key.shape[0])


cdef Py_ssize_t _serve_row(const floating* x, Model* m, int64_t a, int64_t e,
                           const int64_t* item_out, Py_ssize_t n, int64_t* out_idx,
                           float* out_score) noexcept nogil:
    # one customer's top n, item codes mapped through item_out; -2 when out of memory
    cdef floating* scratch = <floating*> malloc((n + SLICE + m.kp + 1) * sizeof(floating))
    cdef int64_t* hi = <int64_t*> malloc((n + 1) * sizeof(int64_t))
    cdef Py_ssize_t k, count = -2
    if scratch != NULL and hi != NULL:
        count = _topn_vec(x, m, a, e, scratch, hi, n, out_idx, out_score)
        for k in range(count):
            out_idx[k] = item_out[out_idx[k]]
    free(scratch)
    free(hi)
    return count


cdef class Server:
    """The single-customer serving path of one fitted model (``recommend_one``).

    Built once per model state; holds the model's arrays and raw pointers into them, so a call
    passes only the id and the two output arrays. Why: a request's work under the GIL is what
    limits a service's threads, and binding ~16 typed memoryviews per call (plus fused-type
    dispatch) cost ~4 us under the GIL against ~40 us of GIL-free scoring. Immutable after
    construction, so any number of threads may call it at once.

    ``lookup`` is ``(sorted_keys, key_codes)`` for integer ids (see :func:`find_int`) or
    ``(offsets, data, order)`` for string ids (see :func:`find_str`); the model arguments are
    those of :func:`topn_block_worker` plus ``seen_indptr`` and ``item_out`` (what is written
    per item code: the integer item ids, or the codes themselves).
    """
    cdef object _arrays         # keeps every array below alive
    cdef Model m
    cdef const void* U
    cdef bint is_double, string_ids
    cdef Py_ssize_t f, n_rows, n_keys
    cdef const int64_t* seen_indptr
    cdef const int64_t* item_out
    cdef const int64_t* sorted_keys
    cdef const int64_t* key_codes
    cdef const int64_t* offsets
    cdef const uint8_t* data
    cdef const int64_t* order

    def __cinit__(self, lookup, U, V, proj, proj_T, resid, sorted_norms, perm, double slack,
                  seen_indptr, seen_indices, tb, item_out):
        self._arrays = (lookup, U, V, proj, proj_T, resid, sorted_norms, perm, seen_indptr,
                        seen_indices, tb, item_out)
        cdef const float[:, ::1] U32, V32, P32
        cdef const double[:, ::1] U64, V64, P64
        cdef const float[::1] R32
        cdef const double[::1] R64
        cdef const double[:, ::1] proj_ = proj
        cdef const double[::1] norms_ = sorted_norms
        cdef const int64_t[::1] perm_ = perm, seen_ = seen_indices, tb_ = tb
        self.is_double = U.dtype == np.float64
        if self.is_double:
            U64, V64, P64, R64 = U, V, proj_T, resid
            self.m = _model(V64, proj_, P64, R64, norms_, perm_, slack, seen_,
                            &_EVERY, False, tb_)
            self.U = &U64[0, 0] if U64.shape[0] and U64.shape[1] else NULL
        else:
            U32, V32, P32, R32 = U, V, proj_T, resid
            self.m = _model(V32, proj_, P32, R32, norms_, perm_, slack, seen_,
                            &_EVERY, False, tb_)
            self.U = &U32[0, 0] if U32.shape[0] and U32.shape[1] else NULL
        self.n_rows, self.f = U.shape[0], U.shape[1]
        if self.f != self.m.f:
            raise ValueError("customer and item factors differ in width")
        cdef const int64_t[::1] ip = seen_indptr, io = item_out
        if ip.shape[0] != self.n_rows + 1 or io.shape[0] != self.m.n_items:
            raise ValueError("seen_indptr or item_out does not match the factors")
        self.seen_indptr, self.item_out = &ip[0], (&io[0] if io.shape[0] else NULL)
        cdef const int64_t[::1] keys, codes, offs, order
        cdef const uint8_t[::1] data
        self.string_ids = len(lookup) == 3
        if self.string_ids:
            offs, data, order = lookup
            self.offsets, self.order = &offs[0], (&order[0] if order.shape[0] else NULL)
            self.data = &data[0] if data.shape[0] else NULL
            self.n_keys = order.shape[0]
        else:
            keys, codes = lookup
            self.sorted_keys = &keys[0] if keys.shape[0] else NULL
            self.key_codes = &codes[0] if codes.shape[0] else NULL
            self.n_keys = keys.shape[0]

    cdef Py_ssize_t _run(self, Py_ssize_t row, bint exclude_seen, int64_t* out_idx,
                         float* out_score, Py_ssize_t n) noexcept nogil:
        cdef int64_t a = self.seen_indptr[row] if exclude_seen else 0
        cdef int64_t e = self.seen_indptr[row + 1] if exclude_seen else 0
        if self.is_double:
            return _serve_row(<const double*> self.U + row * self.f, &self.m, a, e,
                              self.item_out, n, out_idx, out_score)
        return _serve_row(<const float*> self.U + row * self.f, &self.m, a, e,
                          self.item_out, n, out_idx, out_score)

    def topn_int(self, int64_t key, bint exclude_seen, int64_t[::1] out_idx,
                 float[::1] out_score):
        """Top ``n = out_idx.size`` for the customer with integer id ``key``: writes item ids
        (or codes) and scores, returns the count, or -1 when the id is not in the model."""
        cdef Py_ssize_t n = out_idx.shape[0], count = -1
        cdef int64_t row
        if self.string_ids or out_score.shape[0] != n or n < 1:
            raise ValueError("topn_int needs integer ids and two outputs of the same size >= 1")
        with nogil:
            row = _find_int(self.sorted_keys, self.key_codes, self.n_keys, key)
            if row >= 0:
                count = self._run(row, exclude_seen, &out_idx[0], &out_score[0], n)
        if count == -2:
            raise MemoryError()
        return count

    def topn_str(self, bytes key, bint exclude_seen, int64_t[::1] out_idx, float[::1] out_score):
        """:meth:`topn_int` for the customer whose string id has the UTF-8 bytes ``key``."""
        cdef Py_ssize_t n = out_idx.shape[0], size = len(key), count = -1
        cdef const uint8_t* kp = <const uint8_t*> (<const char*> key)
        cdef int64_t row
        if not self.string_ids or out_score.shape[0] != n or n < 1:
            raise ValueError("topn_str needs string ids and two outputs of the same size >= 1")
        with nogil:
            row = _find_str(self.offsets, self.data, self.order, self.n_keys, kp, size)
            if row >= 0:
                count = self._run(row, exclude_seen, &out_idx[0], &out_score[0], n)
        if count == -2:
            raise MemoryError()
        return count
