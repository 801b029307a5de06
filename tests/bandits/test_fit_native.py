"""The compiled fit path (kernels/bandits/fit_native.pyx, fit_gram.h) against plain NumPy:
per-task sums bit for bit whatever the shape, block size, SIMD body or thread count; the task
sums added into the statistics; the ridge solves; the single-row update; and no Numba left in
the fit path (issue #11)."""
from __future__ import annotations

import subprocess
import sys

import naive_bandits as nb
import numpy as np
import pytest
from fastengage.kernels.bandits import fit_native, ridge
from hypothesis import given, settings
from hypothesis import strategies as st

BODIES = [bits for bits in (512, 256, 128) if bits <= fit_native.vector_bits()]


def _columns(X):
    cols = [np.ascontiguousarray(X[:, j]) for j in range(X.shape[1])]
    return cols, np.array([c.ctypes.data for c in cols], dtype=np.int64)


def _empty_parts(n, K, d, rows_per_task):
    T = max(1, -(-n // rows_per_task))
    # NaN-filled: every entry must be written by its task, empty arms included
    return (np.full((T, K, d, d), np.nan), np.full((T, K, d), np.nan),
            np.full((T, K, 3), np.nan))


def _worker_sums(X, arms, r, K, rows_per_task, block, bits):
    n, d = X.shape
    cols, addresses = _columns(X)
    G, g, s = _empty_parts(n, K, d, rows_per_task)
    ran = fit_native.block_sums_worker(addresses, n, arms, r, rows_per_task, block, G, g, s,
                                       np.zeros(1, dtype=np.int64), bits)
    assert ran
    return G, g, s


def _logs(n, d, K, seed, skew, scale=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if scale:
        X *= rng.choice([1e-3, 1.0, 1e3], size=d)
    p = rng.dirichlet(np.full(K, 0.2 if skew else 5.0))  # skewed: long runs and empty arms
    arms = rng.choice(K, size=n, p=p).astype(np.int64)
    r = rng.normal(size=n)
    return X, arms, r


@settings(max_examples=40, deadline=None)
@given(n=st.one_of(st.just(1), st.integers(0, 1500)), d=st.integers(1, 40),
       K=st.integers(1, 30), rows_per_task=st.sampled_from([1, 5, 64, 255, 256, 700, 5000]),
       block=st.sampled_from([1, 3, 8, 9, 64, 256]), seed=st.integers(0, 10_000),
       skew=st.booleans())
def test_every_simd_body_and_code_type_equal_row_by_row_sums(n, d, K, rows_per_task, block, seed,
                                                             skew):
    X, arms, r = _logs(n, d, K, seed, skew)
    want = nb.task_arm_sums(X, arms, r, K, rows_per_task)
    for bits in BODIES:
        for codes in (arms, arms.astype(np.int32)):  # int32: Arrow's index_in, unconverted
            got = _worker_sums(X, codes, r, K, rows_per_task, block, bits)
            for mine, ref in zip(got, want):
                np.testing.assert_array_equal(mine, ref, err_msg=f"{bits} bits, {codes.dtype}")


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 3000), d=st.integers(1, 40), K=st.integers(1, 30),
       rows_per_task=st.sampled_from([1, 100, 512, 1000]), seed=st.integers(0, 10_000),
       skew=st.booleans())
def test_block_sums_same_bits_on_one_and_two_threads(n, d, K, rows_per_task, seed, skew):
    X, arms, r = _logs(n, d, K, seed, skew)
    cols, addresses = _columns(X)
    runs = []
    for threads in (1, 2, 2):
        parts = _empty_parts(n, K, d, rows_per_task)
        ridge.block_sums(addresses, n, arms, r, rows_per_task, *parts, n_threads=threads)
        runs.append(parts)
    want = nb.task_arm_sums(X, arms, r, K, rows_per_task)
    for parts in runs:
        for mine, ref in zip(parts, want):
            np.testing.assert_array_equal(mine, ref)


def test_default_body_is_the_widest_this_cpu_runs():
    X, arms, r = _logs(2000, 20, 10, 3, False)
    default = _worker_sums(X, arms, r, 10, 600, 256, 0)
    widest = _worker_sums(X, arms, r, 10, 600, 256, fit_native.vector_bits())
    for a, b in zip(default, widest):
        np.testing.assert_array_equal(a, b)
    assert fit_native.vector_bits() in (128, 256, 512)


def test_non_finite_features_reach_the_diagonal():
    """policies._task_sums proves the features finite from the sums' diagonals."""
    X, arms, r = _logs(300, 5, 3, 4, False, scale=False)
    X[17, 2] = np.nan
    X[40, 4] = np.inf
    X[41, 0] = 1e200  # its square overflows
    G, _, _ = _worker_sums(X, arms, r, 3, 1000, 256, 0)
    diag = G[0].diagonal(axis1=1, axis2=2)
    assert not np.isfinite(diag[arms[17], 2])
    assert not np.isfinite(diag[arms[40], 4])
    assert not np.isfinite(diag[arms[41], 0])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 2000), d=st.integers(1, 40), K=st.integers(1, 30),
       rows_per_task=st.sampled_from([1, 100, 2000]), seed=st.integers(0, 10_000),
       skew=st.booleans(), lam=st.sampled_from([0.1, 1.0, 3.0]))
