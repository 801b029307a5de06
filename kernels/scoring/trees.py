"""Tree-ensemble scoring kernels: flattened trees traversed over blocks of rows.

Two layouts, both filled by ``fastengage.scoring.trees``:

* **perfect** — every tree padded to a complete binary tree of depth ``D`` (a leaf above depth
  ``D`` becomes a chain of always-left nodes whose leaves repeat its value). Node ``j``'s
  children are ``2j+1``/``2j+2``, so a traversal is ``D`` steps of ``j = 2j + 2 - go_left`` with
  no pointer chasing and no data-dependent loop exit. Each tree is applied to a whole block of
  rows, one level at a time, so the ``BLOCK`` traversals are independent and the CPU overlaps
  their loads (instruction-level parallelism is what makes this faster than one row at a time).
  Only "``x <= t``, NaN goes to a stored side" nodes fit here; every comparison mode of ONNX and
  LightGBM that can be rewritten that way is rewritten at flattening time.
* **general** — explicit left/right child arrays (negative child ``c`` is leaf ``~c``) and a node
  kind for splits that cannot be rewritten: equality (ONNX ``BRANCH_EQ``/``NEQ``), LightGBM
  "zero is missing", and LightGBM categorical bitset splits.

Inputs ``X`` are row-major ``(n, F)`` float32 or float64; comparisons happen in float64, which
is exact for float32 values and float32 thresholds, so results equal a float32 comparison.
Leaf values are summed in the dtype of ``out`` (float32 for ONNX float models, as ONNX Runtime
does; float64 for LightGBM, as LightGBM does), tree after tree in model order.
"""
import numpy as np
from numba import njit, prange

from . import post as score_post
from ..common.config import NJIT
from ..common.launch import parallel_kernel

#: Rows per block: enough independent traversals to hide load latency, small enough that the
#: block's feature rows stay in L1.
BLOCK = 64

KIND_LEQ = 0        # go left iff x <= t (NaN: nan_left)
KIND_EQ = 1         # go left iff x == t (NaN: nan_left)
KIND_ZERO_LEQ = 2   # LightGBM missing type Zero: |x| <= kZeroThreshold or NaN -> nan_left, else x <= t
KIND_CAT = 3        # LightGBM categorical: left iff int(x) is in the node's bitset (see _cat_left)

#: LightGBM's ``kZeroThreshold`` is the float literal ``1e-35f``: 1.0000000180025095e-35 as a
#: double, not 1e-35 (values in between are "zero" for LightGBM).
_ZERO = float(np.float32(1e-35))
#: ``static_cast<int>(x)`` is in range iff ``-2**31 - 1 < x < 2**31``; LightGBM (x86-64) reads
#: any other value, NaN and +-inf included, as INT_MIN, a negative category that goes right.
_INT32_END = 2147483648.0


@njit(**NJIT)
def _flush(part, out, lo):
    """``out[lo + r] += part[r]``; ``part = 0``.

    Trees are summed in chunks, each from zero, and the chunk sums added to ``out`` in order:
    with one chunk this is the plain sequential sum, with several it reproduces ONNX Runtime's
    split of the trees over its threads bit for bit.
    """
    for r in range(part.shape[0]):
        for k in range(part.shape[1]):
            out[lo + r, k] += part[r, k]
            part[r, k] = 0


