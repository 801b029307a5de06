"""The peers' own test suites, ported: every case of scipy's, statsmodels' and scikit-uplift's
tests that has a fastengage counterpart (README "Monitoring and experiments"), run through our
API (Arrow in, Arrow out) and compared with the peer itself on the same data, plus the published
numbers of the peer's test (cited beside each case). Then the peers' edge cases (ties, all-equal
samples, empty groups, one-sided treatment, zero variance, NaN, huge ids, float32).

Peers installed: scipy 1.17 (scipy/stats/tests/test_stats.py, scipy/spatial/tests/
test_distance.py), statsmodels 0.15 (statsmodels/stats/tests/test_proportion.py, test_power.py,
test_multi.py), scikit-uplift 0.5.1 (github maks-sh/scikit-uplift sklift/tests/test_metrics.py,
test_models.py). Not ported, no counterpart in fastengage: one-sided KS alternatives, weighted
Wasserstein (only our sketches carry weights), chi2_contingency, mannwhitneyu, the other
multipletests methods, sklift's uplift_at_k / response rates / weighted average uplift /
uplift_by_percentile, SoloModel and ClassTransformation.
"""
import warnings

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st
from numpy.testing import assert_allclose, assert_array_almost_equal
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import auc

from fastengage.errors import InputError
from fastengage.experiments import (adjust_pvalues, conversion, power, proportions_ztest,
                                    readout, sample_size, srm, welch)
from fastengage.experiments.uplift import (TransformedOutcomeUplift, TwoModelUplift, curve_area,
                                           qini_curve, uplift_curve)
from fastengage.monitor import Profile, drift

TIGHT = dict(rtol=1e-9, atol=1e-12)  # ours against the peer run on the same data
PATHS = ("direct", "profile")        # drift of two raw tables / of a saved-style Profile


def _drift_row(reference, current, path, **kw):
    """drift() of one column ``x`` (numbers or strings), either straight from the two tables
    (the unsorted bucket path) or with the reference profiled first (the sorted path)."""
    ref, cur = pa.table({"x": reference}), pa.table({"x": current})
    if path == "profile":
        ref = Profile.from_data(ref, categorical=kw.pop("categorical", ()))
    return drift(ref, cur, **kw).to_pylist()[0]


def _floats(values):
    return pa.array(np.asarray(values, dtype=np.float64))


def _scipy_ks(x, y):
    with warnings.catch_warnings():  # "Exact calculation unsuccessful": scipy falls back, as do we
        warnings.simplefilter("ignore", RuntimeWarning)
        return stats.ks_2samp(x, y)


# ---------------------------------------------------------------------------------------------
# scipy: ks_2samp, two-sided (drift reports the two-sided statistic and p-value only)
# scipy/stats/tests/test_stats.py::TestKSTwoSamples._testOne: assert_array_almost_equal on
# (statistic, pvalue) -> 6 decimals against the published numbers.

def _lin_pair(n1, lo1, hi1, n2, lo2, hi2):
    delta = 1.0 / n1 / n2 / 2 / 2
    return np.linspace(lo1, hi1, n1) - delta, np.linspace(lo2, hi2, n2)


_X100, _X110 = np.linspace(1, 100, 100), np.linspace(1, 100, 110)
_X2233 = np.array([2] * 3 + [3] * 4 + [5] * 5 + [6] * 4, dtype=int)
_X2356 = np.array([2] * 3 + [3] * 4 + [5] * 10 + [6] * 4, dtype=int)
_X3467 = np.array([3] * 10 + [4] * 2 + [6] * 10 + [7] * 4, dtype=int)
_D3 = np.array([1.0, 2.0, 3.0])
_rng_11184 = np.random.RandomState(123456)
_GH11184 = (_rng_11184.normal(size=3000), _rng_11184.normal(size=3001) * 1.5)
_rng_14019 = np.random.RandomState(seed=23493549)
_GH14019 = (_rng_14019.random(size=881) + 0.5, _rng_14019.random(size=369))