def test_statistics_and_solves_match_numpy(n, d, K, rows_per_task, seed, skew, lam):
    X, arms, r = _logs(n, d, K, seed, skew, scale=False)
    cols, addresses = _columns(X)
    parts = _empty_parts(n, K, d, rows_per_task)
    ridge.block_sums(addresses, n, arms, r, rows_per_task, *parts)
    T = parts[0].shape[0]
    G, g = np.zeros((K, d, d)), np.zeros((K, d))
    counts, sums, sums2 = np.zeros(K), np.zeros(K), np.zeros(K)
    ridge.add_task_sums(np.tile(np.arange(K), T), parts[0].reshape(T * K, d, d),
                        parts[1].reshape(T * K, d), parts[2].reshape(T * K, 3), G, g, counts,
                        sums, sums2)
    A, b, theta, A_inv = nb.ridge_stats(X, arms, r, K, lam)
    np.testing.assert_allclose(G + lam * np.eye(d), A, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(g, b, rtol=1e-12, atol=1e-10)
    np.testing.assert_array_equal(G, G.transpose(0, 2, 1))
    np.testing.assert_array_equal(counts, np.bincount(arms, minlength=K))
    np.testing.assert_allclose(sums, np.bincount(arms, r, minlength=K), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(sums2, np.bincount(arms, r * r, minlength=K), rtol=1e-12,
                               atol=1e-10)
    got_theta, got_A_inv, L_inv = np.zeros((K, d)), np.zeros((K, d, d)), np.zeros((K, d, d))
    assert ridge.solve_arms(G, g, lam, got_theta, got_A_inv, L_inv) == -1
    np.testing.assert_allclose(got_theta, theta, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(got_A_inv, A_inv, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(L_inv, np.tril(L_inv))
    np.testing.assert_allclose(L_inv.transpose(0, 2, 1) @ L_inv, A_inv, rtol=1e-8, atol=1e-12)


def test_solve_arms_on_row_slices_and_a_matrix_that_is_not_positive_definite():
    rng = np.random.default_rng(5)
    K, d = 4, 3
    M = rng.normal(size=(K, 6, d))
    G, g = M.transpose(0, 2, 1) @ M, rng.normal(size=(K, d))
    theta, A_inv, L_inv = np.zeros((K, d)), np.zeros((K, d, d)), np.zeros((K, d, d))
    rows = slice(1, 3)  # what policies._solve passes: views of the snapshot's arrays
    assert ridge.solve_arms(G[rows], g[rows], 1.0, theta[rows], A_inv[rows], L_inv[rows]) == -1
    want = np.linalg.solve(G[rows] + np.eye(d), g[rows][:, :, None])[:, :, 0]
    np.testing.assert_allclose(theta[rows], want, rtol=1e-10)
    assert not theta[0].any() and not theta[3].any()
    G[2] = -np.eye(d)
    assert ridge.solve_arms(G, g, 0.5, theta, A_inv, L_inv) == 2


def test_add_one_equals_the_outer_product():
    rng = np.random.default_rng(6)
    K, d = 3, 7
    G, g = rng.normal(size=(K, d, d)), rng.normal(size=(K, d))
    counts, sums, sums2 = np.zeros(K), np.zeros(K), np.zeros(K)
    want_G, want_g = G.copy(), g.copy()
    x = rng.normal(size=d)
    ridge.add_one(x, 0.5, 1, G, g, counts, sums, sums2)
    want_G[1] += np.outer(x, x)
    want_g[1] += 0.5 * x
    np.testing.assert_array_equal(G, want_G)
    np.testing.assert_array_equal(g, want_g)
    assert (counts.tolist(), sums.tolist(), sums2.tolist()) == ([0, 1, 0], [0, 0.5, 0],
                                                               [0, 0.25, 0])


def test_a_cold_update_compiles_no_numba_kernel_of_the_fit_path():
    """Issue #11: ridge.py's kernels are compiled ahead of time; learning from a batch in a
    fresh process must not compile any of them (the decision snapshot's kernels are another
    path's)."""
    code = """
import numpy as np, pyarrow as pa
from numba.core.registry import CPUDispatcher
from fastengage.kernels.bandits import ridge
from fastengage.bandits import LinUCB
assert not [k for k, v in vars(ridge).items() if isinstance(v, CPUDispatcher)]
rng = np.random.default_rng(0)
t = pa.table({"a": rng.normal(size=50), "b": rng.normal(size=50),
              "arm": pa.array(["x", "y"] * 25), "r": rng.normal(size=50)})
LinUCB(["x", "y"], features=["a", "b"]).update(t, arm="arm", reward="r")
import sys
print("numba" in sys.modules and any(
    "ridge" in getattr(d.py_func, "__module__", "")
    for d in __import__("gc").get_objects() if isinstance(d, CPUDispatcher)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("bits", [1024, 64])
def test_an_unknown_body_width_runs_nothing(bits):
    X, arms, r = _logs(10, 2, 2, 7, False)
    cols, addresses = _columns(X)
    G, g, s = _empty_parts(10, 2, 2, 10)
    assert not fit_native.block_sums_worker(addresses, 10, arms, r, 10, 8, G, g, s,
                                            np.zeros(1, dtype=np.int64), bits)
