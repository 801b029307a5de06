"""Regression tests of the CLV findings of issue #9: unit-free penalties, empty calibration
periods, YYYYMMDD times, and bit-identical fits for any thread count, launch path and load."""
import threading

import numpy as np
import pyarrow as pa
import pytest

from fastengage import clv
from fastengage.clv.datasets import load_cdnow_sample, load_cdnow_summary
from fastengage.errors import InputError
from fastengage.kernels.clv import betageo as kb
from fastengage.kernels.clv import pareto as kp
from fastengage.kernels.clv import sbg as ksbg
from fastengage.kernels.clv import spend as ks
from fastengage.kernels.common.config import CLV_REDUCE_CHUNK


@pytest.fixture(scope="module")
def cdnow():
    s = load_cdnow_summary()
    return tuple(s[c].to_numpy().astype(float) for c in ("x", "t_x", "T"))


@pytest.mark.parametrize("cls", [clv.BetaGeo, clv.ModifiedBetaGeo, clv.ParetoNBD])
def test_penalised_fit_does_not_depend_on_the_time_unit(cdnow, cls):
    # issue #9 (3): BG/NBD penalizer=0.01 predicted 2290.5 purchases over 52 weeks fitted in
    # weeks and 2148.6 fitted in days
    x, tx, T = cdnow
    weeks = cls(penalizer=0.01).fit(x, tx, T)
    days = cls(penalizer=0.01).fit(x, tx * 7, T * 7)
    in_weeks = weeks.expected_purchases(52, x, tx, T).sum()
    in_days = days.expected_purchases(364, x, tx * 7, T * 7).sum()
    assert in_days == pytest.approx(in_weeks, rel=1e-6)
    for k in cls.spec.time_params:
        assert days.params_[k] == pytest.approx(7 * weeks.params_[k], rel=1e-6)
    # and the penalty does something: the unpenalised fit differs
    free = cls().fit(x, tx, T).expected_purchases(52, x, tx, T).sum()
    assert abs(free - in_weeks) > 1.0


def test_penalised_betageo_equals_lifetimes(cdnow):
    """lifetimes rescales time by 1/max(T) and penalises the rescaled parameters: same fit."""
    lifetimes = pytest.importorskip("lifetimes")
    import pandas as pd
    x, tx, T = cdnow
    ours = clv.BetaGeo(penalizer=0.01).fit(x, tx * 7, T * 7)
    ref = lifetimes.BetaGeoFitter(penalizer_coef=0.01).fit(pd.Series(x), pd.Series(tx * 7),
                                                           pd.Series(T * 7))
    for k in ("r", "alpha", "a", "b"):
        assert ours.params_[k] == pytest.approx(float(ref.params_[k]), rel=2e-4), k


def test_calibration_end_before_every_transaction_is_an_error():
    tx = load_cdnow_sample()
    with pytest.raises(InputError, match="no transaction at or before calibration_end"):
        clv.summary(tx, customer="customer_id", time="date", calibration_end="1990-01-01")
    # a shuffled log takes the other fold: same error
    shuffled = tx.take(np.random.default_rng(0).permutation(tx.num_rows))
    with pytest.raises(InputError, match="calibration period is empty"):
        clv.summary(shuffled, customer="customer_id", time="date", calibration_end="19900101")


def test_compact_date_strings_are_dates():
    # issue #9 (1): "20150207" was read as the year 20,150,207 (T = 99,840,585)
    t = pa.table({"id": [1, 1, 2], "date": pa.array(np.array(
        ["2015-01-02", "2015-01-20", "2015-02-01"], dtype="datetime64[D]"))})
    iso = clv.summary(t, customer="id", time="date", as_of="2015-02-07")
    compact = clv.summary(t, customer="id", time="date", as_of="20150207")
    assert compact.equals(iso)
    assert compact.column("T").to_pylist() == [36.0, 6.0]
    hold = clv.summary(t, customer="id", time="date", as_of="20150207", calibration_end="20150125")
    assert hold.equals(clv.summary(t, customer="id", time="date", as_of="2015-02-07",
                                   calibration_end="2015-01-25"))
    with pytest.raises(InputError, match="ambiguous"):
        clv.summary(t, customer="id", time="date", as_of="2015020")


# -- determinism -------------------------------------------------------------------------------
def _chunked_kernel_calls(n):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 30, n).astype(float)
    T = rng.integers(1, 400, n).astype(float)
    tx = np.floor(T * rng.random(n)) * (x > 0)
    w = rng.random(n) + 0.5
    ux, ix = np.unique(x, return_inverse=True)
    uy, iy = np.unique(np.concatenate([tx, T]), return_inverse=True)
    bg = (kb.loglik_derivs_tab, (np.array([0.3, 20.0, 0.8, 2.5]), ux, uy, ix.astype(np.int64),
                                 iy[n:].astype(np.int64).copy(), iy[:n].astype(np.int64).copy(),
                                 w, 0, True))
    pairs = np.unique(np.stack([np.concatenate([x, x]), np.concatenate([tx, T])], 1), axis=0,
                      return_inverse=True)
    (q, pair) = pairs[0], pairs[1].reshape(-1)
    pareto = (kp.loglik_grad_tab, (np.array([0.5, 20.0, 0.7, 30.0]), q[:, 0].copy(), q[:, 1].copy(),
                                   np.searchsorted(ux, q[:, 0]).astype(np.int64), ux,
                                   ix.astype(np.int64), pair[:n].astype(np.int64).copy(),
                                   pair[n:].astype(np.int64).copy(), T, w))
    m = rng.uniform(1, 100, n)
    keep = x > 0
    spend = (ks.loglik_derivs, (np.array([6.0, 3.5, 15.0]), np.arange(1.0, 30.0), np.ones(29),
                                np.ones(29), x[keep], m[keep], w[keep], True))
    spend_rows = (ks.loglik_grad, (np.array([6.0, 3.5, 15.0]), x[keep], m[keep], w[keep]))
    sbg = (ksbg.loglik_grad, (np.array([0.7, 1.2]), T, x > 5, w))
    return [bg, pareto, spend, spend_rows, sbg]


