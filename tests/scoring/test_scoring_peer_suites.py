"""Prediction edge cases from the peers' own test suites, ported to fastengage.scoring.

Each case names the peer test it comes from. The peer library itself is the reference: a
LightGBM model is scored by ``Booster.predict`` and by fastengage on the same rows (float64,
within 1e-12, as the README promises), an ONNX tree model by ONNX Runtime (bit for bit), a
scikit-learn model by its own ``predict``/``predict_proba``/``decision_function``. Numbers the
peers publish in their tests (expected outputs of hand-made models) are used as constants where
no model can be run to get them.

Peer files (read at):
* microsoft/LightGBM tests/python_package_test/test_engine.py (bae0b7b, 2026-03)
* scikit-learn sklearn/ensemble/tests, sklearn/tree/tests, sklearn/linear_model/tests
* microsoft/onnxruntime onnxruntime/test/providers/cpu/ml/tree_ensembler_classifier_test.cc,
  treeregressor_test.cc
"""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastengage.errors import ColumnNotFoundError, InputError, ModelFormatError
from fastengage.scoring import load_model

lgb = pytest.importorskip("lightgbm")

TOL = 1e-12  # README: native LightGBM scoring is within 1e-12 of Booster.predict (float64)


# -- helpers ---------------------------------------------------------------------------------


def _train(params, X, y, rounds, **dataset_kw):
    params = dict({"verbose": -1, "num_threads": 1}, **params)
    return lgb.train(params, lgb.Dataset(X, y, **dataset_kw), num_boost_round=rounds)


def _load(booster, **save_kw):
    """The booster's text model (``model_to_string`` is what ``save_model`` writes) read by
    fastengage."""
    model = load_model(booster.model_to_string(**save_kw).encode())
    assert model.backend == "native-trees", model.note
    return model


def _lgb_ref(booster, X, **predict_kw):
    """``Booster.predict`` as fastengage's output columns: binary -> [1 - p, p]."""
    ref = np.asarray(booster.predict(X, **predict_kw), np.float64)
    if ref.ndim == 1:
        ref = ref[:, None]
    if booster.dump_model().get("objective", "").startswith("binary"):
        ref = np.column_stack([1.0 - ref[:, 0], ref[:, 0]])
    return ref


def _table(X, names, null_nan=True, dtype=None):
    """Arrow table of the columns of X; NaN becomes an Arrow null (LightGBM's missing value)."""
    cols = []
    for j in range(X.shape[1]):
        col = X[:, j] if dtype is None else X[:, j].astype(dtype)
        cols.append(pa.array(col, mask=np.isnan(col) if null_nan else None))
    return pa.table(cols, names=list(names))


def _scores(table):
    return np.column_stack([c.to_numpy() for c in table.columns])


def _check_all_paths(model, ref, X, names=None):
    """``ref`` (the peer's prediction of X) equals fastengage's on every input path: the NumPy
    ``predict``, an Arrow table with nulls for NaN, one with NaN kept, a chunked table, a slice of
    a longer table, a batch size that splits the rows, and the columns in reversed order."""
    names = list(names or model.features)
    got = model.predict(X)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)
    table = _table(X, names)
    np.testing.assert_allclose(_scores(model.score(table)), ref, rtol=0, atol=TOL)
    np.testing.assert_allclose(_scores(model.score(_table(X, names, null_nan=False))), ref,
                               rtol=0, atol=TOL)
    n = X.shape[0]
    if n >= 2:
        chunked = pa.concat_tables([table.slice(0, n // 2), table.slice(n // 2)])
        assert chunked.column(0).num_chunks == 2
        np.testing.assert_allclose(_scores(model.score(chunked)), ref, rtol=0, atol=TOL)
        np.testing.assert_allclose(_scores(model.score(table, batch_size=max(1, n // 3))), ref,
                                   rtol=0, atol=TOL)
    padded = pa.concat_tables([table.slice(0, 3), table, table.slice(0, 2)]).combine_chunks()
    sliced = padded.slice(min(3, n), n)
    np.testing.assert_allclose(_scores(model.score(sliced)), ref, rtol=0, atol=TOL)
    reordered = table.select(names[::-1])
    np.testing.assert_allclose(_scores(model.score(reordered)), ref, rtol=0, atol=TOL)


def _assert_lgb(booster, X, names=None, **save_kw):
    """fastengage on the booster's text model == ``Booster.predict`` on X, every input path."""
    model = _load(booster, **save_kw)
    predict_kw = {k: v for k, v in save_kw.items() if k in ("num_iteration", "start_iteration")}
    ref = _lgb_ref(booster, X, **predict_kw)
    _check_all_paths(model, ref, X, names)
    return model, ref


# -- LightGBM: missing values ----------------------------------------------------------------


@pytest.mark.parametrize("n_true, value", [(20, 0.0), (80, 1.0)])
def test_lgb_missing_value_handle(n_true, value):
    # LightGBM test_engine.py::test_missing_value_handle (NaN rows labelled 1 among zeros) and
    # ::test_missing_value_handle_more_na (80 NaN rows labelled 0 among ones)
    rng = np.random.default_rng(0)
    X = np.full((100, 1), value)
    y = np.full(100, value)
    idx = rng.choice(100, n_true, replace=False)
    X[idx, 0] = np.nan
    y[idx] = 1 - value
    booster = _train({"metric": "l2", "boost_from_average": False}, X, y, 20)
    _assert_lgb(booster, X, ["Column_0"])
    got = load_model(booster.model_to_string().encode()).predict(X)[:, 0]
    assert np.mean((got - y) ** 2) < 0.005  # the peer's own bound


_ONE_SPLIT = {"objective": "regression", "metric": "auc", "boost_from_average": False,
              "min_data": 1, "num_leaves": 2, "learning_rate": 1, "min_data_in_bin": 1}
_X9 = np.array([0, 1, 2, 3, 4, 5, 6, 7, np.nan])[:, None]
# Rows around every split point a one-feature model can have, NaN, zero, the "zero band"
# |x| <= 1e-35f, infinities and huge values.
_PROBE = np.array([np.nan, 0.0, -0.0, 1e-36, -1e-36, 1e-30, 0.5, 1, 1.5, 2.5, 3, 3.5, 4, 4.5,
                   7, 8, 100, -1, -100, np.inf, -np.inf, 1e300, -1e300])[:, None]


@pytest.mark.parametrize("case, y, extra, published", [
    # LightGBM test_engine.py::test_missing_value_handle_na: NaN takes the side of the low values
    ("na", [1, 1, 1, 1, 0, 0, 0, 0, 1], {"zero_as_missing": False}, [1, 1, 1, 1, 0, 0, 0, 0, 1]),
    # ::test_missing_value_handle_zero: zero and NaN are one missing value
    ("zero", [0, 1, 1, 1, 0, 0, 0, 0, 0], {"zero_as_missing": True}, [0, 1, 1, 1, 0, 0, 0, 0, 0]),
    # ::test_missing_value_handle_none: use_missing=False, NaN is read as 0
    ("none", [0, 1, 1, 1, 0, 0, 0, 0, 0], {"use_missing": False}, None),
])
def test_lgb_missing_value_types(case, y, extra, published):
    booster = _train(dict(_ONE_SPLIT, **extra), _X9, np.array(y, float), 1)
    model, ref = _assert_lgb(booster, _X9, ["Column_0"])
    if published is not None:
        np.testing.assert_allclose(ref[:, 0], published)  # the peer's own assertion
    else:
        assert ref[0, 0] == pytest.approx(ref[1, 0]) and ref[-1, 0] == pytest.approx(ref[0, 0])
    _check_all_paths(model, _lgb_ref(booster, _PROBE), _PROBE)


# -- LightGBM: categorical splits ------------------------------------------------------------

_CAT = dict(_ONE_SPLIT, min_data_per_group=1, cat_smooth=1, cat_l2=0, max_cat_to_onehot=1,
            categorical_column=0)
# unseen categories (8, 100, 2**31 - 1), negatives (-1 goes right, -0.5 is category 0),
# fractions (1.7 is category 1), NaN, infinities and values outside int32
_CAT_PROBE = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 100, 2**31 - 1, 2**31, 2**40, -1, -0.5, 0.5,
                       1.7, np.nan, np.inf, -np.inf, -2**31, 1e300])[:, None].astype(float)


@pytest.mark.parametrize("quantized", [False, True])
@pytest.mark.parametrize("x, y, zero_as_missing", [
    # LightGBM test_engine.py::test_categorical_handle
    ([0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 0, 1, 0, 1, 0, 1], True),
    # ::test_categorical_handle_na
    ([0, np.nan, 0, np.nan, 0, np.nan], [0, 1, 0, 1, 0, 1], False),
    # ::test_categorical_non_zero_inputs
    ([1, 1, 1, 1, 1, 1, 2, 2], [1, 1, 1, 1, 1, 1, 0, 0], False),
])
def test_lgb_categorical_splits(quantized, x, y, zero_as_missing):
    X = np.array(x, float)[:, None]
    params = dict(_CAT, zero_as_missing=zero_as_missing, use_quantized_grad=quantized)
    booster = _train(params, X, np.array(y, float), 1)
    model, ref = _assert_lgb(booster, X, ["Column_0"])
    np.testing.assert_allclose(ref[:, 0], y)  # the peer's own assertion
    assert any(t.cat_bits for t in model.ensemble.trees)
    _check_all_paths(model, _lgb_ref(booster, _CAT_PROBE), _CAT_PROBE)


# -- LightGBM: objectives, boosting types, multiclass ----------------------------------------


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(return_X_y=True)


def _with_holes(X, seed, frac=0.05):
    """X with NaN in a fraction of its cells (every model path below sees missing values)."""
    X = np.array(X, float)
    X[np.random.default_rng(seed).random(X.shape) < frac] = np.nan
    return X


@pytest.mark.parametrize("params", [
    # LightGBM test_engine.py::test_binary
    {"objective": "binary"},
    # ::test_rf (boosting_type rf: the trees' outputs are averaged)
    {"boosting_type": "rf", "objective": "binary", "bagging_freq": 1, "bagging_fraction": 0.5,
     "feature_fraction": 0.5, "num_leaves": 50},
    # ::test_constant_features_binary's objective with a sigmoid other than 1
    {"objective": "binary", "sigmoid": 0.7},
    {"objective": "cross_entropy"},
])
def test_lgb_binary_and_rf(params):
    X, y = _breast_cancer()
    booster = _train(params, X, y, 20)
    model, _ = _assert_lgb(booster, _with_holes(X, 1))
    if params.get("boosting_type") == "rf":
        assert model.ensemble.average_over == 20


@pytest.mark.parametrize("objective", ["regression", "regression_l1", "huber", "fair", "poisson",
                                       "quantile", "gamma", "tweedie", "mape"])
def test_lgb_regression_objectives(objective):
    # LightGBM test_engine.py::test_regression (regression, regression_l1, huber, fair,
    # poisson, quantile; y = |y|), plus the other objectives the native scorer reads
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=400, n_features=8, random_state=42)
    y = np.abs(y) + 1.0
    booster = _train({"objective": objective}, X, y, 25)
    _assert_lgb(booster, _with_holes(X, 2))


@pytest.mark.parametrize("how", ["dart", "goss", "continue", "continue_dart", "refit",
                                 "extra_trees", "monotone"])
def test_lgb_boosting_variants(how):
    # LightGBM test_engine.py::test_continue_train (init_model from a saved file),
    # ::test_continue_train_dart, ::test_refit (leaf values refitted on new rows),
    # ::test_goss_boosting_and_strategy_equivalent, ::test_extra_trees,
    # ::test_monotone_constraints: whatever made the trees, the saved text scores as predict()
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=400, n_features=6, random_state=42)
    params = {"objective": "regression"}
    if how in ("dart", "continue_dart"):
        params["boosting_type"] = "dart"
    elif how == "goss":
        params["data_sample_strategy"] = "goss"
    elif how == "extra_trees":
        params["extra_trees"] = True
    elif how == "monotone":
        params["monotone_constraints"] = [1, -1, 0, 0, 0, 0]
    booster = _train(params, X[:300], y[:300], 10)
    if how.startswith("continue"):
        init = load_model(booster.model_to_string().encode())  # the init model scores too
        np.testing.assert_allclose(init.predict(X), _lgb_ref(booster, X), rtol=0, atol=TOL)
        booster = lgb.train(dict(params, verbose=-1, num_threads=1), lgb.Dataset(X[:300], y[:300]),
                            num_boost_round=10, init_model=booster)
        assert booster.current_iteration() == 20
    elif how == "refit":
        booster = booster.refit(X[300:], y[300:])
    _assert_lgb(booster, _with_holes(X, 10))


def test_lgb_custom_objective_scores_raw():
    # LightGBM test_engine.py::test_objective_callable_train_binary_classification: a model
    # trained with a callable objective is saved with objective "none" and predicts raw scores
    # (value), which fastengage gives as they are; the peer's published log loss and AUC of
    # sigmoid(raw) hold for our scores too
    from sklearn.metrics import log_loss, roc_auc_score

    def logloss_obj(preds, train_data):
        y_pred = 1.0 / (1.0 + np.exp(-preds))
        return y_pred - train_data.get_label(), y_pred * (1.0 - y_pred)

    X, y = _breast_cancer()
    booster = lgb.train({"verbose": -1, "objective": logloss_obj, "learning_rate": 0.01},
                        lgb.Dataset(X, y), num_boost_round=20)
    model, ref = _assert_lgb(booster, X)
    assert model.kind == "regressor" and model.output_names == ["value"]
    p = 1.0 / (1.0 + np.exp(-model.predict(X)[:, 0]))
    assert log_loss(y, p) == pytest.approx(0.547907)
    assert roc_auc_score(y, p) == pytest.approx(0.995944)


@pytest.mark.parametrize("objective", ["lambdarank", "rank_xendcg"])
def test_lgb_ranking_objectives(objective):
    # LightGBM test_engine.py::test_ranking_prediction_early_stopping (rank_xendcg) and
    # ::test_ranking_with_position_information_with_dataset_constructor (lambdarank): ranking
    # models score raw relevance (value); groups of 10 rows, graded labels 0..2
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 6))
    y = np.clip(np.round(X[:, 0] + 0.5 * X[:, 1] + rng.normal(size=500) * 0.3 + 1), 0, 2)
    booster = _train({"objective": objective}, X, y, 10, group=[10] * 50)
    model, _ = _assert_lgb(booster, _with_holes(X, 9))
    assert model.output_names == ["value"]


