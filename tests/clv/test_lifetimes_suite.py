"""lifetimes' own test suite, ported to fastengage.clv.

Peer: CamDavidsonPilon/lifetimes, ``lifetimes/tests/`` (test_estimation.py, test_utils.py,
test_generate_data.py; test_plotting.py is out of scope). Every ported case names the peer file and
test beside it. Numbers the peer's tests publish (Hardie's papers and sheets, R BTYD / BTYDplus) are
constants here, cited; where the installed lifetimes (0.11.3) can be run in the test, ours is
compared with lifetimes itself on the same data (``_lifetimes()`` skips those cases without it).

API map (README, "Coming from lifetimes"): ``conditional_probability_alive`` ->
``probability_alive``, ``conditional_expected_number_of_purchases_up_to_time`` ->
``expected_purchases``, ``expected_number_of_purchases_up_to_time`` ->
``population_expected_purchases``, ``probability_of_n_purchases_up_to_time`` ->
``probability_of_n_purchases``, ``conditional_expected_average_profit`` -> ``expected_spend``,
``summary_data_from_transaction_data`` / ``calibration_and_holdout_data`` -> ``clv.summary``.

Deliberate, documented differences (asserted as our behaviour, see the cases):
* BG/BB ``probability_alive(..., future=k)`` is lifetimes' ``m_periods_in_future=k + 1`` (ours
  counts the opportunities after the next one; FHS 2010 eq. 11 is ``future=0``).
* BG/BB ``expected_number_of_transactions_in_first_n_periods(n)`` is
  ``probability_of_n_purchases(n, k)`` times the number of customers (k = 0..n).
* ``utils.expected_cumulative_transactions`` is ``clv.validation.cumulative_transactions`` (Arrow
  in and out; the ``date`` column is lifetimes' ``set_index_date=True`` index).
* time columns must be timestamps or dates (lifetimes parses strings with ``datetime_format``): a
  string column is an InputError that says how to cast it.
* models keep no per-customer data (no ``data``/``index``) and save only fitted models (safe bundle
  of meta.json + covariance.npy, never pickle).

Not ported, no fastengage counterpart: ``BaseFitter._unload_params``/``repr`` text, ``fit(index=)``,
``conditional_probability_alive_matrix`` (the plot helpers compute it on their grid; the matrix
cases below check the same cells with broadcasting), Pareto/NBD's conditional
``P(X(t)=n | x, t_x, T)``, ``GammaGammaFitter(q_constraint=)``, ``calculate_alive_path`` (ported as the summary as of each
day and its probability_alive), ``_find_first_transactions``
(private; its per-period squashing is checked through ``summary``),
``_scale_time``, ``generate_new_data``.
"""
import importlib.resources
import math
import warnings
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastengage import clv
from fastengage.clv.datasets import load_cdnow_sample, load_cdnow_summary, load_donations
from fastengage.errors import InputError

# Fader, Hardie & Lee (2005) BG/NBD on CDNOW, as printed (test_estimation.py, TestBetaGeoFitter)
BG_PAPER = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)
# BTYDplus MBG/NBD on CDNOW (test_estimation.py::TestModifiedBetaGammaFitter)
MBG_BTYDPLUS = dict(r=0.525, alpha=6.183, a=0.891, b=1.614)
# Fader, Hardie & Lee Pareto/NBD on CDNOW (test_estimation.py::TestParetoNBDFitter)
PARETO_PAPER = dict(r=0.553, alpha=10.578, s=0.606, beta=11.669)
# Fader, Hardie & Shang (2010) BG/BB on the donations
# (test_estimation.py::TestBetaGeoBetaBinomFitter)
BGBB_PAPER = dict(alpha=1.204, beta=0.750, gamma=0.657, delta=2.783)
# Fader, Hardie & Lee (2005) Gamma-Gamma on the CDNOW repeat buyers (lifetimes' v is our gamma)
GG_PAPER = dict(p=6.25, q=3.74, gamma=15.44)


def _lifetimes():
    """The installed peer (its deprecation/runtime warnings silenced), or skip the case."""
    lt = pytest.importorskip("lifetimes")
    warnings.filterwarnings("ignore", module="lifetimes")
    return lt


def _with(cls, params):
    m = cls()
    m.params_ = {k: float(v) for k, v in params.items()}
    return m


def _assert_params(model, expected, decimal):
    got = np.array([model.params_[k] for k in expected])
    np.testing.assert_array_almost_equal(np.array(list(expected.values())), got, decimal=decimal)


# -- data ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cdnow():
    """lifetimes' cdnow_customers_summary (x, t_x, T in weeks; the same 2357 customers)."""
    s = load_cdnow_summary()
    return tuple(s[c].to_numpy().astype(np.float64) for c in ("x", "t_x", "T"))


@pytest.fixture(scope="module")
def cdnow_spend():
    s = load_cdnow_summary()
    return s["x"].to_numpy().astype(np.float64), s["zbar"].to_numpy()


@pytest.fixture(scope="module")
def donations():
    d = load_donations()
    return tuple(d[c].to_numpy().astype(np.float64) for c in ("frequency", "recency", "periods",
                                                              "weights"))


@pytest.fixture(scope="module")
def bg(cdnow):
    return clv.BetaGeo().fit(*cdnow)


@pytest.fixture(scope="module")
def mbg(cdnow):
    return clv.ModifiedBetaGeo().fit(*cdnow)


@pytest.fixture(scope="module")
def pnbd(cdnow):
    return clv.ParetoNBD().fit(*cdnow)


@pytest.fixture(scope="module")
def bgbb(donations):
    x, tx, n, w = donations
    return clv.BetaGeoBetaBinom().fit(x, tx, n, weights=w)


@pytest.fixture(scope="module")
def peer_fits(cdnow):
    """lifetimes' fits on the same CDNOW summary (one each, shared by the comparisons)."""
    lt = _lifetimes()
    x, tx, T = (pd.Series(a) for a in cdnow)
    return {"bg": lt.BetaGeoFitter().fit(x, tx, T),
            "mbg": lt.ModifiedBetaGeoFitter().fit(x, tx, T),
            "pnbd": lt.ParetoNBDFitter().fit(x, tx, T)}


def test_bundled_cdnow_is_lifetimes_cdnow(cdnow):
    # the fixture's data are the peer's fixture (load_cdnow_summary) value for value
    lt = _lifetimes()
    from lifetimes.datasets import load_cdnow_summary as lt_cdnow
    ref = lt_cdnow()
    for ours, col in zip(cdnow, ("frequency", "recency", "T")):
        np.testing.assert_array_equal(ours, ref[col].to_numpy(np.float64))
    assert lt is not None


# == test_estimation.py::TestBaseFitter =========================================================
def test_unfitted_model_refuses_predictions_and_save(tmp_path):
    # test_estimation.py::TestBaseFitter::test_unload_params (ValueError before params_ exist) and
    # ::test_save_load_model. Deliberate difference: lifetimes pickles an unfitted fitter; ours
    # saves fitted models only (an unfitted one has nothing to save) and says so.
    for cls in (clv.BetaGeo, clv.ModifiedBetaGeo, clv.ParetoNBD):
        with pytest.raises(InputError, match="not fitted"):
            cls().probability_alive(1, 1, 2)
    with pytest.raises(InputError, match="not fitted"):
        clv.BetaGeo().save(tmp_path / "m.fe")
    assert repr(clv.BetaGeo()) == "BetaGeo(unfitted)"


def test_repr_lists_the_parameters():
    # test_estimation.py::TestBaseFitter::test_repr (our wording: class(name=value, ...))
    m = _with(clv.BetaGeo, dict(r=12.3, alpha=42.0, a=1.0, b=2.0))
    assert repr(m).startswith("BetaGeo(r=12.3, alpha=42, a=1, b=2")


# == test_estimation.py::TestBetaGeoBetaBinomFitter =============================================
def test_bgbb_has_standard_errors_covariance_and_intervals(bgbb):
    # ::test_model_has_standard_error_variance_matrix_and_confidence_intervals_
    assert set(bgbb.standard_errors_) == set(BGBB_PAPER)
    assert all(np.isfinite(v) and v > 0 for v in bgbb.standard_errors_.values())
    assert bgbb.covariance_.shape == (4, 4)
    ci = bgbb.confidence_intervals()
    assert ci.column("param").to_pylist() == list(BGBB_PAPER)
    assert np.all(ci.column("lower").to_numpy() < ci.column("estimate").to_numpy())


def test_bgbb_params_close_to_hardie_paper(bgbb):
    # ::test_params_out_is_close_to_Hardie_paper
    _assert_params(bgbb, BGBB_PAPER, decimal=2)


def test_bgbb_prob_alive_close_to_hardie_table_6(bgbb, donations):
    # ::test_prob_alive_is_close_to_Hardie_paper_table_6. lifetimes asks m_periods_in_future=1 for
    # "P(alive in 2002)"; ours counts from the next opportunity, so that is future=0 (documented).
    x, tx, n, _ = donations
    p = bgbb.probability_alive(x, tx, n)
    got = [p[(x == 0) & (tx == 0)][0], p[(x == 2) & (tx == 4)][0], p[(x == 6) & (tx == 6)][0]]
    np.testing.assert_array_almost_equal([0.11, 0.59, 0.93], got, decimal=2)


def test_bgbb_future_offset_against_lifetimes(bgbb, donations):
    # the documented offset of the case above, against the peer with our parameters
    lt = _lifetimes()
    x, tx, n, _ = donations
    ref = lt.BetaGeoBetaBinomFitter()
    ref.params_ = pd.Series(bgbb.params_)
    for future in (0, 1, 3):
        np.testing.assert_allclose(
            bgbb.probability_alive(x, tx, n, future),
            ref.conditional_probability_alive(future + 1, x, tx, n), rtol=1e-9)


