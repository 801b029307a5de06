"""Discounted CLV against lifetimes, and property tests of every prediction (finite, in range,
monotone) over random parameters and histories, including x and T up to 100,000 and b >> a."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastengage import clv
from fastengage.clv.datasets import load_cdnow_summary


@pytest.fixture(scope="module")
def cdnow():
    s = load_cdnow_summary()
    return tuple(s[c].to_numpy().astype(float) for c in ("x", "t_x", "T", "zbar"))


@pytest.mark.parametrize("model_cls,ref_name", [(clv.BetaGeo, "BetaGeoFitter"),
                                                (clv.ParetoNBD, "ParetoNBDFitter"),
                                                (clv.ModifiedBetaGeo, "ModifiedBetaGeoFitter")])
@pytest.mark.parametrize("freq,time,rate", [("W", 12, 0.01), ("W", 3, 0.0), ("D", 6, 0.05)])
def test_clv_equals_lifetimes(cdnow, model_cls, ref_name, freq, time, rate):
    import lifetimes
    x, tx, T, z = cdnow
    if freq == "D":  # same customers with times in days
        tx, T = tx * 7, T * 7
    model = model_cls().fit(x, tx, T)
    gg = clv.GammaGamma().fit(x, z)
    ref_model = getattr(lifetimes, ref_name)()
    ref_model.params_ = pd.Series(model.params_)
    ref_model.predict = ref_model.conditional_expected_number_of_purchases_up_to_time  # set by fit()
    ref_gg = lifetimes.GammaGammaFitter()
    ref_gg.params_ = pd.Series({"p": gg.params_["p"], "q": gg.params_["q"], "v": gg.params_["gamma"]})
    S = pd.Series
    ref = ref_gg.customer_lifetime_value(ref_model, S(x), S(tx), S(T), S(z), time=time,
                                         discount_rate=rate, freq=freq).to_numpy()
    ours = gg.customer_lifetime_value(model, x, tx, T, z, months=time, discount_rate=rate, freq=freq)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    assert np.all(ours > 0)


def _model(cls, params):
    m = cls()
    m.params_ = dict(zip(cls.param_names, params))
    return m


pos = st.floats(min_value=1e-2, max_value=50.0)
histories = st.lists(
    st.tuples(st.integers(0, 100_000), st.floats(0.0, 1.0), st.floats(0.0, 100_000.0)),
    min_size=1, max_size=8)


def _arrays(hist):
    x = np.array([h[0] for h in hist], float)
    T = np.array([h[2] for h in hist], float)
    tx = np.where(x > 0, np.array([h[1] for h in hist]) * T, 0.0)
    return x, tx, T


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(r=pos, alpha=pos, a=pos, b=st.floats(1e-2, 1e6), hist=histories,
       modified=st.booleans())
def test_betageo_properties(r, alpha, a, b, hist, modified):
    m = _model(clv.ModifiedBetaGeo if modified else clv.BetaGeo, (r, alpha, a, b))
    x, tx, T = _arrays(hist)
    p = m.probability_alive(x, tx, T)
    assert np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))
    pf = m.probability_alive(x, tx, T, future_t=10.0)
    assert np.all(np.isfinite(pf)) and np.all(pf <= p * (1 + 1e-12) + 1e-300)
    e = np.stack([m.expected_purchases(t, x, tx, T) for t in (0.5, 5.0, 50.0, 500.0)])
    assert np.all(np.isfinite(e)) and np.all(e >= 0)
    assert np.all(np.diff(e, axis=0) >= -1e-9 * (1 + np.abs(e[1:])))
    ll = m.individual_log_likelihood(x, tx, T)
    assert np.all(np.isfinite(ll))  # a density in (t_x, T): may exceed 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(r=pos, alpha=pos, s=pos, beta=st.floats(1e-2, 1e6), hist=histories)
def test_pareto_properties(r, alpha, s, beta, hist):
    m = _model(clv.ParetoNBD, (r, alpha, s, beta))
    x, tx, T = _arrays(hist)
    p = m.probability_alive(x, tx, T)
    assert np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))
    e = np.stack([m.expected_purchases(t, x, tx, T) for t in (0.5, 5.0, 50.0, 500.0)])
    assert np.all(np.isfinite(e)) and np.all(e >= 0)
    assert np.all(np.diff(e, axis=0) >= -1e-9 * (1 + np.abs(e[1:])))
    ll = m.individual_log_likelihood(x, tx, T)
    assert np.all(np.isfinite(ll))


@settings(max_examples=40, deadline=None)
@given(params=st.tuples(pos, pos, pos, pos), x=st.integers(0, 200), extra=st.integers(0, 200),
       gap=st.integers(0, 200))
def test_bgbb_properties(params, x, extra, gap):
    m = _model(clv.BetaGeoBetaBinom, params)
    tx = x + extra
    n = tx + gap
    p = m.probability_alive(x, tx, n)
    assert np.isfinite(p) and 0 <= p <= 1
    e = m.expected_purchases(np.array([1, 5, 50]), x, tx, n)
    assert np.all(np.isfinite(e)) and np.all(e >= 0) and np.all(np.diff(e) >= -1e-12)


@settings(max_examples=40, deadline=None)
@given(a=pos, b=pos, t=st.integers(0, 100_000))
def test_sbg_properties(a, b, t):
    m = _model(clv.ShiftedBetaGeo, (a, b))
    s = m.survival(np.array([t, t + 1], float))
    assert np.all(np.isfinite(s)) and 0 <= s[1] <= s[0] <= 1
    r = m.retention(t + 1)
    assert 0 <= r <= 1


def test_zero_repeat_customers_and_big_b():
    m = _model(clv.BetaGeo, (0.24, 4.4, 0.79, 1e8))   # b >> a (lifetimes #141)
    x = np.zeros(3)
    p = m.probability_alive(x, x, np.array([0.0, 10.0, 1e5]))
    np.testing.assert_array_equal(p, 1.0)
    e = m.expected_purchases(52, x, x, np.array([0.0, 10.0, 1e5]))
    assert np.all(np.isfinite(e)) and np.all(e > 0)