@pytest.mark.parametrize("params", [
    # LightGBM test_engine.py::test_multiclass (digits, 10 classes)
    {"objective": "multiclass", "num_class": 10},
    # ::test_multiclass_rf
    {"boosting_type": "rf", "objective": "multiclass", "bagging_freq": 1, "bagging_fraction": 0.6,
     "feature_fraction": 0.6, "num_class": 10, "num_leaves": 50, "min_data": 1},
    # ::test_constant_features_multiclassova's objective
    {"objective": "multiclassova", "num_class": 10},
])
def test_lgb_multiclass(params):
    from sklearn.datasets import load_digits

    X, y = load_digits(n_class=10, return_X_y=True)
    booster = _train(params, X[::2], y[::2], 8)
    model, ref = _assert_lgb(booster, _with_holes(X[1::2], 3, 0.02))
    assert model.output_names == [f"probability_{k}" for k in range(10)]
    assert ref.shape == (X[1::2].shape[0], 10)


@pytest.mark.parametrize("params, y, published", [
    # LightGBM test_engine.py::check_constant_features, one constant feature, boost_from_average
    ({"objective": "regression"}, [0.0, 10.0, 0.0, 10.0], [5.0]),        # ::test_..._regression
    ({"objective": "regression"}, [0.0, 1.0, 2.0, 3.0], [1.5]),
    ({"objective": "regression"}, [-1.0, 1.0, -2.0, 2.0], [0.0]),
    ({"objective": "binary"}, [0.0, 10.0, 0.0, 10.0], [0.5, 0.5]),          # ::test_..._binary
    ({"objective": "binary"}, [0.0, 1.0, 2.0, 3.0], [0.25, 0.75]),  # (labels > 0 are positive)
    ({"objective": "multiclass", "num_class": 3}, [0.0, 1.0, 2.0, 0.0], [0.5, 0.25, 0.25]),
    ({"objective": "multiclass", "num_class": 3}, [0.0, 1.0, 2.0, 1.0], [0.25, 0.5, 0.25]),
    ({"objective": "multiclassova", "num_class": 3}, [0.0, 1.0, 2.0, 0.0], [0.5, 0.25, 0.25]),
    ({"objective": "multiclassova", "num_class": 3}, [0.0, 1.0, 2.0, 1.0], [0.25, 0.5, 0.25]),
])
def test_lgb_constant_features(params, y, published):
    # Trees of one leaf each (a constant feature cannot split): the model is its base score.
    X = np.ones((len(y), 1))
    base = {"num_class": 1, "min_data": 1, "num_leaves": 2, "learning_rate": 1,
            "min_data_in_bin": 1, "boost_from_average": True}
    booster = _train(dict(base, **params), X, np.array(y), 2)
    model, ref = _assert_lgb(booster, X, ["Column_0"])
    assert all(t.n_internal == 0 for t in model.ensemble.trees)
    np.testing.assert_allclose(ref, np.tile(published, (len(y), 1)), atol=1e-6)
    probe = np.array([[np.nan], [0.0], [-1e300], [np.inf]])
    _check_all_paths(model, _lgb_ref(booster, probe), probe)


# -- LightGBM: iterations, early stopping, init_score, single-leaf trees ---------------------


@pytest.mark.parametrize("params", [
    {"objective": "regression", "learning_rate": 0.5},
    {"objective": "multiclass", "num_class": 3},
    {"objective": "binary"},
])
def test_lgb_start_and_num_iteration(params):
    # LightGBM test_engine.py::test_predict_with_start_iteration and ::test_early_stopping:
    # a model saved with start_iteration/num_iteration (or at its early-stopping best
    # iteration, what save_model writes by default) scores as predict() with the same window.
    from sklearn.datasets import load_iris, make_regression

    if params["objective"] == "regression":
        X, y = make_regression(n_samples=300, n_features=6, random_state=0)
    elif params["objective"] == "multiclass":
        X, y = load_iris(return_X_y=True)
    else:
        X, y = _breast_cancer()
    rng = np.random.default_rng(0)
    valid = rng.random(len(y)) < 0.2
    train_set = lgb.Dataset(X[~valid], y[~valid])
    booster = lgb.train(dict(params, verbose=-1, num_threads=1), train_set, num_boost_round=30,
                        valid_sets=[lgb.Dataset(X[valid], y[valid], reference=train_set)],
                        callbacks=[lgb.early_stopping(3, verbose=False)])
    Xh = _with_holes(X, 4)
    best = booster.best_iteration
    assert 1 <= best <= 30
    # save_model()/model_to_string() default to the best iteration, as predict() does
    _assert_lgb(booster, Xh)
    for start, num in [(0, 1), (0, best), (2, 3), (min(5, best - 1), 0), (1, -1)]:
        if start >= booster.current_iteration():
            continue
        _assert_lgb(booster, Xh, start_iteration=start, num_iteration=num)


