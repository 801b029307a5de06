"""Session 11's new kernel paths against plain references (tests/naive*.py), on varied inputs.

Other helpers added these paths this session and checked most of them against the peer
library only; here each one is compared with a reference written from the paper's or the
peer's definition (plain Python / NumPy / mpmath loops that never call fastengage):

* LightGBM linear trees (kernels/scoring/_linear_model.pxi's neighbour, the general-layout
  kernel's linear leaves): ``naive_scoring.lgb_json_raw`` walks ``Booster.dump_model()``'s JSON
  with Tree::Predict's rules (linear leaf, NaN fallback, zero band, categorical bitsets).
* scoring's pandas-category lookup (``category_codes``): ``naive_scoring.pandas_category_codes``.
* BG/BB ``probability_of_n_purchases``: ``naive_clv.bgbb_pmf_mp`` (FHS 2010 eq. 7, mpmath).
* ``clv.validation.cumulative_transactions``: ``naive_clv.cumulative_transactions_ref`` with
  the BG/NBD population expectation of ``naive_clv.bgnbd_population_expected``.
* recommend's ``similar_customers`` / ``similar_items(candidates=, exclude_items=)``:
  ``naive_recommend.cosine_similar``; ``leave_k_out_split``: the per-customer contract
  ``naive_recommend.leave_k_out_expectation`` plus pair bookkeeping.
* bandits ``update_one`` (the partial re-solve of 3f19ff9): ``naive_bandits.ridge_stats`` /
  ``linucb_scores`` over every outcome learned so far.
"""
import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import naive_bandits
import naive_clv
import naive_recommend
import naive_scoring

from fastengage import clv
from fastengage.errors import InputError

# inf / NaN probe rows overflow on purpose (the reference and the kernel must agree on them)
pytestmark = pytest.mark.filterwarnings("ignore:(overflow|invalid value):RuntimeWarning")

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- LightGBM linear trees -------------------------------------------------------------------

lgb = pytest.importorskip("lightgbm")


def _linear_booster(seed, n_rows, n_features, objective, categorical, nan_frac, rounds,
                    num_leaves, linear_lambda):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features)) * rng.choice([0.5, 3.0, 100.0], n_features)
    if categorical:
        X[:, -1] = rng.integers(0, 5, n_rows)
    y = X[:, 0] * 1.5 - (X[:, 1] if n_features > 1 else 0.0) + 0.3 * rng.normal(size=n_rows)
    if objective == "binary":
        y = (y > np.median(y)).astype(float)
    X[rng.random(X.shape) < nan_frac] = np.nan
    params = {"objective": objective, "linear_tree": True, "verbose": -1, "num_threads": 1,
              "num_leaves": num_leaves, "min_data_in_leaf": 5, "linear_lambda": linear_lambda,
              "seed": seed}
    kw = {"categorical_feature": [n_features - 1]} if categorical else {}
    return lgb.train(params, lgb.Dataset(X, y, **kw), num_boost_round=rounds), X


def _probe_rows(rng, X, n_features, categorical):
    """Training-like rows plus NaN, the zero band, 0, inf and huge values in every feature."""
    rows = [np.nan_to_num(X[: min(len(X), 40)], nan=np.nan)]
    special = [np.nan, 0.0, 1e-36, -1e-40, -0.0, np.inf, -np.inf, 1e300, -3.0, 2.5]
    grid = rng.choice(special, size=(60, n_features))
    mix = rng.normal(size=(60, n_features))
    keep = rng.random((60, n_features)) < 0.5
    rows.append(np.where(keep, mix, grid))
    out = np.vstack(rows)
    if categorical:  # categories as LightGBM reads them: small whole numbers, NaN, negatives
        out[:, -1] = rng.choice([0.0, 1.0, 2.0, 3.0, 4.0, 7.0, -1.0, np.nan], len(out))
    return out


