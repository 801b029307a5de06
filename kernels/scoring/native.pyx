# cython: language_level=3
"""Scoring kernels compiled at build time: tree-ensemble traversal (two layouts), the
post-transforms of raw scores, and the fused linear model.

Compiled ahead of time (issue #11): the Numba versions of these loops cost ~8 s of CPU of JIT
compilation on the first ``score``/``predict`` of a fresh process (a service's first request,
a CLI call, a CI job). Each ``*_worker`` function releases the GIL and claims blocks of rows
through the shared counter ``next_block[0]``; the launch rule
(:func:`kernels.common.launch.run_threaded`) runs it on ``n_threads`` threads, or the caller
runs it once for one thread. A row is computed by one thread with the same arithmetic whatever
the block it falls in, so results are bit-identical for any thread count.

Features reach the tree workers as they are (Arrow columns zero-copy, or a matrix): each
worker copies its block of rows into a row-major buffer of *slots* in the input type
(``_load_block``), so no ``n x F`` matrix is built in a serial pass, and a row's features sit in
a few cache lines. A slot is a feature as is, or with NaN replaced (``SLOT_*``), which is how
the perfect layout takes the side NaN goes to out of the inner loop.

Layouts (filled by ``fastengage.scoring.trees``):

* **perfect** -- every tree padded to a complete binary tree of depth ``D``: node ``j``'s
  children are ``2j+1``/``2j+2``, so a traversal is ``D`` steps of ``j = 2j + 2 - go_left``, no
  pointer chasing, no data-dependent exit. Each tree is applied to a whole block of rows one
  level at a time, so the block's traversals are independent loads the CPU overlaps. Only
  "``x <= t``, NaN goes to a stored side" nodes fit; a node is its threshold and its slot,
  packed (``node32``/``node64``), and "go left" is one compare of the slot value.
* **general** -- explicit left/right children (a negative child ``c`` is leaf ``~c``) and a node
  kind for splits that cannot be rewritten: equality (ONNX ``BRANCH_EQ``/``NEQ``), LightGBM
  "zero is missing" and LightGBM categorical bitsets.

Comparisons happen in the wider of the feature's and the threshold's type (exact for float32
values against float32-exact thresholds). Leaf values are summed in the accumulation type
(float32 for ONNX float models, as ONNX Runtime does; float64 for LightGBM), tree after tree in
model order, in chunks flushed into the output (``flush``): that reproduces ONNX Runtime's
split of the trees over its threads bit for bit. Post-transforms use the runtimes' formulas in
the scores' own type (``expf`` for float32, as ONNX Runtime and Numba's float32 ``np.exp``).
"""
from libc.math cimport INFINITY, exp, expf, fabs
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.stdlib cimport calloc, free, malloc

cimport numpy as cnp

cnp.import_array()

cdef extern from "../common/atomic.h" nogil:
    long long fe_fetch_add(long long* p, long long v)

ctypedef fused x_t:      # features
    float
    double

# Perfect-layout node: threshold and the block slot it compares, packed so that a step's two
# node loads hit one cache line (float32 thresholds: 8 bytes; float64: 16)
ctypedef struct node32:
    float thr
    uint32_t slot

ctypedef struct node64:
    double thr
    uint32_t slot
    uint32_t pad

ctypedef fused node_t:
    node32
    node64

ctypedef fused acc_t:    # leaf values, sums and scores
    float
    double

#: Rows per block of the tree kernels: enough independent traversals to hide load latency,
#: small enough that the block's feature rows stay in L1.
TREE_BLOCK = 64
DEF _TREE_BLOCK = 64
#: Rows per block of the linear kernel (its running sums stay in L1 while a column streams).
LINEAR_BLOCK = 1024
DEF _LINEAR_BLOCK = 1024
#: Rows per block of a stand-alone post-transform.
DEF _POST_BLOCK = 4096