@pytest.mark.parametrize("use_init_score", [False, True])
def test_lgb_predict_stump(use_init_score):
    # LightGBM test_engine.py::test_predict_stump: a model of stumps predicts the labels'
    # log-odds (or 0 raw, probability 1/2, with an init_score), for 1 iteration and for all
    X, y = _breast_cancer()
    kw = {"init_score": np.random.default_rng(0).uniform(size=y.shape)} if use_init_score else {}
    booster = _train({"objective": "binary", "min_data_in_leaf": X.shape[0]}, X, y, 5, **kw)
    for num_iteration in (1, None):
        model, ref = _assert_lgb(booster, X, num_iteration=num_iteration)
        assert all(t.n_internal == 0 for t in model.ensemble.trees)
        raw = 0.0 if use_init_score else np.log(y.mean() / (1.0 - y.mean()))
        np.testing.assert_allclose(ref[:, 1], 1 / (1 + np.exp(-raw)))  # the peer's assertion


def test_lgb_boost_from_average_with_single_leaf_trees():
    # LightGBM test_engine.py::test_boost_from_average_with_single_leaf_trees (issue #4708):
    # float32 training rows, extra trees, some trees of a single leaf
    X = np.array([[1021.0589, 1018.9578], [1023.85754, 1018.7854], [1024.5468, 1018.88513],
                  [1019.02954, 1018.88513], [1016.79926, 1018.88513], [1007.6, 1018.88513]],
                 dtype=np.float32)
    y = np.array([1023.8, 1024.6, 1024.4, 1023.8, 1022.0, 1014.4], dtype=np.float32)
    params = {"extra_trees": True, "min_data_in_bin": 1, "extra_seed": 7,
              "objective": "regression", "boost_from_average": True, "min_data_in_leaf": 1}
    booster = _train(params, X, y, 10)
    model = _load(booster)
    ref = _lgb_ref(booster, X)  # LightGBM reads the float32 matrix as is
    assert y.min() <= ref.mean() <= y.max()  # the peer's assertion
    np.testing.assert_allclose(model.predict(X), ref, rtol=0, atol=TOL)  # float32 matrix
    table = pa.table({"Column_0": X[:, 0], "Column_1": X[:, 1]})  # float32 Arrow columns
    assert table.schema.field(0).type == pa.float32()
    np.testing.assert_allclose(_scores(model.score(table)), ref, rtol=0, atol=TOL)


@pytest.mark.parametrize("params", [
    # LightGBM test_engine.py::test_linear_trees (regression, with NaN in the data: a leaf
    # whose linear features hold a NaN falls back to its constant value)
    {"objective": "regression", "linear_tree": True},
    {"objective": "regression", "linear_tree": True, "linear_lambda": 0.1},
    # ::test_linear_single_leaf (binary; min_sum_hessian makes every tree a single leaf)
    {"objective": "binary", "linear_tree": True, "min_sum_hessian": 5000},
    {"objective": "binary", "linear_tree": True},
    # ::test_save_and_load_linear (multiclass objective with linear trees; categorical splits)
    {"objective": "multiclass", "num_class": 3, "linear_tree": True},
])
def test_lgb_linear_trees(params):
    # Linear trees were refused with a ModelFormatError before session 11; they now run in the
    # general-layout kernel: leaf_const + sum(coeff * x) over the leaf's features (x in the
    # zero band |x| <= 1e-35f read as 0, as LightGBM's predictor does), or the leaf's
    # constant if one of those features is NaN.
    X, y = _breast_cancer()
    X = X[:, :8].copy()
    if params["objective"] == "multiclass":
        y = np.digitize(X[:, 0], np.quantile(X[:, 0], [0.33, 0.66]))
        X[:, 7] = np.arange(len(X)) % 4  # a categorical column among linear ones
    elif params["objective"] == "regression":
        y = X[:, 0] * 2 + X[:, 1] ** 2 * 0.01
    Xtrain = _with_holes(X, 7, 0.1)
    kw = {"categorical_feature": [7]} if params["objective"] == "multiclass" else {}
    booster = _train(params, Xtrain, y, 6, **kw)
    probe = _with_holes(X, 8, 0.1)
    probe[:4] = 1e-36  # the zero band
    probe[4:8] = -1e-40
    probe[8, :] = np.inf
    probe[9, 0] = 1e300
    model, _ = _assert_lgb(booster, probe)
    assert model.ensemble.layout == "general"
    assert any(t.linear is not None for t in model.ensemble.trees)
    assert len(probe) > 512  # the threaded path; results never depend on the thread count
    np.testing.assert_array_equal(model.predict(probe, n_threads=1),
                                  model.predict(probe, n_threads=3))
    if params.get("min_sum_hessian"):
        assert all(t.n_internal == 0 for t in model.ensemble.trees)


def test_lgb_linear_tree_hostile_fields():
    # a linear tree whose counts, features or coefficients do not fit is a ModelFormatError
    X, y = _breast_cancer()
    text = _train({"objective": "binary", "linear_tree": True}, X[:, :4], y, 2).model_to_string()
    import re

    for pattern, repl in [(r"num_features=(\d+)", "num_features=-1"),
                          (r"leaf_features=(\d+)", "leaf_features=99"),
                          (r"leaf_coeff=([^ \n]+)", "leaf_coeff=nan"),
                          (r"leaf_const=([^ \n]+)", "leaf_const=x")]:
        bad = re.sub(pattern, repl, text, count=1)
        assert bad != text
        with pytest.raises(ModelFormatError):
            load_model(bad.encode())


# -- LightGBM: input types, names and layouts ------------------------------------------------


def test_lgb_numpy_dtypes_as_arrow_types():
    # LightGBM test_engine.py::test_pandas_with_numpy_regular_dtypes: uint8..uint64,
    # int8..int64, bool, float16, float32 and float64 columns give the float64 predictions
    rng = np.random.default_rng(42)
    n = 100
    X = np.column_stack([rng.integers(0, 2, n), rng.integers(1, 3, n),
                         10 * rng.integers(1, 3, n), 100 * rng.integers(1, 3, n)]).astype(float)
    y = X[:, 0] * (X[:, 1] + X[:, 2] + X[:, 3])
    names = ["x1", "x2", "x3", "x4"]
    booster = _train({"objective": "l2", "num_leaves": 31, "min_child_samples": 1}, X, y, 5,
                     feature_name=names)
    model = _load(booster)
    ref = _lgb_ref(booster, X)
    for types in (["uint8", "uint16", "uint32", "uint64"], ["int8", "int16", "int32", "int64"],
                  ["bool", "float16", "float32", "float64"]):
        table = pa.table({name: pa.array(X[:, j].astype(t)) for j, (name, t)
                          in enumerate(zip(names, types))})
        np.testing.assert_allclose(_scores(model.score(table)), ref, rtol=0, atol=TOL)


def test_lgb_nullable_dtypes():
    # LightGBM test_engine.py::test_pandas_nullable_dtypes: Int32 / Float64 / boolean columns
    # with missing values (Arrow nulls) equal the float64 NaN predictions
    rng = np.random.default_rng(42)
    x1 = rng.integers(1, 3, 100).astype(float)
    x2 = np.linspace(-1, 1, 100)
    x3 = rng.integers(0, 11, 100).astype(float)
    x4 = (rng.uniform(size=100) < 0.5).astype(float)
    x1[1], x2[2], x4[3] = np.nan, np.nan, np.nan
    X = np.column_stack([x1, x2, x3, x4])
    y = np.nan_to_num(x1 * x2 + x3 * (1 + x4))
    names = ["x1", "x2", "x3", "x4"]
    booster = _train({"objective": "l2", "num_leaves": 31, "min_child_samples": 1}, X, y, 5,
                     feature_name=names)
    model = _load(booster)
    ref = _lgb_ref(booster, X)
    table = pa.table({
        "x1": pa.array(x1, mask=np.isnan(x1)).cast(pa.int32()),
        "x2": pa.array(x2, mask=np.isnan(x2)),
        "x3": pa.array(x3.astype(np.int64)),
        "x4": pa.array(x4, mask=np.isnan(x4)).cast(pa.bool_()),
    })
    assert [table.column(c).null_count for c in names] == [1, 1, 0, 1]
    np.testing.assert_allclose(_scores(model.score(table)), ref, rtol=0, atol=TOL)


def test_lgb_feature_names_and_validate_features():
    # LightGBM test_engine.py::test_feature_name_with_non_ascii (names kept through the model
    # text), ::test_feature_name (spaces become underscores in the model) and
    # ::test_validate_features (a renamed column is an error naming the expected feature)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 4))
    y = X[:, 0] - 2 * X[:, 2] + rng.normal(size=100) * 0.1
    names = ["F_零", "F_一", "F_二", "F_三"]
    booster = _train({}, X, y, 5, feature_name=names)
    model, ref = _assert_lgb(booster, _with_holes(X, 5))
    assert model.features == names == booster.feature_name()
    renamed = _table(X, names).rename_columns(["F_零", "F_一", "z", "F_三"])
    with pytest.raises(ColumnNotFoundError, match="F_二"):
        model.score(renamed)
    spaced = _train({}, X, y, 5, feature_name=["f 0", "f 1", "f 2", "f 3"])
    assert _load(spaced).features == spaced.feature_name() == ["f_0", "f_1", "f_2", "f_3"]
    # features= maps the user's own column names onto the model's order
    model = load_model(spaced.model_to_string().encode(), features=["f 0", "f 1", "f 2", "f 3"])
    got = _scores(model.score(_table(X, ["f 0", "f 1", "f 2", "f 3"])))
    np.testing.assert_allclose(got, _lgb_ref(spaced, X), rtol=0, atol=TOL)