def _transform(raw, objective, dump):
    if objective == "binary":
        p = 1.0 / (1.0 + np.exp(-raw[:, 0]))
        return np.column_stack([1.0 - p, p])
    return raw


@settings(FAST, max_examples=25)
@given(seed=st.integers(0, 10_000), n_rows=st.integers(40, 250), n_features=st.integers(1, 4),
       objective=st.sampled_from(["regression", "binary"]), categorical=st.booleans(),
       nan_frac=st.sampled_from([0.0, 0.05, 0.3]), rounds=st.integers(1, 4),
       num_leaves=st.integers(2, 6), linear_lambda=st.sampled_from([0.0, 0.5]))
def test_lightgbm_linear_trees_equal_tree_predict_reference(seed, n_rows, n_features, objective,
                                                            categorical, nan_frac, rounds,
                                                            num_leaves, linear_lambda):
    from fastengage.scoring import load_model

    categorical = categorical and n_features > 1
    booster, X = _linear_booster(seed, n_rows, n_features, objective, categorical, nan_frac,
                                 rounds, num_leaves, linear_lambda)
    dump = booster.dump_model()
    probe = _probe_rows(np.random.default_rng(seed + 1), X, n_features, categorical)
    want = _transform(naive_scoring.lgb_json_raw(dump, probe), objective, dump)
    # the reference is the peer's rule: it agrees with Booster.predict itself
    peer = np.asarray(booster.predict(probe), np.float64)
    peer = np.column_stack([1.0 - peer, peer]) if objective == "binary" else peer[:, None]
    np.testing.assert_allclose(want, peer, rtol=1e-12, atol=1e-12)
    model = load_model(booster.model_to_string().encode())
    assert model.backend == "native-trees", model.note
    got = model.predict(probe)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(model.predict(probe, n_threads=1),
                                  model.predict(probe, n_threads=2))


@pytest.mark.parametrize("objective", ["multiclass", "binary"])
def test_lightgbm_linear_trees_float32_arrow_nulls_and_multiclass(objective):
    # the same reference through the other input paths: a float32 matrix (LightGBM reads each
    # float32 as its double), an Arrow table whose NaN are nulls (a missing value), a
    # multiclass model with a categorical column (one tree per class and iteration)
    from fastengage.scoring import load_model

    rng = np.random.default_rng(11)
    X = rng.normal(size=(400, 4))
    X[:, 3] = rng.integers(0, 4, 400)
    y = np.digitize(X[:, 0], [-0.5, 0.5]) if objective == "multiclass" else (X[:, 0] > 0) * 1.0
    X[rng.random(X.shape) < 0.1] = np.nan
    params = {"objective": objective, "linear_tree": True, "verbose": -1, "num_threads": 1,
              "num_leaves": 5}
    if objective == "multiclass":
        params["num_class"] = 3
    booster = lgb.train(params, lgb.Dataset(X, y, categorical_feature=[3]), num_boost_round=3)
    dump = booster.dump_model()
    model = load_model(booster.model_to_string().encode())
    probe = _probe_rows(rng, X, 4, True).astype(np.float32)
    raw = naive_scoring.lgb_json_raw(dump, probe.astype(np.float64))
    want = naive_scoring.softmax(raw) if objective == "multiclass" else \
        _transform(raw, objective, dump)
    np.testing.assert_allclose(model.predict(probe), want, rtol=1e-12, atol=1e-12)
    table = pa.table({name: pa.array(probe[:, j], from_pandas=True)
                      for j, name in enumerate(model.features)})
    assert table.column(0).null_count > 0
    got = np.column_stack([c.to_numpy() for c in model.score(table).columns])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_lightgbm_linear_single_leaf_and_nan_fallback_reference():
    # edge cases named in the brief: every tree a single leaf (constant: no features); a row
    # whose linear feature is NaN falls back to the leaf's plain value; a zero-band value reads as 0
    from fastengage.scoring import load_model

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3))
    y = 2.0 * X[:, 0] + X[:, 2]
    params = {"objective": "regression", "linear_tree": True, "verbose": -1, "num_threads": 1,
              "min_sum_hessian": 5000}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=3)
    dump = booster.dump_model()
    assert all(t["num_leaves"] == 1 for t in dump["tree_info"])
    probe = np.array([[1.0, 2.0, 3.0], [np.nan, 2.0, 3.0], [1e-36, 0.0, -1e-40],
                      [1.0, np.nan, np.nan], [np.inf, 0.0, 0.0]])
    want = naive_scoring.lgb_json_raw(dump, probe)
    np.testing.assert_allclose(want[:, 0], booster.predict(probe), rtol=1e-12, atol=1e-12)
    model = load_model(booster.model_to_string().encode())
    np.testing.assert_allclose(model.predict(probe), want, rtol=1e-12, atol=1e-12)
    # a stump whose leaves are linear in feature 2 (split at the zero threshold): NaN in
    # feature 2 falls back to the leaf value, a zero-band value goes left and reads as 0
    params = {"objective": "regression", "linear_tree": True, "verbose": -1, "num_threads": 1,
              "num_leaves": 2, "min_data_in_leaf": 150}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=2)
    dump = booster.dump_model()
    assert any(t["tree_structure"].get("left_child", {}).get("leaf_features")
               for t in dump["tree_info"])
    probe = np.array([[0.0, 0.0, v] for v in (np.nan, 1e-36, -1e-40, 0.0, -0.0, 2.0, -2.0,
                                              np.inf, -np.inf, 1e300)])
    want = naive_scoring.lgb_json_raw(dump, probe)
    np.testing.assert_allclose(want[:, 0], booster.predict(probe), rtol=1e-12, atol=1e-12)
    model = load_model(booster.model_to_string().encode())
    np.testing.assert_allclose(model.predict(probe), want, rtol=1e-12, atol=1e-12)