# Split kinds (general layout)
KIND_LEQ = 0        # go left iff x <= t (NaN: nan_left)
KIND_EQ = 1         # go left iff x == t (NaN: nan_left)
KIND_ZERO_LEQ = 2   # LightGBM missing type Zero: |x| <= kZeroThreshold or NaN -> nan_left, else x <= t
KIND_CAT = 3        # LightGBM categorical: left iff int(x) is in the node's bitset (see _cat_left)
DEF _LEQ = 0
DEF _EQ = 1
DEF _CAT = 3

# How a block slot is filled from its feature (see _load_block)
SLOT_PLAIN = 0      # the value as is (NaN stays NaN: fails every "<=", so it goes right)
SLOT_NAN_LOW = 1    # NaN -> -inf (passes "<= t" for every non-NaN t, so it goes left)
SLOT_IS_NAN = 2     # NaN -> -inf, any other value -> +inf ("<= -inf": left iff missing)
DEF _NAN_LOW = 1
DEF _IS_NAN = 2
DEF _SRC32 = 4      # (bit set per call: the source column is float32, else float64)

include "_post.pxi"

#: LightGBM's ``kZeroThreshold`` is the float literal ``1e-35f``: 1.0000000180025095e-35 as a
#: double, not 1e-35 (values in between are "zero" for LightGBM).
ZERO = <double> (<float> 1e-35)
cdef double _ZERO = ZERO
DEF _INT32_END = 2147483648.0


cdef void _finish_rows(acc_t* raw, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t k, acc_t avg,
                       bint use_avg, const acc_t* base, int mode, acc_t scale, acc_t* out,
                       Py_ssize_t n_out) noexcept nogil:
    """Averaging, base values and the transform of rows ``lo:hi`` of ``raw`` into ``out``."""
    cdef Py_ssize_t i, j
    cdef acc_t v
    for i in range(lo, hi):
        for j in range(k):
            v = raw[i * k + j]
            if use_avg:
                v = v / avg
            raw[i * k + j] = v + base[j]
        _post_row(raw + i * k, 1, out + i * n_out, 1, k, mode, scale)


cdef void* _zeroed(Py_ssize_t count, size_t size) except NULL:
    cdef void* p = calloc(max(count, 1), size)
    if p == NULL:
        raise MemoryError()
    return p


cdef inline void _flush(acc_t* part, acc_t* raw, Py_ssize_t lo, Py_ssize_t m,
                        Py_ssize_t k) noexcept nogil:
    # out[lo + r] += part[r]; part = 0 (a chunk of trees summed from zero, added in order)
    cdef Py_ssize_t q
    for q in range(m * k):
        raw[lo * k + q] += part[q]
        part[q] = 0


cdef void _load_block(x_t* buf, Py_ssize_t S, const void** src, const size_t* stride,
                      const uint8_t* how, Py_ssize_t lo, Py_ssize_t m) noexcept nogil:
    """Rows ``lo:lo+m`` of every slot into the row-major block ``buf`` ``(m, S)``: the one pass
    over the input (no ``n x F`` matrix is built beforehand), in the comparison type (a C cast
    float64 -> float32 rounds to nearest, as NumPy's ``astype``)."""
    cdef Py_ssize_t s, r
    cdef size_t st
    cdef const float* p32
    cdef const double* p64
    cdef x_t v, low = -INFINITY, high = INFINITY
    for s in range(S):
        st = stride[s]
        if how[s] & _SRC32:
            p32 = (<const float*> src[s]) + <size_t> lo * st
            for r in range(m):
                buf[r * S + s] = <x_t> p32[<size_t> r * st]
        else:
            p64 = (<const double*> src[s]) + <size_t> lo * st
            for r in range(m):
                buf[r * S + s] = <x_t> p64[<size_t> r * st]
        if how[s] & 3 == _NAN_LOW:
            for r in range(m):
                v = buf[r * S + s]
                buf[r * S + s] = low if v != v else v
        elif how[s] & 3 == _IS_NAN:
            for r in range(m):
                v = buf[r * S + s]
                buf[r * S + s] = low if v != v else high