KS_CASES = {  # name: (x1, x2, published statistic, published two-sided p-value)
    "testSmall": ([0], [1], 1.0, 1.0),
    "testSmall_swapped": ([1], [0], 1.0, 1.0),
    "testTwoVsThree_p": (np.array([1.0, 2.0]) + 0.01, _D3, 1.0 / 3, 1.0),
    "testTwoVsThree_m": (np.array([1.0, 2.0]) - 0.01, _D3, 2.0 / 3, 0.6),
    "testTwoVsFour_p": (np.array([1.0, 2.0]) + 0.01, [1.0, 2, 3, 4], 2.0 / 4, 14.0 / 15),
    "testTwoVsFour_m": (np.array([1.0, 2.0]) - 0.01, [1.0, 2, 3, 4], 3.0 / 4, 6.0 / 15),
    "test100_100_p": (_X100, _X100 + 2 + 0.1, 3.0 / 100, 0.9999999999962055),
    "test100_100_m": (_X100, _X100 + 2 - 0.1, 2.0 / 100, 1.0),
    "test100_110_p": (_X100, _X110 + 20 + 0.1, 232.0 / 1100, 0.015739183865607353),
    "test100_110_m": (_X100, _X110 + 20 - 0.1, 229.0 / 1100, 0.017803803861026313),
    "testRepeatedValues_a": (_X2233, _X2233 + 1, 5.0 / 16, 0.4262934613454952),
    "testRepeatedValues_b": (_X2356, _X3467, 190.0 / 21 / 26, 0.0919245790168125),
    "testEqualSizes_1": (_D3, _D3 + 1, 1.0 / 3, 1.0),
    "testEqualSizes_half": (_D3, _D3 + 0.5, 1.0 / 3, 1.0),
    "testEqualSizes_minus_half": (_D3, _D3 - 0.5, 1.0 / 3, 1.0),
    "testMiddlingBoth": (*_lin_pair(500, 1, 200, 600, 2, 200), 2000.0 / 500 / 600, 1.0),
    "testMediumBoth": (*_lin_pair(1000, 1, 200, 1100, 2, 200), 6600.0 / 1000 / 1100, 1.0),
    "testLarge": (*_lin_pair(10000, 1, 200, 110, 2, 100), 55275.0 / (10000 * 11.0),
                  4.2188474935755949e-15),
    "test_gh11184": (*_GH11184, 0.11292880151060758, 2.7755575615628914e-15),
    # test_warnings_gh_14019 publishes the 'less' p-value only; the two-sided one from scipy
    "test_warnings_gh_14019": (*_GH14019, None, None),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", sorted(KS_CASES))
def test_ks_2samp_cases(name, path):
    x1, x2, statistic, pvalue = KS_CASES[name]
    row = _drift_row(_floats(x1), _floats(x2), path)
    want = _scipy_ks(x1, x2)
    assert_allclose([row["ks_statistic"], row["ks_pvalue"]], [want.statistic, want.pvalue],
                    **TIGHT)
    if statistic is not None:
        assert_array_almost_equal([row["ks_statistic"], row["ks_pvalue"]], [statistic, pvalue])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("x6", [5.9, 6.1])
def test_ks_2samp_location_sign(x6, path):
    # test_stats.py::TestKSTwoSamples::test_location_sign (two-sided rows): statistic 0.1
    x = np.arange(10, dtype=np.float64)
    y = x.copy()
    x[6] = x6
    assert _drift_row(_floats(x), _floats(y), path)["ks_statistic"] == 0.1


@pytest.mark.parametrize("path", PATHS)
def test_ks_2samp_asymp_gh11184(path):
    # test_stats.py::TestKSTwoSamples::test_gh11184, mode='asymp': p = 2.7755575615628914e-15
    # at 6 decimals; ks_method="asymp" equals scipy's asymptotic value itself
    x, y = _GH11184
    row = _drift_row(_floats(x), _floats(y), path, ks_method="asymp")
    assert_allclose(row["ks_pvalue"], stats.ks_2samp(x, y, method="asymp").pvalue, **TIGHT)
    assert_array_almost_equal(row["ks_pvalue"], 2.7755575615628914e-15)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", [([], [1.0]), ([1.0], []), ([], [])])
def test_ks_2samp_argument_checking(case, path):
    # test_stats.py::TestKSTwoSamples::test_argument_checking: scipy warns and returns NaN for
    # an empty side. drift (a deliberate, documented difference: a monitor must not fail on an
    # empty day) returns a row whose statistics are null, counts 0, and no drift flag from them.
    ref, cur = (pa.array(v, pa.float64()) for v in case)
    row = _drift_row(ref, cur, path)
    assert row["ks_statistic"] is None and row["ks_pvalue"] is None
    assert row["wasserstein"] is None and row["psi"] is None
    assert (row["n_reference"], row["n_current"]) == (len(case[0]), len(case[1]))
    assert row["drift"] is False


# ---------------------------------------------------------------------------------------------
# scipy: wasserstein_distance, unweighted cases (test_stats.py::TestWassersteinDistance)

WASSERSTEIN_CASES = {
    "test_simple": ([0, 1, 2], [1, 2, 3], 1.0),
    "test_same_distribution": ([1, 2, 3], [2, 1, 3], 0.0),
    "test_shift_a": ([0], [1], 1.0),
    "test_shift_b": ([-5], [5], 10.0),
    "test_shift_c": ([1, 2, 3, 4, 5], [11, 12, 13, 14, 15], 10.0),
    # test_combine_weights, written out with unit weights (value repeated w times)
    "test_combine_weights": ([0, 0, 1, 1, 1, 1, 5], [0, 3, 3, 3, 3, 4, 4],
                             stats.wasserstein_distance([5, 0, 1], [0, 4, 3], [1, 2, 4],
                                                        [1, 2, 4])),
    "test_collapse": (np.arange(-10, 30, 0.3), np.zeros(134), np.mean(np.abs(np.arange(-10, 30, 0.3)))),
    "test_inf_values_a": ([1, 2, np.inf], [1, 1], np.inf),
    "test_inf_values_b": ([1, 2, np.inf], [-np.inf, 1], np.inf),
    "test_inf_values_c": ([1, -np.inf, np.inf], [1, 1], np.inf),
    "test_inf_values_d": ([1, 2, np.inf], [np.inf, 1], np.nan),  # undefined: inf - inf
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", sorted(WASSERSTEIN_CASES))
def test_wasserstein_cases(name, path):
    u, v, published = WASSERSTEIN_CASES[name]
    row = _drift_row(_floats(u), _floats(v), path)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = stats.wasserstein_distance(u, v)
    assert_allclose(row["wasserstein"], want, equal_nan=True, **TIGHT)
    assert_allclose(row["wasserstein"], published, equal_nan=True)
    # the normalised distance is undefined where the distance is (regression: it was inf)
    if np.isnan(published):
        assert np.isnan(row["wasserstein_norm"])
    # KS on the same infinite values: scipy compares them as ordinary numbers
    assert_allclose(row["ks_statistic"], _scipy_ks(u, v).statistic, **TIGHT)


# ---------------------------------------------------------------------------------------------
# scipy: jensenshannon (scipy/spatial/tests/test_distance.py::test_jensenshannon), through the
# categorical drift: the probability vectors are category counts (natural log, as drift uses).

def _categories(counts, names="abcdefgh"):
    return pa.array([names[i] for i, c in enumerate(counts) for _ in range(int(c))], pa.string())


JS_CASES = {  # name: (reference counts, current counts, published distance, base)
    "disjoint_base2": ([1, 0, 0], [0, 1, 0], 1.0, 2.0),
    "half": ([2, 0], [1, 1], 0.46450140402245893, None),
    "same": ([1, 0, 0], [1, 0, 0], 0.0, None),
    "rows_axis1_0": ([1, 2, 3, 4], [13, 14, 15, 16], 0.1402339, None),
    "rows_axis1_1": ([5, 6, 7, 8], [17, 18, 19, 20], 0.0399106, None),
    "rows_axis1_2": ([9, 10, 11, 12], [21, 22, 23, 24], 0.0201815, None),
    "cols_axis0_0": ([1, 5, 9], [13, 17, 21], 0.1954288, None),
    "cols_axis0_3": ([4, 8, 12], [16, 20, 24], 0.0927636, None),
    "keepdims_2x1": ([1, 2], [1, 3], 0.0649045, None),  # [1, 2] vs [0.5, 1.5] scaled by 2
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", sorted(JS_CASES))
def test_jensenshannon_cases(name, path):
    ref, cur, published, base = JS_CASES[name]
    row = _drift_row(_categories(ref), _categories(cur), path)
    # categories with no count on either side are absent from both (they cannot be seen)
    seen = [i for i in range(len(ref)) if ref[i] or cur[i]]
    p, q = np.array(ref, float)[seen], np.array(cur, float)[seen]
    assert_allclose(row["js_distance"], jensenshannon(p, q), **TIGHT)
    ours = row["js_distance"] / np.sqrt(np.log(base)) if base else row["js_distance"]
    assert_allclose(ours, published, atol=5e-8)  # assert_almost_equal: 7 decimals


# ---------------------------------------------------------------------------------------------
# scipy: chisquare (test_stats.py::TestPowerDivergence power_div_1d_cases, gh_12282,
# TestChisquare) through the categorical drift (current counts against the reference's
# proportions) and experiments.srm (arm counts against an expected split).

CHI2_CASES = {  # name: (observed = current counts, expected = reference counts, published)
    "power_div_default_f_exp": ([4, 8, 12, 8], [1, 1, 1, 1], 4.0),
    "power_div_nonuniform_f_exp": ([4, 8, 12, 8], [2, 16, 12, 2], 24.0),
    "power_div_equal": ([3, 5, 7, 9], [3, 5, 7, 9], 0.0),
    "gh_12282_col0": ([10, 30], [5, 35], 5.71428571),
    "gh_12282_col1": ([20, 20], [15, 25], 2.66666667),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", sorted(CHI2_CASES))
def test_chisquare_cases(name, path):
    obs, expected, published = CHI2_CASES[name]
    row = _drift_row(_categories(expected), _categories(obs), path)
    f_exp = np.array(expected, float) / np.sum(expected) * np.sum(obs)
    want = stats.chisquare(obs, f_exp)
    assert_allclose([row["chi2_statistic"], row["chi2_pvalue"]], [want.statistic, want.pvalue],
                    **TIGHT)
    assert_allclose(row["chi2_statistic"], published, rtol=1e-7)
    # srm is the same goodness-of-fit test on arm sizes
    assert_allclose(srm(obs, expected), (want.statistic, want.pvalue), **TIGHT)


def test_chisquare_data_types_and_cressie_read():
    # TestChisquare::test_chiquare_data_types_attributes: obs [n, 0] against [n/2, n/2] -> n
    for n, dtype in ((200, np.uint8), (1_000_000, np.int32)):
        assert_allclose(srm(np.array([n, 0], dtype=dtype))[0], n, rtol=1e-13)
    # the same through drift: every current row in one of two equally likely categories
    row = _drift_row(_categories([100, 100]), _categories([200, 0]), "direct")
    assert_allclose(row["chi2_statistic"], 200.0, rtol=1e-13)
    assert row["missing_categories"] == ["b"]
    # TestPowerDivergence::test_power_divergence_against_cressie_read_data, lambda = 1
    # (Pearson): 22.7 in Cressie & Read's table 5, rtol 5e-3
    obs = np.array([15., 11., 14., 17., 5., 11., 10., 4., 8., 10., 7., 9., 11., 3., 6., 1., 1.,
                    4.])
    i = np.arange(1.0, obs.size + 1)
    beta = -0.083769
    expected = np.exp(np.log(obs.sum() / np.exp(beta * i).sum()) + beta * i)
    assert_allclose(srm(obs, expected)[0], 22.7, rtol=5e-3)
    assert_allclose(srm(obs, expected), stats.chisquare(obs, expected), **TIGHT)


def test_srm_expected_share_zero_is_refused():
    # chisquare with an expected count of 0 gives NaN or inf (scipy warns); in a readout that
    # NaN read as a failed SRM check on every row. Regression: a zero share is refused up front.
    users = pa.table({"arm": ["A"] * 5 + ["B"] * 5, "m": np.arange(10.0)})
    with pytest.raises(InputError, match="srm_expected shares must be positive"):
        readout(users, variant="arm", control="A", metrics="m", srm_expected={"A": 1, "B": 0})
    row = readout(users, variant="arm", control="A", metrics="m",
                  srm_expected={"A": 2, "B": 2}).to_pylist()[0]
    assert row["srm_pvalue"] == stats.chisquare([5, 5]).pvalue == 1.0 and row["srm_ok"]


# ---------------------------------------------------------------------------------------------
# scipy: ttest_ind(equal_var=False) (test_stats.py::TestTTestInd, TestTTestIndFromStats) through
# experiments.welch (summary numbers) and readout (Arrow rows; diff = treatment - control, so
# scipy's first sample is our treatment).

def _desc(a):
    a = np.asarray(a, float)
    return a.mean(), a.var(ddof=1), a.size


WELCH_CASES = {  # name: (a, b, published t, published p)
    "uneq_var_3v3": ([1., 2., 3.], [1.1, 2.9, 4.2], -0.686495127355726265, 0.53619490753126686),
    "uneq_var_4v3": ([1., 2., 3., 4.], [1.1, 2.9, 4.2], -0.210866331595072315,
                     0.84354139131608252),
    "regression_100v100": (np.linspace(5, 105, 100), np.linspace(1, 100, 100),
                           1.0912746897927283, 0.27647831993021388),
    "regression_100v100_swapped": (np.linspace(1, 100, 100), np.linspace(5, 105, 100),
                                   -1.0912746897927283, 0.27647831993021388),
    "regression_uneq_n": (np.linspace(5, 105, 100), np.linspace(1, 100, 25),
                          0.66745638708050492, 0.50873585065616544),
}


@pytest.mark.parametrize("name", sorted(WELCH_CASES))
def test_ttest_ind_welch_cases(name):
    a, b, t_pub, p_pub = WELCH_CASES[name]
    want = stats.ttest_ind(a, b, equal_var=False)
    ours = welch(*_desc(b), *_desc(a))
    assert_allclose([ours["t"], ours["p_value"]], [want.statistic, want.pvalue], **TIGHT)
    assert_allclose([ours["t"], ours["p_value"]], [t_pub, p_pub], rtol=1e-7)  # xp_assert_close
    ci = want.confidence_interval()
    assert_allclose([ours["ci_low"], ours["ci_high"]], [ci.low, ci.high], **TIGHT)
    users = pa.table({"arm": ["b"] * len(b) + ["a"] * len(a),
                      "m": np.concatenate([np.asarray(b, float), np.asarray(a, float)])})
    row = readout(users, variant="arm", control="b", metrics="m").to_pylist()[0]
    assert row["method"] == "welch"
    assert_allclose([row["p_value"], row["ci_low"], row["ci_high"]],
                    [want.pvalue, ci.low, ci.high], **TIGHT)


def test_ttest_ind_zero_division():
    # TestTTestInd::test_ttest_ind_zero_division: zeros vs ones -> t = -inf, p = 0 (scipy takes
    # df = 1 when both variances are 0); zeros vs zeros -> NaN. Regression: welch gave p = NaN
    # (df 0/0), so a constant metric that moved read out "inconclusive".
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = stats.ttest_ind(np.zeros(3), np.ones(3), equal_var=False)
        same = stats.ttest_ind(np.zeros(3), np.zeros(3), equal_var=False)
    ours = welch(1.0, 0.0, 3, 0.0, 0.0, 3)
    assert ours["t"] == want.statistic == -np.inf and ours["p_value"] == want.pvalue == 0.0
    ours = welch(0.0, 0.0, 3, 0.0, 0.0, 3)
    assert np.isnan(ours["t"]) and np.isnan(ours["p_value"]) and np.isnan(same.pvalue)
    # in a readout, 0/1 values are a conversion metric (z-test); a constant 2 vs 0 is Welch's
    users = pa.table({"arm": ["C"] * 3 + ["T"] * 3, "m": [2.0, 2, 2, 0, 0, 0]})
    row = readout(users, variant="arm", control="C", metrics="m").to_pylist()[0]
    assert row["method"] == "welch" and row["p_value"] == 0.0 and row["decision"] == "control"
    # TestTTestIndFromStats::test_ttest_ind_from_stats_inputs_zero: all zero -> NaN
    assert np.isnan(welch(0.0, 0.0, 6, 0.0, 0.0, 6)["p_value"])


def test_ttest_ind_nan_and_empty_inputs():
    # TestTTestInd::test_ttest_ind_zero_division (NaN row) and test_ttest_ind_empty_1d_returns_nan:
    # scipy propagates NaN / returns NaN. readout refuses NaN with the column named (a documented
    # difference: a NaN revenue is a data error, not a statistic) and an input without rows.
    users = pa.table({"arm": ["C", "C", "T", "T"], "m": [1.0, np.nan, -1.0, 1.0]})
    with pytest.raises(InputError, match="'m'.*NaN"):
        readout(users, variant="arm", control="C", metrics="m")
    empty = pa.table({"arm": pa.array([], pa.string()), "m": pa.array([], pa.float64())})
    with pytest.raises(InputError, match="no rows"):
        readout(empty, variant="arm", control="C", metrics="m")
    # one user in control: variance undefined -> no p-value, as scipy's NaN
    users = pa.table({"arm": ["C", "T", "T", "T"], "m": [1.0, 2.0, 3.0, 4.0]})
    row = readout(users, variant="arm", control="C", metrics="m").to_pylist()[0]
    assert row["p_value"] is None and row["decision"] == "inconclusive"
    assert np.isnan(stats.ttest_ind([2.0, 3.0, 4.0], [1.0], equal_var=False).pvalue)


# ---------------------------------------------------------------------------------------------
# statsmodels: proportions_ztest, confint_proportions_2indep, proportions_chisquare_pairscontrol
# (statsmodels/stats/tests/test_proportion.py)

def test_proportions_ztest_default_values():
    # test_proportion.py::TestProportion::test_default_values (GH 2969)
    from statsmodels.stats.proportion import proportions_ztest as sm_ztest
    z, p = proportions_ztest([5, 12], [83, 99])
    assert_allclose([z, p], sm_ztest(np.array([5, 12]), np.array([83, 99])), **TIGHT)
    assert_allclose([z, p], [-1.4078304151258787, 0.15918129181156992], atol=1.5e-7)
    # the same numbers from user rows through readout (sign: treatment - control)
    users = pa.table({"arm": ["A"] * 83 + ["B"] * 99,
                      "converted": [1] * 5 + [0] * 78 + [1] * 12 + [0] * 87})
    row = readout(users, variant="arm", control="B", metrics="converted").to_pylist()[0]
    assert row["method"] == "z_proportions"
    assert_allclose(row["p_value"], 0.15918129181156992, rtol=1e-12)


@pytest.mark.parametrize("count, nobs", [([15, 10], [20.0, 20]), ([15, 10], [20, 50000])])
def test_proportion_ztests_equal_chisquare(count, nobs):
    # test_proportion.py::test_proportion_ztests (issue #7603 integers): z-test p equals the
    # 2x2 chi-square p (decimal 13)
    from statsmodels.stats.proportion import proportions_chisquare
    _, p = proportions_ztest(count, nobs)
    assert_allclose(p, proportions_chisquare(np.asarray(count), np.asarray(nobs))[1],
                    rtol=1e-12, atol=1e-13)


def test_confint_2indep_wald_and_log_ratio():
    # test_proportion.py::test_confint_2indep (Fagerland et al. 2015): 7/34 vs 1/34, Wald
    # difference interval [0.029, 0.324] (atol 0.005)
    from statsmodels.stats.proportion import confint_proportions_2indep
    out = conversion(1, 34, 7, 34)  # control first
    want = confint_proportions_2indep(7, 34, 1, 34, method="wald", compare="diff")
    assert_allclose([out["ci_low"], out["ci_high"]], want, **TIGHT)
    assert_allclose([out["ci_low"], out["ci_high"]], [0.029, 0.324], atol=0.005)
    # ratio: statsmodels' Katz "log" interval [0.91, 54] is symmetric on the log scale; our lift
    # interval is the delta method on the ratio itself (documented), whose standard error is
    # the ratio times the log-scale one: the half-widths must agree exactly that way
    lo, hi = confint_proportions_2indep(7, 34, 1, 34, method="log", compare="ratio")
    assert_allclose([lo, hi], [0.91, 54], rtol=0.01)
    ratio = 7 / 1
    assert_allclose((out["lift_ci_high"] - out["lift_ci_low"]) / 2,
                    ratio * (np.log(hi) - np.log(lo)) / 2, rtol=1e-12)
    assert_allclose(out["lift"], ratio - 1, rtol=1e-14)


def test_pairwise_proportions_against_control_through_readout():
    # test_proportion.py::CheckProportionMixin::test_pairwiseproptest (TestProportion data,
    # R prop.test): smokers 73/86, 90/93, 114/136, 75/82; the pairs with group 0 have raw p
    # 0.00533824886503131, 0.8327574849753566, 0.1880573726722516; pairscontrol with Holm
    from statsmodels.stats.proportion import proportions_chisquare_pairscontrol
    success, nobs = np.array([73, 90, 114, 75]), np.array([86, 93, 136, 82])
    arms, values = [], []
    for g, (s, n) in enumerate(zip(success, nobs)):
        arms += [f"g{g}"] * int(n)
        values += [1] * int(s) + [0] * int(n - s)
    users = pa.table({"arm": arms, "smoker": pa.array(values, pa.int8())})
    out = readout(users, variant="arm", control="g0", metrics="smoker",
                  correction="holm").to_pylist()
    assert [r["variant"] for r in out] == ["g1", "g2", "g3"]
    raw = [r["p_value"] for r in out]
    assert_array_almost_equal(raw, [0.00533824886503131, 0.8327574849753566,
                                    0.1880573726722516])
    ppt = proportions_chisquare_pairscontrol(success, nobs, multitest_method="h")
    assert_allclose(raw, ppt.pvals_raw, rtol=1e-12)
    assert_allclose([r["p_adjusted"] for r in out], ppt.pval_corrected(), rtol=1e-12)
    # the arms (86/93/136/82) are far from the default equal split: the SRM check is scipy's
    # chisquare on them, and when it fails no winner is declared
    srm_p = stats.chisquare(nobs).pvalue
    assert srm_p < 0.001
    assert_allclose([r["srm_pvalue"] for r in out], [srm_p] * 3, **TIGHT)
    assert [r["decision"] for r in out] == ["srm_failed"] * 3


# ---------------------------------------------------------------------------------------------
# statsmodels: multipletests (statsmodels/stats/tests/test_multi.py), the methods we expose:
# Bonferroni ("b", R column 1), Holm ("h", 2), Benjamini-Hochberg ("fdr_i", 6)

try:  # the R reference tables, read from statsmodels' own test module (shipped in its wheel)
    from statsmodels.stats.tests import test_multi as _sm_multi
    _R_TABLES = {"TestMultiTests1": _sm_multi.res_multtest1,
                 "TestMultiTests2": _sm_multi.res_multtest2,
                 "TestMultiTests3": _sm_multi.res0_large,
                 "TestMultiTests4": _sm_multi.res_multtest3}
except ImportError:  # a statsmodels build without its tests: those cases are skipped, not lost
    _R_TABLES = {}
_METHODS = {"bonferroni": ("b", 1), "holm": ("h", 2), "fdr_bh": ("fdr_i", 6)}


@pytest.mark.parametrize("table", ["TestMultiTests1", "TestMultiTests2", "TestMultiTests3",
                                   "TestMultiTests4"])
@pytest.mark.parametrize("method", sorted(_METHODS))
def test_multipletests_against_r(table, method):
    from statsmodels.stats.multitest import multipletests
    if table not in _R_TABLES:
        pytest.skip("statsmodels.stats.tests is not installed")
    res = _R_TABLES[table]
    sm_name, column = _METHODS[method]
    ours = adjust_pvalues(res[:, 0], method)
    assert_allclose(ours, multipletests(res[:, 0], method=sm_name)[1], rtol=1e-14, atol=1e-16)
    assert_allclose(ours, res[:, column], rtol=1e-13, atol=1e-15)  # R multtest
    # test_issorted: the order of the input does not matter
    perm = np.random.default_rng(0).permutation(res.shape[0])
    assert_allclose(adjust_pvalues(res[perm, 0], method), ours[perm], rtol=0, atol=0)


@pytest.mark.parametrize("method", sorted(_METHODS))
def test_multipletests_floating_precision_and_empty(method):
    # test_multi.py::test_floating_precision (issue #7465) and test_multipletests_empty
    pvals = np.full(6000, 0.99)
    pvals[0] = 1.138569e-56
    assert adjust_pvalues(pvals, method)[0] > 1e-60
    assert adjust_pvalues([], method).shape == (0,)
    # NaN stays NaN and is not counted as a test (documented; statsmodels has no NaN rule)
    out = adjust_pvalues([0.01, np.nan, 0.04], method)
    assert np.isnan(out[1])
    assert_allclose(out[[0, 2]], adjust_pvalues([0.01, 0.04], method), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# statsmodels: NormalIndPower (statsmodels/stats/tests/test_power.py); ours takes the effect in
# units of the metric and its std, so effect size d = effect / sd with sd = 1.

def test_normal_power_explicit():
    import statsmodels.stats.power as smp
    # test_power.py::test_normal_power_explicit: R pwr 0.475100870572638 (decimal 13)
    assert_allclose(power(0.3, 1.0, 80), 0.475100870572638, rtol=0, atol=1e-13)
    # R pwr.2p.test(h=0.01, n=80): two-sided power of effect -0.01 (decimal 11)
    assert_allclose(power(-0.01, 1.0, 80), 0.05045832927039234, rtol=0, atol=1e-11)
    for d, n, alpha, ratio in ((0.3, 80, 0.05, 1), (0.1, 1600, 0.01, 1), (0.2, 50, 0.1, 2.5)):
        want = smp.NormalIndPower().power(d, n, alpha, ratio=ratio)
        assert_allclose(power(d, 1.0, n, ratio=ratio, alpha=alpha), want, rtol=1e-12)
    # test_power_solver: effect 0 -> power = alpha
    assert_allclose(power(0.0, 1.0, 1600, alpha=0.01), 0.01, rtol=1e-12)


@pytest.mark.parametrize("d, alpha, target, ratio", [(0.3, 0.05, 0.8, 1.0), (0.1, 0.01, 0.9, 1.0),
                                                     (0.25, 0.05, 0.8, 2.0)])
def test_normal_solve_power_nobs(d, alpha, target, ratio):
    # test_power.py::CheckPowerMixin::test_roots for NormalIndPower (nobs1 solved)
    import statsmodels.stats.power as smp
    want = smp.NormalIndPower().solve_power(d, nobs1=None, alpha=alpha, power=target, ratio=ratio)
    n = sample_size(d, 1.0, ratio=ratio, alpha=alpha, power_=target)
    assert_allclose(n, want, rtol=1e-7)  # statsmodels' own root tolerance
    assert_allclose(power(d, 1.0, n, ratio=ratio, alpha=alpha), target, rtol=1e-10)
    # test_power_solver: effect 0 cannot reach any power; statsmodels raises ValueError
    with pytest.raises(InputError, match="non-zero"):
        sample_size(0.0, 1.0, alpha=alpha, power_=target)


def test_power_proportions_2indep_stata_example():
    # test_proportion.py::test_power_2indep, Stata example: p2 = 0.015, p1 = 0.001, n = 550,
    # power 0.7415600. statsmodels uses the pooled std under the null and the unpooled one
    # under the alternative; our power() takes one sd per arm for both (documented: "for a
    # conversion rate p, pass sd = sqrt(p (1 - p)) per arm"), i.e. statsmodels' normal_power_het
    # with std_null = std_alternative. The two differ by 0.002 here.
    import statsmodels.stats.power as smp
    from statsmodels.stats.proportion import power_proportions_2indep
    res = power_proportions_2indep(-0.014, 0.015, 550, ratio=1.0)
    assert_allclose(res.power, 0.7415600, atol=1e-7)
    ours = power(-0.014, np.sqrt(0.015 * 0.985), 550, sd_treatment=np.sqrt(0.001 * 0.999))
    assert_allclose(ours, smp.normal_power_het(-0.014, 550, 0.05, std_null=res.std_alt,
                                               std_alternative=res.std_alt), rtol=1e-12)
    assert abs(ours - res.power) < 0.003


# ---------------------------------------------------------------------------------------------
# scikit-uplift: uplift_curve, qini_curve, the normalised areas, TwoModels
# (github maks-sh/scikit-uplift sklift/tests/test_metrics.py, test_models.py). sklift 0.5.1's
# check_is_binary breaks under NumPy 2 whenever y holds one value or three (np.unique(...) ==
# [0, 1] no longer broadcasts), so its published numbers are used there and the installed
# functions on data where they run.

def _make_predictions(binary):
    # test_metrics.py::make_predictions, verbatim data, SoloModel(DecisionTreeClassifier(0))
    from sklearn.tree import DecisionTreeClassifier
    from sklift.models import SoloModel
    X_train, y_train, treat_train = (np.array([[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2],
                                               [4.7, 3.2, 1.3, 0.2]]),
                                     np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 1.0]))
    X_val, y_val, treat_val = (np.array([[5.1, 3.4, 1.5, 0.2], [5.0, 3.5, 1.3, 0.3],
                                         [4.5, 2.3, 1.3, 0.3]]),
                               np.array([0.0, 1.0, 0.0]), np.array([0.0, 1.0, 1.0]))
    if not binary:
        y_train, y_val = (np.array([2.0, 0.0, 1.0]), np.array([0.0, 1.0, 2.0]))
    model = SoloModel(DecisionTreeClassifier(random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        uplift = model.fit(X_train, y_train, treat_train).predict(X_val)
    return y_val, uplift, treat_val


@pytest.mark.parametrize("binary, uplift_xy, qini_xy", [
    # test_uplift_curve / test_qini_curve parametrisations
    (True, ([0, 3], [0, 1.5]), ([0, 3], [0, 1.0])),
    (False, ([0, 2, 3], [0.0, 3, 4.5]), ([0, 2, 3], [0.0, 3, 3.0])),
])
def test_uplift_and_qini_curve(binary, uplift_xy, qini_xy):
    y, uplift, treatment = _make_predictions(binary)
    for ours, (x_pub, y_pub) in ((uplift_curve(y, uplift, treatment), uplift_xy),
                                 (qini_curve(y, uplift, treatment), qini_xy)):
        assert_array_almost_equal(ours[0], x_pub)
        assert_array_almost_equal(ours[1], y_pub)
        assert ours[0].shape == ours[1].shape


@pytest.mark.parametrize("outcome", [0.0, 1.0])
def test_uplift_and_qini_curve_hard(outcome):
    # test_uplift_curve_hard / test_qini_curve_hard: all-zero and all-one outcomes -> flat 0
    y, uplift, treatment = _make_predictions(True)
    y = np.full(y.shape, outcome)
    for curve in (uplift_curve, qini_curve):
        x_curve, y_curve = curve(y, uplift, treatment)
        assert_array_almost_equal(x_curve, [0, 3])
        assert_array_almost_equal(y_curve, [0.0, 0.0])


def _perfect_uplift_scores(y, t):
    # sklift.metrics.perfect_uplift_curve's ranking, transcribed (its own check fails here)
    y, t = np.asarray(y), np.asarray(t)
    control_responders = np.sum((y == 1) & (t == 0))
    treated_nonresponders = np.sum((y == 0) & (t == 1))
    summand = y if control_responders > treated_nonresponders else t
    return 2 * (y == t) + summand


def _normalised(curve, y, uplift, t, perfect_scores):
    """sklift's auc score: (area - baseline) / (perfect area - baseline), baseline the chord to
    the perfect curve's end; our curve_area is the numerator when the end points agree."""
    x, v = curve(y, uplift, t)
    xp, vp = curve(y, perfect_scores, t)
    assert x[-1] == xp[-1] and v[-1] == vp[-1]
    return curve_area(x, v) / curve_area(xp, vp)


AUC_CASES = [  # (y, uplift, treatment, uplift_auc_score, qini_auc_score) from test_metrics.py
    ([1, 1], [0.1, 0.3], [0, 1], 1.0, 1.0),
    ([1, 1], [0.1, 0.3], [1, 0], -1.0, 0.0),
    ([0, 1], [0.1, 0.3], [1, 0], 0.0, 1.0),
    ([1, 0], [0.1, 0.3], [0, 1], 1.0, 1.0),
    ([0, 1, 2], [0.1, 0.3, 0.9], [0, 1, 0], -1.333333, -0.5),
    ([0, 1, 2], [0.1, 0.3, 0.9], [1, 0, 1], 1.333333, 0.75),
]


@pytest.mark.parametrize("y, uplift, t, uplift_auc, qini_auc", AUC_CASES)
def test_uplift_and_qini_auc_score(y, uplift, t, uplift_auc, qini_auc):
    # test_metrics.py::test_uplift_auc_score / test_qini_auc_score (negative_effect=True: the
    # perfect Qini ranking is y * t - y * (1 - t))
    y, t = np.asarray(y, float), np.asarray(t, float)
    ours_uplift = _normalised(uplift_curve, y, uplift, t, _perfect_uplift_scores(y, t))
    ours_qini = _normalised(qini_curve, y, uplift, t, y * t - y * (1 - t))
    assert_array_almost_equal(ours_qini, qini_auc)
    assert_array_almost_equal(ours_uplift, uplift_auc)


def _random_campaign(seed, n=400, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(float)
    t = (rng.random(n) < 0.5).astype(float)
    uplift = rng.normal(size=n)
    if ties:
        uplift = np.round(uplift, 1)
    return y, uplift, t


@pytest.mark.parametrize("seed, ties", [(0, False), (1, True), (2, True)])
def test_curves_and_scores_equal_installed_sklift(seed, ties):
    # the installed functions, on data where both outcomes and both arms occur
    from sklift.metrics import (qini_auc_score, qini_curve as sk_qini, uplift_auc_score,
                                uplift_curve as sk_uplift)
    y, uplift, t = _random_campaign(seed, ties=ties)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # sklearn's stable_cumsum deprecation
        pairs = ((uplift_curve, sk_uplift), (qini_curve, sk_qini))
        for ours_fn, peer_fn in pairs:
            ours, peer = ours_fn(y, uplift, t), peer_fn(y, uplift, t)
            assert_allclose(ours[0], peer[0], rtol=0, atol=0)
            assert_allclose(ours[1], peer[1], rtol=1e-12, atol=1e-12)
            assert_allclose(curve_area(*ours), auc(*peer) - peer[0][-1] * peer[1][-1] / 2,
                            rtol=1e-12, atol=1e-9)
        assert_allclose(_normalised(uplift_curve, y, uplift, t, _perfect_uplift_scores(y, t)),
                        uplift_auc_score(y, uplift, t), rtol=1e-12)
        assert_allclose(_normalised(qini_curve, y, uplift, t, y * t - y * (1 - t)),
                        qini_auc_score(y, uplift, t), rtol=1e-12)
    # booleans and Arrow arrays are the same input
    same = uplift_curve(pa.array(y), pa.array(uplift), pa.array(t.astype(bool)))
    assert_allclose(same[1], uplift_curve(y, uplift, t)[1], rtol=0, atol=0)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_two_models_vanilla_equals_sklift(task):
    # test_models.py::test_shape_classification / test_shape_regression (TwoModels vanilla):
    # same estimator, same data -> the same uplift, one per row
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklift.models import TwoModels
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3))
    t = (rng.random(300) < 0.5).astype(int)
    y = (rng.random(300) < 0.4).astype(int) if task == "classification" else \
        X @ [1.0, -0.5, 0.2] + t * X[:, 0] + rng.normal(size=300)
    est = LogisticRegression if task == "classification" else LinearRegression
    peer = TwoModels(est(), est(), method="vanilla").fit(X, y, t).predict(X)
    table = pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "t": t, "y": y})
    ours = TwoModelUplift(est()).fit(table, features=["a", "b", "c"], treatment="t",
                                     outcome="y").predict(table)
    assert ours.shape == (300,)
    assert_allclose(ours, peer, rtol=1e-10, atol=1e-12)


def test_uplift_bad_inputs_are_refused():
    # sklift checks consistent lengths and binary treatment (check_consistent_length,
    # check_is_binary). Regression: ours read past the end of a shorter array (the kernel has
    # no bounds checks), ranked NaN scores, and took treatment 2 for "treated".
    y, uplift, t = np.array([1.0, 0, 1]), np.array([0.1, 0.2, 0.3]), np.array([0, 1, 1])
    with pytest.raises(InputError, match="one length"):
        uplift_curve(y, uplift, t[:2])
    with pytest.raises(InputError, match="one length"):
        qini_curve(y[:2], uplift, t)
    with pytest.raises(InputError, match="uplift holds 1 NaN"):
        qini_curve(y, [0.1, np.nan, 0.3], t)
    with pytest.raises(InputError, match="treated must hold 0/1"):
        uplift_curve(y, uplift, [0, 2, 1])
    with pytest.raises(InputError, match="outcome holds 1 NaN"):
        uplift_curve([1.0, np.nan, 0], uplift, t)
    with pytest.raises(InputError, match="outcome holds 1 NaN or null"):
        uplift_curve(pa.array([1.0, None, 0]), uplift, t)
    with pytest.raises(InputError, match="treated must hold numbers without nulls"):
        uplift_curve(y, uplift, pa.array([True, None, False]))
    # one-sided treatment: the curves are defined (the control rate counts as 0, as sklift's
    # np.divide(..., where=num_ctrl != 0)); a model per arm is not
    x_c, y_c = uplift_curve(y, uplift, [1, 1, 1])
    assert_allclose(y_c, [0, 1, 1, 2])
    table = pa.table({"a": [0.1, 0.2, 0.3, 0.4], "t": [1, 1, 1, 1], "y": [0, 1, 0, 1]})
    from sklearn.linear_model import LogisticRegression
    with pytest.raises(InputError, match="both treated .* and control"):
        TwoModelUplift(LogisticRegression()).fit(table, features=["a"], treatment="t",
                                                 outcome="y")
    from sklearn.linear_model import LinearRegression
    with pytest.raises(InputError, match="both treated and control"):
        TransformedOutcomeUplift(LinearRegression()).fit(table, features=["a"], treatment="t",
                                                         outcome="y")
    # empty input: a curve of one point, area 0
    x_e, y_e = qini_curve([], [], [])
    assert x_e.tolist() == [0.0] and curve_area(x_e, y_e) == 0.0


# ---------------------------------------------------------------------------------------------
# Edge cases the peers test for themselves, and the rest of the list: ties, all-equal, one
# value, unsorted and duplicated rows, NaN and nulls, huge ids, float32.

@pytest.mark.parametrize("path", PATHS)
def test_drift_edge_cases_equal_scipy(path):
    rng = np.random.default_rng(5)
    ties = rng.integers(0, 4, 300).astype(float)
    cases = {
        "all_equal_same": ([5.0] * 7, [5.0] * 3),
        "all_equal_moved": ([5.0] * 7, [6.0] * 3),
        "one_value_each": ([1.0], [2.0]),
        "ties": (ties, rng.integers(0, 5, 200).astype(float)),
        "unsorted_duplicated": (np.concatenate([ties, ties[::-1]]), ties[:150]),
        "float32": (rng.normal(size=200).astype(np.float32), rng.normal(size=90).astype(np.float32)),
    }
    for name, (u, v) in cases.items():
        arr_u = pa.array(u) if np.asarray(u).dtype == np.float32 else _floats(u)
        arr_v = pa.array(v) if np.asarray(v).dtype == np.float32 else _floats(v)
        row = _drift_row(arr_u, arr_v, path)
        u64, v64 = np.asarray(u, np.float64), np.asarray(v, np.float64)
        ks = _scipy_ks(u64, v64)
        assert_allclose([row["ks_statistic"], row["ks_pvalue"], row["wasserstein"]],
                        [ks.statistic, ks.pvalue, stats.wasserstein_distance(u64, v64)],
                        err_msg=name, **TIGHT)
    # all-equal reference, moved current: the std is 0, the normalised distance infinite
    row = _drift_row(_floats([5.0] * 7), _floats([6.0] * 3), path)
    assert row["wasserstein_norm"] == np.inf and row["drift"] is True


@pytest.mark.parametrize("path", PATHS)
def test_drift_nan_and_nulls_count_as_missing(path):
    # scipy propagates NaN (ks_2samp gives NaN); drift counts NaN and nulls as missing values
    # (documented) and equals scipy on the rest, with the null rates reported
    ref = pa.array([1.0, 2.0, None, 4.0, np.nan, 6.0])
    cur = pa.array([np.nan, 2.5, 3.5, None])
    row = _drift_row(ref, cur, path)
    ks = _scipy_ks([1.0, 2.0, 4.0, 6.0], [2.5, 3.5])
    assert_allclose([row["ks_statistic"], row["ks_pvalue"]], [ks.statistic, ks.pvalue], **TIGHT)
    assert (row["n_reference"], row["n_current"]) == (4, 2)
    assert_allclose([row["null_rate_reference"], row["null_rate_current"]], [2 / 6, 2 / 4])


@pytest.mark.parametrize("path", PATHS)
def test_drift_huge_integer_ids(path):
    # int64 values past 2**53 (hashed customer ids): compared as float64, as scipy converts
    # them. Regression: Arrow's safe cast refused them (ArrowInvalid, no column named).
    ref = pa.array([2 ** 62, 2 ** 62 + 1, 3, -(2 ** 63), 2 ** 63 - 1], pa.int64())
    cur = pa.array([2 ** 62 + 1, 5, 2 ** 61], pa.int64())
    row = _drift_row(ref, cur, path)
    u = np.array(ref.to_pylist(), dtype=np.float64)
    v = np.array(cur.to_pylist(), dtype=np.float64)
    ks = _scipy_ks(u, v)
    assert_allclose([row["ks_statistic"], row["ks_pvalue"], row["wasserstein"]],
                    [ks.statistic, ks.pvalue, stats.wasserstein_distance(u, v)], **TIGHT)
    huge_u64 = pa.array([2 ** 64 - 1, 2 ** 63, 7], pa.uint64())
    row = _drift_row(huge_u64, pa.array([2 ** 63 + 5, 1], pa.uint64()), path)
    assert row["n_reference"] == 3 and row["ks_statistic"] is not None


def test_categorical_edge_cases():
    # one category on both sides: chi-square has 0 degrees of freedom -> NaN p-value (scipy
    # gives NaN too); a null category counts as missing; a new category makes the statistic inf
    row = _drift_row(pa.array(["a"] * 5), pa.array(["a"] * 3), "direct")
    want = stats.chisquare([3.0], [3.0])
    assert row["chi2_statistic"] == want.statistic == 0.0
    assert np.isnan(row["chi2_pvalue"]) and np.isnan(want.pvalue)
    row = _drift_row(pa.array(["a", "b", None]), pa.array(["a", "c", None, None]), "direct")
    assert row["new_categories"] == ["c"] and row["missing_categories"] == ["b"]
    assert row["chi2_statistic"] == np.inf
    assert_allclose([row["null_rate_reference"], row["null_rate_current"]], [1 / 3, 2 / 4])


def test_readout_empty_group_and_one_sided_segment():
    # a segment where one arm has no users: its rows carry the counts and no statistic
    users = pa.table({"arm": ["C", "C", "C", "T", "T", "T"], "seg": ["a", "a", "b", "a", "a", "a"],
                      "m": [1.0, 2, 3, 4, 5, 6]})
    out = {r["segment"]: r for r in readout(users, variant="arm", control="C", metrics="m",
                                            segment="seg").to_pylist()}
    assert (out["b"]["n_control"], out["b"]["n_treatment"]) == (1, 0)
    assert out["b"]["p_value"] is None and out["b"]["decision"] == "inconclusive"
    want = stats.ttest_ind([4.0, 5, 6], [1.0, 2], equal_var=False)
    assert_allclose(out["a"]["p_value"], want.pvalue, **TIGHT)
    with pytest.raises(InputError, match="one variant only"):
        readout(pa.table({"arm": ["C"] * 3, "m": [1.0, 2, 3]}), variant="arm", control="C",
                metrics="m")


def test_forget_huge_ids():
    # huge ids in a profile's id column: exact as categories; refused (clear error, no
    # ArrowInvalid) in a numeric column, where 2**62 and 2**62 + 1 are one float64 value and
    # forgetting one would drop the other customer's row too
    table = pa.table({"cid": pa.array([2 ** 62, 2 ** 62 + 1, 3, 5], pa.int64()),
                      "v": [1.0, 2.0, 3.0, 4.0]})
    profile = Profile.from_data(table, categorical=["cid"])
    profile.forget([2 ** 62 + 1], request="r1")
    assert sorted(profile.state("cid").values.to_pylist()) == [3, 5, 2 ** 62]
    numeric = Profile.from_data(table)
    with pytest.raises(InputError, match="'cid'.*2\\*\\*53"):
        numeric.forget([2 ** 62 + 1], request="r2", id_columns=["cid"])
    assert numeric.state("cid").n == 4  # nothing removed
    numeric.forget([3], request="r3", id_columns=["cid"])  # small ids stay exact
    assert numeric.state("cid").n == 3


# ---------------------------------------------------------------------------------------------
# Property: readout on any small experiment equals scipy's Welch and statsmodels' z-test and
# Wald interval per (segment, variant), ties and tiny groups included.

_users = st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.sampled_from(["s", "t"]),
                            st.integers(0, 1), st.sampled_from([0.0, 1.5, 2.0, 7.25, -3.0])),
                  min_size=2, max_size=40)


