"""The CLV kernels compiled ahead of time (#11: kernels/clv/native.pyx, summary_native.pyx),
each against a plain NumPy reference (tests/naive_clv.py), thread counts giving identical bits,
and the cold-start promise itself: summaries, a BetaGeo fit and predictions compile no Numba
kernel in a fresh process."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naive_clv as nv
from fastengage.kernels.clv import betageo as kb
from fastengage.kernels.clv import native, summary_native
from fastengage.kernels.clv import spend as kspend
from fastengage.kernels.clv import summary as ks
from fastengage.kernels.common.config import CLV_REDUCE_CHUNK

DAY = 86_400_000_000


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300), st.integers(1, 40), st.sampled_from([(DAY, 0), (7 * DAY, 4 * DAY), (1, 0)]),
       st.integers(0, 2**31), st.booleans(), st.floats(0.0, 1.2))
def test_summarize_sorted_us_equals_reference(n, n_customers, period, seed, has_amount, cut):
    length, offset = period
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, n_customers, n).astype(np.int64)
    span = 40 * length
    us = np.sort(rng.integers(-span, span, n)).astype(np.int64)   # times before 1970 too
    amounts = np.round(rng.uniform(-5, 100, n), 2)
    end_period = int(np.floor_divide(np.quantile(us, min(cut, 1.0)).astype(np.int64) - offset, length))
    if cut > 1.0:
        end_period += 3
    ordered, first, last, n_per, monetary, after = summary_native.summarize_sorted_us(
        codes, us, length, offset, end_period, amounts if has_amount else np.zeros(1),
        n_customers, has_amount)
    assert ordered
    ref = nv.summary_stats(codes, us, length, offset, end_period,
                           amounts if has_amount else np.zeros(n), n_customers)
    for got, want in zip((first, last, n_per), ref[:3]):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(monetary, ref[3], rtol=1e-12, atol=1e-9)
    assert after == ref[4]


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 600), st.integers(1, 50), st.integers(0, 2**31), st.booleans())
def test_customer_periods_equals_reference(n, n_customers, seed, has_amount):
    """Rows in any order (grouped by customer, periods sorted stably; runs of more than 32 rows
    take the merge sort)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, n_customers, n).astype(np.int64)
    periods = rng.integers(-20, 60, n).astype(np.int64)
    amounts = np.round(rng.uniform(-5, 100, n), 2)
    first, last, n_per, monetary, mean_amount = ks.customer_periods(
        codes, periods, amounts if has_amount else np.zeros(1), n_customers, has_amount)
    ref = nv.summary_stats(codes, periods, 1, 0, 10**9, amounts if has_amount else np.zeros(n),
                           n_customers)
    for got, want in zip((first, last, n_per), ref[:3]):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(monetary, ref[3], rtol=1e-12, atol=1e-9)
    rows = np.bincount(codes, minlength=n_customers)
    sums = np.bincount(codes, weights=amounts if has_amount else np.zeros(n), minlength=n_customers)
    np.testing.assert_allclose(mean_amount, np.where(rows > 0, sums / np.maximum(rows, 1), 0.0),
                               rtol=1e-12, atol=1e-9)


def test_customer_periods_and_holdout_are_bit_identical_for_any_thread_count():
    rng = np.random.default_rng(8)
    n, n_customers = 60_000, 5 * CLV_REDUCE_CHUNK + 3
    codes = rng.integers(0, n_customers, n).astype(np.int64)
    codes[:500] = 7   # one long customer (merge sort)
    periods = rng.integers(0, 400, n).astype(np.int64)
    amounts = rng.uniform(0, 100, n)
    ref = ks.customer_periods(codes, periods, amounts, n_customers, True, n_threads=1)
    for n_threads in (2, 3):
        for a, b in zip(ref, ks.customer_periods(codes, periods, amounts, n_customers, True,
                                                 n_threads=n_threads)):
            np.testing.assert_array_equal(a, b)
    order = np.argsort(periods, kind="stable")
    counts, mean = ks.holdout_counts_sorted(codes[order], periods[order], amounts[order],
                                            n_customers)
    np.testing.assert_array_equal(counts, ref[2])
    np.testing.assert_allclose(mean, ref[4], rtol=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 3000), st.integers(1, 4), st.integers(1, 40), st.integers(0, 2**31))