cdef inline void _step(const x_t* rows, size_t S, const node_t* tn, size_t* idx,
                       Py_ssize_t r) noexcept nogil:
    # One level of one row's traversal, branch-free: a NaN's side is already in its slot's
    # value, so a step is three loads, a compare and ``j = 2j + 2 - go``.
    cdef size_t j = idx[r]
    idx[r] = 2 * j + 2 - <size_t> (rows[<size_t> r * S + tn[j].slot] <= tn[j].thr)


cdef void _perfect_block(const x_t* rows, size_t S, Py_ssize_t m, const node_t* nodes,
                         const acc_t* leaves, const int32_t* target, const uint8_t* flush,
                         Py_ssize_t n_trees, int depth, acc_t* raw, Py_ssize_t lo,
                         Py_ssize_t k, acc_t* part) noexcept nogil:
    """Add every tree's leaf value to the block's ``m`` rows (perfect layout); unsigned
    indexing throughout (no sign fix-ups in the inner loop)."""
    cdef size_t n_int = (<size_t> 1 << depth) - 1, n_leaf = <size_t> 1 << depth
    cdef Py_ssize_t r, t, level, col
    cdef const node_t* tn
    cdef const acc_t* tl
    # on the stack: no other pointer can alias it, so the compiler keeps the traversal's
    # loads and stores free of reloads
    cdef size_t idx[_TREE_BLOCK]
    for t in range(n_trees):
        tn = nodes + <size_t> t * n_int
        for r in range(m):
            idx[r] = 0
        for level in range(depth):
            # four rows per step: four independent load chains in flight (GCC does not
            # unroll this by itself)
            r = 0
            while r + 4 <= m:
                _step(rows, S, tn, idx, r)
                _step(rows, S, tn, idx, r + 1)
                _step(rows, S, tn, idx, r + 2)
                _step(rows, S, tn, idx, r + 3)
                r += 4
            while r < m:
                _step(rows, S, tn, idx, r)
                r += 1
        col = target[t]
        tl = leaves + (<size_t> t * n_leaf - n_int)
        for r in range(m):
            part[r * k + col] += tl[idx[r]]
        if flush[t]:
            _flush(part, raw, lo, m, k)


cdef inline bint _cat_left(const uint32_t* bits, int32_t start, int32_t length,
                           double x) noexcept nogil:
    # LightGBM's CategoricalDecision: i = static_cast<int>(x); NaN, out-of-int32 and i < 0 go
    # right, otherwise left iff bit i is set. trunc(x) >= 0 <=> x > -1 (-0.5 is category 0).
    cdef int64_t v, word
    if x > -1.0 and x < _INT32_END:
        v = <int64_t> x
        word = v >> 5
        if word >= length:
            return False
        return (bits[start + word] >> <uint32_t> (v & 31)) & 1
    return False


cdef inline double _linear_leaf(const x_t* row, const int32_t* lin_start,
                                const int32_t* lin_len, const int32_t* lin_slot,
                                const double* lin_coeff, const double* lin_const,
                                Py_ssize_t leaf, double constant) noexcept nogil:
    # LightGBM's Tree::Predict for a linear tree: leaf_const + sum coeff * x over the leaf's
    # features (x as its predictor reads it: |x| <= kZeroThreshold is 0), or the leaf's plain
    # value (``constant``) if one of them is NaN
    cdef double v = lin_const[leaf], x
    cdef Py_ssize_t q
    for q in range(lin_start[leaf], lin_start[leaf] + lin_len[leaf]):
        x = <double> row[lin_slot[q]]
        if x != x:
            return constant
        if fabs(x) > _ZERO:
            v += lin_coeff[q] * x
    return v


