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


# -- bounded resources and malformed fields (findings 6, 7) -------------------------------------
def _run_limited(code, limit_bytes=2 << 30):
    """Run ``code`` in a child process whose address space is capped: a regression fails with a
    MemoryError there instead of swapping the machine."""
    prelude = ("import resource\n"
               f"resource.setrlimit(resource.RLIMIT_AS, ({limit_bytes}, {limit_bytes}))\n")
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300)


def test_onnx_n_targets_is_bounded_by_the_file():
    """Regression: a 458-byte regressor declaring n_targets=10**9 allocated 15 GB on 2 rows."""
    b = _onnx_one_tree([1, -1, -1], [2, -1, -1], n_targets=10**9)
    assert len(b) < 600
    proc = _run_limited(f"""
        import numpy as np
        from fastengage.errors import ModelFormatError
        from fastengage.scoring import load_model
        for backend in ("auto", "onnxruntime"):
            try:
                load_model({b!r}, backend=backend).predict(np.zeros((2, 1), np.float32))
            except ModelFormatError as e:
                assert "n_targets" in str(e), e
            else:
                raise SystemExit("accepted")
    """)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]


def test_lightgbm_num_class_is_bounded_by_the_trees_present():
    """Regression: a 4 KB model with num_class=5e6 asked for 37 GiB for 1000 rows."""
    text = naive.lightgbm_text(0, n_trees=2).replace("num_class=1", "num_class=5000000").replace(
        "num_tree_per_iteration=1", "num_tree_per_iteration=5000000")
    proc = _run_limited(f"""
        import numpy as np
        from fastengage.errors import ModelFormatError
        from fastengage.scoring import load_model
        try:
            load_model({text.encode()!r}).predict(np.zeros((1000, 3)))
        except ModelFormatError as e:
            assert "num_class" in str(e), e
        else:
            raise SystemExit("accepted")
    """)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]


_LGB = naive.lightgbm_text(3, n_trees=2, categorical=True)
_LGB_CASES = {
    "num_tree_per_iteration=0": ("num_tree_per_iteration=1", "num_tree_per_iteration=0"),
    "num_class=0": ("num_class=1", "num_class=0"),
    "num_class=2 per_iter=1": ("num_class=1", "num_class=2"),
    "num_class=x": ("num_class=1", "num_class=x"),
    "max_feature_idx huge": ("max_feature_idx=2", "max_feature_idx=999999999999"),
    "max_feature_idx negative": ("max_feature_idx=2", "max_feature_idx=-1"),
    "max_feature_idx 1e3": ("max_feature_idx=2", "max_feature_idx=1e3"),
    "no feature names": ("feature_names=f0 f1 f2\n", ""),
    "num_leaves text": ("num_leaves=", "num_leaves=x"),
    "num_leaves huge": ("num_leaves=", "num_leaves=99999999999999"),
    "int overflow": ("split_feature=", "split_feature=99999999999999999999999 "),
    "split_feature float": ("split_feature=", "split_feature=0.5 "),
    "sigmoid text": ("objective=regression", "objective=binary sigmoid:x"),
    "sigmoid negative": ("objective=regression", "objective=binary sigmoid:-1"),
    "sigmoid nan": ("objective=regression", "objective=binary sigmoid:nan"),
    "leaf nan": ("leaf_value=", "leaf_value=nan "),
    "decision_type 99": ("decision_type=", "decision_type=99 "),
    "decision_type -1": ("decision_type=", "decision_type=-1 "),
    "threshold nan": ("threshold=", "threshold=nan "),
    "cat word negative": ("cat_threshold=", "cat_threshold=-5 "),
    "cat word 2**32": ("cat_threshold=", "cat_threshold=4294967296 "),
    "cat boundaries": ("cat_boundaries=0", "cat_boundaries=7"),
    "unknown objective": ("objective=regression", "objective=lambda_made_up"),
}


@pytest.mark.parametrize("case", sorted(_LGB_CASES))
def test_malformed_lightgbm_field_raises_model_format_error(case):
    old, new = _LGB_CASES[case]
    assert old in _LGB
    text = _LGB.replace(old, new, 1)
    with pytest.raises(ModelFormatError):
        load_model(text.encode()).predict(naive.hostile_matrix(np.random.default_rng(0), 50, 3))


def test_lightgbm_categorical_index_must_name_a_bitset():
    text = _LGB
    tree0 = text.split("Tree=0")[1].split("Tree=1")[0]
    decisions = tree0.split("decision_type=")[1].split("\n")[0].split()
    thresholds = tree0.split("threshold=")[1].split("\n")[0].split()
    node = next(i for i, d in enumerate(decisions) if int(d) & 1)
    for bad in ("-1", "7", "0.5", "inf", "nan"):
        t = list(thresholds)
        t[node] = bad
        mutated = tree0.replace("threshold=" + " ".join(thresholds), "threshold=" + " ".join(t))
        with pytest.raises(ModelFormatError):
            load_model(text.replace(tree0, mutated).encode())