# -- scoring's pandas-category lookup ----------------------------------------------------------

_TEXT = st.sampled_from(["a", "b", "c", "zz", "", "é", "a" * 20])
_INTS = st.integers(-3, 5) | st.sampled_from([2**40, -(2**62)])


def _as_arrow(values, text, shape, data):
    typ = pa.string() if text else pa.int64()
    if shape == "large" and text:
        typ = pa.large_string()
    if shape == "view" and text:
        typ = pa.string_view()
    array = pa.array(values, typ)
    if shape == "dictionary":
        array = array.dictionary_encode()
    if shape == "dictionary_unused":  # a dictionary holding entries no row uses, nulls in rows
        dictionary = pa.array(sorted({v for v in values if v is not None}) + (
            ["unused"] if text else [99]), pa.string() if text else pa.int64())
        lookup = {v: i for i, v in enumerate(dictionary.to_pylist())}
        idx = pa.array([None if v is None else lookup[v] for v in values], pa.int8())
        array = pa.DictionaryArray.from_arrays(idx, dictionary)
    if shape == "chunked":  # chunks of a column, cut at a drawn point
        cut = data.draw(st.integers(0, len(values)))
        array = pa.chunked_array([array[:cut], array[cut:]], typ)
    if shape == "sliced":  # a slice with an offset of a longer array
        padded = pa.array([values[0] if values else None] * 3 + values, typ)
        array = padded.slice(3)
        if data.draw(st.booleans()):
            array = array.dictionary_encode()
    return array


@settings(FAST, max_examples=120)
@given(st.data())
def test_category_codes_equal_pandas_rule_reference(data):
    from fastengage.scoring._columns import category_codes

    text = data.draw(st.booleans(), "text")
    element = _TEXT if text else _INTS
    categories = data.draw(st.lists(element, unique=True, max_size=5), "categories")
    values = data.draw(st.lists(st.none() | element, max_size=40), "values")
    shape = data.draw(st.sampled_from(["plain", "large", "view", "dictionary",
                                       "dictionary_unused", "chunked", "sliced"]), "shape")
    array = _as_arrow(values, text, shape, data)
    want = naive_scoring.pandas_category_codes(values, categories)
    got = category_codes(array, "c", categories, "nan")
    np.testing.assert_array_equal(got, want)
    if any(v is None for v in values):
        with pytest.raises(InputError, match="'c'"):
            category_codes(array, "c", categories, "error")
    else:
        np.testing.assert_array_equal(category_codes(array, "c", categories, "error"), want)