def test_bgbb_conditional_expectation_same_as_hardie_sheet(bgbb, donations):
    # ::test_conditional_expectation_returns_same_value_as_Hardie_excel_sheet (column F total)
    x, tx, n, w = donations
    total = float((bgbb.expected_purchases(5, x, tx, n) * w).sum())
    np.testing.assert_almost_equal(12884.2, total, decimal=0)
    lt = _lifetimes()
    ref = lt.BetaGeoBetaBinomFitter()
    ref.params_ = pd.Series(bgbb.params_)
    for t in (1, 5, 10):
        np.testing.assert_allclose(
            bgbb.expected_purchases(t, x, tx, n),
            ref.conditional_expected_number_of_purchases_up_to_time(t, x, tx, n), rtol=1e-9)


@pytest.fixture(scope="module")
def peer_bgbb(donations):
    lt = _lifetimes()
    x, tx, n, w = donations
    return lt.BetaGeoBetaBinomFitter().fit(x, tx, n, w)


def test_bgbb_fit_equals_lifetimes(bgbb, peer_bgbb):
    ref = peer_bgbb
    for k in BGBB_PAPER:
        assert bgbb.params_[k] == pytest.approx(ref.params_[k], rel=1e-5)


def test_bgbb_expected_purchases_in_n_periods_same_as_hardie_sheet(bgbb, donations, peer_bgbb):
    # ::test_expected_purchases_in_n_periods_returns_same_value_as_Hardie_excel_sheet (In-Sample
    # Fit sheet, cells C18 and C24): customers x P(X(6) = k), our probability_of_n_purchases
    x, tx, n, w = donations
    expected_customers = bgbb.probability_of_n_purchases(6, np.arange(7)) * w.sum()
    np.testing.assert_almost_equal([3454.9, 1253.1], expected_customers[[0, 6]], decimal=0)
    ref = peer_bgbb
    ours = _with(clv.BetaGeoBetaBinom, ref.params_.to_dict())
    np.testing.assert_allclose(
        ours.probability_of_n_purchases(6, np.arange(7)) * w.sum(),
        ref.expected_number_of_transactions_in_first_n_periods(6)["model"].to_numpy(), rtol=1e-10)


@pytest.mark.parametrize("params", [BGBB_PAPER, dict(alpha=0.3, beta=4.0, gamma=2.5, delta=0.7),
                                    dict(alpha=5.0, beta=0.4, gamma=0.2, delta=9.0)])
def test_bgbb_probability_of_n_purchases_against_quadrature(params):
    # the kernel against the model itself: P(X(n)=k | p, theta) integrated over the two beta
    # mixing distributions by Gauss-Jacobi quadrature; a distribution whose mean is the
    # expected purchases of a new customer
    from scipy.special import comb, roots_jacobi
    m = _with(clv.BetaGeoBetaBinom, params)
    a, b, g, d = params.values()

    def beta_nodes(shape_a, shape_b, deg=80):
        # x ~ Beta(shape_a, shape_b): Jacobi weight (1-t)^(b-1) (1+t)^(a-1) on t = 2x - 1
        t, wt = roots_jacobi(deg, shape_b - 1.0, shape_a - 1.0)
        return (t + 1) / 2, wt / wt.sum()

    p, wp = beta_nodes(a, b)
    th, wth = beta_nodes(g, d)
    P, TH = p[:, None], th[None, :]
    for n in (0, 1, 6, 20):
        k = np.arange(n + 2.0)
        got = m.probability_of_n_purchases(n, k)
        want = []
        for kk in k:
            alive = comb(n, kk) * P ** kk * (1 - P) ** (n - kk) * (1 - TH) ** n
            dead = sum(comb(i, kk) * P ** kk * (1 - P) ** (i - kk) * TH * (1 - TH) ** i
                       for i in range(int(kk), n))
            want.append(float(wp @ (alive + dead) @ wth) if kk <= n else 0.0)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)
        assert got.sum() == pytest.approx(1.0, abs=1e-12)
        assert (got * k).sum() == pytest.approx(float(m.expected_purchases(n, 0, 0, 0)), rel=1e-9)
    with pytest.raises(InputError, match="n must hold non-negative whole numbers"):
        m.probability_of_n_purchases(6, 1.5)
    with pytest.raises(InputError, match="periods must hold"):
        m.probability_of_n_purchases(np.nan, 1)


@settings(max_examples=40, deadline=None)
@given(params=st.tuples(*[st.floats(0.05, 20.0)] * 4), n=st.integers(0, 60))
def test_bgbb_probability_of_n_purchases_is_a_distribution(params, n):
    # property form of the case above: any parameters and horizon give a distribution over
    # k = 0..n whose mean is the expected purchases of a new customer (eq. 13 at x = t_x = n = 0)
    m = _with(clv.BetaGeoBetaBinom, dict(zip(BGBB_PAPER, params)))
    k = np.arange(n + 1.0)
    pmf = m.probability_of_n_purchases(n, k)
    assert np.all((pmf >= 0) & (pmf <= 1 + 1e-12))
    assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
    assert (pmf * k).sum() == pytest.approx(float(m.expected_purchases(n, 0, 0, 0)), rel=1e-7,
                                            abs=1e-12)
    assert m.probability_of_n_purchases(n, n + 1) == 0.0


def test_bgbb_fit_with_and_without_weights(bgbb, donations):
    # ::test_fit_with_and_without_weights: the 11,104 donors one row each = the 22 weighted patterns
    x, tx, n, w = donations
    rep = w.astype(np.int64)
    exploded = clv.BetaGeoBetaBinom().fit(np.repeat(x, rep), np.repeat(tx, rep), np.repeat(n, rep))
    assert exploded.n_ == w.sum() == 11104
    _assert_params(exploded, bgbb.params_, decimal=4)
    assert exploded.log_likelihood_ == pytest.approx(bgbb.log_likelihood_, rel=1e-9)


# == test_estimation.py::TestGammaGammaFitter ===================================================
@pytest.fixture(scope="module")
def gg(cdnow_spend):
    x, m = cdnow_spend
    return clv.GammaGamma().fit(x[x > 0], m[x > 0])


def test_gg_params_close_to_hardie_paper(gg, cdnow_spend):
    # ::test_params_out_is_close_to_Hardie_paper (and ::..._with_q_constraint: q > 1 unconstrained)
    _assert_params(gg, GG_PAPER, decimal=2)
    assert gg.params_["q"] > 1
    # fit() keeps the repeat buyers itself: the whole table gives the same model
    x, m = cdnow_spend
    whole = clv.GammaGamma().fit(x, m)
    assert whole.n_ == 946 and whole.params_ == gg.params_


def test_gg_fit_equals_lifetimes(gg, cdnow_spend):
    lt = _lifetimes()
    x, m = cdnow_spend
    ref = lt.GammaGammaFitter().fit(x[x > 0], m[x > 0])
    for ours, theirs in (("p", "p"), ("q", "q"), ("gamma", "v")):
        assert gg.params_[ours] == pytest.approx(ref.params_[theirs], rel=1e-4)


def test_gg_conditional_expected_average_profit(cdnow_spend):
    # ::test_conditional_expected_average_profit (Hardie's spreadsheet, note 025)
    x, m = cdnow_spend
    ggf = _with(clv.GammaGamma, GG_PAPER)
    expected = np.array([24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17])
    np.testing.assert_allclose(ggf.expected_spend(x[:10], m[:10]), expected, atol=0.1)
    with pytest.warns(DeprecationWarning, match="expected_spend"):
        np.testing.assert_array_equal(ggf.conditional_expected_average_profit(x[:10], m[:10]),
                                      ggf.expected_spend(x[:10], m[:10]))


@pytest.mark.parametrize("freq", ["D", "H", "W", "M"])
def test_gg_customer_lifetime_value_with_bgf(cdnow, cdnow_spend, peer_fits, freq):
    # ::test_customer_lifetime_value_with_bgf (default freq "D", then "H"), against the peer's
    # GammaGammaFitter.customer_lifetime_value with the same BG/NBD parameters
    lt = _lifetimes()
    # the first 300 customers: lifetimes' hourly CLV evaluates 12 x 720-hour horizons (seconds)
    x, tx, T = (a[:300] for a in cdnow)
    m = cdnow_spend[1][:300]
    ref_bg = peer_fits["bg"]
    ref_gg = lt.GammaGammaFitter()
    ref_gg.params_ = pd.Series({"p": 6.25, "q": 3.74, "v": 15.44})
    ours_bg = _with(clv.BetaGeo, ref_bg.params_.to_dict())
    ours_gg = _with(clv.GammaGamma, GG_PAPER)
    got = ours_gg.customer_lifetime_value(ours_bg, x, tx, T, m, freq=freq)
    want = ref_gg.customer_lifetime_value(ref_bg, pd.Series(x), pd.Series(tx), pd.Series(T),
                                          pd.Series(m), freq=freq).to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    # the function form equals the method with expected_spend (the peer's utils check)
    np.testing.assert_array_equal(
        got, clv.customer_lifetime_value(ours_bg, x, tx, T, ours_gg.expected_spend(x, m),
                                         freq=freq))


def test_gg_using_weights_gives_same_fit(gg, cdnow_spend):
    # ::test_using_weights_col_gives_correct_results (grouped by (frequency, monetary_value))
    x, m = cdnow_spend
    keep = x > 0
    (ux, um), w = _group(x[keep], m[keep])
    assert (w > 1).any()
    weighted = clv.GammaGamma().fit(ux, um, weights=w)
    _assert_params(weighted, gg.params_, decimal=3)


def _group(*cols):
    """Distinct rows and their counts (the peer's groupby(...).size())."""
    stacked = np.stack(cols, axis=1)
    uniq, counts = np.unique(stacked, axis=0, return_counts=True)
    return tuple(uniq[:, j].copy() for j in range(uniq.shape[1])), counts.astype(np.float64)