def test_malformed_onnx_tree_attributes_raise_model_format_error():
    for kw in (dict(n_targets=0), dict(n_targets=-3), dict(target_ids=(7,)),
               dict(nodes_featureids=[0])):
        with pytest.raises(ModelFormatError):
            load_model(_onnx_one_tree([1, -1, -1], [2, -1, -1], **kw)).predict(
                np.zeros((2, 1), np.float32))


_LINEAR = {"format": "fastengage.linear", "version": 1, "kind": "classifier",
           "features": ["a", "b"], "coefficients": [[1.0, 2.0]], "intercepts": [0.5],
           "link": "logistic", "classes": [0, 1], "l1_normalize": False}


@pytest.mark.parametrize("field,value", [
    ("coefficients", [[1.0], [1.0, 2.0]]), ("coefficients", [["1", 2]]),
    ("coefficients", [[True, 2]]), ("coefficients", {"a": 1}), ("coefficients", [[float("nan"), 1]]),
    ("coefficients", [[10**400, 1]]), ("coefficients", [[[1.0, 2.0]]]), ("coefficients", []),
    ("coefficients", None), ("intercepts", [[1]]), ("intercepts", [1, 2, 3]),
    ("intercepts", float("inf")), ("intercepts", "0"), ("features", "ab"),
    ("features", ["a", "b", "c"]), ("features", {"a": 0}), ("classes", 5), ("classes", [1, 1]),
    ("classes", [0, 1, 2]), ("classes", [[1], [2]]), ("link", ["x"]), ("link", "probit"),
    ("l1_normalize", "yes"), ("version", True), ("version", 99), ("kind", "x"), ("kind", None),
])
def test_malformed_linear_json_raises_model_format_error(field, value):
    import json

    doc = dict(_LINEAR, **{field: value})
    with pytest.raises(ModelFormatError):
        load_model(json.dumps(doc).encode()).predict(np.zeros((2, 2)))


def test_deeply_nested_linear_json_raises_model_format_error():
    text = '{"format": "fastengage.linear", "version": 1, "coefficients": ' + "[" * 100_000
    with pytest.raises(ModelFormatError):
        load_model(text.encode())


def test_onnx_unknown_input_type_and_bad_names_raise_model_format_error():
    """Found by tests/fuzz/targets_scoring.py: KeyError from an unknown tensor element type."""
    import onnx

    proto = onnx.ModelProto.FromString(_onnx_one_tree([1, -1, -1], [2, -1, -1]))
    proto.graph.input[0].type.tensor_type.elem_type = 73
    with pytest.raises(ModelFormatError):
        load_model(proto.SerializeToString())


#: The fuzzer's input (an ONNX LinearClassifier whose op type was mangled, then Cast and ZipMap).
_MANGLED_CLASSIFIER = bytes.fromhex(
    "080a1208736b6c326f6e6e781a06312e32302e30220761692e6f6e6e78280032003ae1030ae3010a01581205"
    "6c6162656c120d70726f626162696c69746965731a104c696e656172436c617373696669657222104c696eff"
    "ffffff6c61737369666965722a190a10636c6173736c6162656c735f696e747340004001a001072a2f0a0c63"
    "6f656666696369656e74733daefe9bc03dc91b20bd3d1393e63d3daefe9b403dc91b203d3d1393e6bda00106"
    "2a190a0a696e74657263657074733deba05c3d3deba05cbda001062a120a0b6d756c74695f636c6173731800"
    "a001022a1d0a0e706f73745f7472616e73666f726d22084c4f474953544943a001033a0a61692e6f6e6e782e"
    "6d6c0a2e0a056c6162656c120c6f75747075745f6c6162656c1a04436173742204436173742a090a02746f18"
    "07a001023a000a5c0a0d70726f626162696c697469657312126f75747075745f70726f626162696c6974791a"
    "065a69704d617022065a69704d61702a1b0a12636c6173736c6162656c735f696e7436337340004001a00107"
    "3a0a61692e6f6e6e782e6d6c12184f4e4e58284c6f67697374696352656772657373696f6e295a110a015812"
    "0c0a0a080112060a000a02080362180a0c6f75747075745f6c6162656c12080a06080712020a0062240a126f"
    "75747075745f70726f626162696c697479120e220c0a0a2a08080712040a020801420e0a0a61692e6f6e6e78"
    "2e6d6c100142040a00100972200a0d666561747572655f6e616d6573120f5b2261222c202262222c20226322"
    "5d")


def test_zipmap_without_a_classifier_is_a_format_error():
    # found by the coverage-guided fuzzer: with the classifier's op type mangled no class labels
    # are found, and stripping the ZipMap raised TypeError (len(None)) instead of a format error
    from fastengage.errors import ModelFormatError
    from fastengage.scoring import load_model

    for backend in ("onnxruntime", "auto"):
        try:
            load_model(_MANGLED_CLASSIFIER, backend=backend)
        except ModelFormatError:
            pass