@settings(max_examples=40, deadline=None)
@given(_users)
def test_readout_equals_scipy_and_statsmodels(users):
    from statsmodels.stats.proportion import confint_proportions_2indep
    from statsmodels.stats.proportion import proportions_ztest as sm_ztest
    arms = sorted({u[0] for u in users})
    if "A" not in arms or len(arms) < 2:
        return
    table = pa.table({"arm": [u[0] for u in users], "seg": [u[1] for u in users],
                      "conv": pa.array([u[2] for u in users], pa.int8()),
                      "rev": [u[3] for u in users]})
    out = readout(table, variant="arm", control="A", metrics=["conv", "rev"], segment="seg")
    binary_rev = all(u[3] in (0.0, 1.0) for u in users)
    for row in out.to_pylist():
        members = [u for u in users if row["segment"] in ("all", u[1])]
        col = 2 if row["metric"] == "conv" else 3
        ctrl = np.array([u[col] for u in members if u[0] == "A"], float)
        trt = np.array([u[col] for u in members if u[0] == row["variant"]], float)
        assert (row["n_control"], row["n_treatment"]) == (ctrl.size, trt.size)
        if row["metric"] == "rev" and not binary_rev:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                want = stats.ttest_ind(trt, ctrl, equal_var=False).pvalue \
                    if min(ctrl.size, trt.size) >= 2 else np.nan
            got = np.nan if row["p_value"] is None else row["p_value"]
            assert_allclose(got, want, equal_nan=True, rtol=1e-9, atol=1e-12)
        elif ctrl.size and trt.size:
            count, nobs = np.array([trt.sum(), ctrl.sum()]), np.array([trt.size, ctrl.size])
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                want = sm_ztest(count, nobs)[1]
                lo, hi = confint_proportions_2indep(count[0], nobs[0], count[1], nobs[1],
                                                    method="wald", compare="diff")
            got = np.nan if row["p_value"] is None else row["p_value"]
            assert_allclose(got, want, equal_nan=True, rtol=1e-9, atol=1e-12)
            assert_allclose([row["ci_low"], row["ci_high"]], [lo, hi], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("scale", [1e-310, 1e-305, 2.0 ** -950, 1e300, 1e307])
def test_drift_extreme_magnitudes_equal_scipy(scale, path):
    # values near the double limits, as scipy handles them (its wasserstein sums
    # |u_cdf - v_cdf| x deltas). Regressions: a subnormal range crashed the bucket map (cells /
    # span overflowed, an int64 cast of inf indexed out of bounds: segfault); |x| ~ 1e300 gave
    # Wasserstein inf or NaN (counts x widths overflowed). Both now take the sorted walk.
    rng = np.random.default_rng(11)
    u, v = rng.normal(size=3000) * scale, rng.normal(0.1, 1.0, 2000) * scale
    row = _drift_row(_floats(u), _floats(v), path)
    ks = _scipy_ks(u, v)
    assert_allclose([row["ks_statistic"], row["ks_pvalue"]], [ks.statistic, ks.pvalue], **TIGHT)
    assert_allclose(row["wasserstein"], stats.wasserstein_distance(u, v), rtol=1e-9, atol=0)
    # published: test_stats.py TestWassersteinDistance::test_shift pattern at the limit
    row = _drift_row(_floats([-1e308, 0.0, 1.0, 1e308]), _floats([1e308, 5.0]), path)
    assert_allclose(row["wasserstein"], 5e307, rtol=1e-12)


def test_sequential_with_sparse_days_equals_cumulative_reference():
    # days with one user (or none) in an arm: a group of one has a NaN variance (0/0) and an
    # empty one a NaN mean; pooled over days they must add nothing. Regression: the pooled
    # variance went NaN, so the default tau raised "tau must be positive (got nan)", and with a
    # given tau the cumulative variance went NaN and the p-value stayed 1 (never rejecting).
    from fastengage.experiments import msprt, sequential
    rng = np.random.default_rng(21)
    day = np.array([0, 0, 0, 1, 3, 3, 3, 3, 4] + [5] * 40 + [6] * 40)
    arm = np.array(["A", "B", "A", "B", "A", "A", "A", "B", "A"]
                   + list(rng.choice(["A", "B"], 80)))
    y = rng.normal(1.0 + 1.5 * (arm == "B"), 1.0)
    table = pa.table({"arm": arm, "y": y,
                      "t": pa.array((day * 86_400 + 60) * 1_000_000, pa.timestamp("us"))})
    for tau in (None, 0.5):
        out = sequential(table, variant="arm", control="A", metric="y", time="t", tau=tau)
        used = 0.1 * np.std(y, ddof=1) if tau is None else tau
        rows, p_run = out.to_pylist(), 1.0
        expected_days = [d for d in np.unique(day)
                         if min(np.sum((day <= d) & (arm == v)) for v in "AB") >= 2]
        assert [r["day"].day - 1 for r in rows] == expected_days
        for r, d in zip(rows, expected_days):
            a, b = y[(day <= d) & (arm == "A")], y[(day <= d) & (arm == "B")]
            _, p, _ = msprt(b.mean() - a.mean(), a.var(ddof=1) / a.size + b.var(ddof=1) / b.size,
                            used)
            p_run = min(p_run, float(p))
            assert_allclose([r["diff"], r["p_value"]], [b.mean() - a.mean(), p_run], rtol=1e-9)
        assert rows[-1]["decision"] == "reject"
    with pytest.raises(InputError, match="one variant only"):
        sequential(table.filter(pa.compute.equal(table["arm"], "A")), variant="arm",
                   control="A", metric="y", time="t")


def test_campaign_roi_and_uplift_models_refuse_nan_values():
    # NaN / inf in a value or outcome column: scipy's ttest_ind and sklift's models propagate or
    # fail inside the estimator; ours name the column (as readout does). Regression: campaign_roi
    # returned a row of NaN (and -inf) estimates without a word.
    from sklearn.linear_model import LinearRegression
    from fastengage.experiments.uplift import campaign_roi
    for bad in (np.nan, np.inf):
        table = pa.table({"t": [0, 0, 0, 1, 1, 1], "rev": [1.0, bad, 2, 3, 4, 5],
                          "a": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})
        with pytest.raises(InputError, match="'rev' holds 1 NaN or infinite"):
            campaign_roi(table, treatment="t", values="rev", cost_per_contact=1.0)
        with pytest.raises(InputError, match="'rev' holds 1 NaN or infinite"):
            TwoModelUplift(LinearRegression()).fit(table, features=["a"], treatment="t",
                                                  outcome="rev")
    good = pa.table({"t": [0, 0, 0, 1, 1, 1], "rev": [1.0, 1.5, 2, 3, 4, 5]})
    row = campaign_roi(good, treatment="t", values="rev").to_pylist()[0]
    want = stats.ttest_ind([3.0, 4, 5], [1.0, 1.5, 2], equal_var=False)
    assert_allclose([row["per_user_lift"], row["p_value"]], [2.5, want.pvalue], rtol=1e-12)
