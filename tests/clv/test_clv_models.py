"""Pareto/NBD, Gamma-Gamma, BG/BB and sBG: published estimates, references, gradients, lifetimes."""
import numpy as np
import pandas as pd
import pytest

from fastengage import clv
from fastengage.clv.datasets import SBG_COHORTS, load_cdnow_summary, load_donations
from fastengage.clv.gammagamma import _spend_data
from fastengage.errors import InputError
from fastengage.kernels.clv import bgbb as clv_bgbb
from fastengage.kernels.clv import pareto as clv_pareto
from fastengage.kernels.clv import sbg as clv_sbg
from fastengage.kernels.clv import spend as clv_spend
from fastengage.kernels.clv.special import log_hyp2f1_ap1

import naive_clv as nv

PARETO = dict(r=0.55315, alpha=10.57633, s=0.60625, beta=11.67150)


@pytest.fixture(scope="module")
def cdnow():
    s = load_cdnow_summary()
    return tuple(s[c].to_numpy().astype(float) for c in ("x", "t_x", "T", "zbar"))


@pytest.fixture(scope="module")
def pareto(cdnow):
    return clv.ParetoNBD().fit(*cdnow[:3])


def test_published_pareto(pareto):
    for k, v in PARETO.items():
        assert abs(pareto.params_[k] / v - 1) < 1e-3, (k, pareto.params_[k])
    assert abs(pareto.log_likelihood_ - (-9594.98)) < 0.01


@pytest.mark.parametrize("theta", [[0.55315, 10.57633, 0.60625, 11.6715], [0.5, 12.0, 0.7, 3.0],
                                   [2.0, 1.0, 0.5, 40.0], [0.3, 5.0, 3.0, 5.0]])
def test_pareto_loglik_vs_quadrature_and_gradient(cdnow, theta):
    x, tx, T, _ = cdnow
    nv.check_pareto_loglik(clv_pareto.loglik_grad, np.array(theta), x, tx, T, every=11)


def test_pareto_extreme_history_is_finite():
    # x = 100,000 repeat purchases over T = 100,000 periods: scipy's hyp2f1 route overflows
    theta = np.array([0.55, 10.6, 0.61, 11.7])
    x = np.array([100_000.0, 100_000.0, 0.0, 50.0])
    tx = np.array([99_999.5, 50_000.0, 0.0, 1.0])
    T = np.array([100_000.0, 100_000.0, 100_000.0, 100_000.0])
    ll, grad, lls = clv_pareto.loglik_grad(theta, x, tx, T, np.ones(4))
    assert np.all(np.isfinite(lls)) and np.all(np.isfinite(grad))
    m = clv.ParetoNBD()
    m.params_ = dict(zip(m.param_names, theta))
    p = m.probability_alive(x, tx, T)
    assert np.all((p >= 0) & (p <= 1)) and p[0] > 0.99 and p[1] < 1e-10


@pytest.mark.parametrize("a,b,z", [(2.0, 1.5, -5.0), (2.5, 4.0, -50.0), (3.0, 2.0, -1.5),
                                   (1000.0, 30.0, 0.99), (100001.2, 1.6, 0.999), (0.5, 3.0, 0.2),
                                   (2000.0, 1997.0, 0.7)])
def test_hyp2f1_where_naive_series_diverges(a, b, z):
    # z <= -1: the direct series diverges; large a, b: its terms overflow. mpmath is the judge.
    import mpmath as mp
    ref = float(mp.log(mp.hyp2f1(a, b, a + 1, z, maxterms=10**6)))
    assert log_hyp2f1_ap1(a, b, z) == pytest.approx(ref, rel=1e-11, abs=1e-11)


