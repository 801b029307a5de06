"""Native fused linear/logistic scoring: plain reference, ONNX Runtime, JSON format."""
import json

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import naive_scoring as naive
from fastengage.errors import ModelFormatError
from fastengage.scoring import LinearModel, load_model
from fastengage.scoring.export import sklearn_to_onnx

F = 6
NAMES = [f"x{j}" for j in range(F)]


def _table(n, seed=0):
    rng = np.random.default_rng(seed)
    cols = {n_: rng.normal(size=n) for n_ in NAMES}
    cols["x2"] = rng.integers(-5, 5, n)  # an int column is converted once
    cols["x4"] = rng.normal(size=n).astype(np.float32)
    return pa.table({"id": pa.array([f"c{i}" for i in range(n)]), **cols})


def _matrix(table):
    return np.column_stack([table.column(n).to_numpy().astype(np.float64) for n in NAMES])


def _ort(b, X):
    sess = ort.InferenceSession(b, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {sess.get_inputs()[0].name: X.astype(np.float32)})
    ref = outs[-1]
    if isinstance(ref, list):
        ref = np.array([[d[k] for k in ref[0]] for d in ref])
    return ref.reshape(X.shape[0], -1)


@pytest.mark.parametrize("link,classes", [("identity", None), ("logistic", [0, 1]),
                                          ("logistic", None), ("softmax", ["a", "b", "c"])])
def test_given_coefficients_match_reference(link, classes):
    rng = np.random.default_rng(1)
    k = 1 if classes == [0, 1] else (3 if classes else 2)
    coef, icpt = rng.normal(size=(k, F)), rng.normal(size=k)
    model = LinearModel(coef, icpt, features=NAMES, link=link, classes=classes)
    table = _table(5000)
    out = model.score(table, id="id")
    raw = naive.linear([_matrix(table)[:, j] for j in range(F)], coef, icpt)
    if link == "identity":
        ref = raw
    elif link == "softmax":
        ref = naive.softmax(raw)
    else:
        ref = naive.sigmoid(raw)
        if classes:
            ref = np.column_stack([1 - ref[:, 0], ref[:, 0]])
    got = np.column_stack([out.column(c).to_numpy() for c in out.column_names[1:]])
    np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-13)
    assert out.column_names[0] == "id"
    if classes:
        assert out.column_names[1:] == [f"probability_{c}" for c in classes]
    # serial path (few rows) and streamed batches give the same numbers
    small = model.score(table.slice(0, 10), id="id")
    np.testing.assert_allclose(np.column_stack([small.column(c).to_numpy() for c in small.column_names[1:]]),
                               ref[:10], rtol=1e-13, atol=1e-13)
    assert model.score(table, id="id", batch_size=777).equals(out)


@pytest.mark.parametrize("kind", ["binary", "multinomial", "ovr", "regression"])
def test_sklearn_linear_onnx_is_native_and_agrees(kind):
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    table = _table(3000, 2)
    X = _matrix(table)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    if kind == "binary":
        est = LogisticRegression().fit(X, y)
    elif kind == "multinomial":
        est = LogisticRegression().fit(X, y + (X[:, 3] > 0.5))
    elif kind == "ovr":
        est = OneVsRestClassifier(LogisticRegression()).fit(X, y + (X[:, 3] > 0.5))
    else:
        est = LinearRegression().fit(X, X[:, 0] * 3 - X[:, 5])
    b = sklearn_to_onnx(est, NAMES)
    model = load_model(b)
    if kind == "ovr" and model.backend != "native-linear":
        assert model.note  # the converter's graph is not a plain linear one: ORT with a reason
    else:
        assert model.backend == "native-linear", model.note
    out = model.score(table, id="id")
    got = np.column_stack([out.column(c).to_numpy() for c in out.column_names[1:]])
    np.testing.assert_allclose(got, _ort(b, X), rtol=2e-5, atol=2e-6)
    if kind != "regression":
        np.testing.assert_allclose(got, est.predict_proba(X), rtol=1e-6, atol=1e-6)


