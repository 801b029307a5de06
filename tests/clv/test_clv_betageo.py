"""BG/NBD and MBG/NBD: published estimates on CDNOW, lifetimes agreement, gradients, inference,
persistence, convergence errors."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from fastengage import clv
from fastengage.clv.datasets import load_cdnow_summary
from fastengage.errors import ConvergenceError, InputError, ModelFormatError
from fastengage.kernels.clv import betageo as kb

import naive_clv as nv

PUBLISHED = dict(r=0.2425945, alpha=4.4136019, a=0.7929199, b=2.4258881)
PAPER_ROUNDED = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)   # FHL 2005, as printed


@pytest.fixture(scope="module")
def cdnow():
    s = load_cdnow_summary()
    return tuple(s[c].to_numpy().astype(float) for c in ("x", "t_x", "T"))


@pytest.fixture(scope="module")
def fitted(cdnow):
    return clv.BetaGeo().fit(*cdnow)


def _with(params, cls=clv.BetaGeo):
    m = cls()
    m.params_ = dict(params)
    return m


def test_published_bgnbd(fitted):
    for k, v in PUBLISHED.items():
        assert abs(fitted.params_[k] / v - 1) < 1e-4, (k, fitted.params_[k])
    assert abs(fitted.log_likelihood_ - (-9582.43)) < 0.01


def test_spot_values():
    # P(X(39)=0) = 0.5737864 is the value at the parameters as printed in the paper
    assert _with(PAPER_ROUNDED).probability_of_n_purchases(39, 0) == pytest.approx(0.5737864, abs=5e-8)
    assert _with(PUBLISHED).expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=5e-4)


def test_published_mbgnbd(cdnow):
    m = clv.ModifiedBetaGeo().fit(*cdnow)
    for k, v in dict(r=0.525, alpha=6.183, a=0.891, b=1.614).items():
        assert round(m.params_[k], 3) == v, (k, m.params_[k])


@pytest.mark.parametrize("modified", [0, 1])
def test_loglik_matches_reference_and_gradient_matches_fd(cdnow, modified):
    x, tx, T = cdnow
    w = np.ones_like(x)
    theta = np.array([0.3, 5.0, 0.9, 2.2])
    ll, grad, lls = kb.loglik_grad(theta, x, tx, T, w, modified)
    np.testing.assert_allclose(lls, nv.bgnbd_ll(theta, x, tx, T, bool(modified)), rtol=1e-11)
    fd = nv.fd_grad(lambda th: kb.loglik_grad(th, x, tx, T, w, modified)[0], theta, 1e-6)
    np.testing.assert_allclose(grad, fd, rtol=2e-6)


@pytest.mark.parametrize("cls,modified", [(clv.BetaGeo, False), (clv.ModifiedBetaGeo, True)])
def test_predictions_match_closed_forms(cdnow, cls, modified):
    x, tx, T = cdnow
    m = _with(PUBLISHED, cls)
    p = tuple(PUBLISHED.values())
    for t in (1.0, 10.0, 39.0, 104.0):
        np.testing.assert_allclose(m.expected_purchases(t, x, tx, T),
                                   nv.bgnbd_expected(p, t, x, tx, T, modified), rtol=1e-9)
    np.testing.assert_allclose(m.probability_alive(x, tx, T), nv.bgnbd_alive(p, x, tx, T, modified),
                               rtol=1e-12)


def test_against_lifetimes(cdnow, fitted):
    from lifetimes import BetaGeoFitter
    x, tx, T = cdnow
    ref = BetaGeoFitter().fit(pd.Series(x), pd.Series(tx), pd.Series(T))
    for k in PUBLISHED:
        assert fitted.params_[k] == pytest.approx(ref.params_[k], rel=1e-4)
    nv.check_against_lifetimes(fitted, ref, x, tx, T, 52, np.array([10.0, 39.0]), rtol=1e-3,
                               pop_rtol=1e-3)
    for n in (0, 1, 5):
        assert fitted.probability_of_n_purchases(39, n) == pytest.approx(
            ref.probability_of_n_purchases_up_to_time(39, n), rel=1e-3)


def test_pmf_sums_to_one_and_mean_matches():
    m = _with(PUBLISHED)
    k = np.arange(0, 400)
    pmf = m.probability_of_n_purchases(39.0, k)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
    assert (pmf * k).sum() == pytest.approx(m.population_expected_purchases(39.0), rel=1e-8)


def test_future_probability_alive_matches_monte_carlo():
    m = _with(PUBLISHED)
    p = tuple(PUBLISHED.values())
    got = m.probability_alive(3, 20.0, 38.0, future_t=26.0)
    ref = nv.bgnbd_alive_future_mc(p, 3, 20.0, 38.0, 26.0)
    assert got == pytest.approx(ref, abs=3e-3)
    assert got < m.probability_alive(3, 20.0, 38.0)


def test_standard_errors_and_intervals(fitted):
    # FHL 2005 do not print SEs; lifetimes' Hessian SEs on CDNOW are about these
    se = fitted.standard_errors_
    assert se["r"] == pytest.approx(0.0126, rel=0.05)
    assert se["alpha"] == pytest.approx(0.378, rel=0.05)
    ci = fitted.confidence_intervals(0.95).to_pydict()
    for lo, est, hi in zip(ci["lower"], ci["estimate"], ci["upper"]):
        assert lo < est < hi


def test_penalizer_shrinks(cdnow):
    plain = clv.BetaGeo().fit(*cdnow)
    pen = clv.BetaGeo(penalizer=0.1).fit(*cdnow)
    assert sum(v ** 2 for v in pen.params_.values()) < sum(v ** 2 for v in plain.params_.values())
    assert pen.log_likelihood_ < plain.log_likelihood_


def test_fit_from_summary_table_and_weights(cdnow, fitted):
    import pyarrow as pa
    x, tx, T = cdnow
    table = pa.table({"frequency": x, "recency": tx, "T": T})
    m = clv.BetaGeo().fit(table)
    assert m.params_["r"] == pytest.approx(fitted.params_["r"], rel=1e-7)
    # the same data as weighted patterns gives the same fit
    df = pd.DataFrame({"x": x, "tx": tx, "T": T}).value_counts().reset_index()
    mw = clv.BetaGeo().fit(df["x"], df["tx"], df["T"], weights=df["count"])
    assert mw.log_likelihood_ == pytest.approx(fitted.log_likelihood_, abs=1e-6)


def test_save_load_roundtrip(tmp_path, fitted, cdnow):
    path = tmp_path / "bg.fe"
    fitted.save(path)
    back = clv.BetaGeo.load(path)
    assert back.params_ == fitted.params_
    np.testing.assert_array_equal(back.expected_purchases(10, *cdnow), fitted.expected_purchases(10, *cdnow))
    with pytest.raises(ModelFormatError):
        clv.ParetoNBD.load(path) if hasattr(clv, "ParetoNBD") else clv.ModifiedBetaGeo.load(path)


def test_convergence_error():
    # every customer has identical, degenerate data: the likelihood has no interior maximum
    x = np.full(50, 5.0)
    with pytest.raises(ConvergenceError, match="Tried"):
        clv.BetaGeo().fit(x, np.zeros(50) + 0.0, np.full(50, 0.0))


def test_input_errors():
    with pytest.raises(InputError, match="recency exceeds T"):
        clv.BetaGeo().fit([1, 2], [5.0, 1.0], [4.0, 3.0])
    with pytest.raises(InputError, match="frequency has negative"):
        clv.BetaGeo().fit([-1, 2], [0.0, 1.0], [4.0, 3.0])
    with pytest.raises(InputError, match="not fitted"):
        clv.BetaGeo().probability_alive(1, 1, 2)


@pytest.mark.parametrize("modified", [0, 1])
def test_tabulated_kernel_equals_plain_kernel(cdnow, modified):
    x, tx, T = cdnow
    w = np.arange(1.0, x.size + 1.0)
    ux, ix = np.unique(x, return_inverse=True)
    uy, iy = np.unique(np.concatenate([tx, T]), return_inverse=True)
    n = x.size
    theta = np.array([0.3, 5.0, 0.9, 2.2])
    ll, grad, _ = kb.loglik_grad(theta, x, tx, T, w, modified)
    args = (theta, ux, uy, ix.astype(np.int64), iy[n:].astype(np.int64), iy[:n].astype(np.int64), w,
            modified)
    for fn in (kb.loglik_derivs_tab.serial, kb.loglik_derivs_tab.parallel):
        for want_hess in (False, True):
            ll2, grad2, _ = fn(*args, want_hess)
            assert ll2 == pytest.approx(ll, rel=1e-13)
            np.testing.assert_allclose(grad2, grad, rtol=1e-11)


@pytest.mark.parametrize("modified", [0, 1])
@pytest.mark.parametrize("theta", [(0.3, 5.0, 0.9, 2.2), (2.0, 0.5, 0.05, 40.0), (0.05, 80.0, 3.0, 0.3)])
def test_tabulated_hessian_matches_fd_of_gradient(cdnow, modified, theta):
    x, tx, T = cdnow
    w = np.random.default_rng(0).random(x.size) + 0.5
    ux, ix = np.unique(x, return_inverse=True)
    uy, iy = np.unique(np.concatenate([tx, T]), return_inverse=True)
    n = x.size
    idx = (ux, uy, ix.astype(np.int64), iy[n:].astype(np.int64), iy[:n].astype(np.int64), w, modified)
    theta = np.array(theta)
    _, _, H = kb.loglik_derivs_tab.serial(theta, *idx, True)
    fd = np.column_stack([nv.fd_grad(lambda th: kb.loglik_derivs_tab.serial(th, *idx, False)[1][j],
                                     theta, 1e-6) for j in range(4)])
    np.testing.assert_allclose(H, H.T, rtol=0, atol=0)
    np.testing.assert_allclose(H, fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())


def test_whole_number_pattern_path_equals_hash_path(cdnow):
    from fastengage.clv._base import compress, compress_rft
    x, tx, T = cdnow
    tx, T = np.round(tx * 7), np.round(T * 7)          # CDNOW in whole days
    w = np.random.default_rng(3).random(x.size)
    (a, b, c), pw = compress_rft(x, tx, T, weights=w)
    (a2, b2, c2), pw2, _ = compress(x, tx, T, weights=w)
    got = {(i, j, k): v for i, j, k, v in zip(a, b, c, pw)}
    ref = {(i, j, k): v for i, j, k, v in zip(a2, b2, c2, pw2)}
    assert got.keys() == ref.keys()
    assert all(abs(got[k] - ref[k]) < 1e-9 for k in ref)
    # the fit on whole days equals the fit on the same data nudged off the integers (hash path)
    m1 = clv.BetaGeo().fit(x, tx, T)
    m2 = clv.BetaGeo().fit(x, tx * (1 + 1e-13), T * (1 + 1e-13))
    assert m1.log_likelihood_ == pytest.approx(m2.log_likelihood_, rel=1e-9)
    assert m1.params_["r"] == pytest.approx(m2.params_["r"], rel=1e-6)


def _simulate_bgnbd(n, seed=0):
    """BG/NBD customers in whole days (many distinct patterns: the subsample start is used)."""
    rng = np.random.default_rng(seed)
    T = rng.integers(1, 366, n).astype(float)
    lam = rng.gamma(0.25, 1.0 / 30.0, n)
    p = rng.beta(0.8, 2.4, n)
    count = rng.poisson(lam * T)
    x = np.minimum(count, rng.geometric(p)).astype(float)
    tx = np.floor(np.where(x > 0, rng.beta(np.maximum(x, 1), 1.0), 0.0) * T)
    x = np.where(tx > 0, x, 0.0)
    return x, np.where(x > 0, tx, 0.0), T


def _simulate_pareto(n, seed=2):
    """Pareto/NBD customers in whole days (on BG/NBD data its likelihood has a ridge, s/beta
    fixed, with no interior maximum)."""
    rng = np.random.default_rng(seed)
    T = rng.integers(1, 366, n).astype(float)
    alive = np.minimum(rng.exponential(1.0 / rng.gamma(0.6, 1.0 / 80.0, n)), T)
    x = rng.poisson(rng.gamma(0.55, 1.0 / 70.0, n) * alive).astype(float)
    tx = np.floor(np.where(x > 0, alive * rng.beta(np.maximum(x, 1), 1.0), 0.0))
    x = np.where(tx > 0, x, 0.0)
    return x, np.where(x > 0, tx, 0.0), T


@pytest.mark.parametrize("cls", [clv.BetaGeo, clv.GammaGamma, clv.ParetoNBD])
def test_newton_path_equals_quasi_newton(cls):
    # Newton steps from a subsample start, last step taken without a pass, vs the L-BFGS-B/BFGS
    # fallback on the same data: the same maximum
    x, tx, T = _simulate_bgnbd(250_000) if cls is not clv.ParetoNBD else _simulate_pareto(60_000)
    if cls is clv.GammaGamma:
        rng = np.random.default_rng(1)
        m = np.round(rng.gamma(6.0 * np.maximum(x, 1), 1.0 / (rng.gamma(3.7, 1 / 15.0, x.size)
                                                             * np.maximum(x, 1))), 2) + 0.01
        args = (x, m)
    else:
        args = (x, tx, T)
    fast = cls().fit(*args)
    assert any("-th pattern" in a for a in fast.fit_info_["attempts"])
    assert fast.fit_info_["evaluations"] <= 10

    class QuasiNewton(cls):
        spec = dataclasses.replace(cls.spec, newton=None)
    slow = QuasiNewton().fit(*args)
    assert fast.fit_info_["method"] == "newton" and slow.fit_info_["method"] == "quasi-newton"
    # (the quasi-Newton fallback stops at a gradient ~1e-8, i.e. ~1e-6 from the maximum)
    for k in fast.params_:
        assert fast.params_[k] == pytest.approx(slow.params_[k], rel=1e-5), k
        assert fast.standard_errors_[k] == pytest.approx(slow.standard_errors_[k], rel=1e-3), k
    assert fast.log_likelihood_ >= slow.log_likelihood_ - 1e-12 * abs(slow.log_likelihood_)
    assert fast.log_likelihood_ == pytest.approx(slow.log_likelihood_, rel=1e-10)
