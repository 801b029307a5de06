"""Native tree-ensemble scoring: identical to ONNX Runtime on ONNX models, to LightGBM on its text
models (float64, 1e-12), and to the plain reference in tests/naive_scoring.py."""
import numpy as np
import onnx
import onnxruntime as ort
import pyarrow as pa
import pytest
from hypothesis import given, settings
from threadpoolctl import threadpool_limits
from hypothesis import strategies as st
from onnx import TensorProto, helper

import naive_scoring as naive
from fastengage.scoring import TreeModel, load_model
from fastengage.scoring.export import sklearn_to_onnx
from fastengage.scoring.trees import Tree, TreeEnsemble

F = 8
NAMES = [f"f{j}" for j in range(F)]


def _data(n, seed, nan=0.08):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, F))
    X[rng.random(X.shape) < nan] = np.nan
    return X


def _ort(model_bytes, X, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {sess.get_inputs()[0].name: X.astype(np.float32)})
    ref = outs[-1]
    if isinstance(ref, list):  # ZipMap
        keys = list(ref[0])
        ref = np.array([[d[k] for k in keys] for d in ref], np.float32)
    return ref.reshape(X.shape[0], -1)


@pytest.fixture(scope="module")
def sk_models():
    from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                                  RandomForestClassifier)

    X = _data(3000, 0)
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) ** 2 > 0.5).astype(int)
    y3 = y + (np.nan_to_num(X[:, 2]) > 0)
    Xf = np.nan_to_num(X)
    with threadpool_limits(1):  # OpenMP training threads crawl on a shared, loaded machine
        return _fit_all(X, Xf, y, y3)


def _fit_all(X, Xf, y, y3):
    from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                                  RandomForestClassifier)

    return {
        "hgb_binary": sklearn_to_onnx(HistGradientBoostingClassifier(max_iter=90, max_depth=4).fit(X, y), NAMES),
        "hgb_multi": sklearn_to_onnx(HistGradientBoostingClassifier(max_iter=20, max_depth=4).fit(X, y3), NAMES,
                                     zipmap=False),
        "hgb_reg": sklearn_to_onnx(HistGradientBoostingRegressor(max_iter=85).fit(X, y3 * 1.5), NAMES),
        "rf_binary": sklearn_to_onnx(RandomForestClassifier(6, max_depth=6, random_state=0).fit(Xf, y), NAMES),
        "rf_multi": sklearn_to_onnx(RandomForestClassifier(6, max_depth=6, random_state=0).fit(Xf, y3), NAMES),
    }


@pytest.mark.parametrize("name", ["hgb_binary", "hgb_multi", "hgb_reg", "rf_binary", "rf_multi"])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_onnx_sklearn_identical_to_onnxruntime(sk_models, name, threads):
    b = sk_models[name]
    model = load_model(b)
    assert model.backend == "native-trees", model.note
    model.match_onnxruntime(threads)
    for n in (1, 37, 4000):
        X = _data(n, 10 + n)
        if name.startswith("rf"):
            X = np.nan_to_num(X)
        got = model.predict(X)
        ref = _ort(b, X, threads)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, ref)


