"""Plain Python/NumPy references for the scoring kernels (slow, obviously correct)."""
import math

import numpy as np

#: LightGBM's kZeroThreshold (the float literal 1e-35f)
ZERO = float(np.float32(1e-35))


def tree_leaf(tree, x):
    """Leaf index a row ``x`` reaches in a canonical ``Tree`` (see fastengage.scoring.trees)."""
    if tree.n_internal == 0:
        return 0
    node = 0
    while node >= 0:
        v = float(x[tree.feature[node]])
        kind = tree.kind[node]
        if kind == 3:  # categorical bitset: C++ static_cast<int>, INT_MIN when out of range
            go = False
            iv = int(v) if (not math.isnan(v) and -2.0**31 - 1 < v < 2.0**31) else -2**31
            if iv >= 0:
                words = tree.cat_bits[node]
                go = iv // 32 < len(words) and bool((int(words[iv // 32]) >> (iv % 32)) & 1)
        elif math.isnan(v):
            go = bool(tree.nan_left[node])
        elif kind == 0:
            go = v <= tree.threshold[node]
        elif kind == 1:
            go = v == tree.threshold[node]
        else:
            go = bool(tree.nan_left[node]) if abs(v) <= ZERO else v <= tree.threshold[node]
        node = tree.left[node] if go else tree.right[node]
    return ~node


def tree_raw(trees, X, n_raw, dtype=np.float64):
    """Sum of leaf values per output, tree after tree, in ``dtype``."""
    out = np.zeros((X.shape[0], n_raw), dtype)
    for i in range(X.shape[0]):
        for t in trees:
            out[i, t.target] += dtype(t.leaf_value[tree_leaf(t, X[i])])
    return out


def linear(cols, coef, intercept):
    """``(n, K)``: intercept + sum_j coef[k, j] * cols[j]."""
    X = np.column_stack(cols)
    return X @ np.asarray(coef).T + intercept


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# -- small model files built from a seed (hostile-value tests and fuzz seeds) -------------------
#: Inputs that stress every decision rule: NaN, +-inf, beyond int32/int64, negatives above -1,
#: LightGBM's zero band, exact thresholds and bitset edges.
HOSTILE_VALUES = np.array([
    np.nan, np.inf, -np.inf, 1e19, -1e19, 1e300, -1e300, 3e9, 2.0**31, 2.0**31 - 0.5, -2.0**31,
    -2.0**31 - 1, -1.0, -0.99, -0.5, -1e-40, 0.0, 1e-40, 5e-36, -5e-36, ZERO, -ZERO, 1e-35,
    np.nextafter(ZERO, 1), 0.25, 0.5, 1.0, 3.0, 3.7, 31.0, 32.0, 33.0, 63.5, 64.0, 1e9,
])
_THRESHOLDS = np.array([0.0, -1e-36, 1e-36, -1e-35, 1e-35, ZERO, -ZERO, np.nextafter(ZERO, 1),
                        -np.nextafter(ZERO, 1), 0.25, 0.5, -0.5, 1.0, 3.0, -1.0, 1e19, -1e19, 3e9])


def hostile_matrix(rng, n, n_features, dtype=np.float64):
    """``(n, F)`` rows drawn from HOSTILE_VALUES and small normals (half each)."""
    X = rng.choice(HOSTILE_VALUES, size=(n, n_features))
    mask = rng.random(X.shape) < 0.5
    X[mask] = rng.normal(size=int(mask.sum())) * 2
    return X.astype(dtype)


def _random_shape(rng, m):
    """Children arrays of a random binary tree with ``m`` internal nodes (pre-order, 0 root)."""
    left, right, leaves = [], [], [0]

    def build(count):
        if count == 0:
            leaves[0] += 1
            return ~(leaves[0] - 1)
        me = len(left)
        left.append(0)
        right.append(0)
        k = int(rng.integers(0, count))
        left[me] = build(k)
        right[me] = build(count - 1 - k)
        return me

    build(m)
    return left, right, leaves[0]


def _join(values, fmt=repr):
    return " ".join(fmt(v) for v in values)