def test_unique_patterns_equals_numpy(n, k, distinct, seed):
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, distinct, (n, k)).astype(np.float64) * 0.5
    if n:
        cols[rng.integers(0, n)] = -0.0   # bit patterns: -0.0 is its own pattern
    first, inverse, counts = ks.unique_patterns(cols)
    bits = cols.view(np.uint64)
    _, ref_first, ref_inverse, ref_counts = np.unique(bits, axis=0, return_index=True,
                                                      return_inverse=True, return_counts=True)
    order = np.argsort(ref_first)          # numpy sorts by value; ours is first-seen order
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    np.testing.assert_array_equal(first, ref_first[order])
    np.testing.assert_array_equal(counts, ref_counts[order])
    np.testing.assert_array_equal(inverse, rank[ref_inverse.reshape(-1)])


@pytest.mark.parametrize("swap_at", [1, 5, 19])
def test_summarize_sorted_us_reports_rows_out_of_time_order(swap_at):
    us = np.arange(20, dtype=np.int64) * DAY
    us[[swap_at - 1, swap_at]] = us[[swap_at, swap_at - 1]]
    codes = np.zeros(20, np.int64)
    # out of order before the as-of cut, and after it (a later row may be inside the window)
    for end in (10**6, 3):
        assert not summary_native.summarize_sorted_us(codes, us, DAY, 0, end, np.zeros(1), 1, False)[0]


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 400), st.integers(0, 2**31), st.booleans(), st.integers(1, 60))
def test_whole_patterns_equals_reference(n, seed, weighted, max_t):
    rng = np.random.default_rng(seed)
    T = rng.integers(0, max_t, n).astype(float)
    tx = np.floor(rng.random(n) * (T + 1))
    x = rng.integers(0, 6, n).astype(float)
    w = rng.random(n) if weighted else None
    ok, px, ptx, pT, pw = summary_native.whole_patterns(x, tx, T, np.empty(0) if w is None else w, 1024)
    assert ok
    rx, rtx, rT, rw = nv.rft_patterns(x, tx, T, w)
    np.testing.assert_array_equal(px, rx)
    np.testing.assert_array_equal(ptx, rtx)
    np.testing.assert_array_equal(pT, rT)
    np.testing.assert_allclose(pw, rw, rtol=1e-12)


@pytest.mark.parametrize("bad", ["fraction", "negative", "tx_over_T", "T_too_large", "nan"])
def test_whole_patterns_declines_what_it_cannot_tabulate(bad):
    x, tx, T = np.array([1.0, 2.0]), np.array([1.0, 2.0]), np.array([3.0, 4.0])
    {"fraction": lambda: tx.__setitem__(0, 0.5), "negative": lambda: x.__setitem__(1, -1.0),
     "tx_over_T": lambda: tx.__setitem__(1, 5.0), "T_too_large": lambda: T.__setitem__(0, 1024.0),
     "nan": lambda: T.__setitem__(0, np.nan)}[bad]()
    assert summary_native.whole_patterns(x, tx, T, np.empty(0), 1024)[0] is False


def test_rft_violations_counts_like_numpy():
    rng = np.random.default_rng(3)
    x, tx, T = (rng.normal(2, 3, 500) for _ in range(3))
    for a in (x, tx, T):
        a[rng.integers(0, 500, 7)] = np.nan
        a[rng.integers(0, 500, 3)] = np.inf
    with np.errstate(invalid="ignore"):
        want = (np.count_nonzero(~np.isfinite(x)), np.count_nonzero(~np.isfinite(tx)),
                np.count_nonzero(~np.isfinite(T)), np.count_nonzero(x < 0),
                np.count_nonzero(tx < 0), np.count_nonzero(tx > T * (1 + 1e-12) + 1e-12))
    assert summary_native.rft_violations(x, tx, T) == want


def _customers(n, seed=0):
    rng = np.random.default_rng(seed)
    T = rng.uniform(1, 60, n)
    x = rng.integers(0, 25, n).astype(float)
    tx = np.where(x > 0, rng.random(n) * T, 0.0)
    return x, tx, T