def _matmul_graph(act):
    rng = np.random.default_rng(3)
    W = rng.normal(size=(F, 2)).astype(np.float32)
    b = rng.normal(size=2).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["X", "W"], ["m"]), helper.make_node("Add", ["m", "b"], ["z"])]
    out = "z"
    if act:
        nodes.append(helper.make_node(act, ["z"], ["y"]))
        out = "y"
    graph = helper.make_graph(
        nodes, "lin", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, F])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [None, 2])],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    prop = model.metadata_props.add()
    prop.key, prop.value = "feature_names", ",".join(NAMES)
    return model.SerializeToString()


@pytest.mark.parametrize("act", [None, "Sigmoid", "Softmax"])
def test_matmul_add_graph_is_native(act):
    b = _matmul_graph(act)
    model = load_model(b)
    assert model.backend == "native-linear", model.note
    assert model.features == NAMES
    table = _table(2000, 4)
    out = model.score(table)
    got = np.column_stack([out.column(c).to_numpy() for c in out.column_names])
    assert out.column_names == ["value_0", "value_1"]
    np.testing.assert_allclose(got, _ort(b, _matrix(table)), rtol=2e-5, atol=2e-5)


def test_json_round_trip(tmp_path):
    model = LinearModel([[1.0, -2.0, 0.5, 0, 0, 3]], [0.25], features=NAMES, link="logistic",
                        classes=["stay", "churn"])
    path = tmp_path / "m.json"
    model.save(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "fastengage.linear" and doc["version"] == 1
    again = load_model(path)
    assert isinstance(again, LinearModel) and again.classes == ["stay", "churn"]
    table = _table(100)
    assert again.score(table, id="id").equals(model.score(table, id="id"))


@pytest.mark.parametrize("doc,match", [
    ({"format": "other"}, "not a fastengage linear"),
    ({"format": "fastengage.linear", "version": 99, "coefficients": [[1]]}, "version"),
    ({"format": "fastengage.linear", "version": 1, "coefficients": "abc"}, "coefficients"),
    ({"format": "fastengage.linear", "version": 1, "coefficients": [[1, 2]], "intercepts": [1, 2, 3]},
     "intercepts"),
    ({"format": "fastengage.linear", "version": 1, "coefficients": [[1, 2]], "link": "exp"}, "link"),
    ({"format": "fastengage.linear", "version": 1, "coefficients": [[1, float("nan")]]}, "finite"),
])
def test_bad_json_is_a_model_format_error(doc, match):
    with pytest.raises(ModelFormatError, match=match):
        load_model(json.dumps(doc).encode())


def test_linear_nulls_raise_by_default():
    model = LinearModel(np.ones(F), 0.0, features=NAMES)
    table = _table(50).set_column(1, "x0", pa.array([None] + [1.0] * 49))
    with pytest.raises(ValueError, match="'x0' has 1 null"):
        model.score(table)
    out = model.score(table, nulls="nan")
    assert np.isnan(out.column("value").to_numpy()[0])


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.sampled_from([1, 3, 6]), st.integers(0, 3000),
       st.sampled_from(["identity", "logistic", "softmax"]), st.integers(0, 2**31 - 1))
def test_kernel_matches_reference_property(k, f, n, link, seed):
    rng = np.random.default_rng(seed)
    coef, icpt = rng.normal(size=(k, f)) * 3, rng.normal(size=k)
    cols = tuple(rng.normal(size=n) for _ in range(f))
    model = LinearModel(coef, icpt, link=link)
    raw = naive.linear(cols, coef, icpt) if n else np.zeros((0, k))
    ref = {"identity": raw, "logistic": naive.sigmoid(raw)}.get(link) if link != "softmax" else (
        naive.softmax(raw) if n else raw)
    for parallel in (True, False):
        np.testing.assert_allclose(model.predict_columns(cols, parallel=parallel), ref,
                                   rtol=1e-12, atol=1e-12)
