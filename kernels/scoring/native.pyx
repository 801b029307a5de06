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

Layouts (filled by ``fastengage.scoring.trees``):

* **perfect** -- every tree padded to a complete binary tree of depth ``D``: node ``j``'s
  children are ``2j+1``/``2j+2``, so a traversal is ``D`` steps of ``j = 2j + 2 - go_left``, no
  pointer chasing, no data-dependent exit. Each tree is applied to a whole block of rows one
  level at a time, so the block's traversals are independent loads the CPU overlaps. Only
  "``x <= t``, NaN goes to a stored side" nodes fit.
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
from libc.math cimport exp, expf, fabs
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.stdlib cimport calloc, free, malloc

cimport numpy as cnp

cnp.import_array()

cdef extern from *:
    """
    static inline long long fe_score_fetch_add(long long *p, long long v) {
        return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
    }
    """
    # atomically: old = *p; *p += v; return old (workers claiming blocks of rows)
    long long fe_score_fetch_add(long long *p, long long v) nogil

ctypedef fused x_t:      # features
    float
    double

ctypedef fused thr_t:    # thresholds of the perfect layout
    float
    double

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

# Post-transforms of raw scores (the enum for the kernels, the same numbers for Python below)
cdef enum:
    _NONE = 0
    _LOGISTIC = 1
    _SOFTMAX = 2
    _SOFTMAX_ZERO = 3
    _SIGMOID = 4
    _EXP = 5
    _PAIR_LOGISTIC = 10
    _PAIR_NEG = 11
    _PAIR_ONE_MINUS = 12
    _PAIR_SIGMOID = 13
    _PAIR_PLAIN_LOGISTIC = 14
    _RAW_ONLY = -1

NONE = _NONE
LOGISTIC = _LOGISTIC          # ONNX Runtime logistic ``v = 1/(1+exp(-|s|)); s < 0 ? 1-v : v``
SOFTMAX = _SOFTMAX            # max-shifted softmax over the row
SOFTMAX_ZERO = _SOFTMAX_ZERO  # ONNX SOFTMAX_ZERO: exact zeros stay zero
SIGMOID = _SIGMOID            # 1 / (1 + exp(-scale * s)) per column (LightGBM; linear: scale 1)
EXP = _EXP                    # LightGBM poisson/gamma/tweedie
PAIR_LOGISTIC = _PAIR_LOGISTIC      # one score s -> [logistic(-s), logistic(s)] (ONNX binary)
PAIR_NEG = _PAIR_NEG                # s -> [-s, s]
PAIR_ONE_MINUS = _PAIR_ONE_MINUS    # s -> [1 - s, s] (ONNX binary, all weights positive)
PAIR_SIGMOID = _PAIR_SIGMOID        # p = 1/(1+exp(-scale s)) -> [1 - p, p] (LightGBM binary)
PAIR_PLAIN_LOGISTIC = _PAIR_PLAIN_LOGISTIC  # z -> [1/(1+exp(z)), 1/(1+exp(-z))] (linear 2-class)
#: Tree workers only: sums without averaging, base values or a transform.
RAW_ONLY = _RAW_ONLY

#: LightGBM's ``kZeroThreshold`` is the float literal ``1e-35f``: 1.0000000180025095e-35 as a
#: double, not 1e-35 (values in between are "zero" for LightGBM).
ZERO = <double> (<float> 1e-35)
cdef double _ZERO = ZERO
DEF _INT32_END = 2147483648.0


cdef inline acc_t _exp(acc_t v) noexcept nogil:
    if acc_t is float:
        return expf(v)
    else:
        return exp(v)


cdef inline acc_t _logistic(acc_t s) noexcept nogil:
    # (the magnitude cast back to acc_t, or Cython would pick the double _exp for float32)
    cdef acc_t mag = <acc_t> fabs(s)
    cdef acc_t v = (<acc_t> 1) / ((<acc_t> 1) + _exp(-mag))
    return (<acc_t> 1) - v if s < 0 else v