def test_lgb_row_major_col_major_and_sliced_matrices():
    # LightGBM test_engine.py::test_equal_predict_from_row_major_and_col_major_data and
    # ::test_sliced_data: Fortran-ordered, sliced and float32 matrices predict alike
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=200, n_features=5, random_state=1)
    booster = _train({"num_leaves": 8}, X, y, 5)
    model = _load(booster)
    ref = _lgb_ref(booster, X)
    stacked = np.ones((204, 9))
    stacked[2:202, 2:7] = X
    for view in (np.asfortranarray(X), stacked[2:202, 2:7], X[::-1][::-1]):
        np.testing.assert_allclose(model.predict(view), ref, rtol=0, atol=TOL)
    X32 = X.astype(np.float32)
    np.testing.assert_allclose(model.predict(X32), _lgb_ref(booster, X32), rtol=0, atol=TOL)
    np.testing.assert_allclose(model.predict(stacked.astype(np.float32)[2:202, 2:7]),
                               _lgb_ref(booster, X32), rtol=0, atol=TOL)


# -- LightGBM: pandas category columns ---------------------------------------------------------


def _pandas_categorical_frames():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(7)
    X = pd.DataFrame({
        "A": rng.permutation(["a", "b", "c", "d"] * 75),  # str
        "B": rng.permutation([1, 2, 3] * 100),  # int
        "C": rng.permutation([0.1, 0.2, -0.1, -0.1, 0.2] * 60),  # float
        "D": rng.permutation([True, False] * 150),  # bool
        "E": pd.Categorical(rng.permutation(["z", "y", "x", "w", "v"] * 60), ordered=True),
    })
    y = rng.permutation([0, 1] * 150)
    X_test = pd.DataFrame({
        "A": rng.permutation(["a", "b", "e"] * 20),  # unseen category
        "B": rng.permutation([1, 3] * 30),
        "C": rng.permutation([0.1, -0.1, 0.2, 0.2] * 15),
        "D": rng.permutation([True, False] * 30),
        "E": pd.Categorical(rng.permutation(["z", "y"] * 30), ordered=True),
    })
    for col in "ABCD":
        X[col] = X[col].astype("category")
        X_test[col] = X_test[col].astype("category")
    X_test.loc[[3, 8], "B"] = None  # a missing category value
    return X, y, X_test


@pytest.mark.parametrize("categorical_feature", ["auto", [0], ["A", "B", "C", "D"],
                                                 ["A", "B", "C", "D", "E"], []])
def test_lgb_pandas_categorical(categorical_feature):
    # LightGBM test_engine.py::test_pandas_categorical: a model trained on pandas category
    # columns (str, int, float, bool, ordered) stores their categories (pandas_categorical)
    # and predicts on the categories' positions, an unseen one ("e") being missing. The same
    # frame as Arrow (dictionary columns, what pa.Table.from_pandas gives) or plain string
    # columns scores as Booster.predict(frame). Before the fix the int/float/bool dictionary
    # columns were decoded to their values (1, 2, 3 instead of codes 0, 1, 2): wrong numbers.
    X, y, X_test = _pandas_categorical_frames()
    booster = _train({"objective": "binary"}, X, y, 10, categorical_feature=categorical_feature)
    model = _load(booster)
    assert model.categories == booster.pandas_categorical
    ref = _lgb_ref(booster, X_test)
    table = pa.Table.from_pandas(X_test, preserve_index=False)
    assert pa.types.is_dictionary(table.schema.field("B").type)
    np.testing.assert_allclose(_scores(model.score(table)), ref, rtol=0, atol=TOL)
    np.testing.assert_allclose(_scores(model.score(table, batch_size=7)), ref, rtol=0, atol=TOL)
    plain = table.set_column(0, "A", table.column("A").cast(pa.string()))  # strings, not dict
    np.testing.assert_allclose(_scores(model.score(plain)), ref, rtol=0, atol=TOL)
    # the codes LightGBM itself feeds its trees (positions in the training categories, -1 ->
    # NaN) as plain numbers
    codes = np.column_stack([X_test[c].cat.set_categories(cats).cat.codes.to_numpy().astype(float)
                             for c, cats in zip("ABCDE", booster.pandas_categorical)])
    codes[codes == -1] = np.nan
    np.testing.assert_allclose(_scores(model.score(_table(codes, list("ABCDE")))), ref,
                               rtol=0, atol=TOL)
    np.testing.assert_allclose(model.predict(codes), ref, rtol=0, atol=TOL)
    # a category column missing among the others is an error naming the columns, as in
    # LightGBM ("train and valid dataset categorical_feature do not match")
    mixed = table.set_column(1, "B", pa.array(codes[:, 1]))
    with pytest.raises(InputError, match="pandas category column"):
        model.score(mixed)
    wrong_kind = table.set_column(0, "A", pa.array(np.arange(60)).dictionary_encode())
    with pytest.raises(InputError, match="'A'"):
        model.score(wrong_kind)


def test_lgb_pandas_categorical_from_polars():
    # The same rule for polars Categorical (Arrow dictionary<uint32, string_view>) and String
    # columns; the string_view dictionary used to fail inside Arrow's decode
    pl = pytest.importorskip("polars")
    X, y, X_test = _pandas_categorical_frames()
    train = X[["A"]].assign(n=np.arange(300) % 7 * 1.0)
    test = X_test[["A"]].assign(n=np.arange(60) % 5 * 1.5)
    booster = _train({"objective": "binary"}, train, y, 10)
    model = _load(booster)
    ref = _lgb_ref(booster, test)
    strings = pl.DataFrame({"A": test["A"].astype(str).tolist(), "n": test["n"].tolist()})
    categorical = strings.with_columns(pl.col("A").cast(pl.Categorical))
    for frame in (pl.from_pandas(test), strings, categorical):
        np.testing.assert_allclose(_scores(model.score(frame)), ref, rtol=0, atol=TOL)
    plain_train = train.assign(A=train["A"].cat.codes * 1.0)
    plain_booster = _train({"objective": "binary"}, plain_train, y, 3)
    plain = _load(plain_booster)  # trained on no category column (pandas_categorical: [])
    assert plain.categories == [] == plain_booster.pandas_categorical
    with pytest.raises(InputError, match="'A'.*expected a number"):
        plain.score(categorical)  # text is not a number for it
    # ...while a dictionary-encoded number column is read as its values (storage, not codes)
    numbers = pa.table({"A": pa.array(plain_train["A"].to_numpy()).dictionary_encode(),
                        "n": plain_train["n"].to_numpy()})
    np.testing.assert_allclose(_scores(plain.score(numbers)), _lgb_ref(plain_booster, plain_train),
                               rtol=0, atol=TOL)


def _codes_reference(values, categories):
    """Plain Python: position of each value in the list, NaN for None or an unseen value."""
    return np.array([float(categories.index(v)) if v is not None and v in categories
                     else np.nan for v in values])


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_category_codes_match_plain_reference(data):
    # fastengage.scoring._columns.category_codes (the pandas_categorical rule) against a plain
    # Python lookup, for text and integer categories, dictionary and plain columns, nulls
    from fastengage.scoring._columns import category_codes

    text = data.draw(st.booleans())
    element = st.sampled_from(["a", "b", "c", "zz", ""]) if text else st.integers(-3, 5)
    categories = data.draw(st.lists(element, unique=True, max_size=4))
    values = data.draw(st.lists(st.one_of(st.none(), element), max_size=30))
    array = pa.array(values, pa.string() if text else pa.int64())
    if data.draw(st.booleans()):
        array = array.dictionary_encode()
    if text and data.draw(st.booleans()) and not pa.types.is_dictionary(array.type):
        array = array.cast(pa.large_string())
    got = category_codes(array, "c", categories, "nan")
    np.testing.assert_array_equal(got, _codes_reference(values, categories))
    if any(v is None for v in values):
        with pytest.raises(InputError, match="'c'"):
            category_codes(array, "c", categories, "error")


# -- ONNX Runtime: TreeEnsembleClassifier / TreeEnsembleRegressor -----------------------------
# The hand-made models and published outputs of onnxruntime's own operator tests
# (onnxruntime/test/providers/cpu/ml/tree_ensembler_classifier_test.cc, treeregressor_test.cc).

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

_ORT_TREES = dict(  # the three trees every classifier test of tree_ensembler_classifier_test.cc uses
    nodes_truenodeids=[1, -1, 3, -1, -1, 1, -1, 3, 4, -1, -1, -1, 1, 2, -1, 4, -1, -1, -1],
    nodes_falsenodeids=[2, -1, 4, -1, -1, 2, -1, 6, 5, -1, -1, -1, 6, 3, -1, 5, -1, -1, -1],
    nodes_treeids=[0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2],
    nodes_nodeids=[0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6],
    nodes_featureids=[2, -2, 0, -2, -2, 0, -2, 2, 1, -2, -2, -2, 0, 2, -2, 1, -2, -2, -2],
    nodes_values=[-172.0, -2.0, 2.5, -2.0, -2.0, 1.5, -2.0, -62.5, 213.09999084, -2.0, -2.0, -2.0,
                  27.5, -172.0, -2.0, 8.10000038, -2.0, -2.0, -2.0],
    nodes_modes=["BRANCH_LEQ", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF",
                 "BRANCH_LEQ", "BRANCH_LEQ", "LEAF", "LEAF", "LEAF", "BRANCH_LEQ", "BRANCH_LEQ",
                 "LEAF", "BRANCH_LEQ", "LEAF", "LEAF", "LEAF"],
    class_treeids=[0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2],
    class_nodeids=[1, 3, 4, 1, 4, 5, 6, 2, 4, 5, 6],
)
_ORT_X = np.array([1.0, 0.0, 0.4, 3.0, 44.0, -3.0, 12.0, 12.9, -312.0, 23.0, 11.3, -222.0, 23.0,
                   11.3, -222.0, 23.0, 3311.3, -222.0, 23.0, 11.3, -222.0, 43.0, 413.3, -114.0],
                  np.float32).reshape(8, 3)
