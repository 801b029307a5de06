"""ONNX ``TreeEnsembleClassifier``/``TreeEnsembleRegressor`` (ai.onnx.ml) -> :class:`TreeEnsemble`.

The result must equal ONNX Runtime's, so its conventions are reproduced (``tree_ensemble_*``
in onnxruntime/core/providers/cpu/ml):

* thresholds and leaf weights are float32 unless given ``*_as_tensor`` in double; sums are
  accumulated in that dtype, tree after tree, then base values are added;
* NaN takes the true branch iff ``missing_value_tracks_true`` (or the mode is ``BRANCH_NEQ``);
* classifiers with two labels and weights for a single class ("binary case") output
  ``[logistic(-s), logistic(s)]`` under ``LOGISTIC``; under ``NONE``/``SOFTMAX*``, ``[1 - s, s]``
  when all weights are non-negative and ``[-s, s]`` otherwise; other classifiers one score per
  class, transformed row-wise.

* two labels with weights for both: ``[T(s0), T(s1)]``, except that ONNX Runtime gives a row
  none of whose leaves holds a class-1 weight the binary output ``[T(-s0), T(s0)]``; models
  where that can happen (no tree with a class-1 weight at every leaf) are not native.

What this module cannot reproduce exactly (PROBIT, MIN/MAX aggregation, odd base-value counts,
set-membership nodes, the two-class rule above) raises :class:`NotNative` with the reason, and
the caller falls back to ONNX Runtime.
"""
from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

from ..errors import ModelFormatError
from ..kernels.scoring import native as score_native
from .trees import Tree, TreeEnsemble, lt_to_leq

__all__ = ["NotNative", "check_tree_ensemble", "tree_ensemble_from_onnx"]


class NotNative(Exception):
    """The model is valid but the native path cannot reproduce it exactly; message says why."""


_POST = {"NONE": score_native.NONE, "LOGISTIC": score_native.LOGISTIC,
         "SOFTMAX": score_native.SOFTMAX,
         "SOFTMAX_ZERO": score_native.SOFTMAX_ZERO}


def _attrs(node) -> dict:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if hasattr(v, "dims"):  # TensorProto
            v = numpy_helper.to_array(v)
        out[a.name] = v
    return out


def _get(attrs, name, dtype, default=None):
    if name + "_as_tensor" in attrs:
        return np.asarray(attrs[name + "_as_tensor"]).ravel(), np.float64
    if name in attrs:
        return np.asarray(attrs[name], dtype=dtype).ravel(), np.float32
    return default, np.float32


#: Outputs a TreeEnsemble may declare beyond the leaf weights and base values in its file (an
#: output no leaf votes for is a constant 0; legitimate, but it must not cost more than this).
UNBACKED_OUTPUTS = 1024

_NODE_ARRAYS = ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes",
                "nodes_truenodeids", "nodes_falsenodeids")


def check_tree_ensemble(node) -> None:
    """Checks that bound what scoring a TreeEnsemble* node can cost, whichever backend runs it.

    The number of outputs per row (``n_targets``, or the class labels) must be backed by the
    file: at most one output per leaf weight or base value, plus ``UNBACKED_OUTPUTS``. A 458-byte file declaring ``n_targets=10**9`` would otherwise make every row
    allocate gigabytes. Per-node and per-weight attribute lists must have equal lengths.
    """
    a = _attrs(node)
    is_clf = node.op_type == "TreeEnsembleClassifier"
    prefix = "class_" if is_clf else "target_"
    lengths = {k: len(np.ravel(a.get(k, []))) for k in _NODE_ARRAYS}
    values, _ = _get(a, "nodes_values", np.float32, np.zeros(0))
    lengths["nodes_values"] = values.size
    if len(set(lengths.values())) != 1:
        raise ModelFormatError(f"ONNX {node.op_type}: node attribute lists differ in length "
                               f"({lengths})")
    weights, _ = _get(a, prefix + "weights", np.float32, np.zeros(0))
    w_lengths = {prefix + k: len(np.ravel(a.get(prefix + k, []))) for k in ("treeids", "nodeids", "ids")}
    w_lengths[prefix + "weights"] = weights.size
    if len(set(w_lengths.values())) != 1:
        raise ModelFormatError(f"ONNX {node.op_type}: leaf weight lists differ in length ({w_lengths})")
    base, _ = _get(a, "base_values", np.float32, np.zeros(0))
    backed = weights.size + base.size
    if is_clf:
        n_out = max(len(a.get("classlabels_int64s", []) or []), len(a.get("classlabels_strings", []) or []))
        limit = backed + UNBACKED_OUTPUTS
        what = "class labels"
    else:
        try:
            n_out = int(a.get("n_targets", 1))
        except (TypeError, ValueError):
            raise ModelFormatError(f"ONNX {node.op_type}: n_targets is not an integer") from None
        limit = backed + UNBACKED_OUTPUTS
        what = "n_targets"
    if not 1 <= n_out <= limit:
        raise ModelFormatError(f"ONNX {node.op_type}: {what} = {n_out}, but the file holds only "
                               f"{backed} leaf weight(s) and base value(s) (allowed 1..{limit})")