def test_reduction_kernels_are_bit_identical_for_any_thread_count_and_launch_path():
    n = 20 * CLV_REDUCE_CHUNK + 17
    for kernel, args in _chunked_kernel_calls(n):
        ref = kernel.serial(*args)
        for got in (kernel.parallel(*args, n_threads=1), kernel.parallel(*args, n_threads=2),
                    kernel(*args, n_threads=2), kernel(*args)):
            for a, b in zip(ref, got):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=kernel.__name__)


def _simulate_bgnbd(n, seed=0):
    rng = np.random.default_rng(seed)
    T = rng.integers(1, 366, n).astype(float)
    lam = rng.gamma(0.25, 1.0 / 30.0, n)
    p = rng.beta(0.8, 2.4, n)
    x = np.minimum(rng.poisson(lam * T), rng.geometric(p)).astype(float)
    tx = np.floor(np.where(x > 0, rng.beta(np.maximum(x, 1), 1.0), 0.0) * T)
    x = np.where(tx > 0, x, 0.0)
    return x, np.where(x > 0, tx, 0.0), T


def test_betageo_fit_is_bit_identical_under_load_and_any_thread_count():
    """issue #9 (6): 300k customers (over CLV_PARALLEL_MIN_ROWS patterns once recency is not
    whole), n_threads=1 (serial path) vs 2 (parallel path), with a CPU-burning thread running."""
    x, tx, T = _simulate_bgnbd(300_000)
    tx = tx + np.where(x > 0, np.random.default_rng(1).random(x.size) * 0.5, 0.0)
    stop = threading.Event()

    def burn():
        v = 0
        while not stop.is_set():
            v = (v * 31 + 7) % 1_000_003

    burner = threading.Thread(target=burn, daemon=True)
    burner.start()
    try:
        fits = [clv.BetaGeo().fit(x, tx, T, n_threads=n) for n in (1, 2, None)]
    finally:
        stop.set()
        burner.join()
    a = fits[0]
    assert a.fit_info_["method"] == "newton"
    for b in fits[1:]:
        assert b.params_ == a.params_
        assert b.log_likelihood_ == a.log_likelihood_
        np.testing.assert_array_equal(b.covariance_, a.covariance_)


# -- vocabulary ----------------------------------------------------------------------------------
def test_old_spellings_work_with_a_deprecation_warning(cdnow):
    x, tx, T = cdnow
    bg = clv.BetaGeo().fit(x, tx, T)
    gg = clv.GammaGamma()
    gg.params_ = dict(p=6.25, q=3.74, gamma=15.44)
    m = np.full(x.size, 20.0)
    new = gg.customer_lifetime_value(bg, x, tx, T, m, months=6, freq="W")
    with pytest.warns(DeprecationWarning, match="months="):
        old = gg.customer_lifetime_value(bg, x, tx, T, m, time=6, freq="W")
    np.testing.assert_array_equal(old, new)
    with pytest.warns(DeprecationWarning, match="months="):
        old = clv.customer_lifetime_value(bg, x, tx, T, m, time=6, freq="W")
    np.testing.assert_array_equal(old, clv.customer_lifetime_value(bg, x, tx, T, m, months=6,
                                                                   freq="W"))
    with pytest.raises(InputError, match="months= only"), pytest.warns(DeprecationWarning):
        clv.customer_lifetime_value(bg, x, tx, T, m, time=6, months=6)
    for old_name, new_name, args in [
            ("conditional_expected_number_of_purchases_up_to_time", "expected_purchases",
             (10, x, tx, T)),
            ("conditional_probability_alive", "probability_alive", (x, tx, T))]:
        with pytest.warns(DeprecationWarning, match=new_name):
            got = getattr(bg, old_name)(*args)
        np.testing.assert_array_equal(got, getattr(bg, new_name)(*args))
    with pytest.warns(DeprecationWarning, match="expected_spend"):
        got = gg.conditional_expected_average_profit(x, m)
    np.testing.assert_array_equal(got, gg.expected_spend(x, m))


def test_n_threads_on_every_clv_entry_point_that_runs_kernels(cdnow):
    import inspect
    from fastengage.clv import validation
    entry_points = [clv.summary, clv.customer_lifetime_value, validation.holdout_table,
                    validation.holdout_errors, validation.period_transactions,
                    clv.GammaGamma.customer_lifetime_value]
    for cls in (clv.BetaGeo, clv.ModifiedBetaGeo, clv.ParetoNBD, clv.BetaGeoBetaBinom,
                clv.GammaGamma, clv.ShiftedBetaGeo):
        for name in ("fit", "probability_alive", "expected_purchases", "individual_log_likelihood",
                     "probability_of_n_purchases", "population_expected_purchases", "predict",
                     "survival", "derl"):
            if hasattr(cls, name):
                entry_points.append(getattr(cls, name))
    for fn in entry_points:
        assert "n_threads" in inspect.signature(fn).parameters, fn.__qualname__