cdef void _post_row(acc_t* src, Py_ssize_t ss, acc_t* dst, Py_ssize_t ds, Py_ssize_t k,
                    int mode, acc_t scale) noexcept nogil:
    """Transform ``mode`` of one row: ``k`` scores at ``src[j * ss]`` into ``dst[j * ds]``
    (``dst`` may be ``src``). The same arithmetic for every caller, so a row's result never
    depends on which kernel or block computed it."""
    cdef Py_ssize_t j
    cdef acc_t one = 1, m, s, e, total, p
    if mode == _NONE:
        for j in range(k):
            dst[j * ds] = src[j * ss]
    elif mode == _LOGISTIC:
        for j in range(k):
            dst[j * ds] = _logistic(src[j * ss])
    elif mode == _SOFTMAX or mode == _SOFTMAX_ZERO:
        m = src[0]
        for j in range(1, k):
            if src[j * ss] > m:
                m = src[j * ss]
        total = 0
        for j in range(k):
            s = src[j * ss]
            if mode == _SOFTMAX_ZERO and s == 0:
                dst[j * ds] = s * _exp(-m)
            else:
                e = _exp(s - m)
                dst[j * ds] = e
                total = total + e
        for j in range(k):
            dst[j * ds] = dst[j * ds] / total
    elif mode == _SIGMOID:
        for j in range(k):
            dst[j * ds] = one / (one + _exp(-scale * src[j * ss]))
    elif mode == _EXP:
        for j in range(k):
            dst[j * ds] = _exp(src[j * ss])
    else:
        s = src[0]
        if mode == _PAIR_LOGISTIC:
            dst[0] = _logistic(-s)
            dst[ds] = _logistic(s)
        elif mode == _PAIR_NEG:
            dst[0] = -s
            dst[ds] = s
        elif mode == _PAIR_ONE_MINUS:
            dst[0] = one - s
            dst[ds] = s
        elif mode == _PAIR_PLAIN_LOGISTIC:
            dst[0] = one / (one + _exp(s))
            dst[ds] = one / (one + _exp(-s))
        else:  # PAIR_SIGMOID
            p = one / (one + _exp(-scale * s))
            dst[0] = one - p
            dst[ds] = p


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


cdef inline void _flush(acc_t* part, acc_t* raw, Py_ssize_t lo, Py_ssize_t m,
                        Py_ssize_t k) noexcept nogil:
    # out[lo + r] += part[r]; part = 0 (a chunk of trees summed from zero, added in order)
    cdef Py_ssize_t q
    for q in range(m * k):
        raw[lo * k + q] += part[q]
        part[q] = 0


cdef inline void _step(const x_t* rows, size_t F, const uint32_t* tf, const thr_t* tt,
                       const uint8_t* tn, size_t* idx, Py_ssize_t r) noexcept nogil:
    # One level of one row's traversal. Branch-free: NaN fails "<=" and then takes the stored
    # side; a branch on NaN here would be mispredicted on every missing value.
    cdef size_t j = idx[r]
    cdef x_t x = rows[<size_t> r * F + tf[j]]
    idx[r] = 2 * j + 2 - ((<size_t> (x <= tt[j])) | ((<size_t> (x != x)) & tn[j]))


