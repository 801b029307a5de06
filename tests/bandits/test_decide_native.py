"""The compiled decision kernels (kernels/bandits/decide_core.h via decide_native and the
decide_one server) against the plain-Python reference of tests/naive_bandits.py, for every
policy kind: the same arms, propensities, expected rewards and action probabilities, bit for
bit, in batches on 1 and 2 threads and one row at a time."""
from __future__ import annotations

import naive_bandits as nb
import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from fastengage.bandits import UCB1, BetaTS, EpsilonGreedy, GaussianTS, LinEpsilonGreedy, LinTS, \
    LinUCB
from fastengage.kernels.bandits import decide_native
from fastengage.kernels.common.config import BANDIT_DECIDE_CHUNK, BANDIT_TS_PROPENSITY_DRAWS

KINDS = [UCB1, BetaTS, EpsilonGreedy, GaussianTS, LinEpsilonGreedy, LinTS, LinUCB]


def _trained(cls, K, d, n_train, epsilon, alpha, twins, rng):
    ids = [f"a{k}" for k in range(K)]
    names = [f"x{j}" for j in range(d)] if cls.CONTEXTUAL else []
    params = {}
    if "epsilon" in {p for p, _, _ in cls.PARAMS}:
        params["epsilon"] = epsilon
    if "alpha" in {p for p, _, _ in cls.PARAMS}:
        params["alpha"] = alpha
    policy = cls(ids, features=names or None, **params)
    if n_train:
        X = rng.normal(size=(n_train, max(d, 1)))
        arms = rng.integers(0, K, n_train)
        r = ((rng.random(n_train) < 0.3).astype(float) if cls.BINARY_REWARDS
             else X[:, 0] * (arms + 1) + rng.normal(size=n_train))
        table = {"arm": pa.array(np.asarray(ids)[arms]), "r": r}
        table.update({f: X[:, j] for j, f in enumerate(names)})
        policy.update(pa.table(table), arm="arm", reward="r")
    if twins and K > 1:  # arm 1 a copy of arm 0: exact ties
        policy._G[1], policy._g[1] = policy._G[0], policy._g[0]
        policy._counts[1], policy._sums[1] = policy._counts[0], policy._sums[0]
        policy._sums2[1] = policy._sums2[0]
        policy._refresh()
    return policy, names


def _reference(policy, X, mask, seed, draws):
    snap = policy._snapshot
    eps = policy.params.get("epsilon", 0.0)
    rows = [nb.decide_row(X[i], mask[i], snap.theta, snap.L_inv, snap.base_mean, snap.base_var,
                          snap.scale, snap.beta_a, snap.beta_b, policy.KIND, eps, seed, i, draws)
            for i in range(X.shape[0])]
    return (np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
            np.array([r[2] for r in rows]), np.array([r[3] for r in rows]))


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(range(len(KINDS))), K=st.integers(1, 6), d=st.integers(1, 5),
       n=st.integers(1, 40), n_train=st.sampled_from([0, 4, 80]),
       epsilon=st.sampled_from([0.0, 0.2]), alpha=st.sampled_from([0.0, 0.5, 20.0]),
       twins=st.booleans(), masked=st.booleans(), zeros=st.booleans(),
       draws=st.sampled_from([0, 3, 15]), seed=st.integers(0, 2 ** 64 - 1),
       data_seed=st.integers(0, 10_000))
