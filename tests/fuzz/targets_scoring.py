"""Fuzz targets of the model scorers (see harness.py): LightGBM text, ONNX tree ensembles, ONNX
linear models and fastengage linear JSON. Each loads the mutated file, then scores a few rows
(NaN, +-inf, huge, negative values, and an Arrow table with nulls), so a structure that passes
the loader but breaks a kernel (crash, out-of-bounds access under NUMBA_BOUNDSCHECK=1, hang,
runaway allocation, an exception other than ModelFormatError/InputError) is a finding.
Seeds: small valid models built at seed time (tiny trained LightGBM/sklearn models and random
valid trees from tests/naive_scoring.py)."""
from __future__ import annotations

import functools
import json

import numpy as np

from harness import Target

#: Scoring a model that declares more inputs than this is not attempted: the rows would be the
#: fuzz target's own allocation, not the library's.
_MAX_FEATURES = 256


def _score(model):
    import pyarrow as pa
    import naive_scoring as naive

    f = model.n_features
    if f > _MAX_FEATURES:
        return
    X = naive.hostile_matrix(np.random.default_rng(f), 9, f)
    model.predict(X)
    model.predict(X[:1])
    names = model.features or [f"c{j}" for j in range(f)]
    if len(set(names)) != len(names):
        return
    cols = {n: pa.array(X[:, j], mask=np.arange(9) == j % 9) for j, n in enumerate(names)}
    model.score(pa.table(cols), features=names, nulls="nan")


def _run(data: bytes, backend="auto"):
    from fastengage.scoring import load_model

    _score(load_model(data, backend=backend))


@functools.lru_cache(maxsize=None)
def _lightgbm_seeds():
    import lightgbm as lgb
    import naive_scoring as naive

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    X[:, 1] = rng.integers(0, 12, 300)
    X[rng.random(X.shape) < 0.05] = np.nan
    y = ((X[:, 1] % 3 == 0) | (np.nan_to_num(X[:, 0]) > 0.5)).astype(int)
    seeds = []
    for params, label in ((dict(objective="binary"), y),
                          (dict(objective="multiclass", num_class=3), y + (X[:, 1] > 6))):
        booster = lgb.train(dict(params, verbose=-1, num_threads=1, num_leaves=5,
                                 min_data_in_leaf=5, min_data_per_group=5),
                            lgb.Dataset(X, label, categorical_feature=[1]), 3)
        seeds.append(booster.model_to_string().encode())
    seeds.append(naive.lightgbm_text(1, n_trees=3).encode())
    seeds.append(naive.lightgbm_text(2, n_trees=2, num_class=3, objective="multiclass",
                                     missing_types=(1,)).encode())
    return seeds


@functools.lru_cache(maxsize=None)
def _onnx_tree_seeds():
    import naive_scoring as naive

    return [naive.onnx_trees(1, n_trees=2),
            naive.onnx_trees(2, n_trees=2, classifier=True, post="SOFTMAX"),
            naive.onnx_trees(3, n_trees=2, n_targets=2, double=True,
                             modes=["BRANCH_LEQ", "BRANCH_LT"])]


@functools.lru_cache(maxsize=None)
def _onnx_linear_seeds():
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from fastengage.scoring.export import sklearn_to_onnx

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    names = ["a", "b", "c"]
    return [sklearn_to_onnx(LogisticRegression().fit(X, y), names),
            sklearn_to_onnx(LogisticRegression().fit(X, y + (X[:, 1] > 0)), names, zipmap=False),
            sklearn_to_onnx(LinearRegression().fit(X, X[:, 2]), names)]


def _linear_json_seeds():
    base = {"format": "fastengage.linear", "version": 1, "features": ["a", "b"]}
    docs = [dict(base, kind="classifier", coefficients=[[1.5, -2.0]], intercepts=[0.25],
                 link="logistic", classes=[0, 1]),
            dict(base, kind="classifier", coefficients=[[1.0, 0.0], [0.0, 1.0], [-1.0, 2.0]],
                 intercepts=[0.0, 0.1, 0.2], link="softmax", classes=["x", "y", "z"]),
            dict(base, kind="regressor", coefficients=[2.0, 3.0], intercepts=1.0)]
    return [json.dumps(d).encode() for d in docs]


TARGETS = [
    Target("scoring_lightgbm", _run, _lightgbm_seeds, kind="text"),
    Target("scoring_onnx_trees", _run, _onnx_tree_seeds, kind="bytes"),
    Target("scoring_onnx_trees_ort", functools.partial(_run, backend="onnxruntime"),
           _onnx_tree_seeds, kind="bytes"),
    Target("scoring_onnx_linear", _run, _onnx_linear_seeds, kind="bytes"),
    Target("scoring_linear_json", _run, _linear_json_seeds, kind="text"),
]