def test_pareto_predictions_vs_lifetimes(cdnow, pareto):
    from lifetimes import ParetoNBDFitter
    x, tx, T, _ = cdnow
    ref = ParetoNBDFitter()
    ref.params_ = pd.Series(pareto.params_)
    np.testing.assert_allclose(pareto.probability_alive(x, tx, T),
                               ref.conditional_probability_alive(x, tx, T), rtol=1e-8)
    nv.check_against_lifetimes(pareto, ref, x, tx, T, 39.0, np.array([5.0, 39.0]), rtol=1e-8,
                               pop_rtol=1e-10)
    # future probability alive shrinks with the posterior survival of mu
    assert np.all(pareto.probability_alive(x, tx, T, future_t=10) <= pareto.probability_alive(x, tx, T))


@pytest.mark.parametrize("theta", [[0.55315, 10.57633, 0.60625, 11.6715], [0.55, 2.0, 0.6, 80.0],
                                   [2.0, 50.0, 0.3, 1.5], [0.05, 1.0, 3.0, 200.0]])
def test_pareto_pmf_vs_closed_form(theta):
    # the closed form (FHL 2005 note eq. 19) in mpmath at 150 digits: its B1 - sum_i B2_i
    # difference cancels, e.g. to ~1e-62 at t = 0.1, k = 30 (lifetimes gets 0.0 there)
    theta = np.array(theta)
    ts, ks = np.meshgrid([0.1, 1.0, 39.0, 500.0], [0.0, 1.0, 2.0, 5.0, 10.0, 30.0])
    got = clv_pareto.probability_n_purchases(theta, ts.ravel(), ks.ravel())
    ref = [nv.pareto_pmf_mp(theta, t, k, dps=150) for t, k in zip(ts.ravel(), ks.ravel())]
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize("theta,t", [([0.55315, 10.57633, 0.60625, 11.6715], 39.0),
                                     ([0.55315, 10.57633, 0.60625, 11.6715], 2000.0),
                                     ([5.0, 0.5, 0.2, 30.0], 10.0), ([0.3, 20.0, 4.0, 0.5], 1.0)])
def test_pareto_pmf_sums_to_one(theta, t):
    m = clv.ParetoNBD()
    m.params_ = dict(zip(m.param_names, theta))
    k = np.arange(0, 20_000)
    p = m.probability_of_n_purchases(t, k)
    assert np.all(p >= 0) and np.all(np.isfinite(p))
    assert p.sum() == pytest.approx(1.0, abs=1e-10)
    # the mean of the pmf is E[X(t)] (FHL note eq. 17)
    assert (k * p).sum() == pytest.approx(float(m.population_expected_purchases(t)), rel=1e-8)


def test_pareto_pmf_vs_lifetimes(pareto):
    # lifetimes has only the conditional pmf (Fader & Hardie note 028, eq. 16); with no history
    # (x = t_x = T = 0) it is P(X(t)=n)
    from lifetimes import ParetoNBDFitter
    ref = ParetoNBDFitter()
    ref.params_ = pd.Series(pareto.params_)
    for t in (1.0, 39.0, 78.0):
        for n in range(0, 8):
            want = ref.conditional_probability_of_n_purchases_up_to_time(n, t, 0.0, 0.0, 0.0)
            assert pareto.probability_of_n_purchases(t, n) == pytest.approx(want, rel=1e-9), (t, n)
    got = pareto.probability_of_n_purchases(np.array([[0.0], [39.0]]), np.array([0, 1, 2]))
    assert got.shape == (2, 3) and got[0].tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(InputError, match="non-negative integers"):
        pareto.probability_of_n_purchases(39.0, 1.5)