def test_category_codes_null_in_dictionary_values_is_a_null():
    from fastengage.scoring._columns import category_codes

    values = ["a", None, "a"]
    array = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0], pa.int32()),
                                           pa.array(["a", None]))
    np.testing.assert_array_equal(category_codes(array, "c", ["a"], "nan"),
                                  naive_scoring.pandas_category_codes(values, ["a"]))
    with pytest.raises(InputError, match="'c'"):
        category_codes(array, "c", ["a"], "error")


def test_category_codes_reference_is_pandas():
    # the plain reference is pandas' own rule (set_categories, then codes; -1 -> NaN)
    pd = pytest.importorskip("pandas")
    values, categories = ["b", None, "x", "a", "b"], ["a", "b", "c"]
    codes = pd.Series(values).astype("category").cat.set_categories(categories).cat.codes
    want = np.where(codes.to_numpy() < 0, np.nan, codes.to_numpy()).astype(float)
    np.testing.assert_array_equal(naive_scoring.pandas_category_codes(values, categories), want)


# -- BG/BB P(X(n) = k) -------------------------------------------------------------------------

def _bgbb(params):
    m = clv.BetaGeoBetaBinom()
    m.params_ = dict(zip(("alpha", "beta", "gamma", "delta"), params))
    return m


_BGBB_PARAM = st.floats(0.01, 50.0) | st.sampled_from([0.01, 1.0, 50.0, 1e3])


@settings(FAST, max_examples=30)
@given(params=st.tuples(_BGBB_PARAM, _BGBB_PARAM, _BGBB_PARAM, _BGBB_PARAM),
       n=st.integers(0, 120) | st.sampled_from([0, 1, 250]), data=st.data())
def test_bgbb_probability_of_n_purchases_equals_eq7_reference(params, n, data):
    m = _bgbb(params)
    k = data.draw(st.lists(st.integers(0, n + 2), min_size=1, max_size=4) |
                  st.just([0, n, n + 1]), "k")
    got = m.probability_of_n_purchases(n, np.array(k))
    want = [naive_clv.bgbb_pmf_mp(params, n, kk) for kk in k]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300)


def test_bgbb_probability_of_n_purchases_broadcasts_like_the_reference():
    params = (1.2, 0.75, 0.66, 2.78)  # FHS 2010's donation fit
    m = _bgbb(params)
    n = np.array([[0], [1], [6], [30]])
    k = np.array([0, 1, 2, 6])
    got = m.probability_of_n_purchases(n, k)
    assert got.shape == (4, 4)
    want = [[naive_clv.bgbb_pmf_mp(params, nn, kk) for kk in k] for nn in n[:, 0]]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-300)
    assert m.probability_of_n_purchases(0, 0) == pytest.approx(1.0, abs=1e-15)


# -- clv.validation.cumulative_transactions ------------------------------------------------------

_BG_PARAMS = (0.243, 4.414, 0.793, 2.426)  # FHL 2005's CDNOW fit (r, alpha, a, b)


def _betageo(params):
    m = clv.BetaGeo()
    m.params_ = dict(zip(("r", "alpha", "a", "b"), params))
    return m


@settings(FAST, max_examples=40)
@given(data=st.data(), freq=st.sampled_from(["D", "W", "h"]), step=st.sampled_from([1, 2, 7]),
       horizon=st.integers(1, 30), seed=st.integers(0, 2**31 - 1))