# == test_estimation.py::TestParetoNBDFitter ====================================================
def test_pareto_overflow_inputs_give_finite_negative_loglik():
    # ::test_overflow_error (lifetimes checks its private _log_A_0 at these inputs; ours: the
    # per-customer log-likelihood there is finite and negative)
    m = _with(clv.ParetoNBD, dict(r=10.465, alpha=7.98565181e-03, s=3.0516, beta=2.820))
    ll = m.individual_log_likelihood(np.array([400.0, 500.0, 500.0]), np.array([5.0, 1.0, 4.0]),
                                     np.array([6.0, 37.0, 37.0]))
    # a density of 400-500 purchase times: finite (and here above 0), equal to the quadrature
    # reference of tests/naive_clv.py and to the peer's likelihood at the same point
    assert np.all(np.isfinite(ll))
    import naive_clv as nv
    theta = np.array(list(m.params_.values()))
    for i, (x, tx, T) in enumerate(((400.0, 5.0, 6.0), (500.0, 1.0, 37.0), (500.0, 4.0, 37.0))):
        assert ll[i] == pytest.approx(nv.pareto_ll_quad(theta, x, tx, T), rel=1e-9)
        lt = _lifetimes()
        nll = lt.ParetoNBDFitter._negative_log_likelihood(
            theta, np.array([x]), np.array([tx]), np.array([T]), np.ones(1), 0)
        assert ll[i] == pytest.approx(-nll, rel=1e-9)


@pytest.mark.parametrize("cls,peer", [(clv.BetaGeo, "BetaGeoFitter"),
                                      (clv.ModifiedBetaGeo, "ModifiedBetaGeoFitter"),
                                      (clv.ParetoNBD, "ParetoNBDFitter")])
def test_sum_of_scalar_inputs_to_loglik_equals_array(cls, peer):
    # ::test_sum_of_scalar_inputs_to_negative_log_likelihood_is_equal_to_array of TestBetaGeoFitter,
    # TestModifiedBetaGammaFitter and TestParetoNBDFitter, and the value against the peer's
    # _negative_log_likelihood (BG/MBG: log-parameters, mean over weights; Pareto: raw
    # parameters, sum / mean weight) at the same point
    x, tx, T = np.array([1.0, 3.0]), np.array([2.0, 2.0]), np.array([5.0, 6.0])
    log_point = cls is not clv.ParetoNBD
    theta = np.exp(np.ones(4)) if log_point else np.ones(4)
    m = _with(cls, dict(zip(cls.param_names, theta)))
    whole = m.individual_log_likelihood(x, tx, T)
    singles = [float(m.individual_log_likelihood(x[i:i + 1], tx[i:i + 1], T[i:i + 1])[0])
               for i in range(2)]
    assert whole.sum() == pytest.approx(sum(singles), rel=1e-14)
    lt = _lifetimes()
    nll = getattr(lt, peer)._negative_log_likelihood(np.ones(4), x, tx, T, np.ones(2), 0)
    want = whole.mean() if log_point else whole.sum()
    assert -nll == pytest.approx(want, rel=1e-10)


def test_pareto_params_close_to_hardie_paper(pnbd):
    # ::test_params_out_is_close_to_Hardie_paper
    _assert_params(pnbd, PARETO_PAPER, decimal=2)


def test_pareto_fit_equals_lifetimes(pnbd, peer_fits, cdnow):
    ref = peer_fits["pnbd"]
    for k in PARETO_PAPER:
        assert pnbd.params_[k] == pytest.approx(ref.params_[k], rel=2e-3)
    # ours is the better (or equal) maximum of the same likelihood
    at_peer = _with(clv.ParetoNBD, ref.params_.to_dict())
    assert pnbd.log_likelihood_ >= at_peer.individual_log_likelihood(*cdnow).sum() - 1e-6


def test_pareto_expectation_same_as_r_btyd(pnbd):
    # ::test_expectation_returns_same_value_as_R_BTYD
    expected = np.array([0.0, 0.05077821, 0.09916088, 0.14542507, 0.18979930, 0.23247466,
                         0.27361274, 0.31335159, 0.35181024, 0.38909211])
    np.testing.assert_allclose(pnbd.population_expected_purchases(np.arange(10.0)), expected,
                               atol=0.01)


def test_pareto_conditional_expectation_same_as_r_btyd(pnbd):
    # ::test_conditional_expectation_returns_same_value_as_R_BTYD
    assert abs(pnbd.expected_purchases(52, 26.00, 30.86, 31) - 25.46) < 0.01


def test_pareto_conditional_expectation_underflow():
    # ::test_conditional_expectation_underflow: a small change of x must not jump
    m = _with(clv.ParetoNBD, dict(r=0.55, alpha=10.58, s=0.61, beta=11.67))
    left = m.expected_purchases(10, 132, 200, 200)
    right = m.expected_purchases(10, 133, 200, 200)
    assert abs(left - right) < 0.05
    # the peer's own comments give the two values (6.2060517889632418, 6.2528722475748113)
    assert left == pytest.approx(6.2060517889632418, rel=1e-6)
    assert right == pytest.approx(6.2528722475748113, rel=1e-6)


def _alive_grid(step=10.0, top=100.0):
    """The peer's loops: frequency and recency in 0..90 by 10, T from recency to 90."""
    cells = [(f, r, t) for f in np.arange(0, top, step) for r in np.arange(0, top, step)
             for t in np.arange(r, top, step)]
    return tuple(np.array(c) for c in zip(*cells))


@pytest.mark.parametrize("name", ["bg", "mbg", "pnbd"])
def test_conditional_probability_alive_is_between_0_and_1(name, request):
    # ::test_conditional_probability_alive_is_between_0_and_1 of TestBetaGeoFitter,
    # TestModifiedBetaGammaFitter, TestParetoNBDFitter (the peer's loops, one broadcast call);
    # the grid holds x > 0 with recency 0, which the peer's loops include
    m = request.getfixturevalue(name)
    p = m.probability_alive(*_alive_grid())
    assert np.all((p >= 0) & (p <= 1))


def test_pareto_conditional_probability_alive_btyd(pnbd):
    # ::test_conditional_probability_alive (BTYD walkthrough p. 8)
    m = _with(clv.ParetoNBD, dict(r=0.5534, alpha=10.5802, s=0.6061, beta=11.6562))
    assert abs(m.probability_alive(26.00, 30.86, 31.00) - 0.9979) < 0.001


def test_pareto_conditional_probability_alive_overflow():
    # ::test_conditional_probability_alive_overflow_error
    m = _with(clv.ParetoNBD, dict(r=10.465, alpha=7.98565181e-03, s=3.0516, beta=2.820))
    p = m.probability_alive(np.array([40.0, 50.0, 50.0]), np.array([5.0, 1.0, 4.0]),
                            np.array([6.0, 37.0, 37.0]))
    assert np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))
    lt = _lifetimes()
    ref = lt.ParetoNBDFitter()
    ref.params_ = pd.Series(m.params_)
    np.testing.assert_allclose(p, ref.conditional_probability_alive(
        np.array([40.0, 50.0, 50.0]), np.array([5.0, 1.0, 4.0]), np.array([6.0, 37.0, 37.0])),
        rtol=1e-6, atol=1e-300)


@pytest.mark.parametrize("name", ["bg", "mbg", "pnbd"])
def test_conditional_probability_alive_matrix(name, request, cdnow, peer_fits):
    # ::test_conditional_probability_alive_matrix (BG, MBG, Pareto): every cell Z[t_x][x] of the
    # matrix at T = max T equals the scalar call, and (BG) Z[0][0] == 1; against the peer's
    # matrix with our parameters
    m = request.getfixturevalue(name)
    max_t = int(cdnow[2].max())
    max_x = int(cdnow[0].max())
    rec = np.arange(max_t + 1.0)[:, None]
    x = np.arange(max_x + 1.0)[None, :]
    Z = m.probability_alive(x, rec, float(max_t))
    assert Z.shape == (max_t + 1, max_x + 1)
    for t_x in range(0, max_t + 1, 7):
        for f in range(0, max_x + 1, 5):
            assert Z[t_x][f] == m.probability_alive(f, t_x, max_t)
    if name == "bg":
        assert Z[0][0] == 1
    lt = _lifetimes()
    ref = {"bg": lt.BetaGeoFitter, "mbg": lt.ModifiedBetaGeoFitter,
           "pnbd": lt.ParetoNBDFitter}[name]()
    ref.params_ = pd.Series(m.params_)
    ref.data = pd.DataFrame({"frequency": cdnow[0], "recency": cdnow[1], "T": cdnow[2]})
    np.testing.assert_allclose(Z, ref.conditional_probability_alive_matrix(), rtol=1e-8,
                               atol=1e-14)


@pytest.mark.parametrize("name", ["bg", "pnbd"])
def test_fit_with_and_without_weights(name, request, cdnow):
    # TestParetoNBDFitter::test_fit_with_and_without_weights (decimal 2) and
    # TestBetaGeoFitter::test_using_weights_col_gives_correct_results (decimal 3)
    m = request.getfixturevalue(name)
    (ux, utx, uT), w = _group(*cdnow)
    assert (w > 1).any()
    weighted = type(m)().fit(ux, utx, uT, weights=w)
    _assert_params(weighted, m.params_, decimal=3)
    assert weighted.n_ == m.n_ == cdnow[0].size


# == test_estimation.py::TestBetaGeoFitter ======================================================
def test_bg_params_close_to_hardie_paper(bg):
    # ::test_params_out_is_close_to_Hardie_paper
    _assert_params(bg, BG_PAPER, decimal=2)


def test_bg_fit_equals_lifetimes(bg, mbg, peer_fits, cdnow):
    # the same maximum as the peer (and the same log-likelihood, FHL 2005's -9582.4)
    for ours, ref in ((bg, peer_fits["bg"]), (mbg, peer_fits["mbg"])):
        for k in BG_PAPER:
            assert ours.params_[k] == pytest.approx(ref.params_[k], rel=1e-3)
        at_peer = _with(type(ours), ref.params_.to_dict())
        assert ours.log_likelihood_ >= at_peer.individual_log_likelihood(*cdnow).sum() - 1e-6
    assert bg.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)


def test_bg_conditional_expectation_same_as_hardie_sheet(bg):
    # ::test_conditional_expectation_returns_same_value_as_Hardie_excel_sheet
    assert abs(bg.expected_purchases(39, 2, 30.43, 38.86) - 1.226) < 0.001


