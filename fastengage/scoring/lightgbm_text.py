"""LightGBM text model files (``Booster.save_model``) parsed into a :class:`TreeEnsemble`.

Only the text is read (``key=value`` lines); nothing is evaluated. Decision rules follow
LightGBM's ``Tree::NumericalDecision``/``CategoricalDecision``: ``decision_type`` bit 0 marks a
categorical split, bit 1 "default left", bits 2-3 the missing type (0 None: NaN is read as 0;
1 Zero: NaN and ``|x| <= 1e-35`` take the default side; 2 NaN: NaN takes the default side).
Categorical splits go left iff ``static_cast<int>(x)`` is in the node's bitset; NaN, +-inf and
values outside int32 become INT_MIN on x86-64 and go right, as do negatives (-0.5 is category 0).
LightGBM's predictor first replaces every ``|x| <= kZeroThreshold`` (``1e-35f``) by 0; numerical
thresholds between -kZeroThreshold and kZeroThreshold are moved so that raw values compare as
the zeroed ones do (see :func:`_zeroed_thresholds`), which keeps that rule out of the kernels.
Linear trees (``linear_tree=True``): a leaf adds ``leaf_const + sum(leaf_coeff * x)`` over its
``leaf_features`` (a zero-band x read as 0), or its ``leaf_value`` when one of those x is NaN
(``Tree::Predict``). Scores are summed in float64 in LightGBM's order (iteration by iteration,
class by class) and transformed by the objective (binary/cross-entropy: ``1/(1+exp(-sigmoid*s))``; multiclass:
softmax; poisson/gamma/tweedie: ``exp``; regression objectives: identity).
"""
from __future__ import annotations

import json

import numpy as np

from ..errors import ModelFormatError
from ..kernels.scoring import native as score_native
from .trees import Tree, TreeEnsemble, structure_problem

__all__ = ["parse_lightgbm"]

_IDENTITY = {"regression", "regression_l1", "huber", "fair", "quantile", "mape", "lambdarank",
             "rank_xendcg", "custom", "none"}
_EXP = {"poisson", "gamma", "tweedie"}


def looks_like_lightgbm(head: bytes) -> bool:
    return head.startswith(b"tree\n") or head.startswith(b"tree\r\n")


def _kv(lines):
    out = {}
    for line in lines:
        if "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _nums(block, key, dtype, n, where):
    text = block.get(key)
    if text is None:
        raise ModelFormatError(f"LightGBM model: {where} has no {key!r}")
    try:
        arr = np.array(text.split(), dtype=np.float64 if dtype is float else np.int64) \
            if text else np.zeros(0)
    except (ValueError, OverflowError) as exc:
        raise ModelFormatError(f"LightGBM model: {where} {key!r} is not numeric ({exc})") from None
    if n is not None and arr.shape[0] != n:
        raise ModelFormatError(f"LightGBM model: {where} {key!r} has {arr.shape[0]} values, "
                               f"expected {n}")
    return arr