# edge rows beyond the peer's: NaN, infinities, the thresholds themselves, huge values
_ORT_EDGE = np.array([[np.nan, np.nan, np.nan], [2.5, 213.09999084, -172.0],
                      [1.5, 8.10000038, -62.5], [27.5, np.inf, -np.inf], [-np.inf, 1e30, 1e30],
                      [np.nan, 0.0, -172.0]], np.float32)


def _onnx_model(op, attrs, n_features, dtype=np.float32, label_type=TensorProto.INT64,
                n_out=None, ml_opset=1):
    elem = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("X", elem, [None, n_features])]
    if op == "TreeEnsembleClassifier":
        outputs = [helper.make_tensor_value_info("Y", label_type, [None]),
                   helper.make_tensor_value_info("Z", TensorProto.FLOAT, [None, n_out])]
    else:
        outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, n_out])]
    node = helper.make_node(op, ["X"], [o.name for o in outputs], domain="ai.onnx.ml", **attrs)
    graph = helper.make_graph([node], "peer", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid("ai.onnx.ml", ml_opset)])
    model.ir_version = 8
    return model.SerializeToString()


def _ort_scores(blob, X, threads=1):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(blob, so, providers=["CPUExecutionProvider"])
    out = sess.run(None, {"X": X})[-1]
    return np.asarray(out).reshape(X.shape[0], -1)


def _check_onnx(blob, X, published=None, names=("a", "b", "c"), backend="native-trees"):
    """fastengage's native scores of X == ONNX Runtime's, bit for bit (and == the published
    outputs of the peer's test), on the NumPy and Arrow paths, one row and many."""
    model = load_model(blob, features=list(names))
    assert model.backend == backend, model.note
    if backend == "native-trees":
        model.match_onnxruntime(1)
    ref = _ort_scores(blob, X)
    got = model.predict(X, n_threads=1)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ref)
    table = _table(X.astype(np.float64), names, dtype=X.dtype)
    np.testing.assert_array_equal(_scores(model.score(table, n_threads=1, nulls="nan")), ref)
    for i in range(X.shape[0]):  # one row at a time (the serving path)
        np.testing.assert_array_equal(model.predict(X[i:i + 1], n_threads=1), ref[i:i + 1])
    if published is not None:
        np.testing.assert_allclose(got[:len(published)], published, rtol=1e-6, atol=1e-7)
    return model


def test_ort_tree_ensemble_classifier():
    # tree_ensembler_classifier_test.cc::TreeEnsembleClassifier (ai.onnx.ml opsets 1 and 3),
    # ::TreeEnsembleClassifier_N1 (one row): four classes, post_transform NONE
    attrs = dict(_ORT_TREES, class_ids=[2, 0, 1, 0, 2, 3, 1, 2, 0, 1, 3],
                 class_weights=[1.0, 4.0, 1.0, 2.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 3.0],
                 classlabels_int64s=[0, 1, 2, 3])
    published = np.array([7, 0, 0, 0, 0, 4, 0, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0, 2, 1,
                          0, 0, 3, 0, 0, 1, 0, 4], np.float32).reshape(8, 4)
    X = np.vstack([_ORT_X, _ORT_EDGE])
    for opset in (1, 3):
        model = _check_onnx(_onnx_model("TreeEnsembleClassifier", attrs, 3, n_out=4,
                                        ml_opset=opset), X, published)
        assert model.output_names == ["probability_0", "probability_1", "probability_2",
                                      "probability_3"]


def test_ort_tree_ensemble_classifier_as_tensor():
    # tree_ensembler_classifier_test.cc::TreeEnsembleClassifier_as_tensor: double thresholds
    # and weights (nodes_values_as_tensor / class_weights_as_tensor), double input
    attrs = {k: v for k, v in _ORT_TREES.items() if k != "nodes_values"}
    thresholds = np.array(_ORT_TREES["nodes_values"], np.float32).astype(np.float64)
    weights = np.array([1.0, 4.0, 1.0, 2.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 3.0])
    attrs.update(nodes_values_as_tensor=helper.make_tensor("nodes_values_as_tensor",
                                                           TensorProto.DOUBLE, [19], thresholds),
                 class_weights_as_tensor=helper.make_tensor("class_weights_as_tensor",
                                                            TensorProto.DOUBLE, [11], weights),
                 class_ids=[2, 0, 1, 0, 2, 3, 1, 2, 0, 1, 3], classlabels_int64s=[0, 1, 2, 3])
    published = np.array([7, 0, 0, 0, 0, 4, 0, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0, 2, 1,
                          0, 0, 3, 0, 0, 1, 0, 4], np.float32).reshape(8, 4)
    X = np.vstack([_ORT_X, _ORT_EDGE]).astype(np.float32).astype(np.float64)
    _check_onnx(_onnx_model("TreeEnsembleClassifier", attrs, 3, np.float64, n_out=4, ml_opset=3),
                X, published)


@pytest.mark.parametrize("case", ["labels", "binary", "binary_probabilities", "class_one_only",
                                  "both_always"])
