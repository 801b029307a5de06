"""Hybrid LinUCB (Li et al. 2010, Algorithm 2) against a row-by-row NumPy transcription of the
paper's algorithm. MABWiser (2.7.4) has no hybrid LinUCB, so the paper is the only reference."""
from __future__ import annotations

import naive_bandits as nb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastengage.bandits import HybridLinUCB, LinUCB, load_policy
from fastengage.errors import InputError, ModelFormatError


def _logs(n, k, d, K, seed):
    rng = np.random.default_rng(seed)
    Z, X = rng.normal(size=(n, k)), rng.normal(size=(n, d))
    arms = rng.integers(0, K, n)
    beta, theta = rng.normal(size=k), rng.normal(size=(K, d))
    r = Z @ beta + np.einsum("nd,nd->n", X, theta[arms]) + 0.3 * rng.normal(size=n)
    shared, own = [f"z{j}" for j in range(k)], [f"x{j}" for j in range(d)]
    ids = [f"arm{a}" for a in range(K)]
    table = pa.table({"id": np.arange(n), **{c: Z[:, j] for j, c in enumerate(shared)},
                      **{c: X[:, j] for j, c in enumerate(own)},
                      "arm": pa.array(np.asarray(ids)[arms]), "r": r})
    return table, Z, X, arms, r, shared, own, ids


@settings(max_examples=12, deadline=None)
@given(n=st.integers(0, 120), k=st.integers(1, 4), d=st.integers(1, 4), K=st.integers(1, 4),
       seed=st.integers(0, 10_000), alpha=st.sampled_from([0.0, 0.5, 2.0]),
       lam=st.sampled_from([0.5, 1.0, 3.0]))
def test_scores_match_algorithm_2(n, k, d, K, seed, alpha, lam):
    table, Z, X, arms, r, shared, own, ids = _logs(n + 30, k, d, K, seed)
    policy = HybridLinUCB(ids, features=own, shared=shared, alpha=alpha, l2=lam)
    policy.update(table.slice(0, n), arm="arm", reward="r")
    paper = nb.HybridLinUCBAlgorithm2(K, k, d, alpha, lam)
    for i in range(n):
        paper.update(arms[i], Z[i], X[i], r[i])
    snap = policy._snapshot
    test = table.slice(n)
    out = policy.decide(test, id="id", expected=True, seed=1)
    means = out["expected_reward"].combine_chunks().flatten().to_numpy().reshape(-1, K)
    for row in range(30):
        z, x = Z[n + row], X[n + row]
        mean, s, p = paper.scores(z, x)
        w = np.concatenate([z, x])
        np.testing.assert_allclose(means[row], mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(np.einsum("i,kij,j->k", w, snap.A_inv, w), s,
                                   rtol=1e-9, atol=1e-12)
        if np.sort(p)[-1] - (np.sort(p)[-2] if K > 1 else -np.inf) > 1e-9:  # no near-tie
            assert out["arm"][row].as_py() == ids[int(p.argmax())]
            assert out["propensity"][row].as_py() == 1.0


def test_online_loop_chooses_the_papers_arms():
    """Decide one row, learn its reward, repeat: the same arm as Algorithm 2 every round."""
    k, d, K, T = 3, 4, 5, 300
    rng = np.random.default_rng(5)
    beta, theta = rng.normal(size=k), rng.normal(size=(K, d))
    policy = HybridLinUCB(list(range(K)), features=[f"x{j}" for j in range(d)],
                          shared=[f"z{j}" for j in range(k)], alpha=0.7)
    paper = nb.HybridLinUCBAlgorithm2(K, k, d, 0.7)
    agree = 0
    for t in range(T):
        z, x = rng.normal(size=k), rng.normal(size=d)
        arm, prop = policy.decide_one(np.concatenate([z, x]), seed=t)
        _, _, p = paper.scores(z, x)
        best = np.flatnonzero(p >= p.max() - 1e-9)
        assert arm in best
        agree += len(best) == 1
        reward = z @ beta + x @ theta[arm] + 0.1 * rng.normal()
        policy.update_one(np.concatenate([z, x]), arm, reward)
        paper.update(arm, z, x, reward)
    assert agree > 0.9 * T  # only the first rounds tie (every arm unexplored)


def test_update_merge_threads_save_load(tmp_path, parallel_always):
    table, Z, X, arms, r, shared, own, ids = _logs(3000, 2, 3, 4, 2)
    whole = HybridLinUCB(ids, features=own, shared=shared).update(table, arm="arm", reward="r")
    left = HybridLinUCB(ids, features=own, shared=shared).update(table.slice(0, 1000),
                                                                 arm="arm", reward="r")
    right = HybridLinUCB(ids, features=own, shared=shared).update(table.slice(1000),
                                                                  arm="arm", reward="r")
    left.merge(right)
    np.testing.assert_allclose(left._snapshot.theta, whole._snapshot.theta, rtol=1e-9)
    one = whole.decide(table, id="id", expected=True, seed=3, n_threads=1)
    two = whole.decide(table, id="id", expected=True, seed=3, n_threads=2)
    assert one.equals(two)
    w = np.concatenate([Z[7], X[7]])
    assert whole.decide_one(w, seed=3)[0] == whole.decide(table.slice(7, 1), seed=3)["arm"][0]\
        .as_py()
    whole.save(tmp_path / "h.fe")
    back = load_policy(tmp_path / "h.fe")
    assert isinstance(back, HybridLinUCB) and back.shared == shared and back.features == \
        shared + own
    assert back.decide(table, id="id", expected=True, seed=3).equals(one)
    # Not a disjoint LinUCB on the concatenation: beta is pooled across arms.
    disjoint = LinUCB(ids, features=shared + own).update(table, arm="arm", reward="r")
    assert not np.allclose(disjoint._snapshot.theta, whole._snapshot.theta, atol=1e-3)


def test_bad_arguments_and_files(tmp_path):
    with pytest.raises(InputError, match="shared"):
        HybridLinUCB(["a", "b"], features=["x"])
    with pytest.raises(InputError, match="both shared"):
        HybridLinUCB(["a", "b"], features=["x", "z"], shared=["z"])
    policy = HybridLinUCB(["a", "b"], features=["x"], shared=["z"])
    two_shared = HybridLinUCB(["a", "b"], features=["x"], shared=["z", "y"])
    with pytest.raises(InputError, match="shared features"):
        HybridLinUCB(["a", "b"], features=["x", "y"], shared=["z"]).merge(two_shared)
    policy.save(tmp_path / "p.fe")
    from fastengage._io.persist import load_bundle, save_bundle

    bundle = load_bundle(tmp_path / "p.fe", "bandit_policy", 1)
    for bad in (0, 2, "1", True, None):
        meta = {**bundle.meta, "n_shared": bad}
        save_bundle(tmp_path / "bad.fe", "bandit_policy", 1, meta, arrays=bundle.arrays,
                    tables=bundle.tables)
        with pytest.raises(ModelFormatError, match="n_shared"):
            load_policy(tmp_path / "bad.fe")