def _int(fields, key, default, lo, hi, where="header"):
    """An integer field in ``lo..hi`` (ModelFormatError naming it otherwise)."""
    raw = fields.get(key, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ModelFormatError(f"LightGBM model: {where} {key}={raw!r} is not an integer") from None
    if not lo <= value <= hi:
        raise ModelFormatError(f"LightGBM model: {where} {key}={value} is outside {lo}..{hi}")
    return value


def _positive_float(args, key):
    raw = args.get(key, "1")
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (np.isfinite(value) and value > 0):
        raise ModelFormatError(f"LightGBM model: objective parameter {key}:{raw} must be a "
                               "positive finite number")
    return value


def _zeroed_thresholds(threshold: np.ndarray) -> np.ndarray:
    """Thresholds ``t'`` with ``x <= t'  <=>  z(x) <= t`` where ``z(x)`` is 0 for
    ``|x| <= Z = float32(1e-35)`` and ``x`` otherwise (LightGBM zeroes such inputs).

    ``0 <= t < Z``: every ``|x| <= Z`` goes left, so ``t' = Z``; ``-Z <= t < 0``: they all go right,
    so ``t' = nextafter(-Z, -inf)``; other thresholds already agree.
    """
    z = score_native.ZERO
    t = threshold
    out = np.where((t >= 0) & (t < z), z, t)
    return np.where((t >= -z) & (t < 0), np.nextafter(-z, -np.inf), out)


def _categorical(kv, where, threshold, is_cat, n_leaves):
    """Bitset words of each categorical node, every index checked against its arrays."""
    bounds = _nums(kv, "cat_boundaries", int, None, where)
    words = _nums(kv, "cat_threshold", int, None, where)
    if (bounds.size == 0 or bounds[0] != 0 or np.any(bounds[1:] < bounds[:-1])  # no wrap-around
            or bounds[-1] != words.size):
        raise ModelFormatError(f"LightGBM model: {where} cat_boundaries do not slice cat_threshold")
    if words.size and (words.min() < 0 or words.max() >= 2**32):
        raise ModelFormatError(f"LightGBM model: {where} cat_threshold words must be uint32")
    words = words.astype(np.uint32)
    out = {}
    for node in np.flatnonzero(is_cat):
        t = threshold[node]
        if not (np.isfinite(t) and t == int(t) and 0 <= t < bounds.size - 1):
            raise ModelFormatError(f"LightGBM model: {where} categorical split {node} names "
                                   f"bitset {t!r}, not one of 0..{bounds.size - 2}")
        idx = int(t)
        out[int(node)] = words[bounds[idx]:bounds[idx + 1]]
    return out


def _linear(kv, where, n_leaves, n_features):
    """A linear tree's leaves (``is_linear=1``): ``(leaf_const, num_features, leaf_features,
    leaf_coeff)`` as :class:`Tree` takes them, every count and index checked."""
    const = _nums(kv, "leaf_const", float, n_leaves, where)
    count = _nums(kv, "num_features", int, n_leaves, where)
    if count.min() < 0:
        raise ModelFormatError(f"LightGBM model: {where} num_features must not be negative")
    total = int(count.sum())
    feats = _nums(kv, "leaf_features", int, total, where) if total else np.zeros(0, np.int64)
    coeff = _nums(kv, "leaf_coeff", float, total, where) if total else np.zeros(0)
    if feats.size and (feats.min() < 0 or feats.max() >= n_features):
        raise ModelFormatError(f"LightGBM model: {where} leaf_features names a feature out of range")
    if not (np.all(np.isfinite(const)) and np.all(np.isfinite(coeff))):
        raise ModelFormatError(f"LightGBM model: {where} has a non-finite linear leaf")
    return const, count, feats, coeff


def _tree(kv, where, n_features, target):
    # num_leaves only sets how many values to expect: arrays are sized by the text itself.
    n_leaves = _int(kv, "num_leaves", None, 1, 2**31 - 1, where)
    # "shrinkage" is informational: LightGBM has already folded it into leaf_value.
    leaf_value = _nums(kv, "leaf_value", float, n_leaves, where)
    if not np.all(np.isfinite(leaf_value)):
        raise ModelFormatError(f"LightGBM model: {where} has a non-finite leaf value")
    linear = _linear(kv, where, n_leaves, n_features) if kv.get("is_linear", "0") != "0" else None
    m = n_leaves - 1
    if m == 0:
        return Tree(np.zeros(0, np.int32), np.zeros(0), np.zeros(0, np.uint8), np.zeros(0, np.uint8),
                    np.zeros(0, np.int32), np.zeros(0, np.int32), leaf_value, target,
                    linear=linear)
    feature = _nums(kv, "split_feature", int, m, where)
    threshold = _nums(kv, "threshold", float, m, where)
    decision = _nums(kv, "decision_type", int, m, where)
    left = _nums(kv, "left_child", int, m, where)
    right = _nums(kv, "right_child", int, m, where)
    if feature.min() < 0 or feature.max() >= n_features:
        raise ModelFormatError(f"LightGBM model: {where} splits on a feature out of range")
    if decision.min() < 0 or decision.max() > 15:
        raise ModelFormatError(f"LightGBM model: {where} decision_type outside 0..15")
    if np.any(np.isnan(threshold)):
        raise ModelFormatError(f"LightGBM model: {where} has a NaN threshold")
    bad = structure_problem(left, right, n_leaves)
    if bad:
        raise ModelFormatError(f"LightGBM model: {where}: {bad}")
    is_cat = (decision & 1) == 1
    default_left = ((decision >> 1) & 1).astype(np.uint8)
    missing = (decision >> 2) & 3
    kind = np.full(m, score_native.KIND_LEQ, np.uint8)
    nan_left = default_left.copy()
    # Missing types None (0) and the unused 3: LightGBM reads NaN as 0.0, so it goes where 0.0 goes.
    none = (missing == 0) | (missing == 3)
    nan_left[none] = (0.0 <= threshold[none]).astype(np.uint8)
    kind[missing == 1] = score_native.KIND_ZERO_LEQ
    cat_bits = {}
    if is_cat.any():
        cat_bits = _categorical(kv, where, threshold, is_cat, n_leaves)
        kind[is_cat] = score_native.KIND_CAT
        nan_left[is_cat] = 0
    threshold = np.where(is_cat, threshold, _zeroed_thresholds(threshold))
    return Tree(feature.astype(np.int32), threshold, kind, nan_left, left.astype(np.int32),
                right.astype(np.int32), leaf_value, target, cat_bits, linear=linear)


def _post(obj_name, obj_args, num_class):
    scale = 1.0
    if obj_name == "binary":
        return score_native.PAIR_SIGMOID, "classifier", _positive_float(obj_args, "sigmoid")
    if obj_name in ("multiclass", "softmax"):
        return score_native.SOFTMAX, "classifier", scale
    if obj_name in ("multiclassova", "multiclass_ova", "ova", "ovr"):
        return score_native.SIGMOID, "classifier", _positive_float(obj_args, "sigmoid")
    if obj_name in ("cross_entropy", "xentropy"):
        return score_native.SIGMOID, "regressor", scale
    if obj_name in _EXP:
        return score_native.EXP, "regressor", scale
    if obj_name in _IDENTITY:
        return score_native.NONE, "regressor", scale
    raise ModelFormatError(f"LightGBM objective {obj_name!r} is not supported by the native scorer")


def _pandas_categorical(text: str):
    """The category lists LightGBM's Python package appends to a model trained on pandas
    ``category`` columns (``pandas_categorical:[[...], ...]``, its last non-empty line, as its
    ``_load_pandas_categorical`` reads it), or None. At prediction LightGBM replaces the values of
    the k-th category column by their positions in the k-th list (unseen values: NaN)."""
    tail = text.rstrip().rsplit("\n", 1)[-1].strip()
    key = "pandas_categorical:"
    if not tail.startswith(key):
        return None
    try:
        lists = json.loads(tail[len(key):])
    except (ValueError, RecursionError):
        raise ModelFormatError("LightGBM model: the pandas_categorical line is not JSON") from None
    if lists is None:
        return None
    scalar = (str, int, float, bool)
    if not (isinstance(lists, list) and all(isinstance(c, list) and all(
            isinstance(v, scalar) for v in c) for c in lists)):
        raise ModelFormatError("LightGBM model: pandas_categorical must be lists of categories "
                               "(strings, numbers or booleans)")
    return lists


def parse_lightgbm(text: str) -> tuple[TreeEnsemble, dict]:
    """Parse a LightGBM text model; every field is checked (ModelFormatError names it).

    Memory is bounded by the text: the number of outputs is ``num_tree_per_iteration``, which
    must equal ``num_class`` and divide the number of trees present; feature names must be
    listed for every feature.

    Returns
    -------
    (TreeEnsemble, info) where ``info`` has ``feature_names``, ``objective``, ``num_class``,
    ``kind`` ("classifier" or "regressor") and ``pandas_categorical`` (category lists or None).
    """
    blocks = text.replace("\r\n", "\n").split("\n\n")
    header = _kv(blocks[0].split("\n"))
    if not blocks[0].startswith("tree") or "max_feature_idx" not in header:
        raise ModelFormatError("not a LightGBM text model (no 'tree' header with max_feature_idx)")
    names = header.get("feature_names", "").split()
    n_features = _int(header, "max_feature_idx", None, 0, 2**31 - 2) + 1
    if len(names) != n_features:
        raise ModelFormatError(f"LightGBM model: feature_names lists {len(names)} names for "
                               f"max_feature_idx={n_features - 1}")
    tree_blocks = [b.strip().split("\n") for b in blocks[1:]]
    tree_blocks = [lines for lines in tree_blocks if lines and lines[0].startswith("Tree=")]
    if not tree_blocks:
        raise ModelFormatError("LightGBM model has no trees")
    num_class = _int(header, "num_class", "1", 1, len(tree_blocks))
    per_iter = _int(header, "num_tree_per_iteration", str(num_class), 1, len(tree_blocks))
    if per_iter != num_class or len(tree_blocks) % per_iter:
        raise ModelFormatError(f"LightGBM model: {len(tree_blocks)} trees, num_class={num_class} "
                               f"and num_tree_per_iteration={per_iter} do not fit together")
    objective = header.get("objective", "regression").split()
    obj_name = objective[0] if objective else "regression"
    obj_args = dict(a.split(":", 1) for a in objective[1:] if ":" in a)
    if "sqrt" in objective[1:]:
        raise ModelFormatError("LightGBM objective with reg_sqrt=true is not supported natively")
    post, kind_, scale = _post(obj_name, obj_args, num_class)
    if kind_ == "classifier" and obj_name != "binary" and num_class < 2:
        raise ModelFormatError(f"LightGBM model: objective {obj_name} with num_class={num_class}")
    average = "average_output" in blocks[0].split("\n")

    # LightGBM reads trees in file order (the number after "Tree=" is not used): tree i adds
    # to output i % num_tree_per_iteration.
    trees = [_tree(_kv(lines[1:]), lines[0], n_features, i % per_iter)
             for i, lines in enumerate(tree_blocks)]
    info = {"feature_names": names, "objective": obj_name, "num_class": num_class, "kind": kind_,
            "pandas_categorical": _pandas_categorical(text)}
    n_iter = len(trees) // per_iter
    ens = TreeEnsemble(trees, n_features, per_iter, acc_dtype=np.float64, input_dtype=np.float64,
                       average_over=n_iter if average else 0, post=post, scale=scale)
    return ens, info