def test_ort_tree_ensemble_classifier_two_classes(case):
    # tree_ensembler_classifier_test.cc::TreeEnsembleClassifierLabels (string labels, one
    # weight column: scores [-s, s]), ::TreeEnsembleClassifierBinary (a single class label,
    # one score column) and ::TreeEnsembleClassifierBinaryProbabilities (two weight columns,
    # LOGISTIC per column)
    weights = [-1.0, 4.0, -1.0, 2.0, -1.0, 1.0, -2.0, 1.0, -1.0, 2.0, -3.0]
    attrs = dict(_ORT_TREES, class_weights=weights, class_ids=[0] * 11)
    label_type = TensorProto.INT64
    if case == "labels":
        attrs["classlabels_strings"] = ["label0", "label1"]
        label_type, n_out = TensorProto.STRING, 2
        published = np.array([-5, 5, 1, -1, 1, -1, 1, -1, 1, -1, -1, 1, 1, -1, 3, -3],
                             np.float32).reshape(8, 2)
        names = ["probability_label0", "probability_label1"]
    elif case == "binary":
        attrs["classlabels_int64s"] = [1]
        n_out = 1
        published = np.array([5, -1, -1, -1, -1, 1, -1, -3], np.float32).reshape(8, 1)
        names = ["probability_1"]
    else:
        attrs.update(classlabels_int64s=[0, 1], post_transform="LOGISTIC",
                     class_ids=[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
        n_out = 2
        published = np.array([0.00669282, 0.99330717, 0.04742586, 0.88079702, 0.73105859,
                              0.26894142, 0.73105859, 0.26894142, 0.73105859, 0.26894142,
                              0.26894140, 0.73105859, 0.73105859, 0.26894142, 0.5, 0.04742586],
                             np.float32).reshape(8, 2)
        names = ["probability_0", "probability_1"]
    if case in ("class_one_only", "both_always"):  # beyond the peer: its weights on class 1
        attrs.update(classlabels_int64s=[0, 1], post_transform="LOGISTIC", class_ids=[1] * 11)
        n_out, published, names = 2, None, ["probability_0", "probability_1"]
        if case == "both_always":  # ... and on class 0 as well, at every leaf
            for key in ("class_treeids", "class_nodeids", "class_weights"):
                attrs[key] = list(attrs[key]) * 2
            attrs["class_ids"] = [0] * 11 + [1] * 11
            attrs["class_weights"] = list(np.linspace(-2, 2, 22))
            leaves = [(t, n) for t, n, m in zip(_ORT_TREES["nodes_treeids"],
                                                _ORT_TREES["nodes_nodeids"],
                                                _ORT_TREES["nodes_modes"]) if m == "LEAF"]
            votes = set(zip(attrs["class_treeids"], attrs["class_nodeids"]))
            missing = [leaf for leaf in leaves if leaf not in votes and leaf[0] == 1]
            for t, n in missing:  # every leaf of tree 1 votes for class 1
                attrs["class_treeids"].append(t)
                attrs["class_nodeids"].append(n)
                attrs["class_ids"].append(1)
                attrs["class_weights"].append(0.25)
    # ONNX Runtime's FinalizeScores gives a row whose leaves hold no class-1 weight the binary
    # output [T(-s0), T(s0)] and the other rows [T(s0), T(s1)]: the native kernel does not
    # reproduce that row-dependent rule, so such models run on ONNX Runtime (model.note says
    # why). Before the fix they were scored natively as [T(s0), T(s1)] on every row: row 0 of
    # ::TreeEnsembleClassifierBinaryProbabilities came out [0.9933, 0.5], not [0.0067, 0.9933].
    # (class_one_only: tree 0 has a class-1 weight at every leaf, so every row has a class-1
    # score and no row takes the binary output)
    backend = "onnxruntime" if case == "binary_probabilities" else "native-trees"
    blob = _onnx_model("TreeEnsembleClassifier", attrs, 3, label_type=label_type, n_out=n_out)
    model = _check_onnx(blob, np.vstack([_ORT_X, _ORT_EDGE]), published, backend=backend)
    assert model.output_names == names
    if backend == "onnxruntime":
        assert "class-1 score exists on some rows only" in model.note


@pytest.mark.parametrize("attrs, message", [
    # ::TreeEnsembleClassifierMismatchedClassArrays
    ({"class_nodeids": [1]}, "differ in length"),
    # ::TreeEnsembleClassifierMismatchedNodeArrays
    ({"nodes_featureids": [0, -2]}, "differ in length"),
    # ::TreeEnsembleClassifierBaseValuesTooLargeForBinaryClass (ONNX Runtime refuses it too)
    ({"classlabels_int64s": [0], "class_ids": [0, 0], "base_values": [0.0, 0.0, 0.0]}, None),
    # ::TreeEnsembleClassifierBaseValuesWrongSizeMultiClass
    ({"classlabels_int64s": [0, 1, 2], "class_ids": [0, 2], "base_values": [0.0, 0.0]}, None),
])
def test_ort_tree_ensemble_classifier_malformed(attrs, message):
    # a malformed operator is a ModelFormatError at load or score, never scores
    base = dict(nodes_truenodeids=[1, -1, -1], nodes_falsenodeids=[2, -1, -1],
                nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, -2, -2],
                nodes_values=[0.5, -2.0, -2.0], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
                class_treeids=[0, 0], class_nodeids=[1, 2], class_ids=[0, 1],
                class_weights=[1.0, 1.0], classlabels_int64s=[0, 1])
    base.update(attrs)
    n_out = len(base["classlabels_int64s"])
    blob = _onnx_model("TreeEnsembleClassifier", base, 1, n_out=n_out)
    with pytest.raises(ModelFormatError, match=message):
        load_model(blob, features=["a"]).score(pa.table({"a": [1.0]}))


def test_ort_tree_ensemble_classifier_feature_out_of_range():
    # tree_ensembler_classifier_test.cc::TreeEnsembleClassifierFailShape: a split on feature 2
    # of a 2-feature input is a ModelFormatError (ONNX Runtime: "One path in the graph
    # requests feature 2 but input tensor has 2 features")
    attrs = dict(_ORT_TREES, class_ids=[2, 0, 1, 0, 2, 3, 1, 2, 0, 1, 3],
                 class_weights=[1.0] * 11, classlabels_int64s=[0, 1, 2, 3])
    blob = _onnx_model("TreeEnsembleClassifier", attrs, 2, n_out=4)
    with pytest.raises(ModelFormatError):
        load_model(blob, features=["a", "b"]).score(pa.table({"a": [1.0], "b": [0.0]}))


_REG_TREES = dict(  # treeregressor_test.cc::GenTreeAndRunTest: 3 trees, 2 targets
    nodes_truenodeids=[1, 2, -1, -1, -1, 1, -1, 3, -1, -1, 1, -1, -1],
    nodes_falsenodeids=[4, 3, -1, -1, -1, 2, -1, 4, -1, -1, 2, -1, -1],
    nodes_treeids=[0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2],
    nodes_nodeids=[0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2],
    nodes_featureids=[2, 1, -2, -2, -2, 0, -2, 2, -2, -2, 1, -2, -2],
    nodes_values=[10.5, 13.10000038, -2.0, -2.0, -2.0, 1.5, -2.0, -213.0, -2.0, -2.0,
                  13.10000038, -2.0, -2.0],
    nodes_modes=["BRANCH_LEQ", "BRANCH_LEQ", "LEAF", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF",
                 "BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"],
    # weights on internal nodes (ids 0, 1 of tree 0...) are ignored, as ONNX Runtime does
    target_treeids=[0] * 10 + [1] * 10 + [2] * 6,
    target_nodeids=[0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 0, 0, 1, 1, 2, 2],
    target_ids=[0, 1] * 13,
    target_weights=[1.5, 27.5, 2.25, 20.75, 2.0, 23.0, 3.0, 14.0, 0.0, 41.0, 1.83333333, 24.5, 0.0,
                    41.0, 2.75, 16.25, 2.0, 23.0, 3.0, 14.0, 2.66666667, 17.0, 2.0, 23.0, 3.0,
                    14.0],
    n_targets=2,
)


@pytest.mark.parametrize("agg, base, published", [
    # treeregressor_test.cc::TreeRegressorMultiTargetAverage
    ("AVERAGE", [0.0, 0.0], [1.33333333, 29.0, 3.0, 14.0, 2.0, 23.0, 2.0, 23.0, 2.0, 23.0,
                             2.66666667, 17.0, 2.0, 23.0, 3.0, 14.0]),
    # ::TreeRegressorMultiTargetMin / Max (ONNX Runtime scores these: model.note says why)
    ("MIN", [5.0, 5.0], [5.0, 28.0, 8.0, 19.0, 7.0, 28.0, 7.0, 28.0, 7.0, 28.0, 7.0, 19.0, 7.0,
                         28.0, 8.0, 19.0]),
    ("MAX", [0.0, 0.0], [2.0, 41.0, 3.0, 14.0, 2.0, 23.0, 2.0, 23.0, 2.0, 23.0, 3.0, 23.0, 2.0,
                         23.0, 3.0, 14.0]),
    ("SUM", [0.5, -1.0], None),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # ::TreeRegressorMultiTargetMaxDouble
def test_ort_tree_regressor_multi_target(agg, base, published, dtype):
    attrs = dict(_REG_TREES, aggregate_function=agg, base_values=base)
    blob = _onnx_model("TreeEnsembleRegressor", attrs, 3, dtype, n_out=2)
    X = np.vstack([_ORT_X, _ORT_EDGE]).astype(dtype)
    published = None if published is None else np.array(published, np.float32).reshape(8, 2)
    if agg in ("MIN", "MAX"):
        model = load_model(blob, features=["a", "b", "c"])
        assert model.backend == "onnxruntime" and agg in model.note
        got = _scores(model.score(_table(X.astype(np.float64), "abc", dtype=dtype), nulls="nan"))
        np.testing.assert_array_equal(got, _ort_scores(blob, X))
        np.testing.assert_allclose(got[:8], published, rtol=1e-6)
        return
    _check_onnx(blob, X, published)


@pytest.mark.parametrize("agg", ["SUM", "AVERAGE"])
@pytest.mark.parametrize("n_obs", [1, 3, 201, 40002])
def test_ort_tree_regressor_single_target(agg, n_obs):
    # treeregressor_test.cc::TreeRegressorSingleTargetSum / ...SumBatch (201 and 40002 rows:
    # ONNX Runtime's batched paths) / ...Average; leaves point at node 0 (ignored on leaves)
    attrs = dict(nodes_truenodeids=[1, 0, 0, 1, 0, 0, 1, 0, 0],
                 nodes_falsenodeids=[2, 0, 0, 2, 0, 0, 2, 0, 0],
                 nodes_treeids=[0, 0, 0, 1, 1, 1, 2, 2, 2], nodes_nodeids=[0, 1, 2] * 3,
                 nodes_featureids=[0, 0, 0, 0, 0, 0, 1, 0, 0],
                 nodes_values=[1, 0, 0, 0.5, 0, 0, 0.5, 0, 0],
                 nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"] * 3,
                 target_treeids=[0, 0, 1, 1, 2, 2], target_nodeids=[1, 2] * 3, target_ids=[0] * 6,
                 target_weights=[33.33333, 16.66666, 33.33333, -3.33333, 16.66666, -3.333333],
                 n_targets=1, aggregate_function=agg)
    blob = _onnx_model("TreeEnsembleRegressor", attrs, 2, n_out=1)
    published = np.array([63.33333333, 26.66666667, 30.0], np.float32)
    if agg == "AVERAGE":
        published = published / np.float32(3)
    reps = max(1, n_obs // 3)
    X = np.tile(np.array([[0, 1], [1, 1], [2, 0]], np.float32), (reps, 1))[:n_obs]
    model = _check_onnx(blob, X[:201], np.tile(published, reps)[:min(n_obs, 201), None],
                        names=("a", "b"))
    for threads in (1, 2, 3):  # ONNX Runtime's thread split of the trees, reproduced
        model.match_onnxruntime(threads)
        np.testing.assert_array_equal(model.predict(X), _ort_scores(blob, X, threads))


# -- scikit-learn: trees and ensembles exported to ONNX, linear models -----------------------
# The peer's outputs are sklearn's own predict / predict_proba / decision_function; ONNX
# exports are also checked bit for bit against ONNX Runtime (float32 thresholds and sums).

from fastengage.scoring import LinearModel  # noqa: E402
from fastengage.scoring.export import sklearn_to_onnx  # noqa: E402

# sklearn/tree/tests/test_tree.py (and ensemble/tests/test_forest.py, test_gradient_boosting.py)
# toy sample: X, y, T and true_result
_TOY_X = [[-2, -1], [-1, -1], [-1, -2], [1, 1], [1, 2], [2, 1]]
_TOY_Y = [-1, -1, -1, 1, 1, 1]
_TOY_T = [[-1, -1], [2, 2], [3, 2]]
_TOY_TRUE = [-1, 1, 1]


def _fit1(estimator, X, y):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return estimator.fit(X, y)


def _sk_native(estimator, names, X, zipmap=True):
    """Export, load natively, and check against ONNX Runtime bit for bit; returns the scores."""
    blob = sklearn_to_onnx(estimator, names, zipmap=zipmap)
    model = load_model(blob)
    assert model.backend == "native-trees", model.note
    model.match_onnxruntime(1)
    X32 = np.asarray(X, np.float32)
    got = _scores(model.score(_table(X32.astype(np.float64), names, dtype=np.float32),
                              n_threads=1))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    one = ort.InferenceSession(blob, so, providers=["CPUExecutionProvider"])
    ref = one.run(None, {one.get_inputs()[0].name: X32})[-1]
    if isinstance(ref, list):  # ZipMap: one dict per row, keys in class order
        ref = np.array([[row[k] for k in estimator.classes_] for row in ref], np.float32)
    np.testing.assert_array_equal(got, np.asarray(ref).reshape(len(X32), -1))
    return model, got


@pytest.mark.parametrize("name", ["tree", "forest", "extra_trees", "gradient_boosting", "hgb"])
def test_sklearn_classification_toy(name):
    # sklearn tree/tests/test_tree.py::test_classification_toy, ensemble/tests/test_forest.py::
    # test_classification_toy, test_gradient_boosting.py::test_classification_toy: the class
    # of each test row (argmax over our probability columns, named by classes_) is
    # true_result, and the probabilities are predict_proba's
    from sklearn.ensemble import (ExtraTreesClassifier, GradientBoostingClassifier,
                                  HistGradientBoostingClassifier, RandomForestClassifier)
    from sklearn.tree import DecisionTreeClassifier

    est = {"tree": DecisionTreeClassifier(random_state=0),
           "forest": RandomForestClassifier(n_estimators=10, random_state=1),
           "extra_trees": ExtraTreesClassifier(n_estimators=10, random_state=1),
           "gradient_boosting": GradientBoostingClassifier(n_estimators=10, random_state=1),
           "hgb": HistGradientBoostingClassifier(max_iter=10, min_samples_leaf=1)}[name]
    _fit1(est, np.array(_TOY_X, float), _TOY_Y)
    model, got = _sk_native(est, ["x0", "x1"], _TOY_T)
    assert model.output_names == [f"probability_{c}" for c in est.classes_] == \
        ["probability_-1", "probability_1"]
    np.testing.assert_array_equal(est.classes_[got.argmax(axis=1)], _TOY_TRUE)
    np.testing.assert_allclose(got, est.predict_proba(np.array(_TOY_T, float)), atol=1e-6)


@pytest.mark.parametrize("name", ["tree", "forest", "hgb"])
def test_sklearn_iris_predict_proba(name):
    # sklearn tree/tests/test_tree.py::test_iris / ::test_probability and ensemble/tests/
    # test_forest.py::test_iris / ::test_probability: three classes, rows sum to one, string
    # class labels name the output columns in classes_ order
    from sklearn.datasets import load_iris
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    est = {"tree": DecisionTreeClassifier(random_state=0),
           "forest": RandomForestClassifier(n_estimators=8, random_state=0),
           "hgb": HistGradientBoostingClassifier(max_iter=15)}[name]
    _fit1(est, X, labels)
    model, got = _sk_native(est, ["sl", "sw", "pl", "pw"], X)
    assert model.classes == list(est.classes_)
    assert model.output_names == ["probability_setosa", "probability_versicolor",
                                  "probability_virginica"]
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(got, est.predict_proba(X.astype(np.float32)), atol=1e-5)


def test_sklearn_regression_toy_and_multioutput():
    # sklearn tree/tests/test_tree.py::test_regression_toy and ::test_multioutput (a regressor
    # with two targets gives value_0, value_1)
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.tree import DecisionTreeRegressor

    X = np.array(_TOY_X, float)
    reg = _fit1(DecisionTreeRegressor(random_state=1), X, _TOY_Y)
    model, got = _sk_native(reg, ["x0", "x1"], _TOY_T)
    np.testing.assert_allclose(got[:, 0], _TOY_TRUE)
    assert model.output_names == ["value"]
    y2 = np.column_stack([_TOY_Y, np.arange(6) * 0.5])
    for est in (DecisionTreeRegressor(random_state=0), RandomForestRegressor(5, random_state=0)):
        _fit1(est, X, y2)
        model, got = _sk_native(est, ["x0", "x1"], _TOY_T + _TOY_X)
        assert model.output_names == ["value_0", "value_1"]
        np.testing.assert_allclose(got, est.predict(np.array(_TOY_T + _TOY_X, float)), atol=1e-5)


def test_sklearn_hgb_missing_values_trivial():
    # sklearn ensemble/_hist_gradient_boosting/tests/test_gradient_boosting.py::
    # test_missing_values_trivial: y == isnan(X); the learnt missing-value direction must
    # survive export (nodes_missing_value_tracks_true) and native scoring: perfect accuracy,
    # and NaN given as an Arrow null or as NaN scores alike
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 1))
    mask = rng.binomial(1, 0.5, size=X.shape).astype(bool)
    X[mask] = np.nan
    y = mask.ravel()
    gb = _fit1(HistGradientBoostingClassifier(max_iter=20), X, y)
    model, got = _sk_native(gb, ["x"], X)
    np.testing.assert_array_equal(gb.classes_[got.argmax(axis=1)], y)
    np.testing.assert_allclose(got, gb.predict_proba(X.astype(np.float32)), atol=1e-5)
    nan_kept = _scores(model.score(pa.table({"x": X[:, 0]}), n_threads=1))
    np.testing.assert_array_equal(nan_kept, got)
    # ...and the regressor (missing values going to the side seen with NaN in training)
    reg = _fit1(HistGradientBoostingRegressor(max_iter=20), X, y.astype(float) * 3 - 1)
    model, got = _sk_native(reg, ["x"], X)
    np.testing.assert_allclose(got[:, 0], reg.predict(X.astype(np.float32)), atol=1e-5)


@pytest.mark.parametrize("case", ["binary", "multinomial", "ovr", "strings"])
def test_sklearn_logistic_predict_proba_and_decision_function(case):
    # sklearn linear_model/tests/test_logistic.py::test_predict_2_classes (binary),
    # ::test_predict_iris (multinomial, and one-vs-rest via OneVsRestClassifier): a
    # LinearModel built from coef_ / intercept_ gives predict_proba (and, with the identity
    # link, decision_function) in float64 to 1e-12, columns in classes_ order
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    X, y = load_iris(return_X_y=True)
    names = ["sl", "sw", "pl", "pw"]
    if case == "binary":
        y = (y == 2).astype(int)
    elif case == "strings":
        y = np.array(["b", "c", "a"])[y]  # classes_ sorted: a, b, c
    if case == "ovr":
        est = _fit1(OneVsRestClassifier(LogisticRegression(max_iter=500)), X, y)
        coef = np.vstack([e.coef_ for e in est.estimators_])
        icpt = np.concatenate([e.intercept_ for e in est.estimators_])
        decision = X @ coef.T + icpt
        model = LinearModel(coef, icpt, features=names, link="logistic",
                            classes=list(est.classes_), l1_normalize=True)
    else:
        est = _fit1(LogisticRegression(max_iter=500), X, y)
        coef, icpt = est.coef_, est.intercept_
        decision = est.decision_function(X)
        link = "logistic" if case == "binary" else "softmax"
        model = LinearModel(coef, icpt, features=names, link=link,
                            classes=[c.item() for c in est.classes_])
    table = _table(X, names)
    got = _scores(model.score(table))
    assert model.output_names == [f"probability_{c}" for c in est.classes_]
    np.testing.assert_allclose(got, est.predict_proba(X), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(est.classes_[got.argmax(axis=1)], est.predict(X))
    raw = LinearModel(coef, icpt, features=names)  # identity link: decision_function
    np.testing.assert_allclose(_scores(raw.score(table)), decision.reshape(len(X), -1),
                               rtol=0, atol=1e-12)
    if case != "ovr":  # the ONNX export runs on the native linear kernel, float32 precision
        blob = sklearn_to_onnx(est, names)
        onnx_model = load_model(blob)
        assert onnx_model.backend == "native-linear", onnx_model.note
        np.testing.assert_allclose(_scores(onnx_model.score(table)), est.predict_proba(X),
                                   atol=1e-5)


def test_sklearn_linear_regression_multiple_outcome():
    # sklearn linear_model/tests/test_base.py::test_linear_regression_multiple_outcome: two
    # targets, value_0 / value_1 equal predict; nulls are an error on the linear path
    from sklearn.datasets import make_regression
    from sklearn.linear_model import LinearRegression, Ridge

    X, y = make_regression(n_samples=200, n_features=5, n_targets=2, random_state=0)
    names = [f"x{j}" for j in range(5)]
    for est in (LinearRegression(), Ridge(alpha=0.5)):
        _fit1(est, X, y)
        model = LinearModel(est.coef_, est.intercept_, features=names)
        assert model.output_names == ["value_0", "value_1"]
        table = _table(X, names)
        np.testing.assert_allclose(_scores(model.score(table)), est.predict(X), rtol=1e-12,
                                   atol=1e-9)
        np.testing.assert_allclose(model.predict(X), est.predict(X), rtol=1e-12, atol=1e-9)
    holed = _table(_with_holes(X, 6), names)
    with pytest.raises(InputError, match="null"):
        model.score(holed)


def _tree_ensemble_v5(dtype, n_trees=1, leaf_only=False):
    """tree_ensembler_test.cc::GenTreeAndRunTest's ai.onnx.ml opset-5 TreeEnsemble (two
    targets; trees repeated n_trees times as _multiply_update_* do), or ::TreeEnsembleLeafOnly."""
    elem = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    if leaf_only:
        attrs = dict(n_targets=1, tree_roots=[0], nodes_featureids=[0], modes=[0], splits=[0.0],
                     nodes_truenodeids=[0], nodes_trueleafs=[1], nodes_falsenodeids=[0],
                     nodes_falseleafs=[1], leaf_targetids=[0], weights=[6.23])
    else:
        true_ids, false_ids = [], []
        for t in range(n_trees):  # 3 nodes and 4 leaves per tree
            true_ids += [1 + 3 * t, 0 + 4 * t, 1 + 4 * t]
            false_ids += [2 + 3 * t, 2 + 4 * t, 3 + 4 * t]
        attrs = dict(n_targets=2, tree_roots=[3 * t for t in range(n_trees)],
                     nodes_featureids=[0, 0, 0] * n_trees, modes=[0, 0, 0] * n_trees,
                     splits=[3.14, 1.2, 4.2] * n_trees, nodes_truenodeids=true_ids,
                     nodes_trueleafs=[0, 1, 1] * n_trees, nodes_falsenodeids=false_ids,
                     nodes_falseleafs=[0, 1, 1] * n_trees, leaf_targetids=[0, 1, 0, 1] * n_trees,
                     weights=[5.23, 12.12, -12.23, 7.21] * n_trees)
    modes, splits, weights = attrs.pop("modes"), attrs.pop("splits"), attrs.pop("weights")
    node = helper.make_node(
        "TreeEnsemble", ["X"], ["Y"], domain="ai.onnx.ml", aggregate_function=1, post_transform=0,
        nodes_modes=helper.make_tensor("nodes_modes", TensorProto.UINT8, [len(modes)], modes),
        nodes_splits=helper.make_tensor("nodes_splits", elem, [len(splits)], splits),
        leaf_weights=helper.make_tensor("leaf_weight", elem, [len(weights)], weights), **attrs)
    n_out = attrs["n_targets"]
    graph = helper.make_graph([node], "v5", [helper.make_tensor_value_info("X", elem, [None, 1])],
                              [helper.make_tensor_value_info("Y", elem, [None, n_out])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21),
                                                   helper.make_opsetid("ai.onnx.ml", 5)])
    model.ir_version = 10
    return model.SerializeToString()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_trees", [1, 3])
def test_ort_tree_ensemble_v5_runs_on_onnxruntime(dtype, n_trees):
    # tree_ensembler_test.cc::TreeEnsembleFloat / ::TreeEnsembleDouble (1 and 3 trees) and
    # ::TreeEnsembleLeafOnly: the opset-5 TreeEnsemble operator is not read natively; it runs
    # on ONNX Runtime with model.note saying why, and gives the published outputs
    blob = _tree_ensemble_v5(dtype, n_trees)
    model = load_model(blob, features=["x"])
    assert model.backend == "onnxruntime" and "TreeEnsemble" in model.note
    # the peer feeds X {3, 2} = [[1.2, 3.4], [-0.12, 1.66], [4.14, 1.77]]; its trees read
    # feature 0 only, so the model here takes that one column
    x = np.array([1.2, -0.12, 4.14], dtype)
    got = _scores(model.score(pa.table({"x": x})))
    published = np.array([5.23, 0, 5.23, 0, 0, 12.12], dtype).reshape(3, 2) * n_trees
    np.testing.assert_allclose(got, published, rtol=1e-5)
    leaf_only = load_model(_tree_ensemble_v5(np.float64, leaf_only=True), features=["x"])
    np.testing.assert_array_equal(_scores(leaf_only.score(pa.table({"x": [1.0, 4.0]}))),
                                  [[6.23], [6.23]])


# -- edge cases beyond the peers' suites -----------------------------------------------------


def test_lgb_edge_inputs_ids_and_types():
    # Huge, duplicate and unsorted uint64 ids pass through in input order; int64 beyond 2**53,
    # decimals and all-zero rows score as LightGBM scores their float64 values; an empty input
    # is an InputError (DESIGN.md: an empty table is bad input; LightGBM returns an empty
    # array), while predict() on an empty matrix returns (0, n_outputs)
    from decimal import Decimal

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    booster = _train({"objective": "binary"}, X, (X[:, 0] > 0).astype(int), 5)
    model = _load(booster)
    names = model.features
    table = _table(X, names)
    ids = pa.array([2**64 - 1, 5, 5, 2**63] + list(range(295, -1, -1)), pa.uint64())
    out = model.score(table.append_column("cid", ids), id="cid")
    assert out.column("cid").equals(pa.chunked_array([ids]))
    np.testing.assert_allclose(_scores(out.drop(["cid"])), _lgb_ref(booster, X), rtol=0, atol=TOL)
    big = np.array([2**53 + 1, -2**62, 2**62, 0], np.int64)
    got = _scores(model.score(pa.table({n: big for n in names})))
    ref = _lgb_ref(booster, np.repeat(big.astype(np.float64)[:, None], 3, axis=1))
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)
    dec = pa.array([Decimal("1.25"), None, Decimal("-3.50")], pa.decimal128(10, 2))
    got = _scores(model.score(pa.table({n: dec for n in names})))
    ref = _lgb_ref(booster, np.array([[1.25] * 3, [np.nan] * 3, [-3.5] * 3]))
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)
    with pytest.raises(InputError, match="no rows"):
        model.score(table.slice(0, 0))
    assert model.predict(np.empty((0, 3))).shape == (0, 2)
    with pytest.raises(InputError, match="'cid'"):
        model.score(table.append_column("cid", pa.array([None] + ["a"] * 299)), id="cid")


