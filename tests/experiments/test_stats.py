"""The formulas on summary numbers against statsmodels, scipy and gbstats' documented examples."""
import numpy as np
import pytest
from scipy import integrate, stats

from fastengage.errors import InputError
from fastengage.experiments import (adjust_pvalues, bayesian, msprt, power, proportions_ztest,
                                    sample_size, srm, welch)


def test_proportions_ztest_statsmodels_example():
    # statsmodels docs: counts [5, 12] of [83, 99] -> z = -1.4078, p = 0.1592
    z, p = proportions_ztest([5, 12], [83, 99])
    assert round(float(z), 4) == -1.4078 and round(float(p), 4) == 0.1592
    from statsmodels.stats.proportion import proportions_ztest as sm

    assert (z, p) == pytest.approx(sm([5, 12], [83, 99]), rel=1e-12)


def test_srm_example():
    stat, p = srm([50_500, 49_500])
    assert round(p, 5) == 0.00157
    assert (stat, p) == pytest.approx(tuple(stats.chisquare([50_500, 49_500])), rel=1e-12)
    assert srm([300, 700], [0.3, 0.7])[1] == pytest.approx(1.0)


def test_welch_reproduces_gbstats_test_suite():
    # gbstats tests/frequentist/test_tests.py: A (0.41, sd 3.9, n 3407), B (0.7, sd 6.2, n 3461)
    out = welch(0.41, 3.9 ** 2, 3407, 0.7, 6.2 ** 2, 3461)
    assert round(float(out["diff"]), 5) == 0.29
    assert [round(float(out["ci_low"]), 5), round(float(out["ci_high"]), 5)] == [0.04538, 0.53462]
    assert round(float(out["p_value"]), 5) == 0.02016
    assert round(float(out["lift"]), 5) == 0.70732


def test_welch_equals_scipy_on_raw_data():
    rng = np.random.default_rng(0)
    a, b = rng.exponential(1.0, 300), rng.exponential(1.3, 250)
    out = welch(a.mean(), a.var(ddof=1), a.size, b.mean(), b.var(ddof=1), b.size, alpha=0.1)
    res = stats.ttest_ind(b, a, equal_var=False)
    ci = res.confidence_interval(0.9)
    assert float(out["p_value"]) == pytest.approx(res.pvalue, rel=1e-10)
    assert (float(out["ci_low"]), float(out["ci_high"])) == pytest.approx((ci.low, ci.high), rel=1e-10)


@pytest.mark.parametrize("method", ["bonferroni", "holm", "fdr_bh"])
def test_corrections_equal_statsmodels(method):
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(1).random(40) ** 3
    p[5] = p[9]  # ties
    assert np.allclose(adjust_pvalues(p, method), multipletests(p, method=method)[1], rtol=1e-12)
    with pytest.raises(InputError):
        adjust_pvalues(p, "sidak2")


def test_power_and_sample_size_equal_statsmodels():
    from statsmodels.stats.power import NormalIndPower

    es, ratio = 0.1, 1.5
    want = NormalIndPower().solve_power(effect_size=es, alpha=0.05, power=0.8, ratio=ratio)
    assert sample_size(es * 2.0, 2.0, ratio=ratio) == pytest.approx(want, rel=1e-6)
    assert power(0.2, 1.0, 400) == pytest.approx(
        NormalIndPower().power(effect_size=0.2, nobs1=400, alpha=0.05), rel=1e-10)


def test_bayesian_equals_numerical_integration():
    out = bayesian(120, 1000, 145, 1000)
    a_c, b_c, a_t, b_t = 121, 881, 146, 856
    prob = integrate.quad(lambda x: stats.beta.pdf(x, a_t, b_t) * stats.beta.cdf(x, a_c, b_c),
                          0, 1, epsabs=1e-13)[0]
    assert out["prob_to_beat_control"] == pytest.approx(prob, abs=1e-9)
    # E[max(A - B, 0)] = int f_B(y) E[(A - y)+] dy, the inner expectation in closed form
    def above(y):
        return (a_c / (a_c + b_c) * stats.beta.sf(y, a_c + 1, b_c)
                - y * stats.beta.sf(y, a_c, b_c))
    loss = integrate.quad(lambda y: stats.beta.pdf(y, a_t, b_t) * above(y), 0, 1,
                          epsabs=1e-13, points=[0.12, 0.145])[0]
    assert out["expected_loss"] == pytest.approx(loss, abs=1e-8)
    with pytest.raises(InputError):
        bayesian(5, 3, 1, 10)


def test_msprt_false_positive_rate_under_daily_peeking():
    # 10,000 A/A tests, 30 daily looks of 200 users per arm, conversion 10%: the always-valid
    # p-value crosses alpha in at most alpha of them; the naive daily z-test does not.
    rng = np.random.default_rng(2)
    sims, days, per_day, rate, alpha = 10_000, 30, 200, 0.1, 0.05
    conv = rng.binomial(per_day, rate, size=(2, sims, days)).cumsum(axis=2)
    n = per_day * np.arange(1, days + 1)
    p = conv / n
    var = p[0] * (1 - p[0]) / n + p[1] * (1 - p[1]) / n
    diff = p[1] - p[0]
    tau = 0.1 * np.sqrt(rate * (1 - rate))
    _, pvals, _ = msprt(diff, var, tau, alpha)
    always_valid = np.minimum.accumulate(np.nan_to_num(pvals, nan=1.0), axis=1)
    fpr = np.mean(always_valid[:, -1] < alpha)
    naive = np.mean(np.any(2 * stats.norm.sf(np.abs(diff / np.sqrt(var))) < alpha, axis=1))
    assert fpr <= alpha
    assert naive > 2 * alpha  # peeking at a fixed-horizon test inflates false positives
    # and it has power: a 20% relative lift is detected in most runs
    conv_b = rng.binomial(per_day, rate * 1.2, size=(sims // 10, days)).cumsum(axis=1)
    pb = conv_b / n
    pa_ = conv[0, : sims // 10] / n
    _, pv, _ = msprt(pb - pa_, pa_ * (1 - pa_) / n + pb * (1 - pb) / n, tau, alpha)
    assert np.mean(np.min(pv, axis=1) < alpha) > 0.5
