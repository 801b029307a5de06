"""Tree ensembles flattened into arrays for the native kernels (``kernels/scoring/native.pyx``).

Both ONNX ``TreeEnsembleClassifier``/``TreeEnsembleRegressor`` (ai.onnx.ml) and LightGBM text
models are first brought to one canonical form, :class:`Tree`: internal nodes with a feature, a
float64 threshold, a split kind, the side NaN takes, and left/right children (``~leaf`` for a
leaf), plus one leaf value per leaf and the output column the tree adds to. Every ONNX mode is
rewritten to "go left iff ``x <= t``" where it can be:

* ``BRANCH_LEQ``: as is;  ``BRANCH_LT``: ``x < t  <=>  x <= nextafter(t, -inf)`` (exact for
  every double ``x``);  ``BRANCH_GT``/``BRANCH_GTE``: the negation of ``LEQ``/``LT`` with the
  children swapped;  ``BRANCH_EQ``/``BRANCH_NEQ``: an equality node (general layout only).
* NaN follows ONNX Runtime: it takes the *true* branch iff ``missing_value_tracks_true`` is set
  or the mode is ``BRANCH_NEQ`` (``NaN != t`` is true in C), and the false branch otherwise.

:class:`TreeEnsemble` then picks the layout: the branch-free "perfect" layout when every split is
a ``<=`` split and trees are shallow, the general one otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np

from ..errors import ModelFormatError
from ..kernels.common import launch
from ..kernels.scoring import native as score_native
from ._columns import feature_arrays
from ._tree_checks import structure_problem
from .model import Model


__all__ = ["Tree", "TreeEnsemble", "TreeModel", "structure_problem"]

#: Deepest tree padded to the perfect layout (2**D leaves per tree). Branch-free traversal of
#: the padded tree beats pointer chasing up to here (LightGBM, 100 trees: 0.45 s vs 1.34 s at
#: depth 8, 0.82 s vs 1.27 s at depth 12, 200k rows, one thread).
MAX_PERFECT_DEPTH = 12
#: Padded node budget of the perfect layout over the whole ensemble.
MAX_PERFECT_NODES = 1 << 22


@dataclass
class Tree:
    """One tree in canonical form (internal node 0 is the root; a tree may be a single leaf).

    Attributes
    ----------
    feature : (m,) int32
    threshold : (m,) float64
    kind : (m,) uint8, ``score_native.KIND_*``
    nan_left : (m,) uint8
    left, right : (m,) int32; ``c >= 0`` is internal node ``c``, ``c < 0`` is leaf ``~c``
    leaf_value : (L,) float64
    target : int, output column this tree adds to
    cat_bits : dict of node -> uint32 bitset words (LightGBM categorical nodes), else empty
    source : int, index of the model tree this came from (-1: its position)
    linear : LightGBM linear tree leaves or None: ``(const (L,), count (L,) int, features,
        coeff)``, leaf ``l`` adding ``const[l] + sum coeff * x`` over its ``count[l]`` terms
        (``features``/``coeff`` leaf after leaf), or ``leaf_value[l]`` if one x is NaN
    """

    feature: np.ndarray
    threshold: np.ndarray
    kind: np.ndarray
    nan_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf_value: np.ndarray
    target: int
    cat_bits: dict = field(default_factory=dict)
    source: int = -1  # an ONNX tree voting for K outputs becomes K trees with the same source
    linear: tuple | None = None

    @property
    def n_internal(self) -> int:
        return int(self.feature.shape[0])

    def problem(self, n_features: int, n_raw: int) -> str | None:
        """Why the kernels cannot safely traverse this tree, or None (see ``structure_problem``)."""
        m = self.n_internal
        for name in ("threshold", "kind", "nan_left", "left", "right"):
            if np.shape(getattr(self, name)) != (m,):
                return f"{name} has shape {np.shape(getattr(self, name))}, expected ({m},)"
        if np.ndim(self.leaf_value) != 1:
            return "leaf values are not a vector"
        bad = structure_problem(self.left, self.right, int(self.leaf_value.shape[0]))
        if bad:
            return bad
        if m and (self.feature.min() < 0 or self.feature.max() >= n_features):
            return f"a split uses a feature outside 0..{n_features - 1}"
        if not 0 <= int(self.target) < n_raw:
            return f"output column {self.target} outside 0..{n_raw - 1}"
        if m and (self.kind.max() > score_native.KIND_CAT or self.nan_left.max() > 1):
            return "unknown split kind"
        cat_nodes = set(np.flatnonzero(self.kind == score_native.KIND_CAT).tolist())
        if cat_nodes != set(self.cat_bits):
            return "categorical splits and bitsets do not match"
        if self.linear is not None:
            const, count, feats, coeff = self.linear
            if (np.shape(const) != np.shape(self.leaf_value) or np.shape(count) != np.shape(const)
                    or np.min(count, initial=0) < 0 or np.shape(feats) != (int(np.sum(count)),)
                    or np.shape(coeff) != np.shape(feats)
                    or np.any((feats < 0) | (feats >= n_features))):
                return "linear leaves do not match the tree or the features"
        return None

    def depth(self) -> int:
        if self.n_internal == 0:
            return 0
        depth = np.zeros(self.n_internal, np.int64)
        best = 1
        # Children always come after their parent in a pre-order numbering; do not assume it.
        order = [0]
        depth[0] = 1
        while order:
            node = order.pop()
            for child in (self.left[node], self.right[node]):
                if child >= 0:
                    depth[child] = depth[node] + 1
                    best = max(best, int(depth[child]))
                    order.append(int(child))
        return best


class TreeEnsemble:
    """A flattened ensemble and its scoring: raw sums, base values, post-transform.

    Parameters
    ----------
    trees : list of Tree
        In model order; the per-output sums follow this order exactly.
    n_features : int
    n_raw : int
        Number of raw score columns the trees add to.
    acc_dtype : numpy dtype
        float32 (ONNX float models, as ONNX Runtime sums) or float64 (LightGBM).
    input_dtype : numpy dtype
        dtype the features are rounded to before comparing (float32 for ONNX float inputs).
    base : (n_raw,) array or None
        Added after the sums (``average`` divides the sums by the number of trees first).
    post : int
        ``score_native`` mode; ``scale`` its scale (LightGBM sigmoid).
    layout : "auto", "perfect" or "general"
    """

    def __init__(self, trees: list[Tree], n_features: int, n_raw: int, *, acc_dtype=np.float64,
                 input_dtype=np.float64, base=None, average_over: int = 0,
                 post: int = score_native.NONE, scale: float = 1.0, layout: str = "auto",
                 n_source: int | None = None, out_dtype=None):
        self.trees = trees
        self.n_features = int(n_features)
        self.n_raw = int(n_raw)
        for i, tree in enumerate(trees):
            bad = tree.problem(self.n_features, self.n_raw)
            if bad:
                raise ModelFormatError(f"tree {tree.source if tree.source >= 0 else i}: {bad}")
        self.acc_dtype = np.dtype(acc_dtype)
        self.input_dtype = np.dtype(input_dtype)
        self.base = None if base is None else np.asarray(base, dtype=self.acc_dtype)
        self.average_over = int(average_over)
        self.post = int(post)
        self.scale = float(scale)
        self.n_out = 2 if self.post >= score_native.PAIR_LOGISTIC else self.n_raw
        self.depth = max((t.depth() for t in trees), default=0)
        self._flush_cache = {}
        self.n_source = n_source
        #: dtype of the scores; ONNX tree operators output float32 even when they sum in double
        self.out_dtype = np.dtype(out_dtype) if out_dtype is not None else self.acc_dtype
        simple = all(bool(np.all(t.kind == score_native.KIND_LEQ)) and t.linear is None
                     for t in trees)
        fits = self.depth <= MAX_PERFECT_DEPTH and len(trees) * (2 << self.depth) <= MAX_PERFECT_NODES
        if layout == "auto":
            layout = "perfect" if simple and fits else "general"
        if layout == "perfect" and not simple:
            raise ValueError("the perfect layout needs '<=' splits only")
        self.layout = layout
        if layout == "perfect":
            self._build_perfect()
        else:
            self._build_general()

    @property
    def n_source_trees(self) -> int:
        """Trees of the original model (ONNX trees may vote for several outputs, or none)."""
        if self.n_source is not None:
            return self.n_source
        return len({t.source if t.source >= 0 else i for i, t in enumerate(self.trees)})

    # -- layouts -------------------------------------------------------------------------------

    def _build_perfect(self) -> None:
        depth = self.depth
        n_int = (1 << depth) - 1
        n_trees = len(self.trees)
        feat = np.zeros((n_trees, n_int), np.int64)
        thr = np.full((n_trees, n_int), np.inf)
        nan_left = np.zeros((n_trees, n_int), np.uint8)
        real = np.zeros((n_trees, n_int), bool)
        leaves = np.zeros((n_trees, 1 << depth), self.acc_dtype)
        for t, tree in enumerate(self.trees):
            # Level by level: ``cur`` holds, for each position of the level, the canonical node
            # there (>= 0 internal, < 0 a leaf ~l). A leaf met above the last level is pushed
            # down a chain of padding nodes, its value copied to every leaf below it (so the
            # side a padding node sends a row to does not matter).
            cur = np.array([0 if tree.n_internal else -1], np.int64)
            for level in range(depth):
                pos = (1 << level) - 1 + np.arange(cur.size)
                inner = cur >= 0
                idx = cur[inner]
                feat[t, pos[inner]] = tree.feature[idx]
                thr[t, pos[inner]] = tree.threshold[idx]
                nan_left[t, pos[inner]] = tree.nan_left[idx]
                real[t, pos[inner]] = True
                nxt = np.empty(2 * cur.size, np.int64)
                if tree.n_internal:
                    safe = np.maximum(cur, 0)
                    nxt[0::2] = np.where(inner, tree.left[safe], cur)
                    nxt[1::2] = np.where(inner, tree.right[safe], cur)
                else:
                    nxt[0::2] = nxt[1::2] = cur
                cur = nxt
            leaves[t] = tree.leaf_value[~cur]
        # The side NaN takes moves into the block slot a node reads (no NaN test per step):
        # NaN going right reads the plain value (NaN fails "<="); NaN going left reads the value
        # with NaN -> -inf; "x <= NaN" (a "< -inf" split) with NaN going left becomes
        # "is missing <= -inf".
        how = np.where(nan_left == 1, score_native.SLOT_NAN_LOW, score_native.SLOT_PLAIN)
        is_nan = (nan_left == 1) & np.isnan(thr)
        how[is_nan] = score_native.SLOT_IS_NAN
        thr[is_nan] = -np.inf
        keys, slot = np.unique((feat * 3 + how)[real], return_inverse=True)
        slots = np.zeros((n_trees, n_int), np.int64)  # padding nodes: slot 0 and "<= +inf"
        slots[real] = slot.ravel()
        # Float32 inputs against float32-exact thresholds compare in float32 (same result, half
        # the bytes, and no conversion in the inner loop).
        node = np.dtype([("thr", "<f8"), ("slot", "<u4"), ("pad", "<u4")])
        if self.input_dtype == np.float32:
            with np.errstate(over="ignore"):  # a huge threshold is then simply not exact
                thr32 = thr.astype(np.float32)
            if np.array_equal(thr32.astype(np.float64), thr, equal_nan=True):
                thr, node = thr32, np.dtype([("thr", "<f4"), ("slot", "<u4")])
        nodes = np.zeros(n_trees * n_int, node)
        nodes["thr"] = thr.ravel()
        nodes["slot"] = slots.ravel()
        self._kernel_arrays((nodes,), leaves.ravel(), keys // 3, keys % 3)

    def _kernel_arrays(self, nodes, leaves, slot_feature, slot_how) -> None:
        self._nodes = nodes
        self._leaves = np.ascontiguousarray(leaves, self.acc_dtype)
        self._target = np.array([t.target for t in self.trees], np.int32)
        #: block slot s holds feature ``slot_feature[s]``, filled as ``slot_how[s]``
        self.slot_feature = np.ascontiguousarray(slot_feature, np.int32)
        self.slot_how = np.ascontiguousarray(slot_how, np.uint8)

    def _build_general(self) -> None:
        feats, thrs, kinds, nls, lefts, rights, leaves = [], [], [], [], [], [], []
        cat_start, cat_len, bits = [], [], []
        lin_len, lin_feats, lin_coeff, lin_const = [], [], [], []  # per leaf / per term
        roots = np.empty(len(self.trees), np.int32)
        node_off = leaf_off = bit_off = 0
        for t, tree in enumerate(self.trees):
            m = tree.n_internal

            def shift(child, node_off=node_off, leaf_off=leaf_off):
                child = child.astype(np.int64)
                return np.where(child >= 0, child + node_off, ~(~child + leaf_off)).astype(np.int32)

            roots[t] = node_off if m else ~leaf_off
            feats.append(tree.feature)
            thrs.append(tree.threshold)
            kinds.append(tree.kind)
            nls.append(tree.nan_left)
            lefts.append(shift(tree.left))
            rights.append(shift(tree.right))
            leaves.append(tree.leaf_value)
            starts = np.zeros(m, np.int32)
            lens = np.zeros(m, np.int32)
            for node, words in sorted(tree.cat_bits.items()):
                starts[node] = bit_off
                lens[node] = len(words)
                bits.append(np.asarray(words, np.uint32))
                bit_off += len(words)
            cat_start.append(starts)
            cat_len.append(lens)
            n_leaves = tree.leaf_value.shape[0]
            if tree.linear is None:
                lin_len.append(np.full(n_leaves, -1))
                lin_const.append(np.zeros(n_leaves))
            else:
                lin_const.append(tree.linear[0])
                lin_len.append(tree.linear[1])
                lin_feats.append(tree.linear[2])
                lin_coeff.append(tree.linear[3])
            node_off += m
            leaf_off += tree.leaf_value.shape[0]

        def cat(parts, dtype):
            return np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0), dtype=dtype)

        # one plain block slot per feature the splits or linear leaves use (this layout tests
        # NaN itself)
        split_feats, term_feats = cat(feats, np.int64), cat(lin_feats, np.int64)
        used = np.unique(np.concatenate([split_feats, term_feats]))
        nodes = (
            roots, np.searchsorted(used, split_feats).astype(np.int32), cat(thrs, np.float64),
            cat(lefts, np.int32), cat(rights, np.int32), cat(kinds, np.uint8), cat(nls, np.uint8),
            cat(cat_start, np.int32), cat(cat_len, np.int32),
            cat(bits, np.uint32) if bits else np.zeros(1, np.uint32),
        )
        if lin_feats:  # LightGBM linear leaves (see score_native.tree_worker)
            counts = cat(lin_len, np.int32)
            starts = np.concatenate([[0], np.cumsum(np.maximum(counts, 0))[:-1]])
            nodes += (starts.astype(np.int32), counts,
                      np.searchsorted(used, term_feats).astype(np.int32),
                      cat(lin_coeff, np.float64), cat(lin_const, np.float64))
        self._kernel_arrays(nodes, cat(leaves, self.acc_dtype), used,
                            np.full(used.size, score_native.SLOT_PLAIN))

    # -- scoring -------------------------------------------------------------------------------

    def flush(self, chunks: int = 1) -> np.ndarray:
        """Chunk ends: the model's trees split in ``chunks`` contiguous runs (ONNX Runtime's
        ``PartitionWork``: the first ``n % chunks`` runs one tree longer), each summed from zero."""
        cached = self._flush_cache.get(chunks)
        if cached is not None:
            return cached
        src = np.array([t.source if t.source >= 0 else i for i, t in enumerate(self.trees)], np.int64)
        n_src = self.n_source_trees
        chunks = max(1, min(int(chunks), max(n_src, 1)))
        per, extra = divmod(n_src, chunks)
        starts = np.array([b * per + min(b, extra) for b in range(chunks)], np.int64)
        chunk_of = np.searchsorted(starts, src, side="right") - 1
        flush = np.zeros(len(self.trees), np.uint8)
        if len(self.trees):
            flush[:-1] = chunk_of[1:] != chunk_of[:-1]
            flush[-1] = 1
        self._flush_cache[chunks] = flush
        return flush

    def _source(self, X):
        """``(source, n)`` for the kernel: a tuple of feature columns as is, or a row-major
        matrix (float32/float64 read as is: the kernel rounds each block to the input type)."""
        if isinstance(X, tuple):
            n = X[0].shape[0]
            if any(c.ndim != 1 or c.shape[0] != n for c in X):
                raise ValueError("feature columns must be vectors of one length")
            return tuple(c if c.dtype in (np.float32, np.float64) and c.flags.c_contiguous
                         else np.ascontiguousarray(c, dtype=self.input_dtype) for c in X), n
        if X.dtype not in (np.float32, np.float64) or not X.flags.c_contiguous:
            X = np.ascontiguousarray(X, dtype=self.input_dtype)
        return X, X.shape[0]

    def _traverse(self, source, chunks, parallel, n_threads, raw, mode, out) -> None:
        """Sums of every tree into ``raw`` (zeros, ``(n, n_raw)``); unless ``mode`` is
        ``RAW_ONLY``, each block of rows is then finished (average, base values, transform
        ``mode``) into ``out`` while in cache. One worker serves both thread counts."""
        static = self.__dict__.get("_static")
        if static is None:  # per-model arguments, built once (single-row predict latency)
            base = self.base if self.base is not None else np.zeros(self.n_raw, self.acc_dtype)
            static = self._static = (
                self.layout == "perfect", self.input_dtype == np.float32, self.slot_feature,
                self.slot_how, self._nodes, self._leaves, self._target, self.depth,
                float(self.average_over or 1), bool(self.average_over), base)
        perfect, x32, slot_feature, slot_how, nodes, leaves, target, depth, avg, use_avg, base = static
        worker = score_native.tree_worker  # takes arrays by address: float32/float64 only
        args = (perfect, x32, source, slot_feature, slot_how, nodes, leaves, target,
                self.flush(chunks), depth, raw, avg, use_avg, base, int(mode), self.scale, out,
                np.zeros(1, np.int64))
        if parallel:
            launch.run_threaded(partial(worker, *args), n_threads)
        else:
            worker(*args)

    def raw(self, X, parallel: bool = True, chunks: int = 1,
            n_threads: int | None = None) -> np.ndarray:
        """Sum of leaf values per output: ``(n, n_raw)`` in ``acc_dtype``; ``X`` is an ``(n, F)``
        matrix or a tuple of ``F`` float32/float64 columns (see :meth:`predict`)."""
        X, n = self._source(X)
        out = np.zeros((n, self.n_raw), self.acc_dtype)
        if n == 0 or not self.trees:
            return out
        self._traverse(X, chunks, parallel, n_threads, out, score_native.RAW_ONLY, out)
        return out

    def predict(self, X, parallel: bool = True, chunks: int = 1,
                n_threads: int | None = None) -> np.ndarray:
        """Final scores ``(n, n_out)`` in ``out_dtype``: sums, then base values, then transform.
        ``X``: an ``(n, F)`` matrix, or a tuple of ``F >= 1`` contiguous float32/float64
        columns of ``n`` rows (only the columns the splits use are read; no matrix is built;
        see ``_columns.feature_arrays``). The result
        does not depend on ``n_threads`` (each row is summed by one thread)."""
        dt = self.acc_dtype
        if self.out_dtype == dt and self.trees:
            # One pass: each block of rows is summed and finished while in cache (also the
            # single-row latency path: one kernel call).
            X, n = self._source(X)
            raw = np.zeros((n, self.n_raw), dt)
            out = raw if self.post == score_native.NONE else np.empty((n, self.n_out), dt)
            if n:
                self._traverse(X, chunks, parallel, n_threads, raw, self.post, out)
            return out
        raw = self.raw(X, parallel, chunks, n_threads)
        if self.average_over:
            raw /= self.acc_dtype.type(self.average_over)
        if self.base is not None:
            raw += self.base
        if self.out_dtype != self.acc_dtype:
            raw = raw.astype(self.out_dtype)
        if self.post == score_native.NONE:
            return raw
        out = np.empty((raw.shape[0], self.n_out), self.out_dtype)
        args = (raw, out, self.post, self.scale, np.zeros(1, np.int64))
        if parallel:
            launch.run_threaded(partial(score_native.post_worker, *args), n_threads)
        else:
            score_native.post_worker(*args)
        return out


def lt_to_leq(threshold: np.ndarray) -> np.ndarray:
    """``x < t  <=>  x <= nextafter(t, -inf)`` for every non-NaN double ``x``, except at
    ``t = -inf``, where ``x < -inf`` is never true but ``-inf <= -inf`` is: that threshold
    becomes NaN (``x <= NaN`` is false for every ``x``; NaN inputs follow the node's NaN side)."""
    t = np.asarray(threshold, dtype=np.float64)
    return np.where(t == -np.inf, np.nan, np.nextafter(t, -np.inf))


class TreeModel(Model):
    """A tree ensemble scored natively (ONNX TreeEnsemble* or LightGBM text model).

    Null rule: a null feature is a missing value (NaN) and follows the model's missing rule.
    Feature columns go to the kernel as they are (zero-copy float32/float64); each worker copies
    a block of 64 rows into a row-major buffer of the model's input type (tree traversal reads a
    row's features at random, so a row should sit in a cache line or two), so no ``(n, F)``
    matrix is built in a serial pass before the parallel kernel.
    """

    default_nulls = "nan"
    #: LightGBM ``pandas_categorical`` lists: category columns become their codes
    categories: list | None = None

    def __init__(self, ensemble: TreeEnsemble, *, features, kind, classes=None, note=""):
        super().__init__(features=features, n_features=ensemble.n_features, kind=kind,
                         classes=classes, backend="native-trees", note=note)
        self.ensemble = ensemble

    def _n_outputs(self) -> int:
        return self.ensemble.n_out

    #: ONNX models: the ONNX Runtime thread count whose summation order is reproduced
    #: (``match_onnxruntime``); None for LightGBM (plain sequential sums, as LightGBM does).
    ort_threads: int | None = None

    def match_onnxruntime(self, threads: int) -> "TreeModel":
        """Sum trees in the order ONNX Runtime uses with ``threads`` intra-op threads.

        ONNX Runtime (TreeEnsemble*, ``ComputeAgg``) sums trees sequentially for batches of
        at most 50 rows or with one thread; otherwise it splits the trees in ``threads``
        contiguous chunks, sums each from zero, and adds the chunk sums in order. Float32 sums
        depend on that order, so this is what makes native and ORT results bit-identical. It
        does not change how many threads the native kernel uses (``n_threads=``).
        """
        self.ort_threads = max(1, int(threads))
        return self

    def _chunks(self, n_rows: int) -> int:
        t = self.ort_threads
        n_src = self.ensemble.n_source_trees
        if t is None or t == 1:
            return 1
        if n_rows == 1 and not (self.ensemble.n_raw == 1 and self.kind == "regressor"):
            return min(t, n_src) if n_src > 80 else 1
        if n_rows <= 50:
            return 1
        if self.ensemble.n_raw == 1 and self.kind == "regressor":
            return min(t, n_src) if n_src > t else 1
        return min(t, n_src) if n_src >= t else 1

    def _predict_matrix(self, X, parallel, n_threads):
        # float32/float64 go to the kernel as they are (it rounds each block to the input type)
        return self.ensemble.predict(X, parallel, self._chunks(X.shape[0]), n_threads)

    def _predict(self, batch, features, nulls, parallel, n_threads):
        n = batch.num_rows
        if not features:
            X = np.empty((n, 0), self.ensemble.input_dtype)
        else:
            X = feature_arrays(batch, features, self.ensemble.input_dtype, nulls, self.categories)
        return self.ensemble.predict(X, parallel, self._chunks(n), n_threads)