@njit(**NJIT)
def perfect_block(Xf, n_feat, lo, hi, feat, thr, nan_left, leaves, target, flush, depth, out):
    """Add every tree's leaf value to ``out[lo:hi]`` (perfect layout).

    All indexing is unsigned (``uint64``): Numba then skips the negative-index fix-up on every
    load, which is a large share of a three-load inner loop.

    Parameters
    ----------
    Xf : (n * F,) float32/float64, the row-major feature matrix flattened
    n_feat : int, F
    feat : (T * (2**depth - 1),) uint32, feature of each internal node, tree after tree
    thr : (T * (2**depth - 1),) float32 (exact float32 thresholds and float32 X) or float64;
        go left iff ``x <= thr``
    nan_left : (T * (2**depth - 1),) uint8, side taken by NaN
    leaves : (T * 2**depth,) out.dtype
    target : (T,) int32, output column each tree adds to
    flush : (T,) uint8, 1 after the last tree of a chunk (see ``_flush``)
    out : (n, K) float32/float64   # OUT (accumulated)
    """
    U = np.uint64
    n_int = U((1 << depth) - 1)
    n_leaf = U(1 << depth)
    F = U(n_feat)
    m = hi - lo
    idx = np.zeros(m, np.uint64)
    part = np.zeros_like(out[lo:hi])
    for t in range(target.shape[0]):
        tb = U(t) * n_int
        for r in range(m):
            idx[r] = U(0)
        for _ in range(depth):
            for r in range(m):
                j = idx[r]
                x = Xf[U(lo + r) * F + U(feat[tb + j])]
                # Branch-free: NaN fails "<=" and then takes the stored side; a branch on
                # NaN here would be mispredicted on every missing value.
                go = U(x <= thr[tb + j]) | (U(x != x) & U(nan_left[tb + j]))
                idx[r] = U(2) * j + U(2) - go
        k = target[t]
        lb = U(t) * n_leaf - n_int
        for r in range(m):
            part[r, k] += leaves[lb + idx[r]]
        if flush[t]:
            _flush(part, out, lo)


@parallel_kernel
def perfect_parallel(Xf, n_feat, feat, thr, nan_left, leaves, target, flush, depth, out):
    """:func:`perfect_block` over all rows, blocks spread over threads (``out`` pre-zeroed)."""
    n = out.shape[0]
    nb = (n + BLOCK - 1) // BLOCK
    for b in prange(nb):
        lo = b * BLOCK
        hi = min(n, lo + BLOCK)
        perfect_block(Xf, n_feat, lo, hi, feat, thr, nan_left, leaves, target, flush, depth, out)


@njit(**NJIT)
def perfect_serial(Xf, n_feat, feat, thr, nan_left, leaves, target, flush, depth, out):
    """Serial :func:`perfect_parallel`, for a few rows (no thread-pool launch)."""
    n = out.shape[0]
    for lo in range(0, n, BLOCK):
        perfect_block(Xf, n_feat, lo, min(n, lo + BLOCK), feat, thr, nan_left, leaves, target,
                      flush, depth, out)


@njit(**NJIT)
def _in_bitset(bits, start, length, v):
    word = v >> 5
    if word >= length:
        return False
    return (bits[start + word] >> np.uint32(v & 31)) & np.uint32(1) == np.uint32(1)


@njit(**NJIT)
def _cat_left(bits, start, length, x):
    """LightGBM's ``CategoricalDecision``: ``i = static_cast<int>(x)``; NaN, out-of-int32 and
    ``i < 0`` go right, otherwise left iff bit ``i`` is set. ``trunc(x) >= 0  <=>  x > -1``, so
    -0.5 is category 0, as in LightGBM; NaN fails both comparisons."""
    if x > -1.0 and x < _INT32_END:
        return _in_bitset(bits, start, length, np.int64(x))
    return False


