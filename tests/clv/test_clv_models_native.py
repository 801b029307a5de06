"""Pareto/NBD, BG/BB and sBG kernels compiled ahead of time (issue #11:
kernels/clv/models_native.pyx). Checked against the NumPy / scipy / mpmath references of
tests/naive_clv.py on random inputs, for thread-count invariance, and for the cold first call:
a fit and the predictions of each model compile no Numba kernel in a fresh process.

(Before the Numba kernels were deleted the compiled ones were compared with them on 160 random
parameter sets over the whole parameter box, including the z -> 1 region and gamma = 1: every
value was bit-identical.)"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from fastengage.kernels.clv import bgbb as kb
from fastengage.kernels.clv import pareto as kp
from fastengage.kernels.clv import sbg as ks
from fastengage.kernels.common.config import CLV_REDUCE_CHUNK

import naive_clv as nv

_pos = st.floats(0.05, 20.0)
_scale = st.floats(0.1, 2e4)


@settings(max_examples=40, deadline=None)
@given(r=_pos, alpha=_scale, s=_pos, beta=_scale, x=st.integers(0, 60), T=st.floats(1.0, 500.0),
       frac=st.floats(0.0, 1.0), t=st.one_of(st.just(0.0), st.floats(1e-3, 300.0)))
def test_pareto_row_kernels_match_mpmath_references(r, alpha, s, beta, x, T, frac, t):
    # (t > 0 from 1e-3: log(beta+T) - log(beta+T+t) cancels for t ~ 1e-12, giving E[Y(t)] = 0
    # where it is ~1e-12, as the Numba kernel did)
    theta = np.array([r, alpha, s, beta])
    tx = np.floor(T * frac) if x > 0 else 0.0
    X, TX, TT, tt = (np.array([v]) for v in (float(x), tx, T, t))
    _, _, ll = kp.loglik_grad(theta, X, TX, TT, np.ones(1))
    # mpmath's hypergeometric form: scipy's quadrature (nv.pareto_ll_quad) loses digits when
    # the likelihood is subnormal (found by hypothesis: r=12, alpha=1491, s=20, beta=16652, x=60)
    assert ll[0] == pytest.approx(nv.pareto_ll_mp(theta, x, tx, T)[0], rel=1e-11, abs=1e-11)
    alive = kp.probability_alive(theta, X, TX, TT, tt)[0]
    assert alive == pytest.approx(nv.pareto_alive_ref(theta, x, tx, T, t), rel=1e-8, abs=1e-12)
    exp_ = kp.expected_purchases(theta, tt, X, TX, TT)[0]
    assert exp_ == pytest.approx(nv.pareto_expected_ref(theta, t, x, tx, T), rel=1e-8, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(r=_pos, alpha=st.floats(0.1, 2e5), s=_pos, beta=st.floats(0.1, 2e6), x=st.integers(0, 200),
       y=st.floats(0.0, 500.0))
def test_pareto_log_F_matches_mpmath(r, alpha, s, beta, x, y):
    # beyond beta/alpha ~ 1e6 with an integer g the quadrature's error grows past 1e-8 (2e-8 at
    # alpha = 1/3, beta = 1.1e6, x = 49; the Numba kernel gave the same bits): a known limit
    assume(max(alpha / beta, beta / alpha) <= 1e5)
    got = kp._log_F(r, alpha, s, beta, float(x), y)
    ref = nv.pareto_log_F_mp(r, alpha, s, beta, x, y, dps=30)
    # 2e-8 absolute in log F = 2e-8 relative in F: the exp-sinh quadrature's accuracy where the
    # series is too slow and g = f - e is an integer with beta/alpha >= 1e5 (hypothesis: r = s
    # = 1, alpha = 0.1, x = 11, beta = 1.4e5 gives 1e-9; x = 9, beta = 9.6e5 gives 5e-9; the
    # Numba kernel it replaced gave the same bits). Its step (1/32 in t) resolves the bend of
    # the integrand at tau ~ beta only to ~1e-9 once that is 1e6 e-folding lengths out.
    assert got[0] == pytest.approx(ref, rel=1e-11, abs=2e-8)


@settings(max_examples=12, deadline=None)
@given(r=st.floats(0.1, 5.0), alpha=st.floats(0.5, 50.0), s=st.floats(0.1, 5.0),
       beta=st.floats(0.5, 50.0), t=st.floats(0.1, 100.0), k=st.integers(0, 12))
def test_pareto_pmf_matches_mpmath(r, alpha, s, beta, t, k):
    theta = np.array([r, alpha, s, beta])
    got = kp.probability_n_purchases(theta, np.array([t]), np.array([float(k)]))[0]
    ref = nv.pareto_pmf_mp(theta, t, k, dps=80)
    assert got == pytest.approx(ref, rel=1e-9, abs=1e-15)


def _pareto_rows(n, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 40, n).astype(float)
    T = rng.integers(1, 400, n).astype(float)
    tx = np.floor(T * rng.random(n)) * (x > 0)
    return x, tx, T, rng.random(n) + 0.5


def test_pareto_tabulated_total_equals_row_total_and_is_thread_invariant():
    from fastengage.clv.pareto import _payload
    n = 20 * CLV_REDUCE_CHUNK + 17
    x, tx, T, w = _pareto_rows(n)
    theta = np.array([0.5, 20.0, 0.7, 30.0])
    p = _payload(x, tx, T, w)
    args = (theta, p.qx, p.qy, p.jq, p.ux, p.ix, p.ia, p.ib, p.T, p.w)
    ref = kp.loglik_grad_tab.serial(*args)
    for got in (kp.loglik_grad_tab.parallel(*args, n_threads=2), kp.loglik_grad_tab(*args)):
        assert got[0] == ref[0]
        np.testing.assert_array_equal(got[1], ref[1])
    ll, grad, _ = kp.loglik_grad(theta, x, tx, T, w)
    assert ref[0] == pytest.approx(ll, rel=1e-12)
    np.testing.assert_allclose(ref[1], grad, rtol=1e-9)


def test_row_kernels_are_bit_identical_for_any_thread_count():
    n = 3 * CLV_REDUCE_CHUNK + 5
    x, tx, T, w = _pareto_rows(n)
    th = np.array([0.5, 20.0, 0.7, 30.0])
    t = np.linspace(0.0, 90.0, n)
    times, disc = np.arange(1.0, 13.0) * 30.0, 1.01 ** -np.arange(1.0, 13.0)
    nn = np.minimum(T, 30.0)
    xb = np.minimum(x, nn)
    txb = np.where(xb > 0, np.maximum(xb, np.minimum(tx, nn)), 0.0)
    calls = [(kp.loglik_grad, (th, x, tx, T, w)), (kp.probability_alive, (th, x, tx, T, t)),
             (kp.expected_purchases, (th, t, x, tx, T)), (kp.population_expected, (th, t)),
             (kp.discounted_if_alive, (th, x, T, times, disc)),
             (kp.probability_n_purchases, (th, t[:600], x[:600])),
             (kb.loglik_grad, (np.array([1.2, 0.75, 0.66, 2.78]), xb, txb, nn, w)),
             (kb.probability_alive, (np.array([1.2, 0.75, 0.66, 2.78]), xb, txb, nn, nn)),
             (kb.expected_purchases, (np.array([1.2, 0.75, 0.66, 2.78]), nn, xb, txb, nn)),
             (ks.loglik_grad, (np.array([0.7, 1.2]), T, x > 5, w)),
             (ks.survival, (np.array([0.7, 1.2]), T)),
             (ks.derl, (np.array([0.7, 1.2]), t + 0.01, x))]
    for kernel, args in calls:
        ref = kernel.serial(*args)
        got = kernel.parallel(*args, n_threads=2)
        for a, b in zip(ref if isinstance(ref, tuple) else (ref,),
                        got if isinstance(got, tuple) else (got,)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=kernel.__name__)


@settings(max_examples=40, deadline=None)
@example(theta=[1.0, 1.0, 0.99999, 1.0], n=20, fx=0.0, ftx=0.0, ns=3, gamma_one=False)  # CI, s10
@given(theta=st.lists(st.floats(0.05, 30.0), min_size=4, max_size=4), n=st.integers(0, 40),
       fx=st.floats(0.0, 1.0), ftx=st.floats(0.0, 1.0), ns=st.integers(0, 25),
       gamma_one=st.booleans())
def test_bgbb_kernels_match_scipy_references(theta, n, fx, ftx, ns, gamma_one):
    th = np.array(theta)
    if gamma_one:
        th[2] = 1.0   # the closed form of eq. 13 has a 0/0 there
    x = float(np.floor(fx * n))
    tx = float(max(x, np.floor(ftx * n))) if x > 0 else 0.0
    X, TX, N = np.array([x]), np.array([tx]), np.array([float(n)])
    _, grad, ll = kb.loglik_grad(th, X, TX, N, np.ones(1))
    assert ll[0] == pytest.approx(nv.bgbb_ll(th, x, tx, n), rel=1e-11, abs=1e-11)
    fd = nv.fd_grad(lambda t: kb.loglik_grad(t, X, TX, N, np.ones(1))[0], th)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)
    alive = kb.probability_alive(th, X, TX, N, np.array([float(ns)]))[0]
    assert alive == pytest.approx(nv.bgbb_alive_ref(th, x, tx, n, ns), rel=1e-10, abs=1e-14)
    got = kb.expected_purchases(th, np.array([float(ns)]), X, TX, N)[0]
    # eq. 13's (e^u - e^v) / (gamma - 1) cancels as gamma -> 1 (relative error ~1e-14 /
    # |gamma - 1| until the limit form takes over at 1e-7; hypothesis: 1.3e-9 at gamma = 0.99999)
    # (CI found 1.17e-8 at gamma = 0.99999, x = 0, n = 20, n* = 3: the bound is 1e-12 / |gamma - 1|)
    rel = 1e-9 + 1e-12 / max(abs(th[2] - 1.0), 1e-7)
    assert got == pytest.approx(nv.bgbb_expected_ref(th, ns, x, tx, n), rel=rel, abs=1e-13)


@settings(max_examples=40, deadline=None)
@given(a=st.floats(0.05, 30.0), b=st.floats(0.05, 30.0), t=st.integers(0, 200),
       censored=st.booleans(), d=st.floats(0.005, 2.0))
def test_sbg_kernels_match_scipy_references(a, b, t, censored, d):
    th = np.array([a, b])
    censored = censored or t == 0
    T, C = np.array([float(t)]), np.array([censored])
    _, grad, ll = ks.loglik_grad(th, T, C, np.ones(1))
    assert ll[0] == pytest.approx(nv.sbg_row_ll(th, t, censored), rel=1e-11, abs=1e-11)
    fd = nv.fd_grad(lambda p: ks.loglik_grad(p, T, C, np.ones(1))[0], th)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7)
    from scipy.special import betaln
    assert ks.survival(th, T)[0] == pytest.approx(np.exp(betaln(a, b + t) - betaln(a, b)),
                                                   rel=1e-11, abs=1e-300)
    assert ks.derl(th, np.array([d]), T)[0] == pytest.approx(nv.sbg_derl_ref(th, d, t), rel=1e-10)


_COLD = r"""
import json, sys
import numpy as np
from fastengage import clv
from fastengage.tools.coldstart import CompileProfiler
rng = np.random.default_rng(0)
with CompileProfiler() as prof:
    x = rng.integers(0, 10, 400).astype(float); T = rng.integers(30, 300, 400).astype(float)
    tx = np.floor(T * rng.random(400)) * (x > 0)
    m = clv.ParetoNBD().fit(x, tx, T)
    m.conditional_probability_alive(x, tx, T); m.conditional_expected_number_of_purchases_up_to_time(30, x, tx, T)
    m.probability_of_n_purchases(30.0, 2)
    rng = np.random.default_rng(0)
    n = 6; xb = rng.integers(0, n + 1, 500).astype(float)
    txb = np.where(xb > 0, np.maximum(xb, rng.integers(0, n + 1, 500)), 0).astype(float)
    b = clv.BetaGeoBetaBinom().fit(xb, txb, np.full(500, float(n)))
    b.probability_alive(xb, txb, n); b.expected_purchases(5, xb, txb, n)
    s = clv.ShiftedBetaGeo().fit(np.array([1000, 869, 743, 653, 593, 551, 517, 491]))
    s.survival(np.arange(5.0)); s.derl(0.1, 3)
print(json.dumps(sorted({r["kernel"] for r in prof.records})))
"""


def test_cold_fit_and_predictions_compile_no_numba_kernel():
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", _COLD], env=env, capture_output=True,
                             text=True, check=True, timeout=600)
    compiled = json.loads(out.stdout.strip().splitlines()[-1])
    assert compiled == [], compiled
