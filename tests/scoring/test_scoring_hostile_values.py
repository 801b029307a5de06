"""Hostile feature values (NaN, +-inf, huge, negative, LightGBM's zero band) on every tree path:
native scores equal LightGBM's ``Booster.predict`` and ONNX Runtime bit for bit, in both the
perfect and the general layout, and a categorical split never reads outside its bitset
(issue #10, finding 4)."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import naive_scoring as naive
from fastengage.kernels.scoring import native as score_trees
from fastengage.scoring import load_model
from fastengage.scoring.trees import TreeEnsemble

lgb = pytest.importorskip("lightgbm")

HOSTILE = [np.nan, np.inf, -np.inf, 1e19, -1e19, 3e9, 2.0**31 - 0.5, 2.0**31, -0.5, -0.9999,
           -1.0, 0.0, 1e-40, -1e-40, 0.5, 3.0, 3.7, 33.0, 1e9]


def _trained_categorical_model(path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    X[:, 1] = rng.integers(0, 40, 2000)
    y = ((X[:, 1] % 3 == 0) | (X[:, 0] > 0.5)).astype(int)
    booster = lgb.train(dict(objective="binary", verbose=-1, num_threads=1, num_leaves=7,
                             min_data_in_leaf=5, min_data_per_group=5, cat_smooth=1),
                        lgb.Dataset(X, y, categorical_feature=[1]), 10)
    booster.save_model(str(path))
    return booster


def _rows():
    X = np.zeros((len(HOSTILE), 3))
    X[:, 0] = 0.1
    X[:, 1] = HOSTILE
    return X


def test_legit_categorical_model_survives_inf_and_huge_values(tmp_path):
    """Regression: ``np.int64(inf)`` was INT64_MIN, a negative bitset word -> segfault."""
    booster = _trained_categorical_model(tmp_path / "cat.txt")
    # In a child process first: a regression must fail this test, not kill the test run.
    code = textwrap.dedent(f"""
        import json, numpy as np, pyarrow as pa
        from fastengage.scoring import load_model
        m = load_model({str(tmp_path / 'cat.txt')!r})
        X = np.array({json.dumps([[0.1, v, 0.0] for v in map(repr, HOSTILE)])}, dtype=object)
        X = X.astype(str).astype(float)
        p = m.predict(X)
        t = m.score(pa.table({{n: X[:, j] for j, n in enumerate(m.features)}}))
        print(json.dumps(p[:, 1].tolist()))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    X = _rows()
    ref = booster.predict(X)
    np.testing.assert_array_equal(np.array(json.loads(proc.stdout.strip().splitlines()[-1])), ref)
    np.testing.assert_array_equal(load_model(tmp_path / "cat.txt").predict(X)[:, 1], ref)
    # -0.5 is category 0 for LightGBM (static_cast<int> truncates toward zero); 0 is in the set
    assert ref[HOSTILE.index(-0.5)] == ref[HOSTILE.index(0.0)]


def test_zero_band_is_zero_as_in_lightgbm():
    """LightGBM reads |x| <= float32(1e-35) as 0 before any split (threshold 0 here)."""
    text = naive.lightgbm_text(0, n_features=1, n_trees=1, max_internal=1, categorical=False,
                               missing_types=(0,))
    text = text.replace("threshold=" + text.split("threshold=")[1].split("\n")[0], "threshold=0")
    X = np.array([[0.0], [5e-36], [-5e-36], [1e-35], [naive.ZERO], [-naive.ZERO], [1e-300],
                  [np.nextafter(naive.ZERO, 1)], [np.nan]])
    ref = lgb.Booster(model_str=text).predict(X)
    np.testing.assert_array_equal(load_model(text.encode()).predict(X)[:, 0], ref)


def _layouts(model):
    ens = model.ensemble
    out = [ens]
    simple = all(np.all(t.kind == score_trees.KIND_LEQ) for t in ens.trees)
    other = "general" if ens.layout == "perfect" else ("perfect" if simple else None)
    if other is not None:
        out.append(TreeEnsemble(ens.trees, ens.n_features, ens.n_raw, acc_dtype=ens.acc_dtype,
                                input_dtype=ens.input_dtype, base=ens.base,
                                average_over=ens.average_over, post=ens.post, scale=ens.scale,
                                layout=other, n_source=ens.n_source, out_dtype=ens.out_dtype))
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_trees=st.integers(1, 4),
       objective=st.sampled_from(["regression", "binary", "multiclass"]),
       categorical=st.booleans(), missing=st.sampled_from([(0,), (2,), (0, 2), (0, 1, 2)]))
def test_lightgbm_hostile_values_match_booster(seed, n_trees, objective, categorical, missing):
    num_class = 3 if objective == "multiclass" else 1
    text = naive.lightgbm_text(seed, n_features=3, n_trees=n_trees * num_class, num_class=num_class,
                               objective=objective, categorical=categorical, missing_types=missing)
    ref = lgb.Booster(model_str=text).predict(naive.hostile_matrix(np.random.default_rng(seed), 300, 3))
    X = naive.hostile_matrix(np.random.default_rng(seed), 300, 3)
    model = load_model(text.encode())
    for ens in _layouts(model):
        for parallel in (True, False):
            got = ens.predict(X, parallel)
            if objective == "binary":
                got = got[:, 1]
            elif num_class == 1:
                got = got[:, 0]
            np.testing.assert_array_equal(got, ref, err_msg=f"layout={ens.layout}")
    # and through the Arrow path: a null feature is NaN
    assert model.predict(X[:7]).shape[0] == 7


def _ort(b, X, double):
    so = ort.SessionOptions()
    so.log_severity_level = 4
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(b, so, providers=["CPUExecutionProvider"])
    out = sess.run(None, {"X": X.astype(np.float64 if double else np.float32)})[-1]
    return np.asarray(out).reshape(X.shape[0], -1)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_trees=st.integers(1, 4), classifier=st.booleans(),
       double=st.booleans(), leq_only=st.booleans(),
       post=st.sampled_from(["NONE", "LOGISTIC", "SOFTMAX"]))
def test_onnx_hostile_values_match_onnxruntime(seed, n_trees, classifier, double, leq_only, post):
    modes = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GT", "BRANCH_GTE"] if leq_only else None
    b = naive.onnx_trees(seed, n_trees=n_trees, classifier=classifier, n_targets=2,
                         modes=modes, double=double, post=post if classifier else "NONE")
    model = load_model(b, features=["a", "b", "c"])
    assert model.backend == "native-trees", model.note
    model.match_onnxruntime(1)
    with np.errstate(over="ignore"):  # 1e300 -> inf in float32, on purpose
        X = naive.hostile_matrix(np.random.default_rng(seed), 200, 3).astype(
            np.float64 if double else np.float32).astype(np.float64)
    try:
        ref = _ort(b, X, double)
    except Exception as exc:  # ORT folds BRANCH_EQ chains into int sets: 1e19 cannot narrow
        assume("narrowing_error" not in str(exc))
        raise
    Xin = X.astype(model.ensemble.input_dtype)
    for ens in _layouts(model):
        for parallel in (True, False):
            got = ens.predict(Xin, parallel, model._chunks(len(X)))
            np.testing.assert_array_equal(got, ref[:, :got.shape[1]], err_msg=f"layout={ens.layout}")