@njit(**NJIT)
def general_block(X, lo, hi, roots, feat, thr, left, right, kind, nan_left,
                  cat_start, cat_len, cat_bits, leaves, target, flush, out):
    """Add every tree's leaf value to ``out[lo:hi]`` (general layout).

    Parameters
    ----------
    roots : (T,) int32, root node of each tree (``~leaf`` for a single-leaf tree)
    feat, left, right : (n_nodes,) int32; a negative child ``c`` is leaf ``~c``
    thr : (n_nodes,) float64
    kind, nan_left : (n_nodes,) uint8 (``KIND_*``)
    cat_start, cat_len : (n_nodes,) int32, slice of ``cat_bits`` (uint32) for categorical nodes
    leaves : (n_leaves,) out.dtype
    target : (T,) int32
    flush : (T,) uint8
    out : (n, K)   # OUT (accumulated)
    """
    U = np.uint64
    n_feat = U(X.shape[1])
    Xf = X.reshape(-1)
    part = np.zeros_like(out[lo:hi])
    for t in range(roots.shape[0]):
        k = target[t]
        root = np.int64(roots[t])
        for i in range(lo, hi):
            node = root
            base = U(i) * n_feat
            while node >= 0:
                un = U(node)
                x = np.float64(Xf[base + U(feat[un])])
                kd = kind[un]
                if kd == KIND_LEQ:  # the common case first, without a branch on NaN
                    go = (x <= thr[un]) | ((x != x) & (nan_left[un] == 1))
                elif kd == KIND_CAT:
                    go = _cat_left(cat_bits, cat_start[un], cat_len[un], x)
                elif x != x:
                    go = nan_left[un] == 1
                elif kd == KIND_EQ:
                    go = x == thr[un]
                elif abs(x) <= _ZERO:
                    go = nan_left[un] == 1
                else:
                    go = x <= thr[un]
                node = np.int64(left[un]) if go else np.int64(right[un])
            part[i - lo, k] += leaves[U(~node)]
        if flush[t]:
            _flush(part, out, lo)


@parallel_kernel
def general_parallel(X, roots, feat, thr, left, right, kind, nan_left,
                     cat_start, cat_len, cat_bits, leaves, target, flush, out):
    """:func:`general_block` over all rows, blocks spread over threads (``out`` pre-zeroed)."""
    n = X.shape[0]
    nb = (n + BLOCK - 1) // BLOCK
    for b in prange(nb):
        lo = b * BLOCK
        general_block(X, lo, min(n, lo + BLOCK), roots, feat, thr, left, right, kind, nan_left,
                      cat_start, cat_len, cat_bits, leaves, target, flush, out)


@njit(**NJIT)
def general_serial(X, roots, feat, thr, left, right, kind, nan_left,
                   cat_start, cat_len, cat_bits, leaves, target, flush, out):
    """Serial :func:`general_parallel`."""
    n = X.shape[0]
    for lo in range(0, n, BLOCK):
        general_block(X, lo, min(n, lo + BLOCK), roots, feat, thr, left, right, kind, nan_left,
                      cat_start, cat_len, cat_bits, leaves, target, flush, out)


@njit(**NJIT)
def _finish(raw, inv_avg, use_avg, base, mode, one, scale, out):
    """Averaging, base values and post-transform of ``raw`` (in its dtype) into ``out``."""
    for i in range(raw.shape[0]):
        for k in range(raw.shape[1]):
            v = raw[i, k]
            if use_avg:
                v = v / inv_avg
            raw[i, k] = v + base[k]
    if mode == score_post.NONE:
        for i in range(raw.shape[0]):
            for k in range(raw.shape[1]):
                out[i, k] = raw[i, k]
    else:
        for i in range(raw.shape[0]):
            score_post._row(raw, out, i, mode, one, scale)


@njit(**NJIT)
def perfect_predict_serial(Xf, n_feat, feat, thr, nan_left, leaves, target, flush, depth,
                           avg, use_avg, base, mode, one, scale, raw, out):
    """Whole prediction of a few rows in one call (one dispatch: the single-row latency path).

    ``raw`` (n, K) zeros in the accumulation dtype; ``out`` (n, n_out) in the same dtype.
    """
    perfect_serial(Xf, n_feat, feat, thr, nan_left, leaves, target, flush, depth, raw)
    _finish(raw, avg, use_avg, base, mode, one, scale, out)


@njit(**NJIT)
def general_predict_serial(X, roots, feat, thr, left, right, kind, nan_left, cat_start, cat_len,
                           cat_bits, leaves, target, flush, avg, use_avg, base, mode, one, scale,
                           raw, out):
    """:func:`perfect_predict_serial` for the general layout."""
    general_serial(X, roots, feat, thr, left, right, kind, nan_left, cat_start, cat_len, cat_bits,
                   leaves, target, flush, raw)
    _finish(raw, avg, use_avg, base, mode, one, scale, out)
