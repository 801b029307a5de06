"""The one-pass update kernel against a row-by-row NumPy sum: the same bits, whatever the task
size, the block boundaries inside a task, odd runs of an arm, or the thread count."""
from __future__ import annotations

import naive_bandits as nb
import numpy as np
from fastengage.kernels.bandits import ridge
from hypothesis import given, settings
from hypothesis import strategies as st


def _sums(X, arms, r, K, rows_per_task, n_threads):
    n, d = X.shape
    cols = [np.ascontiguousarray(X[:, j]) for j in range(d)]
    addresses = np.array([c.ctypes.data for c in cols], dtype=np.int64)
    T = max(1, -(-n // rows_per_task))
    G, g, s = np.zeros((T, K, d, d)), np.zeros((T, K, d)), np.zeros((T, K, 3))
    ridge.block_sums(addresses, n, arms, r, rows_per_task, G, g, s, n_threads=n_threads)
    return G, g, s


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 1300), d=st.integers(1, 7), K=st.integers(1, 6),
       rows_per_task=st.sampled_from([1, 7, 255, 256, 257, 600, 5000]),
       seed=st.integers(0, 10_000), skew=st.booleans())
def test_block_sums_equal_row_by_row_sums_bit_for_bit(n, d, K, rows_per_task, seed, skew):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.choice([1e-3, 1.0, 1e3], size=d)
    p = rng.dirichlet(np.full(K, 0.2 if skew else 5.0))  # skewed: long runs, empty arms
    arms = rng.choice(K, size=n, p=p).astype(np.int64)
    r = rng.normal(size=n)
    want = nb.task_arm_sums(X, arms, r, K, rows_per_task)
    for threads in (1, 2):
        got = _sums(X, arms, r, K, rows_per_task, threads)
        for mine, ref in zip(got, want):
            np.testing.assert_array_equal(mine, ref)