cdef void _perfect_block(const x_t* Xf, size_t F, Py_ssize_t lo, Py_ssize_t hi,
                         const uint32_t* feat, const thr_t* thr, const uint8_t* nan_left,
                         const acc_t* leaves, const int32_t* target, const uint8_t* flush,
                         Py_ssize_t n_trees, int depth, acc_t* raw, Py_ssize_t k,
                         acc_t* part) noexcept nogil:
    """Add every tree's leaf value to rows ``lo:hi`` of ``raw`` (perfect layout); unsigned
    indexing throughout (no sign fix-ups in a three-load inner loop)."""
    cdef size_t n_int = (<size_t> 1 << depth) - 1, n_leaf = <size_t> 1 << depth
    cdef Py_ssize_t m = hi - lo, r, t, level, col
    cdef const x_t* rows = Xf + <size_t> lo * F
    cdef const uint32_t* tf
    cdef const thr_t* tt
    cdef const uint8_t* tn
    cdef const acc_t* tl
    # on the stack: no other pointer can alias it, so the compiler keeps the traversal's
    # loads and stores free of reloads
    cdef size_t idx[_TREE_BLOCK]
    for t in range(n_trees):
        tf = feat + <size_t> t * n_int
        tt = thr + <size_t> t * n_int
        tn = nan_left + <size_t> t * n_int
        for r in range(m):
            idx[r] = 0
        for level in range(depth):
            # four rows per step: four independent load chains in flight (GCC does not
            # unroll this by itself; Numba's LLVM did, ~15% on this kernel)
            r = 0
            while r + 4 <= m:
                _step(rows, F, tf, tt, tn, idx, r)
                _step(rows, F, tf, tt, tn, idx, r + 1)
                _step(rows, F, tf, tt, tn, idx, r + 2)
                _step(rows, F, tf, tt, tn, idx, r + 3)
                r += 4
            while r < m:
                _step(rows, F, tf, tt, tn, idx, r)
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


cdef void _general_block(const x_t* Xf, size_t F, Py_ssize_t lo, Py_ssize_t hi,
                         const int32_t* roots, const int32_t* feat, const double* thr,
                         const int32_t* left, const int32_t* right, const uint8_t* kind,
                         const uint8_t* nan_left, const int32_t* cat_start,
                         const int32_t* cat_len, const uint32_t* cat_bits,
                         const acc_t* leaves, const int32_t* target, const uint8_t* flush,
                         Py_ssize_t n_trees, acc_t* raw, Py_ssize_t k,
                         acc_t* part) noexcept nogil:
    """Add every tree's leaf value to rows ``lo:hi`` of ``raw`` (general layout)."""
    cdef Py_ssize_t t, i, col
    cdef int64_t node
    cdef size_t base, un
    cdef double x
    cdef uint8_t kd
    cdef bint go
    for t in range(n_trees):
        col = target[t]
        for i in range(lo, hi):
            node = roots[t]
            base = <size_t> i * F
            while node >= 0:
                un = <size_t> node
                x = <double> Xf[base + <size_t> feat[un]]
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
            part[(i - lo) * k + col] += leaves[~node]
        if flush[t]:
            _flush(part, raw, lo, hi - lo, k)


cdef void* _zeroed(Py_ssize_t count, size_t size) except NULL:
    cdef void* p = calloc(max(count, 1), size)
    if p == NULL:
        raise MemoryError()
    return p


cdef inline const void* _addr(arr) except? NULL:
    # address of a C-contiguous array's first element (NULL when it is empty: never read then)
    cdef cnp.ndarray a = arr
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError("kernel arrays must be C-contiguous")
    return cnp.PyArray_DATA(a) if cnp.PyArray_SIZE(a) else NULL