def test_bg_expectation_same_as_hardie_sheet(bg):
    # ::test_expectation_returns_same_value_Hardie_excel_sheet
    times = np.array([0.1429, 1.0, 3.00, 31.8571, 32.00, 78.00])
    expected = np.array([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576])
    np.testing.assert_array_almost_equal(bg.population_expected_purchases(times), expected,
                                         decimal=3)


def test_bg_probability_alive_is_1_without_repeat_purchases(bg):
    # ::test_conditional_probability_alive_returns_1_if_no_repeat_purchases
    assert bg.probability_alive(0, 1, 1) == 1.0
    assert bg.probability_alive(0, 0, 1) == 1.0


def test_bg_penalizer_shrinks_coefficients(cdnow, bg, peer_fits):
    # ::test_penalizer_term_will_shrink_coefs_to_0 (0.1 then 10: every parameter smaller)
    p1 = np.array(list(bg.params_.values()))
    pen = clv.BetaGeo(penalizer=0.1).fit(*cdnow)
    p2 = np.array(list(pen.params_.values()))
    p3 = np.array(list(clv.BetaGeo(penalizer=10).fit(*cdnow).params_.values()))
    assert np.all(p2 < p1) and np.all(p3 < p2)
    # README: our penalised BG/NBD equals lifetimes' penalised fit
    lt = _lifetimes()
    ref = lt.BetaGeoFitter(penalizer_coef=0.1).fit(*(pd.Series(a) for a in cdnow))
    for k in BG_PAPER:
        assert pen.params_[k] == pytest.approx(ref.params_[k], rel=2e-3)


@pytest.mark.parametrize("model", [
    "mbg", "bgbb", "gg", pytest.param("pnbd", marks=pytest.mark.slow)])   # lifetimes' Pareto: ~2 s
def test_penalised_fits_equal_lifetimes(model, cdnow, cdnow_spend, donations):
    # the penalizer cases of the peer's suite compare with the unpenalised fit only; here the
    # penalised optimum itself is the peer's (README: unit-free penalties). lifetimes' Pareto/NBD
    # divides its log-likelihood by the mean weight, ours by n: penalizer c there = c / n here
    lt = _lifetimes()
    c = 0.1
    if model == "bgbb":
        x, tx, n, w = donations
        ours = clv.BetaGeoBetaBinom(penalizer=c).fit(x, tx, n, weights=w)
        ref = lt.BetaGeoBetaBinomFitter(penalizer_coef=c).fit(x, tx, n, w).params_
    elif model == "gg":
        x, m = cdnow_spend
        ours = clv.GammaGamma(penalizer=c).fit(x, m)
        ref = lt.GammaGammaFitter(penalizer_coef=c).fit(x[x > 0], m[x > 0]).params_
        ref = ref.rename({"v": "gamma"})
    else:
        cls, peer, ours_c = {"mbg": (clv.ModifiedBetaGeo, "ModifiedBetaGeoFitter", c),
                             "pnbd": (clv.ParetoNBD, "ParetoNBDFitter", c / cdnow[0].size)}[model]
        ours = cls(penalizer=ours_c).fit(*cdnow)
        ref = getattr(lt, peer)(penalizer_coef=c).fit(*(pd.Series(a) for a in cdnow)).params_
    # lifetimes' Pareto/NBD stops early (its tol; beta differs run to run by ~2e-4)
    rel = 1e-3 if model == "pnbd" else 1e-4
    for k, v in ours.params_.items():
        assert v == pytest.approx(ref[k], rel=rel), k


def test_bg_probability_of_n_purchases_same_as_r_btyd():
    # ::test_probability_of_n_purchases_up_to_time_same_as_R_BTYD
    m = _with(clv.BetaGeo, BG_PAPER)
    assert abs(m.probability_of_n_purchases(2, 10) - 1.07869e-07) < 10e-5
    assert abs(m.probability_of_n_purchases(39, 0) - 0.5737864) < 10e-5
    expected = np.array([0.0019995214, 0.0015170236, 0.0011633150, 0.0009003148, 0.0007023638,
                         0.0005517902, 0.0004361913, 0.0003467171, 0.0002769613, 0.0002222260])
    np.testing.assert_array_almost_equal(expected,
                                         m.probability_of_n_purchases(30, np.arange(11, 21)),
                                         decimal=5)
    lt = _lifetimes()
    ref = lt.BetaGeoFitter()
    ref.params_ = pd.Series(BG_PAPER)
    for t, n in ((2, 10), (39, 0), (30, 15), (52, 3)):
        assert m.probability_of_n_purchases(t, n) == pytest.approx(
            ref.probability_of_n_purchases_up_to_time(t, n), rel=1e-8)


@pytest.mark.parametrize("cls,tol", [(clv.BetaGeo, 10e-5), (clv.ModifiedBetaGeo, 10e-2)])
def test_scaling_inputs_gives_same_results(cdnow, cls, tol):
    # TestBetaGeoFitter / TestModifiedBetaGammaFitter
    # ::test_scaling_inputs_gives_same_or_similar_results
    # (lifetimes also checks its private _scale < 1; ours has no rescaling to expose). The
    # maximum likelihood is equivariant under a time unit change: ours agrees far inside tol.
    x, tx, T = cdnow
    scale = 10.0
    base = cls().fit(x, tx, T)
    large = cls().fit(x, scale * tx, scale * T)
    for f, r, t in ((1, 1, 2), (1, 2, 10)):
        diff = abs(large.probability_alive(f, scale * r, scale * t)
                   - base.probability_alive(f, r, t))
        assert diff < tol and diff < 1e-5
    assert large.params_["alpha"] == pytest.approx(scale * base.params_["alpha"], rel=1e-5)


def test_bg_save_load(bg, tmp_path):
    # ::test_save_load, ::test_save_load_no_data, ::test_save_load_no_generate_data,
    # ::test_save_load_no_data_replace_with_empty_str: penalizer, params, log-likelihood and
    # predictions survive; ours never stores data or methods (the bundle has two members)
    path = tmp_path / "bg.fe"
    for model in (bg, clv.BetaGeo(penalizer=0.5).fit(np.array([1.0, 0.0, 3.0]),
                                                      np.array([2.0, 0.0, 4.0]),
                                                      np.array([5.0, 6.0, 7.0]))):
        model.save(path)
        new = clv.BetaGeo.load(path)
        assert new.penalizer == model.penalizer
        assert new.params_ == model.params_
        assert new.log_likelihood_ == model.log_likelihood_
        assert new.expected_purchases(1, 1, 2, 5) == model.expected_purchases(1, 1, 2, 5)
        assert new.population_expected_purchases(1) == model.population_expected_purchases(1)
        with zipfile.ZipFile(path) as z:
            assert sorted(z.namelist()) == ["covariance.npy", "meta.json"]


def test_bg_no_runtime_warnings_high_frequency(bg):
    # ::test_no_runtime_warnings_high_frequency (np.seterr(all="raise") and P(alive) == 0)
    old = np.seterr(all="raise")
    try:
        p = bg.probability_alive(1000, 10, 100)
        e = bg.expected_purchases(10, 1000, 10, 100)
    finally:
        np.seterr(**old)
    assert p == 0.0 and e == 0.0


# == test_estimation.py::TestModifiedBetaGammaFitter ============================================
def test_mbg_params_close_to_btydplus(mbg):
    # ::test_params_out_is_close_to_BTYDplus
    _assert_params(mbg, MBG_BTYDPLUS, decimal=3)


def test_mbg_conditional_expectation_same_as_hardie_sheet(mbg):
    # ::test_conditional_expectation_returns_same_value_as_Hardie_excel_sheet
    assert abs(mbg.expected_purchases(39, 2, 30.43, 38.86) - 1.226) < 0.05


def test_mbg_expectation_same_as_hardie_sheet(mbg):
    # ::test_expectation_returns_same_value_Hardie_excel_sheet
    times = np.array([0.1429, 1.0, 3.00, 31.8571, 32.00, 78.00])
    expected = np.array([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576])
    np.testing.assert_allclose(mbg.population_expected_purchases(times), expected, rtol=0.05)


def test_mbg_probability_alive_below_1_without_repeat_purchases(mbg):
    # ::test_conditional_probability_alive_returns_lessthan_1_if_no_repeat_purchases
    assert mbg.probability_alive(0, 1, 1) < 1.0


def test_mbg_penalizer_shrinks_coefficients(cdnow, mbg):
    # ::test_penalizer_term_will_shrink_coefs_to_0 (sum of parameters decreases with 0.1, 1.0)
    s1 = sum(mbg.params_.values())
    s2 = sum(clv.ModifiedBetaGeo(penalizer=0.1).fit(*cdnow).params_.values())
    s3 = sum(clv.ModifiedBetaGeo(penalizer=1.0).fit(*cdnow).params_.values())
    assert s2 < s1 and s3 < s2


def test_mbg_probability_of_n_purchases_same_as_r_btyd():
    # ::test_probability_of_n_purchases_up_to_time_same_as_R_BTYD (MBG with BG's parameters)
    m = _with(clv.ModifiedBetaGeo, BG_PAPER)
    assert abs(m.probability_of_n_purchases(2, 10) - 1.07869e-07) < 10e-5
    expected = np.array([0.0019995214, 0.0015170236, 0.0011633150, 0.0009003148, 0.0007023638,
                         0.0005517902, 0.0004361913, 0.0003467171, 0.0002769613, 0.0002222260])
    np.testing.assert_allclose(expected, m.probability_of_n_purchases(30, np.arange(11, 21)),
                               rtol=0.5)
    lt = _lifetimes()
    ref = lt.ModifiedBetaGeoFitter()
    ref.params_ = pd.Series(BG_PAPER)
    for t, n in ((2, 10), (39, 0), (30, 15), (52, 3)):
        assert m.probability_of_n_purchases(t, n) == pytest.approx(
            ref.probability_of_n_purchases_up_to_time(t, n), rel=1e-8)


def _example_transactions():
    """lifetimes' example_transactions.csv (date, id), read from the installed peer."""
    _lifetimes()
    import lifetimes
    path = importlib.resources.files(lifetimes) / "datasets" / "example_transactions.csv"
    df = pd.read_csv(str(path), parse_dates=["date"])
    return df, pa.table({"id": df["id"].to_numpy(), "date": pa.array(df["date"].to_numpy())})