def test_gammagamma_published_and_lifetimes(cdnow):
    from lifetimes import GammaGammaFitter
    x, _, _, z = cdnow
    g = clv.GammaGamma().fit(x, z)
    assert float(f"{g.params_['p']:.3g}") == 6.25
    assert float(f"{g.params_['q']:.3g}") == 3.74
    assert float(f"{g.params_['gamma']:.3g}") == float(f"{15.44:.3g}")
    assert g.log_likelihood_ == pytest.approx(-4055.9, abs=0.05)
    assert g.n_ == 946
    keep = x > 0
    ref = GammaGammaFitter().fit(pd.Series(x[keep]), pd.Series(z[keep]))
    for k, kk in (("p", "p"), ("q", "q"), ("gamma", "v")):
        assert g.params_[k] == pytest.approx(ref.params_[kk], rel=1e-4)
    np.testing.assert_allclose(g.expected_spend(x, z),
                               ref.conditional_expected_average_profit(pd.Series(x), pd.Series(z)),
                               rtol=1e-4)
    theta = np.array([6.0, 3.5, 15.0])
    xx, zz = x[keep], z[keep]
    _, grad, lls = clv_spend.loglik_grad(theta, xx, zz, np.ones_like(xx))
    np.testing.assert_allclose(lls, nv.gg_ll(theta, xx, zz), rtol=1e-11)
    fd = nv.fd_grad(lambda th: clv_spend.loglik_grad(th, xx, zz, np.ones_like(xx))[0], theta)
    np.testing.assert_allclose(grad, fd, rtol=1e-5)


def test_bgbb_published_and_reference():
    d = load_donations()
    m = clv.BetaGeoBetaBinom().fit(d, weights_col="weights")
    for k, v in dict(alpha=1.204, beta=0.750, gamma=0.657, delta=2.783).items():
        assert round(m.params_[k], 3) == v, (k, m.params_[k])
    x, tx, n, w = (d[c].to_numpy().astype(float) for c in ("frequency", "recency", "periods", "weights"))
    theta = np.array([1.1, 0.8, 0.7, 2.5])
    _, grad, lls = clv_bgbb.loglik_grad(theta, x, tx, n, w)
    np.testing.assert_allclose(lls, [nv.bgbb_ll(theta, *row) for row in zip(x, tx, n)], rtol=1e-11)
    fd = nv.fd_grad(lambda th: clv_bgbb.loglik_grad(th, x, tx, n, w)[0], theta)
    np.testing.assert_allclose(grad, fd, rtol=1e-5)


def test_bgbb_predictions_vs_lifetimes():
    from lifetimes import BetaGeoBetaBinomFitter
    d = load_donations()
    x, tx, n = (d[c].to_numpy().astype(float) for c in ("frequency", "recency", "periods"))
    m = clv.BetaGeoBetaBinom()
    m.params_ = dict(alpha=1.204, beta=0.750, gamma=0.657, delta=2.783)
    ref = BetaGeoBetaBinomFitter()
    ref.params_ = pd.Series(m.params_)
    np.testing.assert_allclose(m.expected_purchases(5, x, tx, n),
                               ref.conditional_expected_number_of_purchases_up_to_time(5, x, tx, n),
                               rtol=1e-9)
    np.testing.assert_allclose(m.probability_alive(x, tx, n),
                               ref.conditional_probability_alive(1, x, tx, n), rtol=1e-9)
    # gamma = 1 exactly: the 0/0 in eq. 13 is removed
    m.params_ = dict(alpha=1.2, beta=0.75, gamma=1.0, delta=2.8)
    near = clv.BetaGeoBetaBinom()
    near.params_ = dict(alpha=1.2, beta=0.75, gamma=1.0 + 1e-5, delta=2.8)
    np.testing.assert_allclose(m.expected_purchases(5, x, tx, n), near.expected_purchases(5, x, tx, n),
                               rtol=1e-4)


@pytest.mark.parametrize("cohort,alpha,beta", [("regular", 0.704, 1.182), ("highend", 0.668, 3.806)])
def test_sbg_published(cohort, alpha, beta):
    surv = SBG_COHORTS[cohort]
    m = clv.ShiftedBetaGeo().fit(surv[:8])
    assert round(m.params_["alpha"], 3) == alpha and round(m.params_["beta"], 3) == beta
    assert m.log_likelihood_ == pytest.approx(nv.sbg_ll((m.params_["alpha"], m.params_["beta"]), surv[:8]))
    t, c, w = m.survivors_to_durations(surv[:8])
    th = np.array([0.8, 1.5])
    grad = clv_sbg.loglik_grad(th, t, c, w)[1]
    np.testing.assert_allclose(grad, nv.fd_grad(lambda p: nv.sbg_ll(p, surv[:8]), th), rtol=1e-6)
    proj = m.expected_survivors(1000, 12)
    # the projection of years 8..12 is close to the actual counts (Fader & Hardie 2007, fig. 3)
    assert np.max(np.abs(proj[8:] - surv[8:]) / surv[8:]) < 0.15
    r = m.retention(np.arange(1, 13))
    assert np.all(np.diff(r) > 0)  # retention rises with tenure under heterogeneity
    np.testing.assert_allclose(m.survival(np.arange(1, 13)) / m.survival(np.arange(0, 12)), r, rtol=1e-12)


