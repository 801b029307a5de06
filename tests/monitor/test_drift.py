"""monitor.drift in exact mode equals scipy (ks_2samp, wasserstein_distance, jensenshannon,
chisquare) and the NumPy PSI reference; flags, nulls, categories and thread-count invariance."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

import naive_monitor
from fastengage.errors import InputError
from fastengage.kernels.monitor.drift import numeric_drift
from fastengage.monitor import Profile, drift

TOL = 1e-9


def _close(ours, ref, key):
    assert ours == pytest.approx(ref, rel=TOL, abs=1e-12, nan_ok=True), key


samples = st.lists(st.one_of(st.integers(-5, 5).map(float),
                             st.floats(-1e3, 1e3, allow_nan=False, width=32)),
                   min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(samples, samples, st.integers(2, 12))
def test_numeric_statistics_equal_scipy(ref, cur, n_bins):
    table = drift(pa.table({"x": ref}), pa.table({"x": cur}), n_bins=n_bins).to_pylist()[0]
    want = naive_monitor.numeric_drift(ref, cur, n_bins)
    for key, value in want.items():
        if key == "wasserstein_norm" and np.std(ref) == 0:
            continue
        _close(table[key], value, key)


def test_large_columns_and_pvalue_equal_scipy():
    rng = np.random.default_rng(1)
    ref = {"a": rng.normal(size=20_000), "b": rng.exponential(size=20_000).round(1),
           "c": rng.integers(0, 50, 20_000)}
    cur = {"a": rng.normal(0.02, 1, 15_000), "b": rng.exponential(1.1, 15_000).round(1),
           "c": rng.integers(0, 52, 15_000)}
    out = drift(pa.table(ref), pa.table(cur)).to_pylist()
    for row in out:
        want = naive_monitor.numeric_drift(ref[row["column"]], cur[row["column"]])
        for key, value in want.items():
            _close(row[key], value, (row["column"], key))
    assert 0 < out[0]["ks_pvalue"] < 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from("abcde"), min_size=1, max_size=80),
       st.lists(st.sampled_from("abcdef"), min_size=1, max_size=80))
def test_categorical_statistics_equal_scipy(ref, cur):
    row = drift(pa.table({"s": ref}), pa.table({"s": cur})).to_pylist()[0]
    want = naive_monitor.categorical_drift(ref, cur)
    assert row["new_categories"] == want["new"]
    assert row["missing_categories"] == want["missing"]
    for key in ("psi", "js_distance", "chi2_statistic"):
        _close(row[key], want[key], key)
    if len(set(ref) | set(cur)) > 1:
        _close(row["chi2_pvalue"], want["chi2_pvalue"], "chi2_pvalue")


def test_integer_column_as_categorical_and_null_rates():
    ref = pa.table({"k": pa.array([1, 2, 2, None, 3, 3, 3, None]),
                    "x": pa.array([1.0, np.nan, 2.0, None, 3.0, 4.0, 5.0, 6.0])})
    cur = pa.table({"k": pa.array([2, 2, 3, 4, None, 4, 4, 4]),
                    "x": pa.array([1.0, 2.0, 2.5, 3.0, 9.0, 4.0, 5.0, 6.0])})
    rows = {r["column"]: r for r in drift(ref, cur, categorical=["k"]).to_pylist()}
    assert rows["k"]["kind"] == "categorical"
    assert rows["k"]["new_categories"] == ["4"] and rows["k"]["missing_categories"] == ["1"]
    assert rows["k"]["null_rate_reference"] == 0.25 and rows["k"]["null_rate_current"] == 0.125
    assert rows["x"]["null_rate_reference"] == 0.25  # NaN counts as missing, like null
    want = naive_monitor.numeric_drift([1, 2, 3, 4, 5, 6], [1, 2, 2.5, 3, 9, 4, 5, 6])
    _close(rows["x"]["ks_statistic"], want["ks_statistic"], "ks")
    assert rows["x"]["n_reference"] == 6


def test_drift_flag_rules():
    rng = np.random.default_rng(3)
    ref = pa.table({"same": rng.normal(size=5000), "moved": rng.normal(size=5000)})
    cur = pa.table({"same": rng.normal(size=5000), "moved": rng.normal(0.5, 1, 5000)})
    rows = {r["column"]: r for r in drift(ref, cur).to_pylist()}
    assert rows["same"]["method"] == "wasserstein_norm" and not rows["same"]["drift"]
    assert rows["moved"]["drift"] and rows["moved"]["wasserstein_norm"] >= 0.1
    small = {r["column"]: r for r in drift(ref.slice(0, 500), cur.slice(0, 500)).to_pylist()}
    assert small["moved"]["method"] == "ks_pvalue" and small["moved"]["drift"]
    nulls = pa.table({"same": pa.array([None] * 2000 + list(rng.normal(size=3000))),
                      "moved": rng.normal(size=5000)})
    assert drift(ref, nulls, columns=["same"]).column("drift").to_pylist() == [True]


def test_profiles_from_batches_give_the_same_drift_as_tables():
    rng = np.random.default_rng(4)
    ref = pa.table({"x": rng.normal(size=3000), "s": rng.choice(["u", "v", "w"], 3000)})
    cur = pa.table({"x": rng.normal(0.1, 1, 2000), "s": rng.choice(["u", "v"], 2000)})
    whole = drift(ref, cur)
    p_ref = Profile.from_data(ref.slice(0, 1000), mode="exact").update(ref.slice(1000))
    parts = [Profile.from_data(cur.slice(i, 500), mode="exact") for i in range(0, 2000, 500)]
    p_cur = parts[0]
    for p in parts[1:]:
        p_cur.merge(p)
    split = drift(p_ref, p_cur)
    # Two tables go the direct way (bucket sums, no sorted profiles): everything but the
    # Wasserstein distances is bit-identical to the merged profiles'; those are integrals summed
    # in another order (and the std comes from merged moments, Chan's formula): equal up to
    # rounding.
    inexact = ["wasserstein", "wasserstein_norm"]
    assert split.drop(inexact).equals(whole.drop(inexact))
    for name in inexact:
        np.testing.assert_allclose(split[name].to_numpy(zero_copy_only=False),
                                   whole[name].to_numpy(zero_copy_only=False), rtol=1e-12)


def test_one_and_two_threads_give_identical_bits():
    rng = np.random.default_rng(5)
    ref = pa.table({f"c{i}": rng.normal(size=4000) for i in range(6)})
    cur = pa.table({f"c{i}": rng.normal(0.01 * i, 1, 3000) for i in range(6)})
    one = drift(ref, cur, n_threads=1)
    two = drift(ref, cur, n_threads=2)
    assert one.equals(two)


def test_kernel_numeric_drift_on_weighted_points_matches_expanded_values():
    # Weighted points (a sketch) must give the statistics of the values repeated by weight.
    vals = np.array([1.0, 2.0, 3.5, 7.0])
    weights = np.array([2.0, 1.0, 4.0, 1.0])
    cur = np.array([0.5, 2.0, 2.0, 6.0, 9.0])
    out = [np.empty(1) for _ in range(4)]
    bins = np.empty(1, dtype=np.int64)
    rp, cp = np.zeros((1, 4)), np.zeros((1, 4))
    cum_weights = np.concatenate([[0.0], np.cumsum(weights)])  # the kernel's weight form
    numeric_drift(vals, cum_weights, np.array([0]), np.array([4]), np.array([0]), np.array([8.0]),
                  cur, np.empty(0), np.array([0]), np.array([5]), np.array([-1]), np.array([5.0]),
                  4, 1e-4, *out, bins, rp, cp)
    want = naive_monitor.numeric_drift(np.repeat(vals, weights.astype(int)), cur, 4)
    for got, key in zip(out, ("ks_statistic", "wasserstein", "psi", "js_distance")):
        _close(got[0], want[key], key)


def test_bad_arguments():
    t = pa.table({"x": [1.0, 2.0], "s": ["a", "b"]})
    with pytest.raises(InputError, match="n_bins"):
        drift(t, t, n_bins=1)
    with pytest.raises(InputError, match="not in the reference"):
        drift(Profile.from_data(t, ["x"]), t, columns=["s"])
    with pytest.raises(InputError, match="numeric in the reference"):
        drift(Profile.from_data(t, ["x"]), pa.table({"x": ["a"]}))
    with pytest.raises(InputError, match="floating point"):
        Profile.from_data(t, ["x"], categorical=["x"])


def test_ks_pvalues_equal_scipy_in_every_region():
    from scipy import special

    from fastengage.monitor.drift import ks_pvalues

    rng = np.random.default_rng(8)
    n_ref = rng.choice([50, 300, 5_000, 80_000, 1_000_000], 400).astype(float)
    n_cur = rng.choice([70, 900, 12_000, 1_000_000], 400).astype(float)
    en = np.round(n_ref * n_cur / (n_ref + n_cur))
    # n d^2 from 1e-3 (no drift) to 500 (certain drift), plus a few large d
    d = np.sqrt(np.exp(rng.uniform(np.log(1e-3), np.log(500), 400)) / en)
    d[:10] = rng.uniform(0.5, 0.99, 10)
    got = ks_pvalues(d, n_ref, n_cur, n_threads=2)
    want = np.clip(stats.kstwo.sf(d, en), 0, 1)
    tiny = want < 1e-300
    np.testing.assert_allclose(got[~tiny], want[~tiny], rtol=1e-9, atol=0)
    assert np.all(got[tiny] < 1e-290)
    assert np.array_equal(got, ks_pvalues(d, n_ref, n_cur, n_threads=1))
    # the direct series (scipy's special.smirnov) at a large n
    from fastengage.kernels.monitor.ksdist import smirnov

    for nd2 in (2.2, 9.0, 60.0):
        dd = np.sqrt(nd2 / 200_000)
        assert smirnov(200_000.0, dd) == pytest.approx(special.smirnov(200_000, dd), rel=1e-10)


@pytest.mark.parametrize("n", [3_000, 30_000])
def test_smirnov_integral_form_equals_the_term_by_term_sum(n):
    """At these sizes the tail is taken as a coarse trapezoid integral of the terms (the path
    every large-sample p-value takes); it must equal scipy's term-by-term series."""
    from scipy import special

    from fastengage.kernels.monitor.ksdist import smirnov

    for nd2 in (2.2, 3.7, 8.0, 25.0, 120.0, 360.0):
        dd = np.sqrt(nd2 / n)
        assert smirnov(float(n), dd) == pytest.approx(special.smirnov(n, dd), rel=1e-11)


def test_ks_pvalue_follows_ks_2samp_auto_and_asymp():
    rng = np.random.default_rng(4)
    for n_ref, n_cur in [(30, 45), (900, 1000), (6000, 10_000), (12_000, 9_000)]:
        a, b = rng.normal(size=n_ref), rng.normal(0.08, 1, n_cur)
        auto = drift(pa.table({"x": a}), pa.table({"x": b})).to_pylist()[0]["ks_pvalue"]
        asymp = drift(pa.table({"x": a}), pa.table({"x": b}),
                      ks_method="asymp").to_pylist()[0]["ks_pvalue"]
        assert auto == pytest.approx(stats.ks_2samp(a, b).pvalue, rel=1e-9, abs=1e-300)
        assert asymp == pytest.approx(stats.ks_2samp(a, b, method="asymp").pvalue, rel=1e-9,
                                      abs=1e-300)
    with pytest.raises(InputError, match="ks_method"):
        drift(pa.table({"x": a}), pa.table({"x": b}), ks_method="exact")