def test_mbg_hourly_and_daily_predictions_do_not_differ_much():
    # ::test_purchase_predictions_do_not_differ_much_if_looking_at_hourly_or_daily_frequencies
    # (the peer asserts 7 decimals: assert_almost_equal's default)
    df, tx = _example_transactions()
    end = df["date"].max()
    daily = clv.summary(tx, customer="id", time="date", as_of=end, freq="D")
    hourly = clv.summary(tx, customer="id", time="date", as_of=end, freq="h")
    per_day = clv.ModifiedBetaGeo().fit(daily).population_expected_purchases(30)
    per_hour = clv.ModifiedBetaGeo().fit(hourly).population_expected_purchases(30 * 24)
    np.testing.assert_almost_equal(per_day, per_hour)


@pytest.mark.parametrize("name", ["bg", "pnbd"])
def test_probability_of_n_purchases_is_a_distribution(name, request):
    # ::test_conditional_probability_of_n_purchases_up_to_time_is_between_0_and_1 and
    # ::..._adds_up_to_1 ask the conditional P(X(t) = n | x, t_x, T), which fastengage does not
    # have; the same two properties of our unconditional P(X(t) = n) (BG/NBD and Pareto/NBD)
    m = request.getfixturevalue(name)
    n = np.arange(0, 400.0)
    for t in (1.0, 5.0, 39.0, 78.0):
        pmf = m.probability_of_n_purchases(t, n)
        assert np.all((pmf >= 0) & (pmf <= 1))
        assert pmf.sum() == pytest.approx(1.0, abs=1e-6)
        assert (pmf * n).sum() == pytest.approx(m.population_expected_purchases(t), rel=1e-5)


# == test_utils.py: summary_data_from_transaction_data / calibration_and_holdout_data =========
def _frame(rows, cols=("id", "date")):
    return pd.DataFrame(rows, columns=list(cols))


def _arrow(df):
    out = {c: df[c].to_numpy() for c in df.columns}
    out["date"] = pa.array(pd.to_datetime(df["date"]).to_numpy())
    return pa.table(out)


TRANSACTIONS = [[1, "2015-02-01"], [1, "2015-02-06"], [2, "2015-01-01"], [3, "2015-01-01"],
                [3, "2015-01-02"], [3, "2015-01-05"]]
LARGE = [[1, "2015-01-01"], [1, "2015-02-06"], [2, "2015-01-01"], [3, "2015-01-01"],
         [3, "2015-01-02"], [3, "2015-01-05"], [4, "2015-01-16"], [4, "2015-02-02"],
         [4, "2015-02-05"], [5, "2015-01-16"], [5, "2015-01-17"], [5, "2015-01-18"],
         [6, "2015-02-02"]]
LARGE_MONEY = [row + [v] for row, v in zip(LARGE, [1, 2, 2, 3, 1, 5, 6, 3, 3, 3, 1, 8, 5])]


def _rows(table, cols):
    return [tuple(table.column(c).to_pylist()[i] for c in cols) for i in range(table.num_rows)]


def test_summary_returns_correct_results():
    # test_utils.py::test_summary_data_from_transaction_data_returns_correct_results
    s = clv.summary(_arrow(_frame(TRANSACTIONS)), customer="id", time="date", as_of="2015-02-07")
    assert _rows(s, ["id", "frequency", "recency", "T"]) == [
        (1, 1.0, 5.0, 6.0), (2, 0.0, 0.0, 37.0), (3, 2.0, 4.0, 37.0)]


def test_summary_works_with_string_customer_ids():
    # ::test_summary_data_from_transaction_data_works_with_string_customer_ids (a duplicate row)
    df = _frame([["X", "2015-02-01"], ["X", "2015-02-06"], ["Y", "2015-01-01"],
                 ["Y", "2015-01-01"], ["Y", "2015-01-02"], ["Y", "2015-01-05"]])
    s = clv.summary(_arrow(df), customer="id", time="date")
    assert s.column("id").to_pylist() == ["X", "Y"]
    assert _rows(s, ["frequency", "recency", "T"]) == [(1.0, 5.0, 5.0), (2.0, 4.0, 36.0)]


def test_summary_keeps_int_customer_ids_int():
    # ::test_summary_data_from_transaction_data_works_with_int_customer_ids_and_doesnt_coerce_to_
    # float
    df = _frame([[1, "2015-02-01"], [1, "2015-02-06"], [1, "2015-01-01"], [2, "2015-01-01"],
                 [2, "2015-01-02"], [2, "2015-01-05"]])
    s = clv.summary(_arrow(df), customer="id", time="date")
    assert s.schema.field("id").type == pa.int64()
    assert _rows(s, ["id", "frequency", "recency", "T"]) == [(1, 2.0, 36.0, 36.0),
                                                            (2, 2.0, 4.0, 36.0)]


def test_summary_with_specific_datetime_format():
    # ::test_summary_data_from_transaction_data_with_specific_datetime_format. Deliberate
    # difference: the time column must be a timestamp/date (no datetime_format=); a "%Y%m%d"
    # string column is refused with the cast to use, and as_of="20150207" is a date.
    import pyarrow.compute as pc
    df = _frame(TRANSACTIONS)
    strings = pa.table({"id": df["id"].to_numpy(),
                        "date": [d.replace("-", "") for d in df["date"]]})
    with pytest.raises(InputError, match="date.*string.*strptime"):
        clv.summary(strings, customer="id", time="date", as_of="20150207")
    cast = strings.set_column(1, "date", pc.strptime(strings["date"], format="%Y%m%d", unit="s"))
    s = clv.summary(cast, customer="id", time="date", as_of="20150207")
    assert _rows(s, ["id", "frequency", "recency", "T"]) == [
        (1, 1.0, 5.0, 6.0), (2, 0.0, 0.0, 37.0), (3, 2.0, 4.0, 37.0)]


def test_summary_with_weekly_frequency():
    # ::test_summary_date_from_transaction_data_with_specific_non_daily_frequency (and
    # ::test_find_first_transactions_with_specific_non_daily_frequency: W-SUN weeks)
    s = clv.summary(_arrow(_frame(LARGE)), customer="id", time="date", as_of="20150207", freq="W")
    assert _rows(s, ["id", "frequency", "recency", "T"]) == [
        (1, 1.0, 5.0, 5.0), (2, 0.0, 0.0, 5.0), (3, 1.0, 1.0, 5.0), (4, 1.0, 3.0, 3.0),
        (5, 0.0, 0.0, 3.0), (6, 0.0, 0.0, 0.0)]


def test_summary_with_monetary_values():
    # ::test_summary_date_from_transaction_with_monetary_values
    s = clv.summary(_arrow(_frame(LARGE_MONEY, ("id", "date", "monetary_value"))), customer="id",
                    time="date", amount="monetary_value", as_of="20150207")
    assert _rows(s, ["id", "frequency", "recency", "T", "monetary_value"]) == [
        (1, 1.0, 36.0, 37.0, 2.0), (2, 0.0, 0.0, 37.0, 0.0), (3, 2.0, 4.0, 37.0, 3.0),
        (4, 2.0, 20.0, 22.0, 3.0), (5, 2.0, 2.0, 22.0, 4.5), (6, 0.0, 0.0, 5.0, 0.0)]


def test_summary_weekly_monetary_sums_each_period():
    # ::test_find_first_transactions_with_monetary_values_with_specific_non_daily_frequency: the
    # amounts of one W period add up (customer 3: 3+1 in week 1, 5 in week 2; customer 4: 3+3)
    s = clv.summary(_arrow(_frame(LARGE_MONEY, ("id", "date", "monetary_value"))), customer="id",
                    time="date", amount="monetary_value", as_of="20150207", freq="W")
    assert s.column("monetary_value").to_pylist() == [2.0, 0.0, 5.0, 6.0, 0.0, 0.0]


def test_summary_drops_the_first_order_by_time_not_row_order():
    # ::test_summary_data_from_transaction_data_will_choose_the_correct_first_order_to_drop_in_
    # monetary_transactions
    def run(dates, sales):
        t = pa.table({"date": pa.array(pd.to_datetime(pd.Series(dates)).to_numpy()),
                      "id": [2, 2, 2], "sales": sales})
        return clv.summary(t, customer="id", time="date", amount="sales")
    ordered = run(["2014-03-14", "2014-04-09", "2014-05-21"], [10, 20, 25])
    unordered = run(["2014-04-09", "2014-03-14", "2014-05-21"], [20, 10, 25])
    assert ordered.equals(unordered)
    assert ordered.column("monetary_value").to_pylist() == [22.5]


def test_summary_statistics_identical_to_hardies_paper():
    # ::test_summary_statistics_are_indentical_to_hardies_paper_confirming_correct_aggregations
    # (RFM and CLV: iso-value curves; the bundled CDNOW sample, before 1997-10-01)
    import pyarrow.compute as pc
    tx = load_cdnow_sample()
    import datetime
    tx = tx.filter(pc.less(tx["date"], pa.scalar(datetime.date(1997, 10, 1), pa.date32())))
    s = clv.summary(tx, customer="customer_id", time="date", amount="dollar_value")
    m = s.column("monetary_value").to_numpy()[s.column("frequency").to_numpy() > 0]
    described = pd.Series(m).describe()
    assert np.round(described["mean"]) == 35 and np.round(described["std"]) == 30
    assert np.round(described["min"]) == 3 and np.round(described["50%"]) == 27
    assert np.round(described["max"]) == 300 and described["count"] == 946


def test_calibration_and_holdout_data():
    # ::test_calibration_and_holdout_data (customer 6, first seen after the cut, is absent)
    s = clv.summary(_arrow(_frame(LARGE)), customer="id", time="date", as_of="2015-02-07",
                    calibration_end="2015-02-01")
    holdout = dict(zip(s.column("id").to_pylist(), s.column("frequency_holdout").to_pylist()))
    assert holdout[1] == 1 and holdout[2] == 0 and 6 not in holdout


