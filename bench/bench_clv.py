"""CLV side by side: fastengage.clv vs lifetimes, same data, same run, same answers asserted.

    python -m pytest bench/bench_clv.py -s                          # smoke sizes (CI)
    FASTENGAGE_BENCH=full python -m pytest bench/bench_clv.py -s    # the issue's sizes

Full sizes: summary from 1M transactions, BG/NBD fit on 1M customers, Pareto/NBD fit on 100k,
Pareto/NBD fit on 20k customers with continuous T in the hard region of issue #10 (17) (maximum
near r 0.17, alpha 1.1, s 4-8, beta 150-320: beta >> alpha puts the hypergeometric term at
z -> 1), Gamma-Gamma fit on the repeat buyers of 1M customers, 12-month CLV of 1M customers.
Customers are simulated from a BG/NBD (CDNOW-like parameters, daily resolution over a year).
"""
from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pytest

from bench._compare import bench_size, compare
from fastengage import clv

FULL = bench_size() == "full"
ROUNDS = 3 if FULL else 1
N_TX = 1_000_000 if FULL else 20_000
N_BG = 1_000_000 if FULL else 20_000
N_PARETO = 100_000 if FULL else 2_000
N_CLV = 1_000_000 if FULL else 20_000
N_PARETO_HARD = 20_000 if FULL else 1_000   # (smaller samples have no interior maximum)

lifetimes = pytest.importorskip("lifetimes")
pd = pytest.importorskip("pandas")
warnings.filterwarnings("ignore", module="lifetimes")


def simulate_customers(n: int, seed: int = 0):
    """BG/NBD customers in days: (frequency, recency, T, monetary_value), integer days."""
    rng = np.random.default_rng(seed)
    r, alpha, a, b = 0.25, 30.0, 0.8, 2.4
    T = rng.integers(1, 366, n).astype(np.float64)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    drop_at = rng.geometric(p)                # drops right after this repeat purchase
    count = rng.poisson(lam * T)
    x = np.minimum(count, drop_at).astype(np.float64)
    frac = np.where(x > 0, rng.beta(np.maximum(x, 1), np.maximum(count - x + 1, 1)), 0.0)
    tx = np.floor(frac * T)
    x = np.where(tx > 0, x, 0.0)
    tx = np.where(x > 0, tx, 0.0)
    nu = rng.gamma(3.7, 1.0 / 15.0, n)
    m = np.where(x > 0, rng.gamma(6.25 * np.maximum(x, 1), 1.0 / (nu * np.maximum(x, 1))), 0.0)
    m = np.round(m, 2)
    m = np.where((x > 0) & (m <= 0), 0.01, m)
    return x, tx, T, m


def simulate_pareto(n: int, seed: int = 2):
    """Pareto/NBD customers in days: lambda ~ Gamma(r, alpha), exponential lifetime with
    mu ~ Gamma(s, beta); (frequency, recency, T), recency floored to whole days."""
    rng = np.random.default_rng(seed)
    r, alpha, s, beta = 0.55, 70.0, 0.6, 80.0
    T = rng.integers(1, 366, n).astype(np.float64)
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    alive_until = np.minimum(rng.exponential(1.0 / mu), T)
    x = rng.poisson(lam * alive_until).astype(np.float64)
    tx = np.floor(np.where(x > 0, alive_until * rng.beta(np.maximum(x, 1), 1.0), 0.0))
    x = np.where(tx > 0, x, 0.0)
    return x, np.where(x > 0, tx, 0.0), T