cdef void _general_block(const x_t* rows, size_t S, Py_ssize_t m,
                         const int32_t* roots, const int32_t* slot, const double* thr,
                         const int32_t* left, const int32_t* right, const uint8_t* kind,
                         const uint8_t* nan_left, const int32_t* cat_start,
                         const int32_t* cat_len, const uint32_t* cat_bits,
                         const int32_t* lin_start, const int32_t* lin_len,
                         const int32_t* lin_slot, const double* lin_coeff,
                         const double* lin_const,
                         const acc_t* leaves, const int32_t* target, const uint8_t* flush,
                         Py_ssize_t n_trees, acc_t* raw, Py_ssize_t lo, Py_ssize_t k,
                         acc_t* part) noexcept nogil:
    """Add every tree's leaf value to the block's ``m`` rows (general layout; plain slots).
    ``lin_start`` is NULL unless some leaf is linear (``lin_len[leaf] >= 0``)."""
    cdef Py_ssize_t t, i, col
    cdef int64_t node
    cdef size_t base, un
    cdef double x
    cdef uint8_t kd
    cdef bint go
    for t in range(n_trees):
        col = target[t]
        for i in range(m):
            node = roots[t]
            base = <size_t> i * S
            while node >= 0:
                un = <size_t> node
                x = <double> rows[base + <size_t> slot[un]]
                kd = kind[un]
                if kd == _LEQ:  # the common case first, without a branch on NaN
                    go = (x <= thr[un]) | ((x != x) & (nan_left[un] == 1))
                elif kd == _CAT:
                    go = _cat_left(cat_bits, cat_start[un], cat_len[un], x)
                elif x != x:
                    go = nan_left[un] == 1
                elif kd == _EQ:
                    go = x == thr[un]
                elif fabs(x) <= _ZERO:
                    go = nan_left[un] == 1
                else:
                    go = x <= thr[un]
                node = left[un] if go else right[un]
            if lin_start != NULL and lin_len[~node] >= 0:
                part[i * k + col] += <acc_t> _linear_leaf(
                    rows + base, lin_start, lin_len, lin_slot, lin_coeff, lin_const, ~node,
                    <double> leaves[~node])
            else:
                part[i * k + col] += leaves[~node]
        if flush[t]:
            _flush(part, raw, lo, m, k)


cdef inline const void* _addr(arr) except? NULL:
    # address of a C-contiguous array's first element (NULL when it is empty: never read then)
    cdef cnp.ndarray a = arr
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError("kernel arrays must be C-contiguous")
    return cnp.PyArray_DATA(a) if cnp.PyArray_SIZE(a) else NULL


cdef void _tree_blocks(bint perfect, bint thr32, const void** src, const size_t* stride,
                       const uint8_t* how, Py_ssize_t S, x_t* buf, const void** p,
                       const acc_t* leaves, const int32_t* target, const uint8_t* flush,
                       Py_ssize_t n_trees, int depth, acc_t* raw, Py_ssize_t n, Py_ssize_t k,
                       double avg, bint use_avg, const acc_t* base, int mode, double scale,
                       acc_t* out, Py_ssize_t n_out, long long* counter,
                       acc_t* part) noexcept nogil:
    # claims blocks of rows until none is left (see tree_worker)
    cdef Py_ssize_t n_blocks = (n + _TREE_BLOCK - 1) // _TREE_BLOCK
    cdef Py_ssize_t b = fe_fetch_add(counter, 1), lo, m
    while b < n_blocks:
        lo = b * _TREE_BLOCK
        m = min(n, lo + _TREE_BLOCK) - lo
        _load_block(buf, S, src, stride, how, lo, m)
        if perfect and thr32:
            _perfect_block(buf, S, m, <const node32*> p[0], leaves, target, flush, n_trees,
                           depth, raw, lo, k, part)
        elif perfect:
            _perfect_block(buf, S, m, <const node64*> p[0], leaves, target, flush, n_trees,
                           depth, raw, lo, k, part)
        else:
            _general_block(buf, S, m, <const int32_t*> p[0], <const int32_t*> p[1],
                           <const double*> p[2], <const int32_t*> p[3], <const int32_t*> p[4],
                           <const uint8_t*> p[5], <const uint8_t*> p[6], <const int32_t*> p[7],
                           <const int32_t*> p[8], <const uint32_t*> p[9],
                           <const int32_t*> p[10], <const int32_t*> p[11],
                           <const int32_t*> p[12], <const double*> p[13],
                           <const double*> p[14], leaves, target, flush, n_trees, raw, lo, k,
                           part)
        if mode != _RAW_ONLY:
            _finish_rows(raw, lo, lo + m, k, <acc_t> avg, use_avg, base, mode, <acc_t> scale,
                         out, n_out)
        b = fe_fetch_add(counter, 1)