def lightgbm_text(seed, n_features=3, n_trees=3, num_class=1, objective="regression",
                  max_internal=6, categorical=True, missing_types=(0, 1, 2)):
    """A random, valid LightGBM text model: numerical splits of every missing type and
    default side, categorical bitset splits, thresholds in LightGBM's zero band."""
    rng = np.random.default_rng(seed)
    per_iter = num_class if objective.startswith("multiclass") else 1
    n_trees = max(per_iter, n_trees - n_trees % per_iter)
    header = ["tree", "version=v4", f"num_class={num_class}",
              f"num_tree_per_iteration={per_iter}", "label_index=0",
              f"max_feature_idx={n_features - 1}",
              f"objective={objective}" + (f" num_class:{num_class}" if per_iter > 1 else "")
              + (" sigmoid:1" if objective == "binary" else ""),
              "feature_names=" + " ".join(f"f{j}" for j in range(n_features)),
              "feature_infos=" + " ".join("none" for _ in range(n_features)), ""]
    blocks = ["\n".join(header)]
    for t in range(n_trees):
        m = int(rng.integers(1, max_internal + 1))
        left, right, n_leaves = _random_shape(rng, m)
        feat = rng.integers(0, n_features, m)
        is_cat = (rng.random(m) < 0.4) if categorical else np.zeros(m, bool)
        decision = (is_cat.astype(int) | (rng.integers(0, 2, m) << 1)
                    | (rng.choice(np.asarray(missing_types), m) << 2))
        thr = rng.choice(_THRESHOLDS, m)
        bounds, words = [0], []
        for node in np.flatnonzero(is_cat):
            thr[node] = len(bounds) - 1
            n_words = int(rng.integers(1, 4))
            words += [int(w) for w in rng.integers(0, 2**32, n_words)]
            bounds.append(bounds[-1] + n_words)
        lines = [f"Tree={t}", f"num_leaves={n_leaves}", f"num_cat={int(is_cat.sum())}",
                 "split_feature=" + _join(feat, str), "split_gain=" + _join([1] * m, str),
                 "threshold=" + _join([int(v) if c else float(v) for v, c in zip(thr, is_cat)]),
                 "decision_type=" + _join(decision, str), "left_child=" + _join(left, str),
                 "right_child=" + _join(right, str),
                 "leaf_value=" + _join(np.round(rng.normal(size=n_leaves), 6).tolist()),
                 "leaf_weight=" + _join([1] * n_leaves, str),
                 "leaf_count=" + _join([1] * n_leaves, str),
                 "internal_value=" + _join([0] * m, str), "internal_weight=" + _join([1] * m, str),
                 "internal_count=" + _join([n_leaves] * m, str)]
        if is_cat.any():
            lines += ["cat_boundaries=" + _join(bounds, str), "cat_threshold=" + _join(words, str)]
        lines += ["is_linear=0", "shrinkage=1", ""]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n\nend of trees\n\npandas_categorical:null\n"


_ONNX_MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]
_ONNX_THRESHOLDS = np.array([0.0, -0.5, 0.5, 1.0, 3.0, -1.0, 1e19, -1e19, 3e9, 1e-40, np.inf,
                             -np.inf, 3.4e38], np.float32)