def test_sbg_derl():
    m = clv.ShiftedBetaGeo()
    m.params_ = dict(alpha=0.704, beta=1.182)
    d = 0.1
    # direct sum of discounted survival: DERL(n) = sum_{t>=n+1} S(t)/S(n) / (1+d)^(t-n-1)
    t = np.arange(0, 3000, dtype=float)
    for n in (0, 4):
        S = m.survival(t + n + 1) / m.survival(np.array(float(n)))
        ref = np.sum(S / (1 + d) ** t)
        assert m.derl(d, n) == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("cls", [clv.ParetoNBD, clv.GammaGamma, clv.BetaGeoBetaBinom, clv.ShiftedBetaGeo])
def test_save_load(cls, tmp_path):
    m = cls()
    m.params_ = {k: 1.0 + i for i, k in enumerate(cls.param_names)}
    m.log_likelihood_ = -1.0
    m.standard_errors_ = {k: 0.1 for k in cls.param_names}
    m.covariance_ = np.eye(len(cls.param_names))
    m.save(tmp_path / "m.zip")
    back = cls.load(tmp_path / "m.zip")
    assert back.params_ == m.params_


def test_gammagamma_tabulated_kernel(cdnow):
    # the per-frequency sums + one row pass equal the plain per-row kernel; Hessian = FD of grad
    x, _, _, z = cdnow
    keep = x > 0
    xx, zz = x[keep], z[keep]
    w = np.linspace(0.5, 2.0, xx.size)
    theta = np.array([6.0, 3.5, 15.0])
    ll, grad, _ = clv_spend.loglik_grad(theta, xx, zz, w)
    for whole in (True, False):
        d = _spend_data(xx, zz, w, whole)
        for fn in (clv_spend.loglik_derivs.serial, clv_spend.loglik_derivs.parallel):
            ll2, grad2, H = fn(theta, d.ux, d.W, d.S, d.x, d.m, d.w, True)
            assert ll2 == pytest.approx(ll, rel=1e-13)
            np.testing.assert_allclose(grad2, grad, rtol=1e-10)
            fd = np.column_stack([nv.fd_grad(lambda th: fn(th, d.ux, d.W, d.S, d.x, d.m, d.w,
                                                           False)[1][j], theta, 1e-6)
                                  for j in range(3)])
            np.testing.assert_allclose(H, fd, rtol=1e-6, atol=1e-7 * np.abs(fd).max())
    # unit weights passed as an empty array
    d = _spend_data(xx, zz, np.empty(0), True)
    ll1 = clv_spend.loglik_derivs(theta, d.ux, d.W, d.S, d.x, d.m, d.w, False)[0]
    assert ll1 == pytest.approx(clv_spend.loglik_grad(theta, xx, zz, np.ones_like(xx))[0], rel=1e-13)


