"""Issue #10 (17): the Pareto/NBD likelihood where beta >> alpha (or alpha >> beta) puts the
hypergeometric term at z -> 1. There S = 2F1(1, e; f; z) is now computed by its connection to
1 - z (a few terms instead of ~log(eps)/log(z) or the quadrature): checked against mpmath, the
quadrature reference and finite differences."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastengage import clv
from fastengage.kernels.clv import pareto as kp
from fastengage.kernels.clv.special import series_1_e_f, series_1_e_f_near_one

import naive_clv as nv

HARD = np.array([0.165, 1.12, 8.1, 318.0])


@settings(max_examples=60, deadline=None)
@given(e=st.floats(0.05, 200.0), g=st.floats(0.03, 60.0), z=st.floats(0.5, 0.99999))
def test_connection_formula_matches_mpmath(e, g, z):
    if abs(g - round(g)) < 0.02:
        g += 0.05
    f = e + g
    ok, *got = series_1_e_f_near_one(e, f, z)
    if not ok:       # declined (cancellation): the caller falls back, nothing to check
        return
    ref = nv.hyp2f1_1ef_mp(e, f, z)
    # digits lost to cancellation grow with e and near integer g (hypothesis runs found 1.5e-11
    # at e=157, g=0.25; 2e-12 at e=88, g=19.05): far inside what a log-likelihood needs
    np.testing.assert_allclose(got[0], ref[0], rtol=5e-11)
    scale = abs(ref[0])  # derivatives: relative to S (what log S needs)
    for a, b in zip(got[1:], ref[1:]):
        # 1.25e-9 at e=135, g=59.5, z=0.904 (found by hypothesis): the third derivative loses digits
        assert abs(a - b) <= 5e-9 * max(abs(b), scale), (got, ref)


@pytest.mark.parametrize("e,f,z", [(9.1, 9.265, 0.9965), (9.1, 10.265, 0.99), (1.165, 9.265, 0.9),
                                   (0.6, 1.2, 0.999), (50.0, 50.5, 0.95), (3.0, 3.5, 0.6)])
def test_connection_formula_agrees_with_the_direct_series(e, f, z):
    ok, *near = series_1_e_f_near_one(e, f, z)
    direct = series_1_e_f(e, f, z, 100_000_000)
    assert ok
    # (the long direct sums carry ~n eps of rounding)
    assert near[0] == pytest.approx(direct[0], rel=1e-11)
    np.testing.assert_allclose(near[1:], direct[1:], rtol=1e-9)


@pytest.mark.parametrize("theta", [HARD, [0.1508, 1.095, 4666.0, 179489.0], [0.2, 2.0, 0.1, 1e5],
                                   [0.5, 400.0, 0.3, 2.0]])
@pytest.mark.parametrize("x,y", [(0.0, 0.0), (0.0, 49.1), (1.0, 3.0), (18.0, 9.8), (120.0, 30.0)])
def test_log_F_in_the_hard_region_vs_mpmath(theta, x, y):
    r, alpha, s, beta = theta
    ref = nv.pareto_log_F_mp(r, alpha, s, beta, x, y, dps=40)
    got = kp._log_F(r, alpha, s, beta, x, y)
    assert got[0] == pytest.approx(ref, rel=1e-13)
    quad = kp._log_F_quad(r, alpha, s, beta, x, y)   # the gradient agrees with the quadrature's
    np.testing.assert_allclose(got[1:], quad[1:], rtol=1e-7, atol=1e-9 * max(1.0, abs(ref)))


def _hard_sample(n=300, seed=4):
    rng = np.random.default_rng(seed)
    T = rng.uniform(1.0, 52.0, n)
    x = np.where(rng.random(n) < 0.35, rng.integers(1, 40, n), 0).astype(float)
    tx = np.where(x > 0, T * rng.random(n), 0.0)
    return x, tx, T


# (at s ~ 4666, beta ~ 1.8e5 the scipy-quad reference itself fails; log F is checked there
# against mpmath above)
@pytest.mark.parametrize("theta", [HARD, [0.5, 400.0, 0.3, 2.0], [0.2, 1.0, 2.5, 60.0]])
def test_pareto_likelihood_in_the_hard_region_vs_quadrature_and_fd(theta):
    theta = np.asarray(theta, float)
    x, tx, T = _hard_sample()
    w = np.ones_like(x)
    ll, grad = nv.check_pareto_loglik(kp.loglik_grad, theta, x, tx, T, every=7)
    # the tabulated kernel (what fit uses) gives the same sums
    from fastengage.clv.pareto import _payload
    p = _payload(x, tx, T, w)
    ll2, grad2 = kp.loglik_grad_tab(theta, p.qx, p.qy, p.jq, p.ux, p.ix, p.ia, p.ib, p.T, p.w)
    assert ll2 == pytest.approx(ll, rel=1e-12)
    np.testing.assert_allclose(grad2, grad, rtol=1e-9, atol=1e-9)


def test_hard_region_fit_converges_by_newton():
    import sys
    import pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
    from bench.bench_clv import simulate_pareto_hard
    x, tx, T = simulate_pareto_hard(1000)
    m = clv.ParetoNBD().fit(x, tx, T)
    assert m.fit_info_["method"] == "newton"
    # the maximum: zero gradient of the total log-likelihood (relative to its size)
    _, g, _ = kp.loglik_grad(m._theta(), x, tx, T, np.ones_like(x))
    assert np.max(np.abs(g * m._theta())) < 1e-5 * abs(m.log_likelihood_)
    assert 0.1 < m.params_["r"] < 0.25 and m.params_["beta"] > 30 * m.params_["alpha"]