def _random_tree_ensemble(rng):
    """A small random TreeEnsembleClassifier/Regressor: 1-3 trees of 2-3 leaves, weights on a
    random subset of (leaf, output) pairs, random base values, post-transform and aggregate."""
    n_trees = int(rng.integers(1, 4))
    clf = bool(rng.integers(0, 2))
    n_out = int(rng.integers(1, 5)) if clf else int(rng.integers(1, 4))
    cols = {k: [] for k in ("tid", "nid", "feat", "val", "mode", "true", "false")}
    w_t, w_n, w_c, w_v = [], [], [], []
    for t in range(n_trees):
        nodes = [(0, "BRANCH_LEQ", 1, 2)]
        if rng.integers(0, 2):
            nodes += [(1, "BRANCH_LT", 3, 4), (2, "LEAF", 0, 0), (3, "LEAF", 0, 0), (4, "LEAF", 0, 0)]
        else:
            nodes += [(1, "LEAF", 0, 0), (2, "LEAF", 0, 0)]
        for nid, mode, a, b in nodes:
            for key, v in zip(cols, (t, nid, int(rng.integers(0, 3)) if mode != "LEAF" else 0,
                                     float(np.round(rng.normal(), 1)), mode, a, b)):
                cols[key].append(v)
            if mode == "LEAF":
                # at least one weight per leaf: ONNX Runtime's one-output path reads a leaf's
                # first weight without checking there is one (undefined for a weightless leaf;
                # fastengage adds nothing, as the ONNX spec says)
                chosen = [c for c in range(n_out) if rng.random() < 0.6]
                for c in chosen or [int(rng.integers(0, n_out))]:
                    w_t.append(t)
                    w_n.append(nid)
                    w_c.append(c)
                    w_v.append(float(np.round(rng.normal(), 2)))
    post = str(rng.choice(["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"]))
    n_base = int(rng.choice([0, 1, n_out]))
    attrs = dict(nodes_treeids=cols["tid"], nodes_nodeids=cols["nid"],
                 nodes_featureids=cols["feat"], nodes_values=cols["val"],
                 nodes_modes=cols["mode"], nodes_truenodeids=cols["true"],
                 nodes_falsenodeids=cols["false"], post_transform=post,
                 aggregate_function=str(rng.choice(["SUM", "SUM", "AVERAGE"])))
    if n_base:
        attrs["base_values"] = [float(np.round(rng.normal(), 2)) for _ in range(n_base)]
    if clf:
        labels = list(range(max(n_out, 2) if rng.random() < 0.8 else n_out))
        attrs.update(class_treeids=w_t, class_nodeids=w_n, class_ids=w_c, class_weights=w_v,
                     classlabels_int64s=labels)
        return _onnx_model("TreeEnsembleClassifier", attrs, 3, n_out=len(labels))
    attrs.update(target_treeids=w_t, target_nodeids=w_n, target_ids=w_c, target_weights=w_v,
                 n_targets=n_out)
    return _onnx_model("TreeEnsembleRegressor", attrs, 3, n_out=n_out)


@settings(max_examples=120, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_random_tree_ensembles_equal_onnxruntime(seed):
    # Beyond the peer's hand-made models: random ensembles where outputs may have no weight on
    # some rows, with base values and every post-transform. ONNX Runtime adds a base value only
    # to an output with a score on the row (multi-target regressors output 0 otherwise; the
    # binary score likewise), ignores the transform of a one-class classifier, and gives the
    # binary case [logistic(-s), logistic(s)] under LOGISTIC even with non-negative weights.
    # Before the fix 6 of the 49 models of seeds 0..599 scored natively differed from it; now
    # such models run on ONNX Runtime (model.note says why) or natively with its numbers.
    # Whichever backend loads the model, the scores are ONNX Runtime's, bit for bit.
    rng = np.random.default_rng(seed)
    blob = _random_tree_ensemble(rng)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    try:
        ref = _ort_scores(blob, X)
    except Exception:  # a combination ONNX Runtime itself refuses
        return
    model = load_model(blob, features=["a", "b", "c"])
    if model.backend == "native-trees":
        model.match_onnxruntime(1)
    np.testing.assert_array_equal(model.predict(X, n_threads=1), ref)
