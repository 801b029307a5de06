"""Hostile model files (issue #10, findings 5-7): every malformed LightGBM text, ONNX tree or
linear JSON model raises ModelFormatError at load time, never hangs, never crashes, never asks
for memory the model's real structure does not need."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import naive_scoring as naive
from fastengage.errors import ModelFormatError
from fastengage.scoring import load_model
from fastengage.scoring.trees import structure_problem


def _lgb_one_tree(left, right, n_leaves=None, header_extra="", tree_extra=""):
    m = len(left)
    n_leaves = m + 1 if n_leaves is None else n_leaves
    return textwrap.dedent(f"""\
        tree
        version=v4
        num_class=1
        num_tree_per_iteration=1
        label_index=0
        max_feature_idx=1
        objective=regression
        feature_names=a b
        feature_infos=none none
        {header_extra}

        Tree=0
        num_leaves={n_leaves}
        num_cat=0
        split_feature={' '.join(['0'] * m)}
        split_gain={' '.join(['1'] * m)}
        threshold={' '.join(['0.5'] * m)}
        decision_type={' '.join(['2'] * m)}
        left_child={' '.join(map(str, left))}
        right_child={' '.join(map(str, right))}
        leaf_value={' '.join(str(0.1 * k) for k in range(n_leaves))}
        {tree_extra}
        shrinkage=1


        end of trees
        """)


def test_cyclic_lightgbm_children_raise_instead_of_hanging():
    """Regression: ``left_child=1 0 -2`` looped forever in load_model with the GIL held."""
    text = _lgb_one_tree([1, 0, -2], [2, -1, -3], 4)
    code = ("import sys\nfrom fastengage.scoring import load_model\n"
            "from fastengage.errors import ModelFormatError\n"
            f"try:\n    load_model({text.encode()!r})\nexcept ModelFormatError as e:\n"
            "    print('refused:', e)\n    sys.exit(0)\nsys.exit(3)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "cycle" in proc.stdout


@pytest.mark.parametrize("left,right,n_leaves,why", [
    ([1, 0, -2], [2, -1, -3], 4, "cycle"),                  # the file
    ([1, -1, 1], [2, -2, -3], 4, "child of no node or of several"),  # node 1 shared
    ([-1, 2, 1], [-2, -3, -4], 4, "unreachable"),            # 1 <-> 2 loop off the root
    ([1, -1], [-1, -2], 3, "a leaf is referenced"),          # leaf 0 twice, leaf 2 never
    ([1, -1], [-2, -2], 3, "a leaf is referenced"),
    ([1, -1], [-2, 5], 3, "out of range"),
    ([1, -1], [-2, -9], 3, "out of range"),
    ([1, -1], [-2, -3], 5, "expected 4"),
])
def test_lightgbm_tree_must_be_a_tree(left, right, n_leaves, why):
    text = _lgb_one_tree(left, right, n_leaves)
    with pytest.raises(ModelFormatError, match=why):
        load_model(text.encode())


def test_structure_check_accepts_every_random_tree():
    rng = np.random.default_rng(0)
    for _ in range(300):
        m = int(rng.integers(0, 40))
        left, right, n_leaves = naive._random_shape(rng, m)
        # relabel internal nodes 1..m-1 at random: a tree need not be in pre-order
        perm = np.concatenate([[0], 1 + rng.permutation(max(m - 1, 0))]).astype(np.int64)
        new_left, new_right = np.empty(m, np.int64), np.empty(m, np.int64)
        for i in range(m):
            for src, dst in ((left, new_left), (right, new_right)):
                c = src[i]
                dst[perm[i]] = perm[c] if c >= 0 else c
        assert structure_problem(new_left, new_right, n_leaves) is None


def _onnx_one_tree(true, false, n_targets=1, target_ids=(0,), **extra):
    from onnx import TensorProto, helper

    n = len(true)
    leaves = [i for i, t in enumerate(true) if t < 0]
    attrs = dict(
        n_targets=n_targets, nodes_treeids=[0] * n, nodes_nodeids=list(range(n)),
        nodes_featureids=[0] * n, nodes_values=[0.0] * n,
        nodes_modes=["BRANCH_LEQ" if t >= 0 else "LEAF" for t in true],
        nodes_truenodeids=[max(t, 0) for t in true], nodes_falsenodeids=[max(f, 0) for f in false],
        target_treeids=[0] * len(target_ids), target_nodeids=[leaves[0]] * len(target_ids),
        target_ids=list(target_ids), target_weights=[1.0] * len(target_ids))
    attrs.update(extra)
    node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 1])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, None])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid("ai.onnx.ml", 3)])
    m.ir_version = 8
    return m.SerializeToString()


@pytest.mark.parametrize("true,false", [
    ([1, 0, -1], [2, 2, -1]),     # 1 -> 0: cycle through the root
    ([1, 2, -1], [2, -1, -1]),    # node 2 reached twice
    ([1, -1], [5, -1]),           # a child that does not exist
])
def test_onnx_tree_must_be_a_tree(true, false):
    with pytest.raises(ModelFormatError):
        model = load_model(_onnx_one_tree(true, false))
        model.predict(np.zeros((2, 1), np.float32))