def test_calibration_and_holdout_data_too_early_raises():
    # ::test_calibration_and_holdout_data_throws_better_error_if_observation_period_end_is_too_early
    with pytest.raises(InputError, match="no transaction at or before calibration_end"):
        clv.summary(_arrow(_frame(LARGE)), customer="id", time="date", as_of="2014-02-07",
                    calibration_end="2014-02-01")


def test_calibration_and_holdout_data_is_okay_with_unsorted_rows():
    # ::test_calibration_and_holdout_data_is_okay_with_other_indexes (pandas index shuffled; the
    # Arrow counterpart: rows in a shuffled order give the same customers' numbers)
    t = _arrow(_frame(LARGE))
    order = np.random.default_rng(3).permutation(t.num_rows)
    a = clv.summary(t, customer="id", time="date", as_of="2015-02-07", calibration_end="2015-02-01")
    b = clv.summary(t.take(order), customer="id", time="date", as_of="2015-02-07",
                    calibration_end="2015-02-01")
    cols = ["frequency", "recency", "T", "frequency_holdout", "duration_holdout"]
    key = lambda tab: sorted(_rows(tab, ["id"] + cols))  # noqa: E731
    assert key(a) == key(b)


def test_calibration_and_holdout_data_weekly():
    # ::test_calibration_and_holdout_data_works_with_specific_frequency
    s = clv.summary(_arrow(_frame(LARGE)), customer="id", time="date", as_of="2015-02-07",
                    calibration_end="2015-02-01", freq="W")
    cols = ["id", "frequency", "recency", "T", "frequency_holdout", "duration_holdout"]
    assert _rows(s, cols) == [
        (1, 0.0, 0.0, 4.0, 1.0, 1.0), (2, 0.0, 0.0, 4.0, 0.0, 1.0), (3, 1.0, 1.0, 4.0, 0.0, 1.0),
        (4, 0.0, 0.0, 2.0, 1.0, 1.0), (5, 0.0, 0.0, 2.0, 0.0, 1.0)]


def test_calibration_and_holdout_data_date_boundaries():
    # ::test_calibration_and_holdout_data_gives_correct_date_boundaries (rows after as_of are in
    # neither period)
    s = clv.summary(_arrow(_frame(LARGE)), customer="id", time="date", as_of="2015-02-04",
                    calibration_end="2015-02-01")
    holdout = dict(zip(s.column("id").to_pylist(), s.column("frequency_holdout").to_pylist()))
    assert holdout[1] == 0 and holdout[4] == 1
    assert s.schema.metadata[b"rows_after_as_of"] == b"2"


def test_calibration_and_holdout_data_with_monetary_value():
    # ::test_calibration_and_holdout_data_with_monetary_value
    s = clv.summary(_arrow(_frame(LARGE_MONEY, ("id", "date", "monetary_value"))), customer="id",
                    time="date", amount="monetary_value", as_of="2015-02-07",
                    calibration_end="2015-02-01")
    assert s.column("monetary_value").to_pylist() == [0, 0, 3, 0, 4.5]
    assert s.column("monetary_value_holdout").to_pylist() == [2, 0, 0, 3, 0]


def test_summary_squashes_period_purchases_to_one_purchase():
    # ::test_summary_data_from_transaction_data_squashes_period_purchases_to_one_purchase
    t = pa.table({"id": [1, 1], "t": pa.array(np.array(["2015-01-01", "2015-01-01"],
                                                      dtype="datetime64[us]"))})
    s = clv.summary(t, customer="id", time="t", freq="W")
    assert s.column("frequency").to_pylist() == [0.0]


@pytest.mark.parametrize("freq", ["D", "W", "h"])
@pytest.mark.parametrize("money", [False, True])
def test_summary_and_holdout_equal_lifetimes(freq, money):
    # every summary case above, against the peer itself on one random log: ties inside a period,
    # unsorted rows, several amounts per period, rows after as_of
    lt = _lifetimes()
    rng = np.random.default_rng(7)
    n = 400
    base = np.datetime64("2015-01-01T00:00:00")
    df = pd.DataFrame({"id": rng.integers(0, 60, n),
                       "date": base + rng.integers(0, 90 * 24 * 60, n).astype("timedelta64[m]"),
                       "value": np.round(rng.uniform(1, 50, n), 2)})
    tx = pa.table({"id": df["id"].to_numpy(), "date": pa.array(df["date"].to_numpy()),
                   "value": df["value"].to_numpy()})
    amount = "value" if money else None
    cols = ["frequency", "recency", "T"] + (["monetary_value"] if money else [])
    end = "2015-03-18 07:00"        # mid-day and (for W) mid-week cuts
    # the peer always gets the amounts: without them lifetimes 0.11.3 fails on pandas 3 ("No
    # objects to concatenate"); its frequency/recency/T do not depend on them
    ref = lt.utils.summary_data_from_transaction_data(df, "id", "date", monetary_value_col="value",
                                                      observation_period_end=end, freq=freq)
    ours = clv.summary(tx, customer="id", time="date", amount=amount, as_of=end,
                       freq=freq).to_pandas().set_index("id").loc[ref.index]
    for c in cols:
        np.testing.assert_allclose(ours[c].to_numpy(), ref[c].to_numpy(), rtol=1e-12, err_msg=c)
    ref = lt.utils.calibration_and_holdout_data(df, "id", "date", "2015-02-11 13:30",
                                                observation_period_end=end, freq=freq,
                                                monetary_value_col="value")
    ours = clv.summary(tx, customer="id", time="date", amount=amount, as_of=end,
                       calibration_end="2015-02-11 13:30", freq=freq).to_pandas().set_index("id")
    assert sorted(ours.index) == sorted(ref.index)
    ours = ours.loc[ref.index]
    pairs = [(c, c + "_cal") for c in cols] + [("frequency_holdout",) * 2,
                                               ("duration_holdout",) * 2]
    if money:
        pairs.append(("monetary_value_holdout",) * 2)
    for mine, theirs in pairs:
        np.testing.assert_allclose(ours[mine].to_numpy(), ref[theirs].to_numpy(np.float64),
                                   rtol=1e-12, err_msg=mine)


def test_check_inputs():
    # test_utils.py::test_check_inputs: recency > T, recency != 0 with frequency 0, a fractional
    # frequency and a non-positive monetary value are refused by fit
    x, tx, T = np.array([0.0, 1, 2]), np.array([0.0, 1, 10]), np.array([5.0, 6, 15])
    m = np.array([2.3, 490, 33.33])
    clv.BetaGeo().fit(x, tx, T)
    with pytest.raises(InputError, match="recency exceeds T"):
        clv.BetaGeo().fit(x, T + 1, T)
    bad = tx.copy()
    bad[0] = 1
    with pytest.raises(InputError, match="recency is non-zero for 1 customer"):
        clv.BetaGeo().fit(x, bad, T)
    for cls in (clv.BetaGeo, clv.ModifiedBetaGeo, clv.ParetoNBD):
        with pytest.raises(InputError, match="frequency is not a whole number for 1 customer"):
            cls().fit(np.array([0, 0.5, 2]), tx, T)
        with pytest.raises(InputError, match="recency is non-zero"):
            cls().fit(x, bad, T)
    # with weights the message counts distinct patterns
    with pytest.raises(InputError, match="recency is non-zero for 1 distinct pattern"):
        clv.BetaGeo().fit(x, bad, T, weights=np.array([2.0, 1.0, 1.0]))
    bad_m = m.copy()
    bad_m[1] = 0
    with pytest.raises(InputError, match="monetary_value must be > 0"):
        clv.GammaGamma().fit(x, bad_m)
    # Gamma-Gamma: a negative frequency was dropped silently with the x = 0 rows (fit keeps
    # x > 0); now refused. Deliberate difference: a fractional x is fitted (the likelihood is
    # defined for any x > 0, and has its own path), where lifetimes' _check_inputs refuses it
    with pytest.raises(InputError, match="frequency has 1 negative value"):
        clv.GammaGamma().fit(np.array([-1.0, 1, 2]), m)
    assert clv.GammaGamma().fit(np.array([1.5, 1, 2]), m).n_ == 3


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_predictions_refuse_nan_histories(bad):
    # the peer returns NaN for a NaN history; ours used to return P(alive) = 1 for a NaN
    # frequency, recency or T (BG/NBD), 1 for a NaN recency (Pareto/NBD), 0.93 (BG/BB): now an
    # InputError naming the column, in every prediction and in customer_lifetime_value
    bg = _with(clv.BetaGeo, BG_PAPER)
    pn = _with(clv.ParetoNBD, PARETO_PAPER)
    hist = [np.array([2.0, 1.0]), np.array([3.0, 1.0]), np.array([5.0, 6.0])]
    for col, name in enumerate(("frequency", "recency", "T")):
        h = [a.copy() for a in hist]
        h[col][0] = bad
        for m in (bg, pn):
            with pytest.raises(InputError, match=f"{name} has 1 NaN/inf"):
                m.probability_alive(*h)
            with pytest.raises(InputError, match=f"{name} has 1 NaN/inf"):
                m.expected_purchases(3, *h)
        with pytest.raises(InputError, match=f"{name} has 1 NaN/inf"):
            clv.customer_lifetime_value(bg, *h, np.ones(2))
    bb = _with(clv.BetaGeoBetaBinom, BGBB_PAPER)
    hist = [np.array([2.0, 1.0]), np.array([3.0, 1.0]), np.array([6.0, 6.0])]
    for col, name in enumerate(("frequency", "recency", "periods")):
        h = [a.copy() for a in hist]
        h[col][0] = bad
        with pytest.raises(InputError, match=f"{name} has 1 NaN/inf"):
            bb.probability_alive(*h)
        with pytest.raises(InputError, match=f"{name} has 1 NaN/inf"):
            bb.expected_purchases(2, *h)
    # finite histories still broadcast as before
    assert bg.probability_alive(np.array([[0.0], [2.0]]), 0.0, 5.0).shape == (2, 1)


