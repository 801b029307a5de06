"""LinUCB decisions that skip widths (rows decided by their means, arms that cannot win) against
the full computation (every width, through an all-true eligibility mask, which never skips)
and against the NumPy reference: same arms, same propensities, same bits."""
from __future__ import annotations

import naive_bandits as nb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastengage.bandits import LinUCB
from fastengage.errors import InputError


def _policy_and_rows(n, d, K, n_train, alpha, twins, seed):
    rng = np.random.default_rng(seed)
    names = [f"x{j}" for j in range(d)]
    ids = [f"arm{k}" for k in range(K)]
    beta = rng.normal(size=(K, d))
    Xt = rng.normal(size=(n_train, d))
    at = rng.integers(0, K, n_train)
    rt = np.einsum("nd,nd->n", Xt, beta[at]) + 0.3 * rng.normal(size=n_train)
    policy = LinUCB(ids, features=names, alpha=alpha)
    if n_train:
        policy.update(pa.table({**{f: Xt[:, j] for j, f in enumerate(names)},
                                "arm": pa.array(np.asarray(ids)[at]), "r": rt}),
                      arm="arm", reward="r")
    if twins and K > 1:  # arm 1 a copy of arm 0: exact ties in means and widths
        policy._G[1], policy._g[1] = policy._G[0], policy._g[0]
        policy._counts[1], policy._sums[1] = policy._counts[0], policy._sums[0]
        policy._refresh()
    X = rng.normal(size=(n, d)) * rng.choice([0.01, 1.0, 30.0])
    if n > 3:
        X[:3] = 0.0  # x = 0: every mean equals, every width is 0 -> a K-way tie
    table = pa.table({f: X[:, j] for j, f in enumerate(names)})
    return policy, table, X


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 2500), d=st.integers(1, 7), K=st.integers(1, 7),
       n_train=st.sampled_from([0, 5, 60, 2000]), alpha=st.sampled_from([1e-3, 0.3, 1.0, 40.0]),
       twins=st.booleans(), seed=st.integers(0, 10_000))
def test_skipping_widths_never_changes_a_decision(n, d, K, n_train, alpha, twins, seed):
    policy, table, X = _policy_and_rows(n, d, K, n_train, alpha, twins, seed)
    everyone = np.ones((n, K), bool)
    pruned = policy.decide(table, seed=5, expected=True)
    full = policy.decide(table, seed=5, expected=True, eligible=everyone)
    assert pruned.equals(full)
    dist = policy.action_distribution(table, seed=5)
    np.testing.assert_array_equal(dist, policy.action_distribution(table, seed=5,
                                                                   eligible=everyone))
    # Against the NumPy reference: the chosen arm has the best score (ties share probability).
    snap = policy._snapshot
    mean, score = nb.linucb_scores(X, snap.theta, snap.A_inv, alpha)
    codes = np.asarray([policy.arms.to_pylist().index(a) for a in pruned["arm"].to_pylist()])
    chosen = score[np.arange(n), codes]
    np.testing.assert_allclose(chosen, score.max(axis=1), rtol=1e-9, atol=1e-12)
    top = score >= score.max(axis=1, keepdims=True) - 1e-9 * (1 + np.abs(score).max(1))[:, None]
    unique = top.sum(axis=1) == 1
    assert (pruned["propensity"].to_numpy()[unique] == 1.0).all()
    np.testing.assert_allclose(dist.sum(axis=1), 1.0, rtol=1e-12)


def test_ties_keep_their_shared_propensity_and_decide_one_agrees():
    policy, table, X = _policy_and_rows(400, 4, 5, 300, 1.0, True, 1)
    out = policy.decide(table, seed=9)
    props = out["propensity"].to_numpy()
    assert (props[:3] == 1 / 5).all()  # x = 0: five arms tied
    twins = np.asarray(out["arm"].to_pylist()[3:]) == "arm0"
    twins |= np.asarray(out["arm"].to_pylist()[3:]) == "arm1"
    assert (props[3:][twins] == 0.5).all() and (props[3:][~twins] == 1.0).all()
    for i in range(0, 400, 37):
        row = policy.decide(table.slice(i, 1), seed=9)  # row 0 of a one-row batch
        assert policy.decide_one(X[i], seed=9) == (row["arm"][0].as_py(),
                                                   row["propensity"][0].as_py())
    with pytest.raises(InputError, match="NaN"):
        policy.decide_one(np.array([0.0, np.nan, 1.0, 2.0]))
    with pytest.raises(InputError, match="NaN"):
        policy.decide_one(np.array([0.0, np.inf, 1.0, 2.0]), seed=1)


def test_non_finite_features_are_named_and_overflow_is_not_an_error():
    policy, table, X = _policy_and_rows(3000, 3, 4, 200, 1.0, False, 2)
    bad = X[:, 1].copy()
    bad[2500] = np.inf  # in the second batch of kernel chunks, one row only
    with pytest.raises(InputError, match="'x1'"):
        policy.decide(table.set_column(1, "x1", pa.array(bad)), seed=0)
    huge = table.set_column(0, "x0", pa.array(X[:, 0] * 1e306))  # finite; means overflow
    out = policy.decide(huge, seed=0)
    assert out.num_rows == 3000 and out["arm"].null_count == 0