@pytest.mark.parametrize("modified", [0, 1])
@pytest.mark.parametrize("theta", [(0.25, 4.0, 0.8, 2.4), (1.5, 0.7, 3.0, 0.4), (0.05, 30.0, 0.02, 9.0)])
def test_bg_predictions_equal_closed_forms(modified, theta):
    x, tx, T = _customers(3000)
    theta = np.array(theta)
    alive = kb.probability_alive(theta, x, tx, T, np.zeros_like(x), modified)
    np.testing.assert_allclose(alive, nv.bgnbd_alive(theta, x, tx, T, bool(modified)),
                               rtol=1e-12, atol=1e-300)
    t = np.full_like(x, 10.0)
    want = nv.bgnbd_expected(theta, t, x, tx, T, bool(modified))
    ok = np.isfinite(want) & (abs(theta[2] - 1.0) > 0.05)   # scipy's 2F1 form is 0/0 at a = 1
    got = kb.expected_purchases(theta, t, x, tx, T, modified)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-9)
    assert np.all(kb.expected_purchases(theta, np.zeros_like(x), x, tx, T, modified) == 0.0)


def test_bg_future_alive_matches_monte_carlo():
    theta = (0.25, 4.0, 0.8, 2.4)
    for x, tx, T, t in ((3.0, 20.0, 30.0, 15.0), (0.0, 0.0, 10.0, 40.0)):
        got = kb.probability_alive(np.array(theta), *(np.array([v]) for v in (x, tx, T, t)), 0)[0]
        assert got == pytest.approx(nv.bgnbd_alive_future_mc(theta, x, tx, T, t), abs=3e-3)


def test_bg_predictions_are_bit_identical_for_any_thread_count():
    x, tx, T = _customers(7 * CLV_REDUCE_CHUNK + 5, seed=1)
    theta = np.array([0.4, 3.0, 0.7, 1.9])
    ft = np.linspace(0, 30, x.size)
    times, disc = np.arange(1.0, 13.0) * 4.345, 0.99 ** np.arange(1.0, 13.0)
    for kernel, args in ((kb.probability_alive, (theta, x, tx, T, ft, 0)),
                         (kb.expected_purchases, (theta, ft, x, tx, T, 1)),
                         (kb.discounted_if_alive, (theta, x, T, times, disc, 0))):
        ref = kernel.serial(*args)
        for n_threads in (1, 2, 3):
            np.testing.assert_array_equal(kernel.parallel(*args, n_threads=n_threads), ref)


@pytest.mark.parametrize("modified", [0, 1])
def test_bg_discounted_equals_expected_purchase_differences(modified):
    """CLV's per-(x, T) sum: P(alive) times it is the discounted sum of the increments of the
    conditional expected purchases over the horizons."""
    x, tx, T = _customers(500, seed=3)
    theta = np.array([0.4, 3.0, 0.7, 1.9])
    times, disc = np.array([0.0, 4.0, 8.5, 13.0]), np.array([1.0, 0.99, 0.98, 0.97])
    got = kb.discounted_if_alive(theta, x, T, times, disc, modified)
    alive = kb.probability_alive(theta, x, tx, T, np.zeros_like(x), modified)
    cum = [kb.expected_purchases(theta, np.full_like(x, t), x, tx, T, modified) for t in times]
    want = sum((cum[h] - (cum[h - 1] if h else 0.0)) * disc[h] for h in range(times.size))
    np.testing.assert_allclose(got * alive, want, rtol=1e-12, atol=1e-15)


def test_spend_kernels_equal_reference():
    """Gamma-Gamma: the compiled loglik/gradient against the plain per-row likelihood
    (tests/naive_clv.gg_ll) and its finite differences; 1 and 2 threads give the same bits."""
    rng = np.random.default_rng(6)
    n = 3 * CLV_REDUCE_CHUNK + 11
    x = rng.integers(1, 20, n).astype(float)
    m = rng.gamma(3.0, 10.0, n)
    w = rng.random(n) + 0.5
    theta = np.array([6.0, 3.5, 15.0])
    xs, ms, ws, bad_x, bad_m, nonpos, W, S, _, _ = kspend.repeat_buyers(x, m, w)
    assert (bad_x, bad_m, nonpos) == (0, 0, 0) and np.array_equal(xs, x)
    ux = np.flatnonzero(W > 0)
    args = (theta, ux.astype(float), W[ux], S[ux], xs, ms, ws)
    ll, grad, H = kspend.loglik_derivs.serial(*args, True)
    assert ll == pytest.approx(np.sum(w * nv.gg_ll(theta, x, m)), rel=1e-12)
    fd = nv.fd_grad(lambda th: np.sum(w * nv.gg_ll(th, x, m)), theta)
    np.testing.assert_allclose(grad, fd, rtol=1e-6)
    fdH = np.column_stack([nv.fd_grad(lambda th: kspend.loglik_derivs.serial(
        th, *args[1:], False)[1][j], theta) for j in range(3)])
    np.testing.assert_allclose(H, fdH, rtol=1e-5, atol=1e-6 * np.abs(fdH).max())
    for n_threads in (1, 2):
        for a, b in zip((ll, grad, H), kspend.loglik_derivs.parallel(*args, True,
                                                                       n_threads=n_threads)):
            np.testing.assert_array_equal(a, b)
    x[3], m[5], m[7] = np.nan, np.inf, -1.0
    assert kspend.repeat_buyers(x, m, w)[3:6] == (1, 1, 1)