def test_bgbb_refuses_negative_weights(donations):
    # TransactionModel and GammaGamma refused negative weights; BG/BB fitted them silently
    x, tx, n, w = donations
    w = w.copy()
    w[3] = -w[3]
    with pytest.raises(InputError, match="weights has 1 negative"):
        clv.BetaGeoBetaBinom().fit(x, tx, n, weights=w)


def test_summary_obeys_model_constraints():
    # ::test_summary_data_from_transaction_data_obeys_data_contraints (example_transactions)
    df, tx = _example_transactions()
    s = clv.summary(tx, customer="id", time="date", as_of=df["date"].max())
    x, r, T = (s.column(c).to_numpy() for c in ("frequency", "recency", "T"))
    assert np.all(x == np.floor(x)) and np.all(r <= T) and np.all(r[x == 0] == 0)
    clv.BetaGeo().fit(s)


@pytest.fixture(scope="module")
def example_bg():
    """test_utils.py's fitted_bg: BG/NBD on example_transactions' daily summary."""
    df, tx = _example_transactions()
    s = clv.summary(tx, customer="id", time="date", as_of=df["date"].max())
    return clv.BetaGeo().fit(s), s


def test_customer_lifetime_value_with_known_values(example_bg):
    # test_utils.py::test_customer_lifetime_value_with_known_values (the peer's docstring fit:
    # r 0.16, alpha 1.86, a 1.85, b 3.18; predict(30) of the first five customers)
    bg, s = example_bg
    _assert_params(bg, dict(r=0.16, alpha=1.86, a=1.85, b=3.18), decimal=2)
    x, tx, T = (s.column(c).to_numpy()[:5] for c in ("frequency", "recency", "T"))
    expected = np.array([0.016053, 0.021171, 0.030461, 0.031686, 0.001607])
    ones = np.ones(5)
    np.testing.assert_almost_equal(bg.expected_purchases(30, x, tx, T), expected, decimal=5)
    clv0 = clv.customer_lifetime_value(bg, x, tx, T, ones, months=1, discount_rate=0.0)
    np.testing.assert_almost_equal(clv0, expected, decimal=5)
    clv1 = clv.customer_lifetime_value(bg, x, tx, T, ones, months=1, discount_rate=1.0)
    np.testing.assert_almost_equal(clv1, expected / 2.0, decimal=5)
    clv2 = clv.customer_lifetime_value(bg, x, tx, T, ones, months=2, discount_rate=0)
    np.testing.assert_allclose(clv2, expected * 2.0, rtol=0.1)
    clv3 = clv.customer_lifetime_value(bg, x, tx, T, ones, months=2, discount_rate=1.0)
    np.testing.assert_allclose(clv3, expected / 2.0 + expected / 4.0, rtol=0.1)
    # and the lifetimes spelling time= (deprecated) against the peer's own function
    lt = _lifetimes()
    ref = lt.BetaGeoFitter()
    ref.params_ = pd.Series(bg.params_)
    ref.predict = ref.conditional_expected_number_of_purchases_up_to_time   # set by the peer's fit
    with pytest.warns(DeprecationWarning, match="months"):
        ours = clv.customer_lifetime_value(bg, x, tx, T, ones, time=3, discount_rate=0.02)
    want = lt.utils._customer_lifetime_value(ref, pd.Series(x), pd.Series(tx), pd.Series(T),
                                             pd.Series(ones), time=3, discount_rate=0.02)
    np.testing.assert_allclose(ours, want.to_numpy(), rtol=1e-9)


def test_calculate_alive_path(example_bg):
    # test_utils.py::test_calculate_alive_path (customer 33, 205 days; the peer's function no
    # longer runs on pandas 3: fillna(method=)). Ours: the summary of the customer's rows as of
    # each day, and probability_alive of it; the path starts at 1 and, at the customer's T, is the
    # summary's P(alive)
    import pyarrow.compute as pc
    bg, s = example_bg
    _, tx = _example_transactions()
    user = tx.filter(pc.equal(tx["id"], 33))
    row = s.filter(pc.equal(s["id"], 33))
    x, tx_, T = (row.column(c)[0].as_py() for c in ("frequency", "recency", "T"))
    first = pc.min(user["date"]).as_py()
    days = sorted(set(range(0, 205, 8)) | {int(T)})
    path = {}
    for d in days:
        day = clv.summary(user, customer="id", time="date", as_of=first + pd.Timedelta(days=d))
        path[d] = float(bg.probability_alive(*(day.column(c)[0].as_py()
                                               for c in ("frequency", "recency", "T"))))
    assert path[0] == 1
    assert path[int(T)] == bg.probability_alive(x, tx_, T)
    assert all(0 <= p <= 1 for p in path.values())


# == test_generate_data.py ======================================================================
def _simulate_bgbb(n_periods, alpha, beta, gamma, delta, size, rng):
    """lifetimes.generate_data.beta_geometric_beta_binom_model, vectorised (the peer's loop takes
    ~7 s for 100k customers): each opportunity the customer first survives (1 - theta), then
    buys with p; a last survival draw after the n opportunities gives ``alive``."""
    p = rng.beta(alpha, beta, size)
    theta = rng.beta(gamma, delta, size)
    alive = np.ones(size, bool)
    freq = np.zeros(size)
    rec = np.zeros(size)
    for t in range(n_periods):
        alive &= rng.random(size) >= theta
        buy = alive & (rng.random(size) < p)
        freq += buy
        rec[buy] = t + 1
    alive &= rng.random(size) >= theta
    return freq, rec, np.full(size, float(n_periods)), alive


def test_bgbb_params_same_from_sim_data():
    # test_generate_data.py::TestBetaGeoBetaBinomGeneration::test_params_same_from_sim_data (and
    # ::test_positivity / ::test_hitting_max of the simulated data)
    rng = np.random.default_rng(188898)
    x, tx, n, alive = _simulate_bgbb(6, *BGBB_PAPER.values(), size=100_000, rng=rng)
    assert x.min() >= 0 and tx.min() >= 0 and x.max() == 6 and tx.max() == 6
    (ux, utx, un), w = _group(x, tx, n)
    m = clv.BetaGeoBetaBinom().fit(ux, utx, un, weights=w)
    np.testing.assert_allclose(list(BGBB_PAPER.values()), list(m.params_.values()), atol=0.1,
                               rtol=1e-2)


def test_bgbb_alive_probabilities_match_simulation():
    # ::TestBetaGeoBetaBinomGeneration::test_alive_probs: the simulated alive share of the three
    # Table 6 histories is our probability_alive (future=0) at the true parameters
    rng = np.random.default_rng(11)
    x, tx, n, alive = _simulate_bgbb(6, *BGBB_PAPER.values(), size=200_000, rng=rng)
    m = _with(clv.BetaGeoBetaBinom, BGBB_PAPER)
    for f, r in ((0, 0), (2, 4), (6, 6)):
        sel = (x == f) & (tx == r)
        share = alive[sel].mean()
        se = math.sqrt(share * (1 - share) / sel.sum())
        assert abs(share - m.probability_alive(f, r, 6)) < max(4 * se, 0.01)


@pytest.mark.parametrize("T,freq,size", [(100, "D", 500), ([400, 200, 5, 103, 198, 401], "D", 6),
                                         (100, "h", 500)])
def test_bgnbd_transactional_data_summarises_to_its_generator(T, freq, size):
    # test_generate_data.py::test_beta_geometric_nbd_model_transactional_data: transactions drawn
    # like lifetimes' beta_geometric_nbd_model_transactional_data (its pandas DataFrame.append
    # no longer runs on pandas 3) summarise to the generator's own (frequency, ceil(recency), T)
    rng = np.random.default_rng(188898)
    r, alpha, a, b = 0.24, 4.41, 0.79, 2.43
    end = np.datetime64("2019-01-01T00:00:00", "us")
    unit = np.timedelta64(1, "D" if freq == "D" else "h").astype("timedelta64[us]")
    T = np.broadcast_to(np.asarray(T, float), (size,))
    drop = rng.beta(a, b, size)
    lam = rng.gamma(r, 1.0 / alpha, size)
    ids, times, want = [], [], []
    for i in range(size):
        first = end - int(T[i]) * unit            # the peer's start_date - 1 unit
        ages = []
        u = rng.exponential(1.0 / lam[i])
        alive = True
        while u < T[i] - 1 and alive:             # purchases at start_date + u, u < T - 1 units
            ages.append(u)
            u += rng.exponential(1.0 / lam[i])
            alive = rng.random() > drop[i]
        ids += [i] * (len(ages) + 1)
        us = np.array([0.0] + [1.0 + g for g in ages]) * unit.astype(np.int64)
        times.append(first + us.astype("timedelta64[us]"))
        periods = np.unique(np.floor([0.0] + [1.0 + g for g in ages]))
        want.append((float(periods.size - 1), float(periods.max()), float(int(T[i]))))
    tx = pa.table({"customer_id": np.array(ids), "date": pa.array(np.concatenate(times))})
    s = clv.summary(tx, customer="customer_id", time="date", as_of=str(end), freq=freq)
    assert s.column("customer_id").to_pylist() == list(range(size))
    assert _rows(s, ["frequency", "recency", "T"]) == want


# == edge cases of the peer's inputs ===========================================================
EDGE_X = np.array([0, 0, 0, 3, 3, 1, 50, 200, 1, 0, 5.0])
EDGE_TX = np.array([0, 0, 0, 10, 0.5, 39, 39, 39.5, 1e-9, 0, 20])
EDGE_T = np.array([0, 1e-9, 40, 10, 40, 39, 39, 40, 1e-9, 1000, 1000])


@pytest.mark.parametrize("cls,peer,params", [
    (clv.BetaGeo, "BetaGeoFitter", BG_PAPER), (clv.ModifiedBetaGeo, "ModifiedBetaGeoFitter",
                                               MBG_BTYDPLUS),
    (clv.ParetoNBD, "ParetoNBDFitter", PARETO_PAPER)])