def tree_worker(bint perfect, bint x32, source, cnp.ndarray slot_feature,
                cnp.ndarray slot_how, tuple nodes, cnp.ndarray leaves, cnp.ndarray target,
                cnp.ndarray flush, int depth, cnp.ndarray raw, double avg, bint use_avg,
                cnp.ndarray base, int mode, double scale, cnp.ndarray out,
                cnp.ndarray next_block):
    """One worker of a tree-ensemble prediction (see the module docstring).

    ``source``: the features, either a row-major ``(n, F)`` matrix or a tuple of ``F``
    columns of ``n`` values (float32 or float64 each; only the columns a slot names are read).
    Slot ``s`` of a block holds feature ``slot_feature[s]`` (int32) filled as ``slot_how[s]``
    (uint8, ``SLOT_*``), as float32 if ``x32`` else float64. ``leaves``: leaf values;
    ``target`` (int32): output column of each tree; ``flush`` (uint8): 1 after the last tree of
    a chunk; ``raw``: ``(n, K)`` zeros, the sums (float32 or float64, as ``leaves``, ``base``
    and ``out``). ``nodes``, perfect layout: one packed array of ``T * (2**depth - 1)`` nodes
    tree after tree (``node32`` when its itemsize is 8, else ``node64``; ``leaves``
    ``T * 2**depth``); general layout: ``(roots, slot, thr float64, left, right, kind,
    nan_left, cat_start, cat_len, cat_bits)`` (int32 but ``kind``/``nan_left`` uint8 and
    ``cat_bits`` uint32; ``roots`` is each tree's root, ``~leaf`` for a single-leaf tree),
    then, for LightGBM linear trees, ``(lin_start, lin_len, lin_slot, lin_coeff float64,
    lin_const float64)``: leaf ``l``'s linear terms are ``lin_start[l]`` to
    ``lin_start[l] + lin_len[l]`` (slot and coefficient), ``lin_len[l] = -1`` for a constant
    leaf (empty arrays, or omitted: no linear leaf).
    ``next_block``: int64, the shared block counter. Every array is C-contiguous and of these
    dtypes (the caller builds them; arrays are taken by address, which is what keeps a
    one-row prediction cheap). Unless ``mode == RAW_ONLY``, each block is then finished into
    ``out`` ``(n, n_out)``: ``raw / avg`` (if ``use_avg``) ``+ base``, then the transform.
    """
    cdef Py_ssize_t n = raw.shape[0], k = raw.shape[1], n_out = out.shape[1]
    if n == 0:
        return
    cdef Py_ssize_t S = slot_feature.shape[0], q, F = 0
    cdef const int32_t* feature = <const int32_t*> _addr(slot_feature)
    cdef const uint8_t* how0 = <const uint8_t*> _addr(slot_how)
    cdef const void* p[15]
    if len(nodes) > 15:
        raise ValueError("at most 15 node arrays")
    for q in range(15):
        p[q] = _addr(nodes[q]) if q < len(nodes) else NULL
    cdef bint thr32 = perfect and nodes[0].dtype.itemsize == 8
    cdef bint acc32 = raw.dtype.itemsize == 4
    cdef const void* lv = _addr(leaves)
    cdef const int32_t* tg = <const int32_t*> _addr(target)
    cdef const uint8_t* fl = <const uint8_t*> _addr(flush)
    cdef void* r = <void*> _addr(raw)
    cdef const void* bs = _addr(base)
    cdef void* o = <void*> _addr(out)
    cdef long long* counter = <long long*> _addr(next_block)
    cdef Py_ssize_t n_trees = target.shape[0]
    cdef cnp.ndarray col
    cdef const char* data = NULL
    cdef size_t width = 0
    cdef bint matrix = not isinstance(source, tuple)
    if matrix:
        col = source
        data = <const char*> _addr(col)
        F = col.shape[1]
        width = col.dtype.itemsize
    # per call, C memory: the slots' sources, the block and the chunk sums
    cdef const void** src = NULL
    cdef size_t* stride = NULL
    cdef uint8_t* how = NULL
    cdef void* buf = NULL
    cdef void* part = NULL
    try:
        src = <const void**> _zeroed(S, sizeof(void*))
        stride = <size_t*> _zeroed(S, sizeof(size_t))
        how = <uint8_t*> _zeroed(S, 1)
        buf = _zeroed(_TREE_BLOCK * S, 4 if x32 else 8)
        part = _zeroed(_TREE_BLOCK * k, 8)
        for q in range(S):
            if matrix:
                src[q] = data + <size_t> feature[q] * width
                stride[q] = F
            else:
                col = source[feature[q]]
                src[q] = _addr(col)
                stride[q] = 1
                width = col.dtype.itemsize
            how[q] = how0[q] | (_SRC32 if width == 4 else 0)
        with nogil:
            if x32 and acc32:
                _tree_blocks(perfect, thr32, src, stride, how, S, <float*> buf, p,
                             <const float*> lv, tg, fl, n_trees, depth, <float*> r, n, k, avg,
                             use_avg, <const float*> bs, mode, scale, <float*> o, n_out,
                             counter, <float*> part)
            elif x32:
                _tree_blocks(perfect, thr32, src, stride, how, S, <float*> buf, p,
                             <const double*> lv, tg, fl, n_trees, depth, <double*> r, n, k,
                             avg, use_avg, <const double*> bs, mode, scale, <double*> o, n_out,
                             counter, <double*> part)
            elif acc32:
                _tree_blocks(perfect, thr32, src, stride, how, S, <double*> buf, p,
                             <const float*> lv, tg, fl, n_trees, depth, <float*> r, n, k, avg,
                             use_avg, <const float*> bs, mode, scale, <float*> o, n_out,
                             counter, <float*> part)
            else:
                _tree_blocks(perfect, thr32, src, stride, how, S, <double*> buf, p,
                             <const double*> lv, tg, fl, n_trees, depth, <double*> r, n, k,
                             avg, use_avg, <const double*> bs, mode, scale, <double*> o, n_out,
                             counter, <double*> part)
    finally:
        free(src)
        free(stride)
        free(how)
        free(buf)
        free(part)


def post_worker(acc_t[:, ::1] raw, acc_t[:, ::1] out, int mode, double scale,
                int64_t[::1] next_block):
    """Transform ``mode`` of each row of ``raw`` ``(n, K)`` into ``out`` ``(n, K or 2)``."""
    cdef Py_ssize_t n = raw.shape[0], k = raw.shape[1], n_out = out.shape[1]
    cdef Py_ssize_t n_blocks = (n + _POST_BLOCK - 1) // _POST_BLOCK
    cdef long long* counter = <long long*> &next_block[0]
    cdef Py_ssize_t b, i
    if n == 0:
        return
    with nogil:
        b = fe_fetch_add(counter, 1)
        while b < n_blocks:
            for i in range(b * _POST_BLOCK, min(n, (b + 1) * _POST_BLOCK)):
                _post_row(&raw[i, 0], 1, &out[i, 0], 1, k, mode, <acc_t> scale)
            b = fe_fetch_add(counter, 1)


# The fused linear model (``linear_worker``), kept in its own file.
include "_linear_model.pxi"