def test_cumulative_transactions_equal_plain_loop_reference(data, freq, step, horizon, seed):
    from fastengage.clv.validation import cumulative_transactions

    assume(horizon >= step)
    rng = np.random.default_rng(seed)
    n = data.draw(st.integers(1, 80), "rows")
    length_us = {"D": 86_400_000_000, "W": 7 * 86_400_000_000, "h": 3_600_000_000}[freq]
    # times spread over horizon + 5 periods from a drawn start (some rows beyond the horizon),
    # several purchases of one customer inside one period, unsorted rows, huge/negative ids
    start = int(rng.integers(0, 2_000_000_000)) * 1_000_000
    us = start + rng.integers(0, (horizon + 5) * length_us, n)
    pool = np.array([0, 1, 2, 3, -7, 2**62, 10**12, 5, 6, 11])
    customers = rng.choice(pool[: data.draw(st.integers(1, len(pool)), "customers")], n)
    table = pa.table({"who": customers, "at": pa.array(us, pa.timestamp("us"))})
    model = _betageo(_BG_PARAMS)
    got = cumulative_transactions(model, table, customer="who", time="at", periods=horizon,
                                  freq=freq, freq_multiplier=step)
    # periods counted by calendar: pandas-style D / W-SUN (Monday start) / h periods
    offset = {"D": 0, "W": 4 * 86_400_000_000, "h": 0}[freq]
    period = [(int(u) - offset) // length_us for u in us]
    p0 = min(period)
    expected = {}

    def pop(t):
        if t not in expected:
            expected[t] = naive_clv.bgnbd_population_expected(_BG_PARAMS, t)
        return expected[t]

    actual, predicted = naive_clv.cumulative_transactions_ref(
        customers.tolist(), [p - p0 for p in period], horizon, step, pop)
    assert got["period"].to_pylist() == list(range(horizon // step))
    assert got["actual"].to_pylist() == actual
    np.testing.assert_allclose(got["predicted"].to_numpy(), predicted, rtol=1e-9, atol=1e-12)
    dates = got["date"].cast(pa.int64()).to_numpy()
    np.testing.assert_array_equal(
        dates, [(p0 + kk * step - 1) * length_us + offset for kk in range(1, horizon // step + 1)])


def test_cumulative_transactions_one_customer_and_bad_input():
    from fastengage.clv.validation import cumulative_transactions

    day = 86_400_000_000
    table = pa.table({"who": [5, 5, 5, 5], "at": pa.array([0, day // 2, 3 * day, 9 * day],
                                                          pa.timestamp("us"))})
    got = cumulative_transactions(_betageo(_BG_PARAMS), table, customer="who", time="at",
                                  periods=5)
    actual, predicted = naive_clv.cumulative_transactions_ref(
        [5, 5, 5, 5], [0, 0, 3, 9], 5, 1,
        lambda t: naive_clv.bgnbd_population_expected(_BG_PARAMS, t))
    assert got["actual"].to_pylist() == actual == [0, 0, 0, 1, 1]
    np.testing.assert_allclose(got["predicted"].to_numpy(), predicted, rtol=1e-9)
    with pytest.raises(InputError):
        cumulative_transactions(_betageo(_BG_PARAMS), table.slice(0, 0), customer="who",
                                time="at", periods=5)
    with pytest.raises(InputError):
        cumulative_transactions(_betageo(_BG_PARAMS), table, customer="who", time="at",
                                periods=0)


# -- recommend: similar customers / items, leave_k_out_split -------------------------------------

def _random_interactions(seed, n_customers, n_items, density):
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_customers, n_items)) < density) * rng.integers(1, 4, (n_customers,
                                                                               n_items))
    dense[0, 0] = max(dense[0, 0], 1)  # never an empty matrix
    return sp.csr_matrix(dense.astype(np.float32))


def _answers(table, first, second, n_rows):
    out = {}
    for q, s, score in zip(table[first].to_pylist(), table[second].to_pylist(),
                           table["score"].to_pylist()):
        out.setdefault(q, []).append((s, score))
    return out


def _check_similar(factors, queries, answers, n, allowed):
    """Every answer list equals the reference top-n: same scores (float32 tolerance), and the
    rows it names score as the reference says (order free only among near-equal scores)."""
    for q in queries:
        ref_rows, ref_scores = naive_recommend.cosine_similar(factors, q, n, allowed)
        got = answers.get(q, [])
        assert len(got) == len(ref_rows), (q, got, ref_rows)
        np.testing.assert_allclose([s for _, s in got], ref_scores, rtol=1e-4, atol=1e-5)
        every = naive_recommend.cosine_similar(factors, q, factors.shape[0], allowed)
        exact = dict(zip(*every))
        for row, score in got:
            assert row in exact, (q, row)  # an allowed row
            assert exact[row] == pytest.approx(score, rel=1e-4, abs=1e-5)


@settings(FAST, max_examples=30)
@given(seed=st.integers(0, 10_000), n_customers=st.integers(2, 25), n_items=st.integers(2, 20),
       n=st.integers(1, 30), data=st.data(),
       kind=st.sampled_from(["als", "bpr", "als-numpy"]))
def test_similar_customers_and_items_with_filters_equal_cosine_reference(seed, n_customers,
                                                                         n_items, n, data, kind):
    from fastengage.recommend import ALS, BPR, Interactions

    matrix = _random_interactions(seed, n_customers, n_items, 0.3)
    inter = Interactions.from_csr(matrix)
    model = (BPR(factors=4, iterations=3, seed=seed) if kind == "bpr" else
             ALS(factors=4, iterations=3, seed=seed, use_native=kind == "als")).fit(inter)
    for side, F, size in (("customer", model.user_factors_, n_customers),
                          ("item", model.item_factors_, n_items)):
        F = np.asarray(F, np.float64)
        queries = data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=4,
                                     unique=True), side + " queries")
        cands = data.draw(st.none() | st.lists(st.integers(0, size - 1), min_size=1,
                                                max_size=size, unique=True), side + " candidates")
        excl = data.draw(st.none() | st.lists(st.integers(-2, size + 3), max_size=size),
                         side + " exclusions")
        allowed = np.ones(size, bool)
        if cands is not None:
            allowed[:] = False
            allowed[cands] = True
        for e in excl or []:
            if 0 <= e < size:
                allowed[e] = False
        kw = {"candidates": cands}
        if side == "customer" and excl == []:
            # a plain empty list: test_similar_customers_empty_exclusion_list;
            # an empty int64 array is read fine
            excl = np.zeros(0, np.int64)
        if side == "customer":
            kw["exclude_customers"] = excl
            table = model.similar_customers(queries, n, **kw)
            answers = _answers(table, "customer", "similar_customer", len(queries))
        else:
            kw["exclude_items"] = excl
            table = model.similar_items(queries, n, **kw)
            answers = _answers(table, "item", "similar_item", len(queries))
        mask = allowed if (cands is not None or excl is not None) else None
        _check_similar(F, queries, answers, n, mask)


@settings(FAST, max_examples=30)
@given(seed=st.integers(0, 10_000), n_customers=st.integers(1, 30), n_items=st.integers(1, 12),
       k=st.integers(1, 4), density=st.sampled_from([0.1, 0.4, 0.9]),
       split_seed=st.integers(0, 2**32 - 1), fraction=st.sampled_from([0.0, 0.01, 0.3, 0.9]))
def test_leave_k_out_split_follows_the_per_customer_contract(seed, n_customers, n_items, k,
                                                             density, split_seed, fraction):
    from fastengage.recommend import Interactions, leave_k_out_split

    matrix = _random_interactions(seed, n_customers, n_items, density)
    inter = Interactions.from_csr(matrix)
    train, test = leave_k_out_split(inter, k=k, train_only_fraction=fraction,
                                    seed=split_seed)
    pairs = {}
    rows, cols = matrix.nonzero()
    for r, c in zip(rows.tolist(), cols.tolist()):
        pairs.setdefault(r, set()).add(c)
    expect = naive_recommend.leave_k_out_expectation({r: len(p) for r, p in pairs.items()}, k)
    tr, te = train.matrix.tocoo(), test.matrix.tocoo()
    # codes of both halves are the input's (from_csr: rows and columns)
    train_pairs = {(int(r), int(c)): float(v) for r, c, v in zip(tr.row, tr.col, tr.data)}
    test_pairs = {(int(r), int(c)): float(v) for r, c, v in zip(te.row, te.col, te.data)}
    assert not set(train_pairs) & set(test_pairs)
    want = {(int(r), int(c)): float(matrix[r, c]) for r, c in zip(rows, cols)}
    assert {**train_pairs, **test_pairs} == want  # train + test is the input, weights kept
    held = {}
    for r, _ in test_pairs:
        held[r] = held.get(r, 0) + 1
    if fraction:
        with_pairs = sorted(pairs)
        size = max(1, int(len(with_pairs) * fraction))  # implicit's _choose
        eligible = {r for r, m in expect.items() if m}
        left_out = eligible - set(held)
        # the train-only customers are `size` of those with pairs: eligible ones among them
        # are exactly the eligible customers with no test pair
        assert len(left_out) <= size
        assert len(left_out) >= size - (len(with_pairs) - len(eligible))
        for r in held:
            assert held[r] == k and r in eligible
    else:
        assert {r: held.get(r, 0) for r in pairs} == expect
    again = leave_k_out_split(inter, k=k, train_only_fraction=fraction, seed=split_seed)
    assert (again.test.matrix != test.matrix).nnz == 0  # reproducible from the seed


# -- bandits: update_one's partial re-solve ------------------------------------------------------

@settings(FAST, max_examples=40)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 5), K=st.integers(1, 6),
       steps=st.integers(1, 60), lam=st.sampled_from([0.1, 1.0, 4.0]),
       batch_first=st.booleans(), alpha=st.sampled_from([0.0, 1.0, 2.5]),
       kind=st.sampled_from(["LinUCB", "LinTS", "LinEpsilonGreedy"]),
       masked=st.booleans())