def simulate_pareto_hard(n: int, seed: int = 0):
    """Pareto/NBD customers with continuous T in U(1, 52) and r, alpha, s, beta = 0.165, 1.12,
    8.1, 318: purchase rates far above death rates (beta >> alpha), an almost homogeneous death
    rate (large s) - the BG/NBD-like region where the Pareto/NBD likelihood's hypergeometric
    term sits at z -> 1 for every customer."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(1.0, 52.0, n)
    lam = rng.gamma(0.165, 1.0 / 1.12, n)
    mu = rng.gamma(8.1, 1.0 / 318.0, n)
    alive = np.minimum(rng.exponential(1.0 / mu), T)
    x = rng.poisson(lam * alive).astype(np.float64)
    tx = np.where(x > 0, alive * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    return x, tx, T


def _S(a):
    return pd.Series(a)


@pytest.fixture(scope="module")
def customers():
    return simulate_customers(max(N_BG, N_CLV))


def test_summary(benchmark):
    rng = np.random.default_rng(1)
    n_cust = max(N_TX // 10, 10)
    # a transaction log in time order, as logs are written
    ts = np.sort(rng.integers(0, 730 * 86_400_000_000, N_TX))
    table = pa.table({
        "customer": rng.integers(0, n_cust, N_TX),
        "date": pa.array(ts, pa.timestamp("us")),
        "amount": np.round(rng.gamma(2.0, 20.0, N_TX), 2),
    })
    df = table.to_pandas()
    end = "2021-12-31"

    def ours():
        return clv.summary(table, customer="customer", time="date", amount="amount", as_of=end)

    def theirs():
        return lifetimes.utils.summary_data_from_transaction_data(
            df, "customer", "date", "amount", observation_period_end=end, freq="D")

    def check(o, t, _):
        o = o.to_pandas().set_index("customer").loc[t.index]
        for col in ("frequency", "recency", "T", "monetary_value"):
            np.testing.assert_allclose(o[col].to_numpy(), t[col].to_numpy(), rtol=1e-9, atol=1e-9)

    compare(benchmark, "clv.summary", ours, {"lifetimes": theirs}, check, rounds=ROUNDS,
            size=f"{N_TX} transactions")


def test_betageo_fit(benchmark, customers):
    x, tx, T, _ = (c[:N_BG] for c in customers)

    def ours():
        return clv.BetaGeo().fit(x, tx, T)

    def theirs():
        return lifetimes.BetaGeoFitter().fit(_S(x), _S(tx), _S(T))

    def check(o, t, _):
        ref = clv.BetaGeo()
        ref.params_ = {k: float(t.params_[k]) for k in ("r", "alpha", "a", "b")}
        ll_theirs = ref.individual_log_likelihood(x, tx, T).sum()
        assert o.log_likelihood_ >= ll_theirs - 1e-6 * abs(ll_theirs)
        for k in ("r", "alpha", "a", "b"):
            assert o.params_[k] == pytest.approx(t.params_[k], rel=2e-3), k

    compare(benchmark, "clv.betageo_fit", ours, {"lifetimes": theirs}, check, rounds=ROUNDS,
            size=f"{N_BG} customers")


def _pareto_ours_theirs(x, tx, T):
    """Our Pareto/NBD fit and lifetimes' on the same (x, t_x, T)."""
    def ours():
        return clv.ParetoNBD().fit(x, tx, T)

    def theirs():
        return lifetimes.ParetoNBDFitter().fit(_S(x), _S(tx), _S(T))
    return ours, theirs


def _pareto_check(x, tx, T, *, newton, ll_tol, ll_gap, names, rel, ratio_rel):
    """The checks of both Pareto/NBD benches: our optimum is at least as good as lifetimes'
    (``ll_tol`` relative), not better by more than ``ll_gap`` (None: unbounded) and ``names`` agree to ``rel``; s and beta are weakly identified on
    these data (the likelihood has a ridge along which s/beta, the mean death rate, is fixed),
    so they are compared through that ratio (``ratio_rel``; None: not compared)."""
    def check(o, t, _):
        ref = clv.ParetoNBD()
        ref.params_ = {k: float(t.params_[k]) for k in ("r", "alpha", "s", "beta")}
        ll_theirs = ref.individual_log_likelihood(x, tx, T).sum()
        if newton:
            assert o.fit_info_["method"] == "newton", o.fit_info_["attempts"]
        assert o.log_likelihood_ >= ll_theirs - ll_tol * abs(ll_theirs)
        if ll_gap is not None:
            assert o.log_likelihood_ - ll_theirs <= ll_gap * abs(ll_theirs)
        if o.log_likelihood_ - ll_theirs > 100 * ll_tol * abs(ll_theirs):
            # lifetimes stopped short of our maximum (seen in the hard region at 20k customers:
            # -96051.26 against our -96046.19, its s/beta far along the ridge), so its
            # parameters are not the MLE to compare with; ours is the better fit
            print(f"\n[clv.pareto] lifetimes stopped {o.log_likelihood_ - ll_theirs:.3g} "
                  "log-likelihood below our optimum; parameters not compared")
            return
        for k in names:
            assert o.params_[k] == pytest.approx(t.params_[k], rel=rel), k
        if ratio_rel is not None:
            assert o.params_["s"] / o.params_["beta"] == pytest.approx(
                t.params_["s"] / t.params_["beta"], rel=ratio_rel)
    return check


def test_pareto_fit(benchmark):
    x, tx, T = simulate_pareto(N_PARETO)
    ours, theirs = _pareto_ours_theirs(x, tx, T)
    check = _pareto_check(x, tx, T, newton=False, ll_tol=1e-6, ll_gap=1e-4, names=("r", "alpha"), rel=2e-2,
                          ratio_rel=5e-2)
    compare(benchmark, "clv.pareto_fit", ours, {"lifetimes": theirs}, check, rounds=ROUNDS,
            size=f"{N_PARETO} customers")