def test_edge_histories_equal_lifetimes(cls, peer, params):
    # frequency 0 with T = 0 (first seen at the cut), T == recency, a repeat purchase at t = 0,
    # 200 purchases, T far beyond the last purchase: P(alive) and E[purchases in 10] as the peer's
    lt = _lifetimes()
    m = _with(cls, params)
    ref = getattr(lt, peer)()
    ref.params_ = pd.Series(params)
    np.testing.assert_allclose(m.probability_alive(EDGE_X, EDGE_TX, EDGE_T),
                               ref.conditional_probability_alive(EDGE_X, EDGE_TX, EDGE_T),
                               rtol=1e-8, atol=1e-300)
    np.testing.assert_allclose(
        m.expected_purchases(10, EDGE_X, EDGE_TX, EDGE_T),
        ref.conditional_expected_number_of_purchases_up_to_time(10, EDGE_X, EDGE_TX, EDGE_T),
        rtol=1e-8, atol=1e-300)
    # float32 and integer inputs give the float64 answer of the same values
    x32, tx32, T32 = (a.astype(np.float32) for a in (EDGE_X, EDGE_TX, EDGE_T))
    np.testing.assert_array_equal(m.probability_alive(x32, tx32, T32),
                                  m.probability_alive(*(a.astype(np.float64)
                                                        for a in (x32, tx32, T32))))


def test_summary_edge_cases_equal_lifetimes():
    # duplicate rows, unsorted rows, a one-row customer, huge int64 ids, float32 amounts and a
    # customer whose only row is after as_of: the peer's summary of the same log
    lt = _lifetimes()
    big = np.iinfo(np.int64)
    ids = np.array([big.max, big.min, 7, big.max, 7, 7, big.min, 3, 7, 11], dtype=np.int64)
    days = np.array([5, 1, 2, 5, 9, 2, 30, 4, 20, 60])       # row 0 == row 3, row 2 == row 5
    amounts = np.array([1.5, 2.0, 3.25, 1.5, 4.0, 3.25, 8.0, 1.0, 2.5, 9.0], dtype=np.float32)
    dates = np.datetime64("2015-01-01") + days.astype("timedelta64[D]")
    df = pd.DataFrame({"id": ids, "date": pd.to_datetime(dates), "v": amounts.astype(np.float64)})
    ref = lt.utils.summary_data_from_transaction_data(df, "id", "date", monetary_value_col="v",
                                                      observation_period_end="2015-02-15")
    tx = pa.table({"id": ids, "date": pa.array(dates.astype("datetime64[us]")),
                   "v": pa.array(amounts, pa.float32())})
    s = clv.summary(tx, customer="id", time="date", amount="v", as_of="2015-02-15")
    assert s.schema.metadata[b"rows_after_as_of"] == b"1"
    ours = s.to_pandas().set_index("id")
    assert sorted(ours.index) == sorted(ref.index) and 11 not in ours.index
    ours = ours.loc[ref.index]
    for c in ("frequency", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(ours[c].to_numpy(), ref[c].to_numpy(), rtol=1e-12, err_msg=c)


def test_summary_refuses_nulls_and_empty_input():
    # nulls in the id, time or amount column are named, never dropped; an empty log is refused
    ts = pa.array([1420070400000000, 1420156800000000], pa.timestamp("us"))
    with pytest.raises(InputError, match="customer column 'id' has 1 null"):
        clv.summary(pa.table({"id": pa.array([1, None]), "d": ts}), customer="id", time="d")
    with pytest.raises(InputError, match="time column 'd' has 1 null"):
        clv.summary(pa.table({"id": [1, 2], "d": pa.array([1420070400000000, None],
                                                          pa.timestamp("us"))}),
                    customer="id", time="d")
    with pytest.raises(InputError, match="amount column 'v' has 1 null"):
        clv.summary(pa.table({"id": [1, 1], "d": ts, "v": pa.array([1.0, None])}),
                    customer="id", time="d", amount="v")
    with pytest.raises(InputError, match="empty"):
        clv.summary(pa.table({"id": pa.array([], pa.int64()),
                              "d": pa.array([], pa.timestamp("us"))}), customer="id", time="d")


def test_one_customer_and_all_zero_histories():
    # the smallest inputs the peer accepts: one customer fits (degenerate but finite) and predicts;
    # all customers without a repeat purchase give P(alive) = 1 under BG/NBD (x = 0) and finite
    # expectations
    one = clv.BetaGeo().fit(np.array([2.0]), np.array([5.0]), np.array([10.0]))
    assert all(np.isfinite(v) and v > 0 for v in one.params_.values())
    assert 0 <= one.probability_alive(2, 5, 10) <= 1
    zeros = clv.BetaGeo().fit(np.zeros(50), np.zeros(50), np.linspace(1, 40, 50))
    assert np.all(zeros.probability_alive(np.zeros(3), np.zeros(3), np.array([0, 5, 40.0])) == 1)
    assert np.all(np.isfinite(zeros.expected_purchases(10, 0, 0, np.array([0, 5, 40.0]))))


# == test_utils.py: expected_cumulative_transactions ===========================================
@pytest.fixture(scope="module")
def cdnow_log():
    return load_cdnow_sample()


def _tracking(cdnow_log, cls, periods, step):
    from fastengage.clv.validation import cumulative_transactions
    s = clv.summary(cdnow_log, customer="customer_id", time="date", as_of="1997-09-30", freq="D",
                    freq_multiplier=step)
    model = cls().fit(s)
    return model, cumulative_transactions(model, cdnow_log, customer="customer_id", time="date",
                                          periods=periods, freq="D", freq_multiplier=step)


def test_expected_cumulative_transactions_equals_r_btyd_walkthrough(cdnow_log):
    # test_utils.py::test_expected_cumulative_transactions_equals_r_btyd_walktrough and
    # ::test_incremental_transactions_equals_r_btyd_walktrough (Pareto/NBD in weeks on days,
    # cum.tracking[, 20:25] and inc.tracking[, 20:25] of the BTYD walkthrough)
    model, out = _tracking(cdnow_log, clv.ParetoNBD, 25 * 7, 7)
    actual = out.column("actual").to_numpy()
    predicted = out.column("predicted").to_numpy()
    np.testing.assert_allclose(actual[19:25], [1359, 1414, 1484, 1517, 1573, 1672])
    np.testing.assert_allclose(predicted[19:25].round(), [1309, 1385, 1460, 1533, 1604, 1674])
    inc_actual = np.diff(actual)[18:24]
    inc_predicted = np.diff(predicted)[18:24].round(2)
    np.testing.assert_allclose(inc_actual, [73.00, 55.00, 70.00, 33.00, 56.00, 99.00])
    np.testing.assert_allclose(inc_predicted, [78.31, 76.42, 74.65, 72.98, 71.41, 69.93], atol=1e-2)
    assert out.column("period").to_pylist() == list(range(25))


def test_expected_cumulative_transactions_date_index(cdnow_log):
    # test_utils.py::test_expected_cumulative_transactions_date_index (BG/NBD in days, 14 days)
    model, out = _tracking(cdnow_log, clv.BetaGeo, 14, 1)
    dates = [str(d.date()) for d in out.column("date").to_pylist()[-4:]]
    assert dates == ["1997-01-11", "1997-01-12", "1997-01-13", "1997-01-14"]
    np.testing.assert_allclose(out.column("actual").to_numpy()[-4:], [11, 12, 15, 19])
    np.testing.assert_allclose(out.column("predicted").to_numpy()[-4:].round(2),
                               [10.67, 12.67, 14.87, 17.24], atol=1e-2)


def test_expected_cumulative_transactions_dedups_inside_a_time_period(example_bg):
    # test_utils.py::test_expected_cumulative_transactions_dedups_inside_a_time_period
    from fastengage.clv.validation import cumulative_transactions
    bg, _ = example_bg
    df, tx = _example_transactions()
    by = {f: cumulative_transactions(bg, tx, customer="id", time="date", periods=10, freq=f)
          for f in ("W", "D")}
    assert np.all(by["W"].column("actual").to_numpy() >= by["D"].column("actual").to_numpy())


@pytest.mark.parametrize("freq,periods,step", [("D", 60, 7), ("W", 12, 1), ("D", 30, 1)])
def test_expected_cumulative_transactions_equal_lifetimes(cdnow_log, freq, periods, step):
    # the peer's expected_cumulative_transactions with our parameters, set_index_date=True
    lt = _lifetimes()
    from fastengage.clv.validation import cumulative_transactions
    weekly = BG_PAPER if step == 7 else dict(BG_PAPER, alpha=BG_PAPER["alpha"] * 7)
    model = _with(clv.BetaGeo, weekly)
    ref = lt.BetaGeoFitter()
    ref.params_ = pd.Series(model.params_)
    df = pd.DataFrame({"id": cdnow_log.column("customer_id").to_numpy(),
                       "date": pd.to_datetime(cdnow_log.column("date").to_numpy())})
    want = lt.utils.expected_cumulative_transactions(ref, df, "date", "id", periods, freq=freq,
                                                     set_index_date=True, freq_multiplier=step)
    got = cumulative_transactions(model, cdnow_log, customer="customer_id", time="date",
                                  periods=periods, freq=freq, freq_multiplier=step)
    np.testing.assert_array_equal(got.column("actual").to_numpy(), want["actual"].to_numpy())
    np.testing.assert_allclose(got.column("predicted").to_numpy(), want["predicted"].to_numpy(),
                               rtol=1e-10)
    assert [d.date() for d in got.column("date").to_pylist()] == \
        [p.start_time.date() for p in want.index]


def test_cumulative_transactions_refuses_bad_arguments(cdnow_log, bg):
    from fastengage.clv.validation import cumulative_transactions
    for kwargs, match in ((dict(periods=0), "periods must be a positive integer"),
                          (dict(periods=10, freq_multiplier=1.5), "freq_multiplier"),
                          (dict(periods=10, freq="Q"), "freq='Q'")):
        with pytest.raises(InputError, match=match):
            cumulative_transactions(bg, cdnow_log, customer="customer_id", time="date", **kwargs)
    with pytest.raises(InputError, match="empty"):
        cumulative_transactions(bg, cdnow_log.slice(0, 0), customer="customer_id", time="date",
                                periods=5)
