"""The bucket kernel (kernels/monitor/buckets.py: drift of raw columns without sorting them)
equals scipy on data where it runs (it must run, not decline, on these), declines columns with
few distinct values, and gives the same bits on 1 and 2 threads; drift() of raw tables equals
drift() of their profiles (the sorted path)."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

import naive_monitor
from fastengage.kernels.common import config
from fastengage.kernels.monitor import buckets
from fastengage.monitor import Profile, drift

TOL = 1e-9


def _run(a, b, n_bins=10):
    """The kernel on one column: a one-row matrix per side."""
    stats, ref_p, cur_p = _run_columns([np.asarray(a, float)], [np.asarray(b, float)], n_bins)
    return stats[0], ref_p[0], cur_p[0]


def _run_columns(refs, curs, n_bins=10, n_threads=None):
    stats = np.empty((len(refs), buckets.N_STATS))
    ref_p, cur_p = np.zeros((len(refs), n_bins)), np.zeros((len(refs), n_bins))
    refs, curs = np.array(refs, dtype=np.float64), np.array(curs, dtype=np.float64)
    ref_at = refs.ctypes.data + 8 * refs.shape[1] * np.arange(refs.shape[0], dtype=np.int64)
    cur_at = curs.ctypes.data + 8 * curs.shape[1] * np.arange(curs.shape[0], dtype=np.int64)
    buckets.drift_columns(ref_at, cur_at, refs.shape[1], curs.shape[1], n_bins,
                          config.MONITOR_PSI_EPS,
                          config.MONITOR_BUCKET_ROWS, config.MONITOR_BUCKET_MAX,
                          config.MONITOR_BUCKET_SAMPLE, config.MONITOR_BUCKET_GRID,
                          config.MONITOR_BUCKET_GATHER_LIMIT, stats, ref_p, cur_p,
                          n_threads or 2, n_threads=n_threads)
    return stats, ref_p, cur_p


def _check(a, b, n_bins=10, must_run=True):
    stats, _, _ = _run(a, b, n_bins)
    va, vb = a[~np.isnan(a)], b[~np.isnan(b)]
    if stats[buckets.STATUS] == 1:  # declined: drift() sorts the column instead
        assert not must_run, "the bucket path must run on this data"
        row = drift(pa.table({"x": a}), pa.table({"x": b}), n_bins=n_bins).to_pylist()[0]
        stats = np.full(buckets.N_STATS, np.nan)
        stats[[buckets.KS, buckets.WASS, buckets.PSI, buckets.JS]] = [
            row["ks_statistic"], row["wasserstein"], row["psi"], row["js_distance"]]
        stats[[buckets.N_REF, buckets.N_CUR]] = va.size, vb.size
        stats[buckets.MEAN_REF] = va.mean()
        stats[buckets.M2_REF] = ((va - va.mean()) ** 2).sum()
    want = naive_monitor.numeric_drift(va, vb, n_bins)
    got = {"ks_statistic": stats[buckets.KS], "wasserstein": stats[buckets.WASS],
           "psi": stats[buckets.PSI], "js_distance": stats[buckets.JS]}
    for key, value in got.items():
        assert value == pytest.approx(want[key], rel=TOL, abs=1e-12), key
    assert stats[buckets.N_REF] == va.size and stats[buckets.N_CUR] == vb.size
    assert stats[buckets.MEAN_REF] == pytest.approx(va.mean(), rel=1e-12, abs=1e-15)
    assert stats[buckets.M2_REF] == pytest.approx(((va - va.mean()) ** 2).sum(), rel=1e-10)


# name: (generator, whether the bucket path must run on it rather than decline)
DISTRIBUTIONS = {
    "normal, small shift": (lambda r, n, s: r.normal(s, 1.0, n), True),
    "lognormal": (lambda r, n, s: r.lognormal(s, 1.0, n), True),
    "bimodal, large offset": (lambda r, n, s: 1e6 + np.concatenate(
        [r.normal(-3, 0.5, n // 2), r.normal(3 + s, 0.5, n - n // 2)]), True),
    # may decline: ties, and a far outlier crowding the equal-step map
    "exponential, rounded": (lambda r, n, s: np.round(r.exponential(1 + s, n), 3), False),
    "uniform with a far outlier": (
        lambda r, n, s: np.append(r.uniform(s, 1 + s, n - 1), 1e4), False),
}


@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
@pytest.mark.parametrize("shift", [0.0, 0.05, 0.5])
def test_bucket_statistics_equal_scipy(name, shift):
    rng = np.random.default_rng(sum(map(ord, name)) + int(shift * 100))
    make, must_run = DISTRIBUTIONS[name]
    _check(make(rng, 60_000, 0.0), make(rng, 45_000, shift), must_run=must_run)


def test_nan_values_are_missing_and_sides_may_be_unequal():
    rng = np.random.default_rng(7)
    a = rng.normal(size=50_000)
    b = rng.normal(0.1, 1.2, 30_011)
    a[rng.integers(0, a.size, 900)] = np.nan
    b[:17] = np.nan
    _check(a, b, n_bins=7)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2_000, 30_000), st.floats(0.0, 0.3),
       st.floats(0.5, 2.0), st.integers(2, 12))
def test_bucket_path_equals_scipy_on_random_samples(seed, n, shift, scale, n_bins):
    rng = np.random.default_rng(seed)
    _check(rng.normal(0, 1, n), rng.normal(shift, scale, n + seed % 777), n_bins)


def test_few_distinct_values_are_declined_and_drift_still_equals_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 5, 40_000).astype(float), rng.integers(0, 6, 30_000).astype(float)
    assert _run(a, b)[0][buckets.STATUS] == 1
    row = drift(pa.table({"x": a}), pa.table({"x": b})).to_pylist()[0]
    want = naive_monitor.numeric_drift(a, b)
    for key, value in want.items():
        assert row[key] == pytest.approx(value, rel=TOL, abs=1e-12), key


@pytest.mark.parametrize("where", ["current +inf", "reference -inf", "both"])
def test_infinite_values_are_declined_and_drift_equals_scipy(where):
    # an infinite value used to index the bucket map out of bounds (a segfault)
    from scipy import stats

    rng = np.random.default_rng(4)
    a, b = rng.normal(size=20_000), rng.normal(0.1, 1, 15_000)
    if where != "reference -inf":
        b[7] = np.inf
    if where != "current +inf":
        a[3] = -np.inf
    assert _run(a, b)[0][buckets.STATUS] == 1
    row = drift(pa.table({"x": a}), pa.table({"x": b})).to_pylist()[0]
    assert row["ks_statistic"] == pytest.approx(stats.ks_2samp(a, b).statistic, rel=TOL)
    assert row["wasserstein"] == stats.wasserstein_distance(a, b) == np.inf


def test_empty_side_gives_nan():
    stats, _, _ = _run(np.array([1.0, 2.0]), np.array([np.nan]))
    assert stats[buckets.N_CUR] == 0 and np.isnan(stats[buckets.KS])


def test_one_and_two_threads_give_identical_bits():
    rng = np.random.default_rng(11)
    refs = [rng.normal(size=100_000) for _ in range(5)]
    curs = [rng.normal(0.01 * j, 1, 80_000) for j in range(5)]
    one = _run_columns(refs, curs, n_threads=1)
    two = _run_columns(refs, curs, n_threads=2)
    assert np.all(one[0][:, buckets.STATUS] == 0)
    for x, y in zip(one, two):
        assert x.tobytes() == y.tobytes()


def test_raw_tables_equal_their_profiles():
    rng = np.random.default_rng(12)
    ref = pa.table({"a": rng.normal(size=40_000), "b": rng.lognormal(size=40_000),
                    "k": rng.integers(0, 4, 40_000)})
    cur = pa.table({"a": rng.normal(0.05, 1, 30_000), "b": rng.lognormal(0.1, 1, 30_000),
                    "k": rng.integers(0, 4, 30_000)})
    direct = drift(ref, cur)
    profiled = drift(Profile.from_data(ref), Profile.from_data(cur))
    inexact = ["wasserstein", "wasserstein_norm"]
    assert direct.drop(inexact).equals(profiled.drop(inexact))
    for name in inexact:
        np.testing.assert_allclose(direct[name].to_numpy(), profiled[name].to_numpy(),
                                   rtol=1e-12)


def test_plain_loops_give_the_avx2_twins_bits():
    # the kernel picks AVX2 versions of its hottest loops at run time; the plain C loops (what a
    # CPU without AVX2 runs) must give the same bits, on both bucket maps
    from fastengage.kernels.monitor import drift_native

    rng = np.random.default_rng(13)
    refs = [rng.normal(size=50_003), rng.lognormal(size=50_003),
            np.append(rng.uniform(0, 1, 50_002), 50.0)]  # the outlier: the equal-step map
    curs = [rng.normal(0.05, 1, 40_001), rng.lognormal(0.1, 1, 40_001),
            np.append(rng.uniform(0.02, 1, 40_000), 60.0)]
    for x in refs + curs:
        x[rng.integers(0, x.size, 100)] = np.nan
    runs = []
    for plain in (True, False):
        drift_native._plain_loops_only(plain)
        try:
            runs.append(_run_columns(refs, curs, n_threads=1))
        finally:
            drift_native._plain_loops_only(False)
    assert np.all(runs[0][0][:, buckets.STATUS] == 0)
    for x, y in zip(*runs):
        assert x.tobytes() == y.tobytes()