def _handmade_onnx(modes, tracks, post="NONE", classifier=True, n_classes=3):
    """Two trees using every ONNX branch mode, with missing_value_tracks_true per node."""
    nodes = dict(treeids=[], nodeids=[], featureids=[], values=[], modes=[], true=[], false=[], tracks=[])
    weights = dict(treeids=[], nodeids=[], ids=[], w=[])
    rng = np.random.default_rng(len(modes))
    for tree in range(2):
        # node 0 -> (1, 2); node 1 -> (3, 4); node 2 -> (5, 6); leaves 3..6
        for nid, (true, false) in enumerate([(1, 2), (3, 4), (5, 6)]):
            m = modes[(tree * 3 + nid) % len(modes)]
            nodes["treeids"].append(tree)
            nodes["nodeids"].append(nid)
            nodes["featureids"].append(int(rng.integers(0, F)))
            nodes["values"].append(float(np.float32(0.0 if "EQ" in m else rng.normal() * 0.5)))
            nodes["modes"].append(m)
            nodes["true"].append(true)
            nodes["false"].append(false)
            nodes["tracks"].append(tracks[(tree * 3 + nid) % len(tracks)])
        for leaf in range(3, 7):
            for k in (range(n_classes) if classifier else [0]):
                nodes_ = weights
                nodes_["treeids"].append(tree)
                nodes_["nodeids"].append(leaf)
                nodes_["ids"].append(k)
                nodes_["w"].append(float(rng.normal()))
            nodes["treeids"].append(tree)
            nodes["nodeids"].append(leaf)
            nodes["featureids"].append(0)
            nodes["values"].append(0.0)
            nodes["modes"].append("LEAF")
            nodes["true"].append(0)
            nodes["false"].append(0)
            nodes["tracks"].append(0)
    common = dict(
        nodes_treeids=nodes["treeids"], nodes_nodeids=nodes["nodeids"],
        nodes_featureids=nodes["featureids"], nodes_values=nodes["values"],
        nodes_modes=nodes["modes"], nodes_truenodeids=nodes["true"],
        nodes_falsenodeids=nodes["false"], nodes_missing_value_tracks_true=nodes["tracks"],
        post_transform=post, domain="ai.onnx.ml",
    )
    X = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, F])
    if classifier:
        node = helper.make_node(
            "TreeEnsembleClassifier", ["X"], ["label", "probabilities"],
            class_treeids=weights["treeids"], class_nodeids=weights["nodeids"],
            class_ids=weights["ids"], class_weights=weights["w"],
            classlabels_int64s=list(range(n_classes)), base_values=[0.1 * k for k in range(n_classes)],
            **common)
        outs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, n_classes])]
    else:
        node = helper.make_node(
            "TreeEnsembleRegressor", ["X"], ["variable"], n_targets=1,
            target_treeids=weights["treeids"], target_nodeids=weights["nodeids"],
            target_ids=weights["ids"], target_weights=weights["w"], base_values=[0.25], **common)
        outs = [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])]
    graph = helper.make_graph([node], "g", [X], outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    return model.SerializeToString()


ALL_MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]


@pytest.mark.parametrize("modes", [["BRANCH_LT"], ["BRANCH_GTE"], ["BRANCH_GT"], ALL_MODES])
@pytest.mark.parametrize("tracks", [[0], [1], [1, 0, 0, 1, 1]])
@pytest.mark.parametrize("post,classifier", [("NONE", True), ("SOFTMAX", True), ("LOGISTIC", True),
                                             ("NONE", False)])
def test_handmade_modes_identical_to_onnxruntime(modes, tracks, post, classifier):
    b = _handmade_onnx(modes, tracks, post, classifier)
    model = load_model(b, features=NAMES)
    assert model.backend == "native-trees", model.note
    X = _data(3000, 5, nan=0.2)
    # Exact threshold hits and zeros exercise LT vs LEQ and EQ/NEQ.
    X[::7, :] = 0.0
    X[1::11, :] = np.float32(X[1::11, :])
    np.testing.assert_array_equal(model.predict(X), _ort(b, X, 1)[:, :model.ensemble.n_out])


def _lgb_data(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, F))
    X[rng.random(X.shape) < 0.05] = np.nan
    X[:, 3] = np.where(rng.random(n) < 0.3, 0.0, X[:, 3])
    X[:, 5] = rng.integers(0, 12, n)  # categorical codes
    return X


