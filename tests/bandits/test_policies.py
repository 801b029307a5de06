"""Bandit policies against plain NumPy references, MABWiser, and exact propensities."""
from __future__ import annotations

import threading

import naive_bandits as nb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastengage.bandits import (
    UCB1,
    BetaTS,
    EpsilonGreedy,
    GaussianTS,
    LinEpsilonGreedy,
    LinTS,
    LinUCB,
)
from fastengage.errors import InputError


def _logs(n, d, K, seed, arm_ids=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    arms = rng.integers(0, K, n)
    beta = rng.normal(size=(K, d))
    r = np.einsum("nd,nd->n", X, beta[arms]) + 0.3 * rng.normal(size=n)
    ids = np.asarray(arm_ids if arm_ids is not None else [f"arm{k}" for k in range(K)])
    names = [f"f{j}" for j in range(d)]
    table = pa.table({"id": np.arange(n), **{f: X[:, j] for j, f in enumerate(names)},
                      "arm": pa.array(ids[arms]), "r": r})
    return table, X, arms, r, names, list(ids)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 400), d=st.integers(1, 6), K=st.integers(1, 5),
       seed=st.integers(0, 10_000), lam=st.sampled_from([0.1, 1.0, 3.0]))
def test_ridge_statistics_match_numpy(n, d, K, seed, lam):
    table, X, arms, r, names, ids = _logs(n, d, K, seed)
    policy = LinUCB(ids, features=names, l2=lam).update(table, arm="arm", reward="r")
    A, b, theta, A_inv = nb.ridge_stats(X, arms, r, K, lam)
    np.testing.assert_allclose(policy._G + lam * np.eye(d), A, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(policy._g, b, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(policy._snapshot.theta, theta, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(policy._snapshot.A_inv, A_inv, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(policy._counts, np.bincount(arms, minlength=K))


def test_update_paths_agree_and_threads_do_not_change_bits(monkeypatch, parallel_always):
    from fastengage.bandits import policies

    table, X, arms, r, names, ids = _logs(3000, 4, 3, 1)
    monkeypatch.setattr(policies, "BANDIT_ROWS_PER_TASK", 97)  # many tasks per arm
    one = LinUCB(ids, features=names).update(table, arm="arm", reward="r", n_threads=1)
    two = LinUCB(ids, features=names).update(table, arm="arm", reward="r", n_threads=2)
    assert np.array_equal(one._G, two._G) and np.array_equal(one._g, two._g)
    halves = LinUCB(ids, features=names).update(table.slice(0, 1500), arm="arm", reward="r")
    other = LinUCB(ids, features=names).update(table.slice(1500), arm="arm", reward="r")
    halves.merge(other)
    np.testing.assert_allclose(halves._G, one._G, rtol=1e-12)
    single = LinUCB(ids, features=names)
    for i in range(200):
        single.update_one(X[i], ids[arms[i]], r[i])
    first = LinUCB(ids, features=names).update(table.slice(0, 200), arm="arm", reward="r")
    np.testing.assert_allclose(single._snapshot.theta, first._snapshot.theta, rtol=1e-9)


def test_linucb_decisions_match_numpy_and_mabwiser():
    from mabwiser.mab import MAB, LearningPolicy

    table, X, arms, r, names, ids = _logs(4000, 5, 4, 2)
    policy = LinUCB(ids, features=names, alpha=1.0).update(table, arm="arm", reward="r")
    out = policy.decide(table, features=names, id="id", expected=True, seed=0)
    _, _, theta, A_inv = nb.ridge_stats(X, arms, r, 4, 1.0)
    mean, score = nb.linucb_scores(X, theta, A_inv, 1.0)
    np.testing.assert_array_equal(out["arm"].to_numpy(zero_copy_only=False),
                                  np.asarray(ids)[score.argmax(axis=1)])
    expected = np.asarray(out["expected_reward"].combine_chunks().flatten()).reshape(-1, 4)
    np.testing.assert_allclose(expected, mean, rtol=1e-8, atol=1e-10)
    assert (out["propensity"].to_numpy() == 1.0).all()
    mab = MAB(arms=ids, learning_policy=LearningPolicy.LinUCB(alpha=1.0, l2_lambda=1.0))
    mab.fit(np.asarray(ids)[arms], r, X)
    assert mab.predict(X) == out["arm"].to_pylist()


def test_decisions_reproducible_for_a_seed_whatever_the_threads(parallel_always):
    table, X, arms, r, names, ids = _logs(5000, 3, 4, 3)
    for cls in (LinUCB, LinTS, LinEpsilonGreedy, EpsilonGreedy, UCB1, GaussianTS):
        policy = cls(ids, features=names).update(table, arm="arm", reward="r")
        one = policy.decide(table, id="id", seed=7, n_threads=1, expected=True)
        two = policy.decide(table, id="id", seed=7, n_threads=2, expected=True)
        assert one.equals(two), cls.__name__
        if cls in (LinTS, EpsilonGreedy, LinEpsilonGreedy, GaussianTS):
            other = policy.decide(table, id="id", seed=8)
            assert not other["arm"].equals(one["arm"]), cls.__name__


def test_decide_one_is_row_zero_of_decide():
    table, X, arms, r, names, ids = _logs(500, 3, 3, 4)
    for cls in (LinTS, LinEpsilonGreedy, GaussianTS):
        policy = cls(ids, features=names).update(table, arm="arm", reward="r")
        row = policy.decide(table.slice(0, 1), seed=11)
        arm, p = policy.decide_one(X[0], seed=11)
        assert (arm, p) == (row["arm"][0].as_py(), row["propensity"][0].as_py())


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.5])
def test_epsilon_greedy_propensities_are_exact(epsilon):
    table, X, arms, r, names, ids = _logs(2000, 3, 4, 5)
    rng = np.random.default_rng(0)
    mask = rng.random((2000, 4)) < 0.7
    mask[:5] = False  # rows without an eligible arm
    policy = LinEpsilonGreedy(ids, features=names, epsilon=epsilon).update(
        table, arm="arm", reward="r")
    dist = policy.action_distribution(table, eligible=mask)
    _, _, theta, _ = nb.ridge_stats(X, arms, r, 4, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = nb.greedy_propensities(X @ theta.T, mask, epsilon)
    empty = ~mask.any(axis=1)
    ref[empty] = 0.0
    np.testing.assert_allclose(dist, ref, rtol=1e-12, atol=1e-15)
    out = policy.decide(table, eligible=mask, seed=1)
    codes = np.array([ids.index(a) if a is not None else -1 for a in out["arm"].to_pylist()])
    assert (codes[empty] == -1).all() and out["propensity"].null_count == empty.sum() >= 5
    rows = np.flatnonzero(~empty)
    chosen = ref[rows, codes[rows]]
    np.testing.assert_allclose(out["propensity"].to_numpy(zero_copy_only=False)[rows], chosen)
    assert mask[rows, codes[rows]].all()


def test_epsilon_greedy_choice_frequencies_follow_propensities():
    # One context, many seeds: arm frequencies must match the exact probabilities (chi-square).
    from scipy.stats import chisquare

    policy = EpsilonGreedy(["a", "b", "c", "d"], epsilon=0.3)
    policy.update(pa.table({"arm": ["a", "b", "b"], "r": [1.0, 2.0, 2.0]}), arm="arm", reward="r")
    picks = [policy.decide_one(seed=s)[0] for s in range(4000)]
    counts = np.array([picks.count(a) for a in "abcd"])
    probs = np.array([0.075, 0.775, 0.075, 0.075])
    assert chisquare(counts, probs * 4000).pvalue > 1e-3


def test_gaussian_ts_propensity_matches_quadrature():
    policy = GaussianTS(["a", "b", "c"], noise_sd=1.0)
    logs = pa.table({"arm": ["a"] * 3 + ["b"] * 4 + ["c"] * 2, "r": [0.1, 0.5, 0.2, 0.9, 0.3,
                                                                      0.4, 0.8, 0.0, 0.6]})
    policy.update(logs, arm="arm", reward="r")
    snap = policy._snapshot
    exact = nb.gaussian_argmax_probabilities(snap.base_mean, np.sqrt(snap.base_var))
    table = pa.table({"x": np.zeros(200)})
    dist = policy.action_distribution(table, propensity_draws=2000).mean(axis=0)
    np.testing.assert_allclose(dist, exact, atol=0.005)  # 400k draws: MC s.e. < 0.001


def test_beta_ts_draws_follow_the_beta_posterior():
    from scipy.stats import beta, kstest

    policy = BetaTS([0, 1], prior_alpha=2.0, prior_beta=0.5)
    policy.update(pa.table({"arm": [0] * 10 + [1] * 4, "r": [1.0] * 3 + [0.0] * 7 + [1.0] * 4}),
                  arm="arm", reward="r")
    exact = [beta(5.0, 7.5), beta(6.0, 0.5)]
    x = np.linspace(0, 1, 40001)
    p1 = 1.0 - np.trapezoid(exact[0].pdf(x) * exact[1].cdf(x), x)  # arm 0's density is smooth
    dist = policy.action_distribution(pa.table({"x": np.zeros(100)}),
                                      propensity_draws=999).mean(axis=0)
    assert abs(dist[1] - p1) < 0.01
    # The sampler itself: Beta(a, b) draws pass a KS test, shapes below and above 1.
    from fastengage.kernels.bandits.decide_native import betas

    for a, b in [(5.0, 7.5), (0.3, 0.7), (1.0, 1.0)]:
        assert kstest(betas(3, 0, a, b, 3000), beta(a, b).cdf).pvalue > 1e-3


def test_random_streams_match_numpy_reference():
    from fastengage.kernels.bandits.decide_native import uniforms

    np.testing.assert_array_equal(uniforms(42, 17, 5), nb.uniforms(42, 17, 5))


def test_ucb1_tries_every_arm_first_and_ties_are_uniform():
    policy = UCB1(["x", "y", "z"])
    picks = [policy.decide_one(seed=s) for s in range(300)]
    assert all(p == pytest.approx(1 / 3) for _, p in picks)
    assert {a for a, _ in picks} == {"x", "y", "z"}
    policy.update(pa.table({"arm": ["x", "y"], "r": [1.0, 0.0]}), arm="arm", reward="r")
    assert policy.decide_one(seed=1) == ("z", 1.0)


def test_eligible_column_with_nulls_and_unknown_arms():
    policy = EpsilonGreedy([1, 2, 3], epsilon=0.0)
    policy.update(pa.table({"arm": [1, 2, 3], "r": [0.1, 0.9, 0.5]}), arm="arm", reward="r")
    data = pa.table({"cust": ["u", "v", "w", "z"],
                     "allowed": pa.array([[1, 3], [], None, [2, 1]], pa.list_(pa.int64()))})
    out = policy.decide(data, id="cust", eligible="allowed", seed=0)
    assert out.to_pylist() == [{"id": "u", "arm": 3, "propensity": 1.0},
                               {"id": "v", "arm": None, "propensity": None},
                               {"id": "w", "arm": None, "propensity": None},
                               {"id": "z", "arm": 2, "propensity": 1.0}]
    bad = pa.table({"allowed": pa.array([[1, 9]], pa.list_(pa.int64()))})
    with pytest.raises(InputError, match="9"):
        policy.decide(bad, eligible="allowed")
    with pytest.raises(InputError, match="shape"):
        policy.decide(bad, eligible=np.ones((1, 2), bool))


def test_add_arms_and_errors():
    policy = LinUCB(["a"], features=["f"])
    policy.update(pa.table({"f": [1.0], "arm": ["a"], "r": [1.0]}), arm="arm", reward="r")
    with pytest.raises(InputError, match="does not know"):
        policy.update(pa.table({"f": [1.0], "arm": ["b"], "r": [1.0]}), arm="arm", reward="r")
    policy.add_arms(["b"])
    policy.update(pa.table({"f": [1.0], "arm": ["b"], "r": [2.0]}), arm="arm", reward="r")
    assert policy.decide_one(np.array([1.0]))[0] == "b"
    with pytest.raises(InputError, match="unique"):
        policy.add_arms(["a"])
    with pytest.raises(InputError, match="are strings"):
        policy.update(pa.table({"f": [1.0], "arm": [1], "r": [2.0]}), arm="arm", reward="r")
    with pytest.raises(InputError, match="NaN"):
        policy.update(pa.table({"f": [np.nan], "arm": ["a"], "r": [2.0]}), arm="arm", reward="r")
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        BetaTS(["a"]).update(pa.table({"arm": ["a"], "r": [2.0]}), arm="arm", reward="r")
    with pytest.raises(InputError, match="epsilon"):
        EpsilonGreedy(["a"], epsilon=2.0)


def test_decide_one_and_updates_from_many_threads():
    table, X, arms, r, names, ids = _logs(2000, 4, 3, 6)
    policy = LinTS(ids, features=names)
    errors, results = [], []

    def serve():
        try:
            for i in range(300):
                results.append(policy.decide_one(X[i]))
        except Exception as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(exc)

    def learn(lo):
        try:
            for i in range(lo, lo + 300):
                policy.update_one(X[i], ids[arms[i]], r[i])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=serve) for _ in range(3)]
    threads += [threading.Thread(target=learn, args=(k * 300,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert policy._counts.sum() == 900
    assert all(a in ids and 0 < p <= 1 for a, p in results)
    ref = LinTS(ids, features=names).update(table.slice(0, 900), arm="arm", reward="r")
    np.testing.assert_allclose(policy._G, ref._G, rtol=1e-12, atol=1e-12)


def test_ucb_arm_skipping_never_changes_a_decision():
    # Without a mask LinUCB skips the widths of arms whose mean + width bound cannot reach the
    # row's best mean; with an all-true mask it computes every width. Same table either way.
    table, X, arms, r, names, ids = _logs(6000, 6, 8, 9)
    for alpha in (0.05, 1.0, 20.0):
        policy = LinUCB(ids, features=names, alpha=alpha).update(table.slice(0, 3000), arm="arm",
                                                                 reward="r")
        pruned = policy.decide(table, seed=3)
        full = policy.decide(table, seed=3, eligible=np.ones((6000, 8), bool))
        assert pruned.equals(full)
        _, _, theta, A_inv = nb.ridge_stats(X[:3000], arms[:3000], r[:3000], 8, 1.0)
        _, score = nb.linucb_scores(X, theta, A_inv, alpha)
        assert pruned["arm"].to_pylist() == list(np.asarray(ids)[score.argmax(axis=1)])


def test_streamed_input_with_a_mask_and_a_short_mask():
    policy = EpsilonGreedy(["a", "b"], epsilon=0.2)
    schema = pa.schema([("x", pa.float64())])

    def reader():
        return pa.RecordBatchReader.from_batches(schema, [pa.record_batch({"x": [1.0, 2.0]}),
                                                          pa.record_batch({"x": [3.0]})])

    mask = np.array([[1, 0], [0, 1], [1, 1]], bool)
    streamed = policy.decide(reader(), eligible=mask, seed=4)
    whole = policy.decide(pa.table({"x": [1.0, 2.0, 3.0]}), eligible=mask, seed=4)
    assert streamed.equals(whole)
    assert streamed["arm"].to_pylist()[:2] == ["a", "b"]
    assert streamed["propensity"].to_pylist() == [1.0, 1.0, 0.5]
    with pytest.raises(InputError, match="mask has 2 rows"):
        policy.decide(reader(), eligible=mask[:2])