def test_update_one_snapshot_equals_ridge_reference(seed, d, K, steps, lam, batch_first, alpha,
                                                    kind, masked):
    import fastengage.bandits as bandits

    rng = np.random.default_rng(seed)
    ids = [f"arm{a}" for a in range(K)]
    names = [f"f{j}" for j in range(d)]
    params = {"l2": lam}
    if kind == "LinUCB":
        params["alpha"] = alpha
    policy = getattr(bandits, kind)(ids, features=names, **params)
    X_all, arms_all, r_all = np.zeros((0, d)), np.zeros(0, np.int64), np.zeros(0)
    if batch_first:
        n0 = int(rng.integers(1, 50))
        X0, a0 = rng.normal(size=(n0, d)), rng.integers(0, K, n0)
        r0 = rng.normal(size=n0)
        policy.update(pa.table({**{f: X0[:, j] for j, f in enumerate(names)},
                                "arm": pa.array(np.asarray(ids)[a0]), "r": r0}),
                      arm="arm", reward="r")
        X_all, arms_all, r_all = X0, a0, r0
    # uneven arm use: one favourite arm takes most updates, so the others' bounds stay cached
    favourite = int(rng.integers(0, K))
    probe = rng.normal(size=(20, d))
    mask = rng.random((20, K)) < 0.6 if masked else None
    for step in range(steps):
        a = favourite if rng.random() < 0.7 else int(rng.integers(0, K))
        x = rng.normal(size=d) * rng.choice([1.0, 1e-3, 30.0])
        r = float(rng.normal())
        policy.update_one(x, ids[a], r)
        X_all = np.vstack([X_all, x])
        arms_all = np.append(arms_all, a)
        r_all = np.append(r_all, r)
        if step % 7 == 0 or step == steps - 1:
            _, _, theta, A_inv = naive_bandits.ridge_stats(X_all, arms_all, r_all, K, lam)
            snap = policy._snapshot
            np.testing.assert_allclose(snap.theta, theta, rtol=1e-7, atol=1e-9)
            np.testing.assert_allclose(snap.A_inv, A_inv, rtol=1e-7, atol=1e-11)
            # the width each arm's cached bound gives (|L_inv x|^2 = x^T A_inv x)
            width = np.stack([np.sum((probe @ snap.L_inv[a].T) ** 2, axis=1) for a in range(K)],
                             axis=1)
            np.testing.assert_allclose(width, np.einsum("ni,kij,nj->nk", probe, A_inv, probe),
                                       rtol=1e-6, atol=1e-10)
            out = policy.decide(pa.table({f: probe[:, j] for j, f in enumerate(names)}),
                                features=names, expected=True, seed=0, eligible=mask)
            mean, score = naive_bandits.linucb_scores(probe, theta, A_inv, alpha)
            got_mean = np.asarray(out["expected_reward"].combine_chunks().flatten()).reshape(-1, K)
            want_mean = mean if mask is None else np.where(mask, mean, np.nan)
            np.testing.assert_allclose(got_mean, want_mean, rtol=1e-7, atol=1e-9)
            chosen = out["arm"].to_pylist()
            if mask is not None:
                for row in range(len(probe)):
                    assert (chosen[row] is None) == (not mask[row].any())
                    assert chosen[row] is None or mask[row, ids.index(chosen[row])]
            if kind != "LinUCB":
                continue
            # LinUCB: the argmax of mean + alpha * width among eligible arms, where it is clear
            score = score if mask is None else np.where(mask, score, -np.inf)
            ordered = np.sort(score, axis=1)
            clear = np.isfinite(ordered[:, -1]) & (
                (ordered[:, -2] < ordered[:, -1] - 1e-6) if K > 1 else True)
            got = np.array([-1 if v is None else ids.index(v) for v in chosen])
            np.testing.assert_array_equal(got[clear], score.argmax(axis=1)[clear])
    with pytest.raises(InputError):
        policy.update_one(np.full(d, np.nan), ids[0], 1.0)
    np.testing.assert_allclose(policy._snapshot.theta,
                               naive_bandits.ridge_stats(X_all, arms_all, r_all, K, lam)[2],
                               rtol=1e-7, atol=1e-9)