def test_log_space_objective_equals_numpy():
    rng = np.random.default_rng(2)
    for k in (2, 3, 4):
        theta = np.exp(rng.normal(size=k))
        A = rng.normal(size=(k, k))
        H, g, pen, W, ll = A + A.T, rng.normal(size=k), rng.random(k), 321.0, -4567.8
        ok, f, g_u, H_u, gmax = native.log_space_objective(theta, ll, g, H, W, pen)
        want_g = (-g / W + 2 * pen * theta) * theta
        want_H = -H / W * np.outer(theta, theta) + np.diag(2 * pen * theta**2 + want_g)
        assert ok and f == pytest.approx(-ll / W + np.sum(pen * theta**2), rel=1e-14)
        np.testing.assert_allclose(g_u, want_g, rtol=1e-14)
        np.testing.assert_allclose(H_u, want_H, rtol=1e-13)
        assert gmax == np.max(np.abs(g_u))
        H[0, 1] = np.nan
        assert not native.log_space_objective(theta, ll, g, H, W, pen)[0]


def test_damped_newton_step_equals_numpy_solve():
    rng = np.random.default_rng(4)
    for k in (1, 2, 4):
        A = rng.normal(size=(k, k))
        H, g = A @ A.T + 0.1 * np.eye(k), rng.normal(size=k)
        for lam in (0.0, 0.5):
            ok, step = native.damped_newton_step(H, g, lam)
            assert ok
            np.testing.assert_allclose(step, -np.linalg.solve(H + lam * np.eye(k), g), rtol=1e-10)
        assert not native.damped_newton_step(-H, g, 0.0)[0]   # not positive definite


_COLD = r"""
import json
import numpy as np
import pyarrow as pa
from fastengage import clv
from fastengage.clv.datasets import load_cdnow_sample
from fastengage.tools.coldstart import CompileProfiler
rng = np.random.default_rng(0)
n = 30000
t = pa.table({"id": rng.integers(0, 6000, n),
              "time": pa.array(np.sort(rng.integers(0, 300, n)) * 86_400_000_000, pa.timestamp("us")),
              "amount": rng.uniform(1, 50, n)})
shuffled = t.take(rng.permutation(n))
with CompileProfiler() as prof:
    s = clv.summary(t, customer="id", time="time", amount="amount", freq="D")
    m = clv.BetaGeo().fit(s)
    m.predict(s, 30.0, customer="id")   # > CLV_PREDICT_COMPRESS_ABOVE customers: patterns
    m.probability_alive(s["frequency"], s["recency"], s["T"], 5.0)
    clv.summary(shuffled, customer="id", time="time", amount="amount", freq="W")
    clv.summary(shuffled, customer="id", time="time", calibration_end="1970-06-01")
    clv.summary(t, customer="id", time="time", amount="amount", calibration_end="1970-06-01")
    s = clv.summary(load_cdnow_sample(), customer="customer_id", time="date",
                    amount="dollar_value", as_of="1997-09-30", freq="D", freq_multiplier=7)
    x, tx, T, mv = (s[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
    bg = clv.BetaGeo().fit(x, tx, T)
    gg = clv.GammaGamma().fit(x, mv)
    gg.customer_lifetime_value(bg, x, tx, T, mv, months=12, discount_rate=0.01, freq="W")
print("@@" + json.dumps([r["kernel"] for r in prof.records]))
"""


def test_first_summary_fit_and_predict_compile_nothing():
    """The cold-start promise (#11): in a fresh process with an empty Numba cache, summaries
    (time-ordered or not, with a holdout split), a BetaGeo fit and its predictions, a
    Gamma-Gamma fit and 12-month CLV compile no Numba kernel."""
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run([sys.executable, "-c", _COLD], capture_output=True, text=True,
                             env=dict(os.environ, NUMBA_CACHE_DIR=cache), timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("@@"))
    assert json.loads(line[2:]) == []