cdef void _tree_blocks(bint perfect, bint thr32, const x_t* Xf, size_t n_feat,
                       const void** p, const acc_t* leaves, const int32_t* target,
                       const uint8_t* flush, Py_ssize_t n_trees, int depth, acc_t* raw,
                       Py_ssize_t n, Py_ssize_t k, double avg, bint use_avg, const acc_t* base,
                       int mode, double scale, acc_t* out, Py_ssize_t n_out,
                       long long* counter, acc_t* part) noexcept nogil:
    # claims blocks of rows until none is left (see tree_worker)
    cdef Py_ssize_t n_blocks = (n + _TREE_BLOCK - 1) // _TREE_BLOCK
    cdef Py_ssize_t b = fe_score_fetch_add(counter, 1), lo, hi
    while b < n_blocks:
        lo = b * _TREE_BLOCK
        hi = min(n, lo + _TREE_BLOCK)
        if perfect and thr32:
            _perfect_block(Xf, n_feat, lo, hi, <const uint32_t*> p[0], <const float*> p[1],
                           <const uint8_t*> p[2], leaves, target, flush, n_trees, depth, raw,
                           k, part)
        elif perfect:
            _perfect_block(Xf, n_feat, lo, hi, <const uint32_t*> p[0], <const double*> p[1],
                           <const uint8_t*> p[2], leaves, target, flush, n_trees, depth, raw,
                           k, part)
        else:
            _general_block(Xf, n_feat, lo, hi, <const int32_t*> p[0], <const int32_t*> p[1],
                           <const double*> p[2], <const int32_t*> p[3], <const int32_t*> p[4],
                           <const uint8_t*> p[5], <const uint8_t*> p[6], <const int32_t*> p[7],
                           <const int32_t*> p[8], <const uint32_t*> p[9], leaves, target,
                           flush, n_trees, raw, k, part)
        if mode != _RAW_ONLY:
            _finish_rows(raw, lo, hi, k, <acc_t> avg, use_avg, base, mode, <acc_t> scale, out,
                         n_out)
        b = fe_score_fetch_add(counter, 1)


def tree_worker(bint perfect, cnp.ndarray Xf, Py_ssize_t n_feat, tuple nodes,
                cnp.ndarray leaves, cnp.ndarray target, cnp.ndarray flush, int depth,
                cnp.ndarray raw, double avg, bint use_avg, cnp.ndarray base, int mode,
                double scale, cnp.ndarray out, cnp.ndarray next_block):
    """One worker of a tree-ensemble prediction (see the module docstring).

    ``Xf``: the row-major ``(n, F)`` features flattened (float32 or float64); ``leaves``: leaf
    values; ``target`` (int32): output column of each tree; ``flush`` (uint8): 1 after the last
    tree of a chunk; ``raw``: ``(n, K)`` zeros, the sums (float32 or float64, as ``leaves``,
    ``base`` and ``out``). ``nodes``, perfect layout: ``(feat uint32, thr float32 or float64,
    nan_left uint8)``, ``T * (2**depth - 1)`` internal nodes tree after tree (``leaves``
    ``T * 2**depth``); general layout: ``(roots, feat, thr float64, left, right, kind,
    nan_left, cat_start, cat_len, cat_bits)`` (int32 but ``kind``/``nan_left`` uint8 and
    ``cat_bits`` uint32; ``roots`` is each tree's root, ``~leaf`` for a single-leaf tree).
    ``next_block``: int64, the shared block counter. Every array is C-contiguous and of these
    dtypes (the caller builds them; arrays are taken by address, which is what keeps a
    one-row prediction cheap). Unless ``mode == RAW_ONLY``, each block is then finished into
    ``out`` ``(n, n_out)``: ``raw / avg`` (if ``use_avg``) ``+ base``, then the transform.
    """
    cdef Py_ssize_t n = raw.shape[0], k = raw.shape[1], n_out = out.shape[1]
    if n == 0:
        return
    cdef const void* p[10]
    cdef Py_ssize_t q
    for q in range(len(nodes)):
        p[q] = _addr(nodes[q])
    cdef bint thr32 = perfect and nodes[1].dtype.itemsize == 4
    cdef bint x32 = Xf.dtype.itemsize == 4, acc32 = raw.dtype.itemsize == 4
    cdef const void* x = _addr(Xf)
    cdef const void* lv = _addr(leaves)
    cdef const int32_t* tg = <const int32_t*> _addr(target)
    cdef const uint8_t* fl = <const uint8_t*> _addr(flush)
    cdef void* r = <void*> _addr(raw)
    cdef const void* bs = _addr(base)
    cdef void* o = <void*> _addr(out)
    cdef long long* counter = <long long*> _addr(next_block)
    cdef Py_ssize_t n_trees = target.shape[0]
    cdef void* part = _zeroed(_TREE_BLOCK * k, 8)
    with nogil:
        if x32 and acc32:
            _tree_blocks(perfect, thr32, <const float*> x, n_feat, p, <const float*> lv, tg, fl,
                         n_trees, depth, <float*> r, n, k, avg, use_avg, <const float*> bs,
                         mode, scale, <float*> o, n_out, counter, <float*> part)
        elif x32:
            _tree_blocks(perfect, thr32, <const float*> x, n_feat, p, <const double*> lv, tg,
                         fl, n_trees, depth, <double*> r, n, k, avg, use_avg,
                         <const double*> bs, mode, scale, <double*> o, n_out, counter,
                         <double*> part)
        elif acc32:
            _tree_blocks(perfect, thr32, <const double*> x, n_feat, p, <const float*> lv, tg,
                         fl, n_trees, depth, <float*> r, n, k, avg, use_avg, <const float*> bs,
                         mode, scale, <float*> o, n_out, counter, <float*> part)
        else:
            _tree_blocks(perfect, thr32, <const double*> x, n_feat, p, <const double*> lv, tg,
                         fl, n_trees, depth, <double*> r, n, k, avg, use_avg,
                         <const double*> bs, mode, scale, <double*> o, n_out, counter,
                         <double*> part)
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
        b = fe_score_fetch_add(counter, 1)
        while b < n_blocks:
            for i in range(b * _POST_BLOCK, min(n, (b + 1) * _POST_BLOCK)):
                _post_row(&raw[i, 0], 1, &out[i, 0], 1, k, mode, <acc_t> scale)
            b = fe_score_fetch_add(counter, 1)