@pytest.mark.parametrize("params", [
    dict(objective="binary"),
    dict(objective="regression"),
    dict(objective="multiclass", num_class=3),
    dict(objective="binary", zero_as_missing=True),
    dict(objective="binary", use_missing=False),
    dict(objective="poisson"),
    dict(objective="binary", categorical=True),
    dict(objective="multiclassova", num_class=3),
])
def test_lightgbm_text_matches_predict(tmp_path, params):
    lgb = pytest.importorskip("lightgbm")
    params = dict(params)
    categorical = params.pop("categorical", False)
    X = _lgb_data(4000, 1)
    signal = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) ** 2 + (X[:, 5] % 3 == 0)
    if params["objective"].startswith("multiclass"):
        y = np.digitize(signal, [0.5, 1.5])
    elif params["objective"] == "binary":
        y = (signal > 0.8).astype(int)
    elif params["objective"] == "poisson":
        y = np.random.default_rng(0).poisson(np.exp(0.3 * np.clip(signal, -3, 3)))
    else:
        y = signal
    ds = lgb.Dataset(X, y, categorical_feature=[5] if categorical else "auto",
                     feature_name=NAMES)
    booster = lgb.train(dict(params, verbose=-1, num_leaves=15, min_data_in_leaf=5, num_threads=1),
                        ds, num_boost_round=30)
    path = tmp_path / "m.txt"
    booster.save_model(str(path))
    model = load_model(path)
    assert model.backend == "native-trees" and model.features == NAMES
    Xt = _lgb_data(20000, 2)
    Xt[:50, 5] = -1.0  # negative categories go right
    Xt[50:60, 5] = 40.0  # unseen category
    ref = booster.predict(Xt)
    got = model.predict(Xt)
    if params["objective"] == "binary":
        np.testing.assert_allclose(got[:, 0], 1 - ref, rtol=0, atol=1e-12)
        got = got[:, 1]
    elif got.shape[1] == 1:
        got = got[:, 0]
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    if categorical:
        assert any(t.cat_bits for t in model.ensemble.trees)


@st.composite
def random_trees(draw):
    n_trees = draw(st.integers(1, 5))
    n_raw = draw(st.integers(1, 3))
    trees = []
    for t in range(n_trees):
        m = draw(st.integers(0, 6))
        left, right, next_leaf = [], [], [0]

        # a random binary tree with m internal nodes numbered in pre-order
        def build(count):
            if count == 0:
                leaf = next_leaf[0]
                next_leaf[0] += 1
                return ~leaf
            me = len(left)
            left.append(0)
            right.append(0)
            k = draw(st.integers(0, count - 1))
            left[me] = build(k)
            right[me] = build(count - 1 - k)
            return me

        build(m)
        n_leaves = next_leaf[0]
        kinds = draw(st.lists(st.sampled_from([0, 0, 1, 2]), min_size=m, max_size=m))
        trees.append(Tree(
            np.array(draw(st.lists(st.integers(0, F - 1), min_size=m, max_size=m)), np.int32),
            # NaN is a "< -inf" split (lt_to_leq): only missing values may go left
            np.array(draw(st.lists(st.sampled_from([-1.0, -0.5, 0.0, 0.25, 1.0, np.nan, -np.inf, np.inf]),
                                   min_size=m, max_size=m))),
            np.array(kinds, np.uint8),
            np.array(draw(st.lists(st.integers(0, 1), min_size=m, max_size=m)), np.uint8),
            np.array(left, np.int32), np.array(right, np.int32),
            np.array(draw(st.lists(st.floats(-2, 2), min_size=n_leaves, max_size=n_leaves))),
            draw(st.integers(0, n_raw - 1)),
        ))
    return trees, n_raw