def test_every_kind_equals_the_reference(kind, K, d, n, n_train, epsilon, alpha, twins, masked,
                                         zeros, draws, seed, data_seed):
    rng = np.random.default_rng(data_seed)
    policy, names = _trained(KINDS[kind], K, d, n_train, epsilon, alpha, twins, rng)
    dd = len(names)
    X = rng.normal(size=(n, dd)) * rng.choice([0.01, 1.0, 30.0])
    if zeros:
        X[: n // 2] = 0.0  # every mean and width equal across twins; x = 0 ties LinUCB arms
    mask = (rng.random((n, K)) < 0.6) if masked else np.ones((n, K), bool)
    table = pa.table({f: X[:, j] for j, f in enumerate(names)} or {"_": np.zeros(n)})
    want_arm, want_prop, want_mean, want_dist = _reference(policy, X, mask, seed, draws)
    eligible = mask if masked else None
    out = policy.decide(table, seed=seed, expected=True, eligible=eligible,
                        propensity_draws=draws)
    codes = np.array([-1 if a is None else policy.arms.to_pylist().index(a)
                      for a in out["arm"].to_pylist()])
    np.testing.assert_array_equal(codes, want_arm)
    props = out["propensity"].to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(props, np.where(want_arm >= 0, want_prop, np.nan))
    means = np.asarray(out["expected_reward"].to_pylist(), dtype=float).reshape(n, K)
    np.testing.assert_array_equal(means, want_mean)
    dist = policy.action_distribution(table, seed=seed, eligible=eligible,
                                      propensity_draws=draws)
    np.testing.assert_array_equal(dist, want_dist)
    # row i of the batch is row 0 of a one-row batch starting at first_row=i
    for i in range(min(n, 5)):
        one = policy.decide(table.slice(i, 1), seed=seed, first_row=i, propensity_draws=draws,
                            eligible=None if eligible is None else eligible[i:i + 1])
        assert one["arm"][0].as_py() == out["arm"][i].as_py()
    snap = policy._snapshot
    for i in range(min(n, 5)):  # decide_one: row 0 of the seed's stream, the default draws
        got = policy.decide_one(X[i] if dd else None, eligible=mask[i] if masked else None,
                                seed=seed)
        ref = nb.decide_row(X[i], mask[i], snap.theta, snap.L_inv, snap.base_mean,
                            snap.base_var, snap.scale, snap.beta_a, snap.beta_b, policy.KIND,
                            policy.params.get("epsilon", 0.0), seed, 0,
                            BANDIT_TS_PROPENSITY_DRAWS)
        if ref[0] < 0:
            assert got[0] is None
        else:
            assert got == (policy.arms[ref[0]].as_py(), ref[1])


@settings(max_examples=10, deadline=None)
@given(kind=st.sampled_from(range(len(KINDS))), masked=st.booleans(),
       seed=st.integers(0, 2 ** 64 - 1))
def test_thread_count_and_chunking_do_not_change_a_bit(kind, masked, seed):
    rng = np.random.default_rng(seed % 1000)
    policy, names = _trained(KINDS[kind], 5, 4, 300, 0.1, 1.0, False, rng)
    n = 2 * BANDIT_DECIDE_CHUNK + 77
    X = rng.normal(size=(n, len(names)))
    table = pa.table({f: X[:, j] for j, f in enumerate(names)} or {"_": np.zeros(n)})
    eligible = (rng.random((n, 5)) < 0.7) if masked else None
    runs = [policy.decide(table, seed=seed, expected=True, eligible=eligible, n_threads=t,
                          propensity_draws=5) for t in (1, 2, 2)]
    for other in runs[1:]:
        _assert_same(other, runs[0])
    # a slice decided apart with first_row= gives the same rows (blocks start elsewhere)
    part = policy.decide(table.slice(1000, 600), seed=seed, expected=True, first_row=1000,
                         eligible=None if eligible is None else eligible[1000:1600],
                         propensity_draws=5)
    _assert_same(part, runs[0].slice(1000, 600))


def _assert_same(got, want):
    """Equal tables, NaN equal to NaN (expected rewards of arms not eligible)."""
    assert got["arm"].to_pylist() == want["arm"].to_pylist()
    for name in ("propensity", "expected_reward"):
        np.testing.assert_array_equal(np.asarray(got[name].to_pylist(), dtype=float),
                                      np.asarray(want[name].to_pylist(), dtype=float))


def test_streams_equal_the_reference():
    for seed, row in [(0, 0), (42, 17), (2 ** 64 - 1, 2 ** 62)]:
        np.testing.assert_array_equal(decide_native.uniforms(seed, row, 50),
                                      nb.uniforms(seed, row, 50))
        ref = nb.Stream(seed, row)
        np.testing.assert_array_equal(decide_native.normals(seed, row, 50),
                                      [ref.normal() for _ in range(50)])
        for a, b in [(5.0, 7.5), (0.3, 0.7), (1.0, 1.0)]:
            ref = nb.Stream(seed, row)
            np.testing.assert_array_equal(decide_native.betas(seed, row, a, b, 40),
                                          [ref.beta(a, b) for _ in range(40)])
        ref = nb.Stream(seed, row)
        np.testing.assert_array_equal(decide_native.indices(seed, row, 7, 50),
                                      [ref.index(7) for _ in range(50)])


def test_beta_draws_have_the_beta_distribution():
    from scipy.stats import beta, kstest

    for a, b in [(5.0, 7.5), (0.3, 0.7), (1.0, 1.0)]:
        assert kstest(decide_native.betas(3, 0, a, b, 3000), beta(a, b).cdf).pvalue > 1e-3


def test_overflowing_means_decide_alike_everywhere():
    # Finite features whose means overflow (inf, and inf - inf = NaN scores): a NaN score is
    # never the best; decide without a mask (widths skipped by bounds), with an all-true mask
    # (every width), decide_one and the reference agree, and every row gets an arm.
    rng = np.random.default_rng(7)
    for cls in (LinUCB, LinEpsilonGreedy, LinTS):
        policy, names = _trained(cls, 4, 3, 200, 0.0, 1.0, False, rng)
        X = rng.normal(size=(50, 3))
        X[::3, 0] *= 1e306
        X[1::5, 1] = -1e307
        table = pa.table({f: X[:, j] for j, f in enumerate(names)})
        everyone = np.ones((50, 4), bool)
        plain = policy.decide(table, seed=3, expected=True)
        _assert_same(policy.decide(table, seed=3, expected=True, eligible=everyone), plain)
        assert plain["arm"].null_count == 0
        want = _reference(policy, X, everyone, 3, 100)
        np.testing.assert_array_equal(
            [policy.arms.to_pylist().index(a) for a in plain["arm"].to_pylist()], want[0])
        for i in range(0, 50, 7):
            one = policy.decide_one(X[i], seed=3)
            row = policy.decide(table.slice(i, 1), seed=3)
            assert one == (row["arm"][0].as_py(), row["propensity"][0].as_py())