def _always_scored(modes, tree_ids, node_ids, w_tree, w_node, w_id) -> set:
    """The outputs every row has a score for: those for which some tree holds a weight at every
    one of its leaves (ONNX Runtime's ``has_score``; the weight's value does not matter).
    ONNX Runtime treats an output without a score on a row differently (no base value, or
    another binary output), which the native kernels do not reproduce."""
    leaves = {}
    for mode, tree, node in zip(modes, tree_ids.tolist(), node_ids.tolist()):
        if mode == "LEAF":
            leaves.setdefault(tree, set()).add(node)
    votes = {}
    for tree, node, out in zip(w_tree.tolist(), w_node.tolist(), w_id.tolist()):
        votes.setdefault((out, tree), set()).add(node)
    return {out for (out, tree), nodes in votes.items() if leaves.get(tree, {None}) <= nodes}


def tree_ensemble_from_onnx(node, input_dtype, n_features: int):
    """Flatten one TreeEnsemble node.

    Returns
    -------
    (TreeEnsemble, classes, kind): ``classes`` is the list of class labels (classifiers) or None.
    """
    a = _attrs(node)
    is_clf = node.op_type == "TreeEnsembleClassifier"
    post_name = a.get("post_transform", b"NONE")
    post_name = post_name.decode() if isinstance(post_name, bytes) else str(post_name)
    agg = a.get("aggregate_function", b"SUM")
    agg = agg.decode() if isinstance(agg, bytes) else str(agg)
    if agg not in ("SUM", "AVERAGE"):
        raise NotNative(f"aggregate_function {agg} is not supported natively")
    modes = [m.decode() if isinstance(m, bytes) else str(m) for m in a.get("nodes_modes", [])]
    thr, thr_dtype = _get(a, "nodes_values", np.float32)
    if thr is None:
        raise NotNative("tree ensemble without nodes_values")
    tree_ids = np.asarray(a["nodes_treeids"], np.int64)
    node_ids = np.asarray(a["nodes_nodeids"], np.int64)
    feat = np.asarray(a["nodes_featureids"], np.int64)
    true_ids = np.asarray(a["nodes_truenodeids"], np.int64)
    false_ids = np.asarray(a["nodes_falsenodeids"], np.int64)
    tracks = np.asarray(a.get("nodes_missing_value_tracks_true", np.zeros(len(modes))), np.int64)
    if tracks.size == 0:
        tracks = np.zeros(len(modes), np.int64)
    prefix = "class_" if is_clf else "target_"
    w_tree = np.asarray(a[prefix + "treeids"], np.int64)
    w_node = np.asarray(a[prefix + "nodeids"], np.int64)
    w_id = np.asarray(a[prefix + "ids"], np.int64)
    weights, w_dtype = _get(a, prefix + "weights", np.float32)
    # ONNX Runtime's threshold/accumulator type is double when the input is double (float
    # attributes are widened), float otherwise.
    acc = np.float64 if (thr_dtype == np.float64 or w_dtype == np.float64
                         or np.dtype(input_dtype) == np.float64) else np.float32
    base, _ = _get(a, "base_values", np.float32, np.zeros(0))
    # Only splits read a feature: leaves may name any (ONNX Runtime's own tests give them -2).
    split_feat = feat[np.array([m != "LEAF" for m in modes], bool)] if len(modes) == feat.size \
        else feat
    if split_feat.size and (split_feat.min() < 0 or split_feat.max() >= n_features):
        raise NotNative("a split uses a feature index outside the model input")
    if any(m not in ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ",
                     "BRANCH_NEQ", "LEAF") for m in modes):
        raise NotNative("node modes other than BRANCH_* and LEAF")

    if is_clf:
        labels = a.get("classlabels_int64s")
        if labels is None or len(labels) == 0:
            labels = [s.decode() if isinstance(s, bytes) else s for s in a.get("classlabels_strings", [])]
        labels = list(labels)
        n_classes = len(labels)
        distinct = np.unique(w_id)
        always = _always_scored(modes, tree_ids, node_ids, w_tree, w_node, w_id) \
            if n_classes == 2 or base.size else set()  # (only read in those cases)
        if n_classes == 2 and 1 in distinct and 1 not in always:
            # ONNX Runtime (FinalizeScores, two classes): a row none of whose leaves holds a
            # class-1 weight gets the binary output [T(-s0), T(s0)], the others [T(s0), T(s1)]
            raise NotNative("two-class classifier whose class-1 score exists on some rows only")
        if n_classes == 1 and (post_name != "NONE" or base.size):
            # ONNX Runtime applies no transform to a single class (and base values per row)
            raise NotNative(f"one-class classifier with post_transform {post_name} or base values")
        checked = range(1) if n_classes == 2 else range(n_classes)  # (two: the binary score)
        if base.size and any(c not in always for c in checked):
            raise NotNative("base values and a class without a score on some rows (ONNX Runtime "
                            "adds the base value only where there is a score)")
        binary = n_classes == 2 and distinct.size == 1 and distinct[0] == 0
        if binary:
            n_raw = 1
            w_id = np.zeros_like(w_id)
            if base.size > 1:
                raise NotNative("binary classifier with two base values")
            # ONNX Runtime 1.2x: LOGISTIC gives [logistic(-s), logistic(s)] whatever the
            # weights' signs; NONE and SOFTMAX* give [1 - s, s] when every weight is >= 0,
            # [-s, s] otherwise (onnxruntime tree_ensembler_classifier_test.cc's binary cases)
            if post_name == "LOGISTIC":
                post = score_native.PAIR_LOGISTIC
            elif post_name not in ("NONE", "SOFTMAX", "SOFTMAX_ZERO"):
                raise NotNative(f"binary classifier with post_transform {post_name}")
            elif bool(np.all(weights >= 0)):
                post = score_native.PAIR_ONE_MINUS
            else:
                post = score_native.PAIR_NEG
            base_vec = base[:1] if base.size == 1 else None
        else:
            n_raw = n_classes
            if n_classes == 2 and base.size:
                raise NotNative("two-class classifier with per-class weights and base values")
            if base.size not in (0, n_classes):
                raise NotNative("base_values do not match the classes")
            if post_name not in _POST:
                raise NotNative(f"post_transform {post_name}")
            post = _POST[post_name]
            base_vec = base if base.size else None
        kind = "classifier"
    else:
        labels = None
        n_raw = int(a.get("n_targets", 1))
        if post_name != "NONE":
            raise NotNative(f"regressor with post_transform {post_name}")
        if n_raw > 1 and base.size and not set(range(n_raw)) <= _always_scored(
                modes, tree_ids, node_ids, w_tree, w_node, w_id):
            raise NotNative("base values and a target without a score on some rows (ONNX Runtime "
                            "then outputs 0 for it)")
        post = score_native.NONE
        if base.size == 1 and n_raw == 1 or base.size == n_raw:
            base_vec = base
        elif base.size == 0:
            base_vec = None
        else:
            raise NotNative("base_values do not match the targets")
        kind = "regressor"
    if w_id.size and (w_id.min() < 0 or w_id.max() >= n_raw):
        raise NotNative("leaf weight for an unknown class/target")

    # Index nodes by (tree, node id); trees in order of first appearance of their id.
    trees_out: list[Tree] = []
    order = np.argsort(tree_ids, kind="stable")
    uniq_trees, starts = np.unique(tree_ids[order], return_index=True)
    ends = list(starts[1:]) + [order.size]
    w_order = np.lexsort((np.arange(w_tree.size), w_tree))
    w_trees_sorted = w_tree[w_order]
    for src, (tid, s, e) in enumerate(zip(uniq_trees, starts, ends)):
        rows = order[s:e]
        ids = node_ids[rows]
        pos = {int(n): int(r) for n, r in zip(ids, rows)}
        ws = w_order[np.searchsorted(w_trees_sorted, tid, "left"):np.searchsorted(w_trees_sorted, tid, "right")]
        # Internal nodes and leaves numbered in pre-order from the root (node id 0).
        if 0 not in pos:
            raise NotNative(f"tree {tid} has no node 0")
        internal, leaf_of = {}, {}
        stack = [0]
        seen = 0
        while stack:
            nid = stack.pop()
            seen += 1
            if seen > len(pos):
                raise NotNative(f"tree {tid} is not a tree (cycle)")
            r = pos.get(nid)
            if r is None:
                raise NotNative(f"tree {tid} refers to a missing node {nid}")
            if modes[r] == "LEAF":
                leaf_of[nid] = len(leaf_of)
            else:
                internal[nid] = len(internal)
                stack.append(int(false_ids[r]))
                stack.append(int(true_ids[r]))
        m = len(internal)
        f_ = np.zeros(m, np.int32)
        t_ = np.zeros(m, np.float64)
        k_ = np.zeros(m, np.uint8)
        nl_ = np.zeros(m, np.uint8)
        l_ = np.zeros(m, np.int32)
        r_ = np.zeros(m, np.int32)

        def ref(nid):
            return internal[nid] if nid in internal else ~leaf_of[nid]

        for nid, i in internal.items():
            r = pos[nid]
            mode = modes[r]
            tchild, fchild = ref(int(true_ids[r])), ref(int(false_ids[r]))
            v = float(thr[r])
            nan_true = bool(tracks[r]) or mode == "BRANCH_NEQ"
            if mode in ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_EQ"):
                left, right, nan_left = tchild, fchild, nan_true
            else:  # GT = not LEQ, GTE = not LT, NEQ = not EQ: swap the children
                left, right, nan_left = fchild, tchild, not nan_true
            if mode in ("BRANCH_LT", "BRANCH_GTE"):
                v = float(lt_to_leq(np.float64(v)))
            f_[i], t_[i], l_[i], r_[i], nl_[i] = feat[r], v, left, right, nan_left
            k_[i] = (score_native.KIND_EQ if mode in ("BRANCH_EQ", "BRANCH_NEQ")
                     else score_native.KIND_LEQ)
        # One canonical tree per output the tree's leaves vote for, in output order.
        targets = np.unique(w_id[ws]) if ws.size else np.zeros(0, np.int64)
        for target in targets:
            leaf_value = np.zeros(len(leaf_of), acc)
            for wi in ws:
                if w_id[wi] == target and int(w_node[wi]) in leaf_of:
                    leaf_value[leaf_of[int(w_node[wi])]] += acc(weights[wi])
            trees_out.append(Tree(f_, t_, k_, nl_, l_, r_, leaf_value.astype(np.float64), int(target),
                                  source=src))

    ens = TreeEnsemble(trees_out, n_features, n_raw, acc_dtype=acc, input_dtype=input_dtype,
                       base=base_vec, average_over=len(uniq_trees) if agg == "AVERAGE" else 0,
                       post=post, n_source=len(uniq_trees), out_dtype=np.float32)
    return ens, labels, kind