@settings(max_examples=60, deadline=None)
@given(random_trees(), st.integers(0, 2**31 - 1))
def test_kernels_match_naive_reference(spec, seed):
    trees, n_raw = spec
    rng = np.random.default_rng(seed)
    X = rng.choice([-1.0, -0.5, 0.0, 0.25, 0.3, 1.0, np.nan, 1e-40, -np.inf, np.inf], size=(200, F))
    ref = naive.tree_raw(trees, X, n_raw)
    # float32 inputs: the kernel rounds each block of float64 values as NumPy's astype does
    ref32 = naive.tree_raw(trees, X.astype(np.float32).astype(np.float64), n_raw)
    # the column path (Arrow batches): one float32 column among float64 ones
    cols = tuple(X[:, j].astype(np.float32) if j == 1 else X[:, j].copy() for j in range(F))
    ref_cols = naive.tree_raw(trees, np.column_stack(cols).astype(np.float64), n_raw)
    layouts = ["general"]
    if all(np.all(t.kind == 0) for t in trees):
        layouts.append("perfect")
    for layout in layouts:
        ens = TreeEnsemble(trees, F, n_raw, layout=layout)
        np.testing.assert_array_equal(ens.raw(X, parallel=True), ref)
        np.testing.assert_array_equal(ens.raw(X[:3], parallel=False), ref[:3])
        np.testing.assert_array_equal(ens.raw(cols, parallel=True, n_threads=2), ref_cols)
        np.testing.assert_array_equal(ens.raw(cols, parallel=True, n_threads=1), ref_cols)
        ens32 = TreeEnsemble(trees, F, n_raw, layout=layout, input_dtype=np.float32)
        np.testing.assert_array_equal(ens32.raw(X, parallel=True), ref32)
        np.testing.assert_array_equal(ens32.raw(X.astype(np.float32), parallel=False), ref32)


def test_score_table_uses_native_and_streams(sk_models):
    b = sk_models["hgb_binary"]
    model = load_model(b)
    X = _data(5000, 3)
    table = pa.table({"customer": np.arange(5000) * 7, **{n: X[:, j] for j, n in enumerate(NAMES)}})
    whole = model.score(table, id="customer")
    assert whole.column_names == ["customer", "probability_0", "probability_1"]
    streamed = model.score(table, id="customer", batch_size=333, n_threads=1)
    assert streamed.equals(whole)
    assert whole.column("customer").equals(table.column("customer"))
    direct = model.predict(X)
    np.testing.assert_array_equal(whole.column("probability_1").to_numpy(), direct[:, 1])


def test_forced_onnxruntime_backend_agrees(sk_models):
    b = sk_models["hgb_multi"]
    native = load_model(b)
    rt = load_model(b, backend="onnxruntime")
    assert isinstance(native, TreeModel) and rt.backend == "onnxruntime"
    X = _data(2000, 4)
    table = pa.table({n: X[:, j] for j, n in enumerate(NAMES)})
    a = native.score(table)
    c = rt.score(table, nulls="nan")
    assert a.column_names == c.column_names
    for name in a.column_names:
        np.testing.assert_array_equal(a.column(name).to_numpy(), c.column(name).to_numpy())


def test_unsupported_tree_feature_falls_back_with_note():
    b = _handmade_onnx(["BRANCH_LEQ"], [0], post="PROBIT", classifier=False)
    model = load_model(b, features=NAMES)
    assert model.backend == "onnxruntime"
    assert "PROBIT" in model.note
    with pytest.raises(ValueError, match="natively"):
        load_model(b, features=NAMES, backend="native")


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_onnxmltools_lightgbm_is_native_and_identical(kind):
    lgb = pytest.importorskip("lightgbm")
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    X = _data(3000, 7)
    y = (np.nan_to_num(X[:, 0]) > 0).astype(int)
    if kind == "multiclass":
        y = y + (np.nan_to_num(X[:, 1]) > 0.5)
    if kind == "regression":
        est = lgb.LGBMRegressor(n_estimators=30, verbose=-1, n_jobs=1).fit(X, y * 1.5)
    else:
        est = lgb.LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1).fit(X, y)
    b = convert_lightgbm(est, initial_types=[("X", FloatTensorType([None, F]))],
                         zipmap=False).SerializeToString()
    model = load_model(b, features=NAMES)
    assert model.backend == "native-trees", model.note
    Xt = _data(4000, 8)
    for threads in (1, 2):
        np.testing.assert_array_equal(model.match_onnxruntime(threads).predict(Xt), _ort(b, Xt, threads))