def test_similar_customers_empty_exclusion_list():
    from fastengage.recommend import ALS, Interactions

    matrix = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 1]], np.float32))
    model = ALS(factors=2, iterations=2, seed=0).fit(Interactions.from_csr(matrix))
    want = model.similar_customers([0], 2)
    assert model.similar_customers([0], 2, exclude_customers=[]).equals(want)


def test_leave_k_out_split_no_pairs_with_train_only_fraction():
    from fastengage.recommend import Interactions, leave_k_out_split

    empty = Interactions.from_csr(sp.csr_matrix((3, 4), dtype=np.float32))
    assert leave_k_out_split(empty, k=1, seed=0).test.nnz == 0  # the rule without the fraction
    train, test = leave_k_out_split(empty, k=1, train_only_fraction=0.5, seed=0)
    assert train.nnz == test.nnz == 0
    with pytest.raises(InputError, match="seed"):
        leave_k_out_split(empty, k=1, seed=-1)


def test_update_one_null_reward_is_an_input_error():
    from fastengage.bandits import LinUCB

    policy = LinUCB([1, 2], features=["a"])
    with pytest.raises(InputError):
        policy.update_one(np.array([1.0]), 1, None)
    with pytest.raises(InputError, match="not a valid reward"):
        policy.update_one(np.array([1.0]), 1, "1")  # float("1") would read it as 1.0
    assert policy._counts.sum() == 0
    policy.update_one(np.array([1.0]), 1, np.bool_(True))  # booleans are 0/1, as in update()
    assert policy._counts.sum() == 1