def test_pareto_fit_hard_region(benchmark):
    x, tx, T = simulate_pareto_hard(N_PARETO_HARD)
    ours, theirs = _pareto_ours_theirs(x, tx, T)
    # at 20k customers both reach the same maximum; on the smoke sample the likelihood is flat
    # along s/beta = const and where lifetimes stops on that ridge depends on its scipy version
    # (s/beta 6% off here, 16% in a fresh CI venv), so there the check is only that our
    # likelihood is at least lifetimes' and r, alpha agree
    check = _pareto_check(x, tx, T, newton=True, ll_tol=1e-7, ll_gap=None,
                          names=("r", "alpha", "s", "beta") if FULL else ("r", "alpha"),
                          rel=1e-3 if FULL else 2e-2, ratio_rel=1e-3 if FULL else None)
    compare(benchmark, "clv.pareto_fit_hard", ours, {"lifetimes": theirs}, check,
            rounds=1 if FULL else ROUNDS, size=f"{N_PARETO_HARD} customers")


def test_gammagamma_fit(benchmark, customers):
    x, _, _, m = (c[:N_BG] for c in customers)
    keep = x > 0

    def ours():
        return clv.GammaGamma().fit(x, m)

    def theirs():
        return lifetimes.GammaGammaFitter().fit(_S(x[keep]), _S(m[keep]))

    def check(o, t, _):
        for k, kk in (("p", "p"), ("q", "q"), ("gamma", "v")):
            assert o.params_[k] == pytest.approx(t.params_[kk], rel=2e-3), k

    compare(benchmark, "clv.gammagamma_fit", ours, {"lifetimes": theirs}, check, rounds=ROUNDS,
            size=f"{int(keep.sum())} repeat buyers")


def test_clv_12_months(benchmark, customers):
    x, tx, T, m = (c[:N_CLV] for c in customers)
    bg = clv.BetaGeo().fit(x[:20_000], tx[:20_000], T[:20_000])
    gg = clv.GammaGamma().fit(x[:20_000], m[:20_000])
    ref_bg = lifetimes.BetaGeoFitter()
    ref_bg.params_ = pd.Series(bg.params_)
    ref_bg.predict = ref_bg.conditional_expected_number_of_purchases_up_to_time
    ref_gg = lifetimes.GammaGammaFitter()
    ref_gg.params_ = pd.Series({"p": gg.params_["p"], "q": gg.params_["q"], "v": gg.params_["gamma"]})
    sx, stx, sT, sm = _S(x), _S(tx), _S(T), _S(m)

    def ours():
        return gg.customer_lifetime_value(bg, x, tx, T, m, months=12, discount_rate=0.01, freq="D")

    def theirs():
        return ref_gg.customer_lifetime_value(ref_bg, sx, stx, sT, sm, time=12,
                                              discount_rate=0.01, freq="D").to_numpy()

    def check(o, t, _):
        np.testing.assert_allclose(o, t, rtol=1e-6)

    compare(benchmark, "clv.clv_12m", ours, {"lifetimes": theirs}, check, rounds=ROUNDS,
            size=f"{N_CLV} customers")


def _cpu_and_wall(fn) -> tuple[float, float]:
    """(CPU seconds of the process, wall seconds) of one call."""
    import time
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


def cpu_time_pareto_hard(n: int = 20_000, rounds: int = 5) -> dict:
    """CPU seconds (``time.process_time``, one thread each: Numba, BLAS) and wall seconds of
    ParetoNBD.fit and lifetimes' ParetoNBDFitter.fit on the hard-region population, in
    interleaved rounds (ours, theirs, ours, ...), medians. Steadier than wall time on a loaded
    machine. Run with ``python -m bench.bench_clv [n] [rounds]``."""
    from threadpoolctl import threadpool_limits

    x, tx, T = simulate_pareto_hard(n)
    sides = {"ours": lambda: clv.ParetoNBD().fit(x, tx, T, n_threads=1),
             "lifetimes": _pareto_ours_theirs(x, tx, T)[1]}
    spent = {name: [] for name in sides}
    with threadpool_limits(1):
        sides["ours"]()   # compile / warm caches
        for _ in range(rounds):
            for name, fn in sides.items():
                spent[name].append(_cpu_and_wall(fn))
                print(f"  {name:9s} cpu {spent[name][-1][0]:8.3f} s  wall {spent[name][-1][1]:8.3f} s",
                      flush=True)
    (ours_cpu, ours_wall), (cpu, wall) = (np.median(np.array(spent[k]), axis=0) for k in sides)
    return {"ours_cpu": ours_cpu, "ours_wall": ours_wall, "lifetimes_cpu": cpu,
            "lifetimes_wall": wall, "ratio_cpu": cpu / ours_cpu, "ratio_wall": wall / ours_wall}


if __name__ == "__main__":
    import os
    import sys

    args = [int(a) for a in sys.argv[1:3]]
    print(f"load average before: {os.getloadavg()}")
    for key, value in cpu_time_pareto_hard(*args).items():
        print(f"{key:16s} {value:10.4f}")
    print(f"load average after: {os.getloadavg()}")