@pytest.mark.parametrize("classifier", [True, False])
def test_double_input_models_identical_to_onnxruntime(classifier):
    proto = onnx.ModelProto.FromString(_handmade_onnx(ALL_MODES, [1, 0], "LOGISTIC" if classifier else "NONE",
                                                      classifier))
    proto.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    b = proto.SerializeToString()
    model = load_model(b, features=NAMES)
    assert model.backend == "native-trees", model.note
    X = _data(2000, 9, nan=0.2)
    X[::5] = np.float32(X[::5])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(b, so, providers=["CPUExecutionProvider"])
    ref = sess.run(None, {"X": X})[-1].reshape(len(X), -1)
    got = model.match_onnxruntime(1).predict(X)
    np.testing.assert_array_equal(got, ref[:, :got.shape[1]])


def test_lightgbm_random_forest_and_linear_trees(tmp_path):
    lgb = pytest.importorskip("lightgbm")

    X = _lgb_data(3000, 3)
    y = (np.nan_to_num(X[:, 0]) > 0).astype(int)
    rf = lgb.train(dict(objective="binary", boosting="rf", bagging_fraction=0.7, bagging_freq=1,
                        verbose=-1, num_threads=1), lgb.Dataset(X, y), 20)
    rf.save_model(str(tmp_path / "rf.txt"))
    model = load_model(tmp_path / "rf.txt")
    assert model.ensemble.average_over == 20
    np.testing.assert_allclose(model.predict(X)[:, 1], rf.predict(X), rtol=0, atol=1e-12)
    lin = lgb.train(dict(objective="regression", linear_tree=True, verbose=-1, num_threads=1),
                    lgb.Dataset(np.nan_to_num(X), y * 1.0), 3)
    lin.save_model(str(tmp_path / "lin.txt"))
    # scored natively since session 11, NaN rows included (LightGBM's fallback to the leaf value)
    lin_model = load_model(tmp_path / "lin.txt")
    np.testing.assert_allclose(lin_model.predict(X)[:, 0], lin.predict(X), rtol=0, atol=1e-12)


@pytest.mark.parametrize("input_dtype", [np.float64, np.float32])
def test_perfect_layout_nan_sides_at_extreme_thresholds(input_dtype):
    """The perfect layout moves NaN's side into the value a node reads (NaN kept, NaN -> -inf,
    or "is missing"); every threshold kind x NaN side x extreme value agrees with the
    reference, also on a depth-2 tree padded around a leaf."""
    trees = []
    for t, thr in enumerate([np.nan, -np.inf, np.inf, 0.25, -0.0]):
        for nan_left in (0, 1):
            trees.append(Tree(np.array([t % F], np.int32), np.array([thr]), np.zeros(1, np.uint8),
                              np.array([nan_left], np.uint8), np.array([~0], np.int32),
                              np.array([~1], np.int32), np.array([1.0, 2.0 + t]), 0))
            trees.append(Tree(np.array([t % F, (t + 1) % F], np.int32), np.array([thr, 0.3]),
                              np.zeros(2, np.uint8), np.array([nan_left, 1 - nan_left], np.uint8),
                              np.array([1, ~0], np.int32), np.array([~2, ~1], np.int32),
                              np.array([0.5, 4.0, 8.0 + t]), 0))
    values = np.array([np.nan, -np.inf, np.inf, 0.25, 0.3, -1.0, 0.0, -0.0])
    X = values[np.indices((values.size,) * 2).reshape(2, -1).T][:, [0, 1] * (F // 2)]
    ref = naive.tree_raw(trees, X.astype(input_dtype).astype(np.float64), 1)
    for layout in ("perfect", "general"):
        ens = TreeEnsemble(trees, F, 1, layout=layout, input_dtype=input_dtype)
        np.testing.assert_array_equal(ens.raw(X), ref, err_msg=layout)
        cols = tuple(np.ascontiguousarray(X[:, j]) for j in range(F))
        np.testing.assert_array_equal(ens.raw(cols, n_threads=2), ref, err_msg=layout)