def linear_worker(tuple cols, const double[:, ::1] coef, const double[::1] intercept, int mode,
                  double[:, ::1] out, int64_t[::1] next_block):
    """One worker of the fused linear model: ``z[k, i] = b[k] + sum_j w[k, j] x_j[i]``, then
    the transform ``mode`` over the ``K`` outputs, for blocks of rows.

    ``cols``: F contiguous float64 columns of n rows (no ``n x F`` matrix is built); ``out``
    ``(n_out, n)``, output-major (each score column contiguous). The block's running sums stay
    in L1 while each column's slice streams through once.
    """
    cdef Py_ssize_t n_f = len(cols), n_k = coef.shape[0], n = out.shape[1]
    cdef Py_ssize_t n_blocks = (n + _LINEAR_BLOCK - 1) // _LINEAR_BLOCK
    cdef long long* counter = <long long*> &next_block[0]
    cdef Py_ssize_t b, lo, m, kk, j, i
    cdef const double[::1] col
    cdef double w
    cdef const double* c
    cdef double* a
    if n == 0:
        return
    cdef const double** ptrs = <const double**> malloc(max(n_f, 1) * sizeof(double*))
    cdef double* acc = <double*> malloc(n_k * _LINEAR_BLOCK * sizeof(double))
    if ptrs == NULL or acc == NULL:
        free(ptrs)
        free(acc)
        raise MemoryError()
    for j in range(n_f):
        col = cols[j]
        ptrs[j] = &col[0]
    with nogil:
        b = fe_score_fetch_add(counter, 1)
        while b < n_blocks:
            lo = b * _LINEAR_BLOCK
            m = min(n, lo + _LINEAR_BLOCK) - lo
            for kk in range(n_k):
                a = acc + kk * _LINEAR_BLOCK
                for i in range(m):
                    a[i] = intercept[kk]
                for j in range(n_f):
                    w = coef[kk, j]
                    c = ptrs[j] + lo
                    for i in range(m):
                        a[i] = a[i] + w * c[i]
            for i in range(m):
                _post_row(acc + i, _LINEAR_BLOCK, &out[0, lo + i], n, n_k, mode, 1.0)
            b = fe_score_fetch_add(counter, 1)
    free(ptrs)
    free(acc)