def test_gammagamma_input_errors_and_weights(cdnow):
    x, _, _, z = cdnow
    with pytest.raises(InputError, match="monetary_value has 1 NaN"):
        clv.GammaGamma().fit(x, np.where(np.arange(x.size) == 3, np.nan, z))
    with pytest.raises(InputError, match="frequency > 0 and monetary_value <= 0"):
        clv.GammaGamma().fit(x, np.where(x > 0, 0.0, z))
    with pytest.raises(InputError, match="repeat buyers"):
        clv.GammaGamma().fit(np.zeros(5), np.ones(5))
    # duplicated rows == weight 2; non-whole frequencies take the general per-frequency path
    g = clv.GammaGamma().fit(x, z)
    g2 = clv.GammaGamma().fit(np.concatenate([x, x]), np.concatenate([z, z]))
    gw = clv.GammaGamma().fit(x, z, weights=np.full(x.size, 2.0))
    assert gw.log_likelihood_ == pytest.approx(g2.log_likelihood_, rel=1e-12)
    for k in g.params_:
        assert gw.params_[k] == pytest.approx(g2.params_[k], rel=1e-7)
        assert gw.params_[k] == pytest.approx(g.params_[k], rel=1e-7)
    gh = clv.GammaGamma().fit(x * (1 + 1e-12), z)
    assert gh.params_["p"] == pytest.approx(g.params_["p"], rel=1e-6)
def test_pareto_tabulated_kernel(cdnow):
    from fastengage.clv._base import compress
    x, tx, T, _ = cdnow
    w = np.linspace(0.5, 2.0, x.size)
    theta = np.array([0.5, 12.0, 0.7, 3.0])
    ll, grad, _ = clv_pareto.loglik_grad(theta, x, tx, T, w)
    n = x.size
    (qx, qy), _, pair = compress(np.concatenate([x, x]), np.concatenate([tx, T]))
    ux, ix = np.unique(x, return_inverse=True)
    args = (theta, qx, qy, np.searchsorted(ux, qx).astype(np.int64), ux, ix.astype(np.int64),
            pair[:n].copy(), pair[n:].copy(), T, w)
    for fn in (clv_pareto.loglik_grad_tab.serial, clv_pareto.loglik_grad_tab.parallel):
        ll2, grad2 = fn(*args)
        assert ll2 == pytest.approx(ll, rel=1e-12)
        np.testing.assert_allclose(grad2, grad, rtol=1e-9)


@pytest.mark.parametrize("theta,x,y", [
    ((0.44, 59.5, 674.8, 214354.0), 0.0, 0.0),      # beta >> alpha: z -> 1, series too slow
    ((0.44, 59.5, 674.8, 214354.0), 3.0, 100.0),
    ((0.5, 1000.0, 0.05, 1.0), 0.0, 0.0),           # alpha >> beta with small s
    ((0.5, 1000.0, 0.05, 1.0), 5.0, 3.0),
    ((2.0, 1.0, 0.5, 40.0), 1.0, 1.0),
    ((0.2, 2.0, 0.1, 1e5), 0.0, 0.0),
])
def test_pareto_slow_series_region_uses_accurate_quadrature(theta, x, y):
    r, alpha, s, beta = theta
    ref = nv.pareto_log_F_mp(r, alpha, s, beta, x, y, dps=30)
    series = clv_pareto._log_F_series(r, alpha, s, beta, x, y)
    if not np.isnan(series[0]):           # the connection to 1 - z (where it applies) ...
        assert series[0] == pytest.approx(ref, rel=1e-12)
    quad = clv_pareto._log_F_quad(r, alpha, s, beta, x, y)
    assert quad[0] == pytest.approx(ref, rel=1e-12)  # ... and the quadrature are exact
    got = clv_pareto._log_F(r, alpha, s, beta, x, y)
    assert got[0] == pytest.approx(ref, rel=1e-12)
    # its gradient agrees with finite differences of the value
    th = np.array(theta)
    fd = nv.fd_grad(lambda t: clv_pareto._log_F_quad(*t, x, y)[0], th, 1e-7)
    np.testing.assert_allclose(got[1:], fd, rtol=1e-4, atol=1e-7)


def test_pareto_quadrature_matches_series_where_both_work():
    for theta, x, y in [((0.55, 10.6, 0.6, 11.7), 2.0, 30.0), ((0.3, 5.0, 2.0, 5000.0), 100000.0, 50.0),
                        ((1.2, 3.0, 0.9, 2.0), 0.0, 0.0)]:
        a = np.array(clv_pareto._log_F_series(*theta, x, y))
        b = np.array(clv_pareto._log_F_quad(*theta, x, y))
        np.testing.assert_allclose(b, a, rtol=1e-11)
