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
Scores are summed in float64 in LightGBM's order (iteration by iteration, class by class) and
transformed by the objective (binary/cross-entropy: ``1/(1+exp(-sigmoid*s))``; multiclass:
softmax; poisson/gamma/tweedie: ``exp``; regression objectives: identity).
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from ..kernels.scoring import post as score_post
from ..kernels.scoring import trees as score_trees
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
    except ValueError as exc:
        raise ModelFormatError(f"LightGBM model: {where} {key!r} is not numeric") from exc
    if n is not None and arr.shape[0] != n:
        raise ModelFormatError(f"LightGBM model: {where} {key!r} has {arr.shape[0]} values, "
                               f"expected {n}")
    return arr


def _zeroed_thresholds(threshold: np.ndarray) -> np.ndarray:
    """Thresholds ``t'`` with ``x <= t'  <=>  z(x) <= t`` where ``z(x)`` is 0 for
    ``|x| <= Z = float32(1e-35)`` and ``x`` otherwise (LightGBM zeroes such inputs).

    ``0 <= t < Z``: every ``|x| <= Z`` goes left, so ``t' = Z``; ``-Z <= t < 0``: they all go right,
    so ``t' = nextafter(-Z, -inf)``; other thresholds already agree.
    """
    z = score_trees._ZERO
    t = threshold
    out = np.where((t >= 0) & (t < z), z, t)
    return np.where((t >= -z) & (t < 0), np.nextafter(-z, -np.inf), out)


def parse_lightgbm(text: str) -> tuple[TreeEnsemble, dict]:
    """Parse a LightGBM text model.

    Returns
    -------
    (TreeEnsemble, info) where ``info`` has ``feature_names``, ``objective``, ``num_class`` and
    ``kind`` ("classifier" or "regressor").
    """
    blocks = text.replace("\r\n", "\n").split("\n\n")
    header = _kv(blocks[0].split("\n"))
    if not blocks[0].startswith("tree") or "max_feature_idx" not in header:
        raise ModelFormatError("not a LightGBM text model (no 'tree' header with max_feature_idx)")
    try:
        n_features = int(header["max_feature_idx"]) + 1
        num_class = int(header.get("num_class", "1"))
        per_iter = int(header.get("num_tree_per_iteration", str(num_class)))
    except ValueError as exc:
        raise ModelFormatError(f"LightGBM model header is malformed: {exc}") from exc
    names = header.get("feature_names", "").split()
    if len(names) != n_features:
        names = [f"Column_{j}" for j in range(n_features)]
    objective = header.get("objective", "regression").split()
    obj_name = objective[0] if objective else "regression"
    obj_args = dict(a.split(":", 1) for a in objective[1:] if ":" in a)
    if "sqrt" in objective[1:]:
        raise ModelFormatError("LightGBM objective with reg_sqrt=true is not supported natively")
    average = "average_output" in blocks[0].split("\n")

    trees = []
    for block in blocks[1:]:
        lines = block.strip().split("\n")
        if not lines or not lines[0].startswith("Tree="):
            continue
        where = lines[0]
        kv = _kv(lines[1:])
        if kv.get("is_linear", "0") != "0":
            raise ModelFormatError(f"LightGBM model: {where} is a linear tree, which is not supported")
        n_leaves = int(kv.get("num_leaves", "0"))
        # "shrinkage" is informational: LightGBM has already folded it into leaf_value.
        leaf_value = _nums(kv, "leaf_value", float, n_leaves, where)
        m = n_leaves - 1
        tree_index = int(where.split("=")[1])
        if m == 0:
            trees.append(Tree(np.zeros(0, np.int32), np.zeros(0), np.zeros(0, np.uint8),
                              np.zeros(0, np.uint8), np.zeros(0, np.int32), np.zeros(0, np.int32),
                              leaf_value, tree_index % per_iter))
            continue
        feature = _nums(kv, "split_feature", int, m, where).astype(np.int32)
        threshold = _nums(kv, "threshold", float, m, where)
        decision = _nums(kv, "decision_type", int, m, where).astype(np.int64)
        left = _nums(kv, "left_child", int, m, where).astype(np.int32)
        right = _nums(kv, "right_child", int, m, where).astype(np.int32)
        if feature.size and (feature.min() < 0 or feature.max() >= n_features):
            raise ModelFormatError(f"LightGBM model: {where} splits on a feature out of range")
        bad = structure_problem(left, right, n_leaves)
        if bad:
            raise ModelFormatError(f"LightGBM model: {where}: {bad}")
        is_cat = (decision & 1) == 1
        default_left = ((decision >> 1) & 1).astype(np.uint8)
        missing = (decision >> 2) & 3
        kind = np.full(m, score_trees.KIND_LEQ, np.uint8)
        nan_left = default_left.copy()
        # Missing type None: NaN is read as 0.0, so it goes where 0.0 goes.
        none = missing == 0
        nan_left[none] = (0.0 <= threshold[none]).astype(np.uint8)
        kind[missing == 1] = score_trees.KIND_ZERO_LEQ
        threshold = np.where(is_cat, threshold, _zeroed_thresholds(threshold))
        cat_bits = {}
        if is_cat.any():
            bounds = _nums(kv, "cat_boundaries", int, None, where)
            words = _nums(kv, "cat_threshold", int, None, where).astype(np.uint32)
            for node in np.flatnonzero(is_cat):
                idx = int(threshold[node])
                if idx + 1 >= bounds.shape[0]:
                    raise ModelFormatError(f"LightGBM model: {where} categorical split out of range")
                cat_bits[int(node)] = words[bounds[idx]:bounds[idx + 1]]
                kind[node] = score_trees.KIND_CAT
                nan_left[node] = 0
        trees.append(Tree(feature, threshold, kind, nan_left, left, right, leaf_value,
                          tree_index % per_iter, cat_bits))
    if not trees:
        raise ModelFormatError("LightGBM model has no trees")

    info = {"feature_names": names, "objective": obj_name, "num_class": num_class}
    scale = 1.0
    if obj_name == "binary":
        post, kind_, scale = score_post.PAIR_SIGMOID, "classifier", float(obj_args.get("sigmoid", 1))
    elif obj_name in ("multiclass", "softmax"):
        post, kind_ = score_post.SOFTMAX, "classifier"
    elif obj_name in ("multiclassova", "multiclass_ova", "ova", "ovr"):
        post, kind_, scale = score_post.SIGMOID, "classifier", float(obj_args.get("sigmoid", 1))
    elif obj_name in ("cross_entropy", "xentropy"):
        post, kind_ = score_post.SIGMOID, "regressor"
    elif obj_name in _EXP:
        post, kind_ = score_post.EXP, "regressor"
    elif obj_name in _IDENTITY:
        post, kind_ = score_post.NONE, "regressor"
    else:
        raise ModelFormatError(f"LightGBM objective {obj_name!r} is not supported by the native scorer")
    info["kind"] = kind_
    n_iter = len(trees) // per_iter
    ens = TreeEnsemble(trees, n_features, per_iter, acc_dtype=np.float64, input_dtype=np.float64,
                       average_over=n_iter if average else 0, post=post, scale=scale)
    return ens, info