def onnx_trees(seed, n_features=3, n_trees=3, classifier=False, n_targets=1, n_classes=3,
               modes=None, double=False, post="NONE", max_internal=6):
    """Serialized random ONNX TreeEnsembleRegressor/Classifier (ai.onnx.ml opset 3)."""
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    modes = modes or _ONNX_MODES
    nodes = {k: [] for k in ("treeids", "nodeids", "featureids", "values", "modes",
                             "truenodeids", "falsenodeids", "missing_value_tracks_true")}
    w = {k: [] for k in ("treeids", "nodeids", "ids", "weights")}
    n_out = n_classes if classifier else n_targets
    for t in range(n_trees):
        m = int(rng.integers(0, max_internal + 1))
        left, right, n_leaves = _random_shape(rng, m)
        # ONNX node ids: internal nodes 0..m-1, leaves m..m+L-1
        def nid(c):
            return c if c >= 0 else m + ~c
        for i in range(m):
            for key, v in (("treeids", t), ("nodeids", i),
                           ("featureids", int(rng.integers(0, n_features))),
                           ("values", float(rng.choice(_ONNX_THRESHOLDS))),
                           ("modes", str(rng.choice(modes))), ("truenodeids", nid(left[i])),
                           ("falsenodeids", nid(right[i])),
                           ("missing_value_tracks_true", int(rng.integers(0, 2)))):
                nodes[key].append(v)
        for leaf in range(n_leaves):
            for key, v in (("treeids", t), ("nodeids", m + leaf), ("featureids", 0),
                           ("values", 0.0), ("modes", "LEAF"), ("truenodeids", 0),
                           ("falsenodeids", 0), ("missing_value_tracks_true", 0)):
                nodes[key].append(v)
            for k in range(n_out):
                if n_out > 1 and rng.random() < 0.3 and (leaf, k) != (0, 0):
                    continue
                w["treeids"].append(t)
                w["nodeids"].append(m + leaf)
                w["ids"].append(k)
                w["weights"].append(float(np.float32(rng.normal())))
    attrs = {f"nodes_{k}": v for k, v in nodes.items()}
    attrs["post_transform"] = post
    elem = TensorProto.DOUBLE if double else TensorProto.FLOAT
    X = helper.make_tensor_value_info("X", elem, [None, n_features])
    if classifier:
        prefix = "class_"
        node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "probabilities"],
                                domain="ai.onnx.ml", classlabels_int64s=list(range(n_classes)),
                                **{prefix + k: v for k, v in w.items()}, **attrs)
        outs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, n_classes])]
    else:
        prefix = "target_"
        node = helper.make_node("TreeEnsembleRegressor", ["X"], ["variable"], domain="ai.onnx.ml",
                                n_targets=n_targets, **{prefix + k: v for k, v in w.items()}, **attrs)
        outs = [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, n_targets])]
    graph = helper.make_graph([node], "g", [X], outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


# -- session 11: LightGBM linear trees and pandas category codes, from the peer's definitions --

def _lgb_json_leaf_value(node, x):
    """LightGBM's Tree::Predict at one leaf of ``dump_model()``'s JSON: a linear leaf
    (``leaf_const``/``leaf_features``/``leaf_coeff``) gives leaf_const + sum coeff * x in the
    order listed, or the plain ``leaf_value`` as soon as one of its features is NaN."""
    if "leaf_features" not in node:
        return float(node["leaf_value"])
    out = float(node["leaf_const"])
    for feat, coeff in zip(node["leaf_features"], node["leaf_coeff"]):
        v = x[feat]
        if math.isnan(v):
            return float(node["leaf_value"])
        out += float(coeff) * v
    return out


def _lgb_json_go_left(node, v):
    """LightGBM's Tree::NumericalDecision / CategoricalDecision (include/LightGBM/tree.h) on a
    JSON node: categorical '||'-joined categories go left (NaN, negatives go right);
    numerical: NaN is 0 unless missing_type is NaN; the missing value (NaN, or zero-band with
    missing_type Zero) follows default_left; else ``v <= threshold``."""
    if node["decision_type"] == "==":
        if math.isnan(v) or int(v) < 0:
            return False
        return int(v) in {int(c) for c in str(node["threshold"]).split("||")}
    missing = node["missing_type"]
    if math.isnan(v) and missing != "NaN":
        v = 0.0
    if (missing == "Zero" and -ZERO <= v <= ZERO) or (missing == "NaN" and math.isnan(v)):
        return bool(node["default_left"])
    return v <= float(node["threshold"])


def lgb_json_raw(dump, X):
    """Raw scores ``(n, num_tree_per_iteration)`` of a LightGBM model from its own
    ``Booster.dump_model()`` JSON, row by row and tree by tree in a Python double. Each row is
    first read as LightGBM's predictor reads a dense row (a value with |x| <= 1e-35f is 0).
    Average output (random forest) divides by the iterations."""
    k = int(dump["num_tree_per_iteration"])
    trees = dump["tree_info"]
    out = np.zeros((X.shape[0], k))
    for i in range(X.shape[0]):
        x = [0.0 if abs(float(v)) <= ZERO else float(v) for v in X[i]]
        for t, tree in enumerate(trees):
            node = tree["tree_structure"]
            while "leaf_value" not in node:
                go = _lgb_json_go_left(node, x[node["split_feature"]])
                node = node["left_child"] if go else node["right_child"]
            out[i, t % k] += _lgb_json_leaf_value(node, x)
    if dump.get("average_output"):
        out /= max(1, len(trees) // k)
    return out


def pandas_category_codes(values, categories):
    """LightGBM's pandas rule for a category column at predict time:
    ``Series(values).astype('category').cat.set_categories(categories).cat.codes``, code -1
    (a null or a value not in the list) read as NaN. Plain Python: a value matches a category
    of the same kind (text with text, integer with integer) and equal value."""
    out = []
    for v in values:
        code = math.nan
        if v is not None:
            for pos, c in enumerate(categories):
                if isinstance(c, str) == isinstance(v, str) and c == v:
                    code = float(pos)
                    break
        out.append(code)
    return np.array(out, dtype=np.float64)
