"""The peers' own test suites, ported: MABWiser 2.7.4 (fidelity/mabwiser, tests/test_linucb.py,
test_lints.py, test_lingreedy.py, test_ucb.py, test_greedy.py, test_thompson.py, test_invalid.py;
installed, so most
cases also run MABWiser itself on the same data) and Open Bandit Pipeline (st-tech/zr-obp,
tests/ope/test_ipw_estimators.py, test_dr_estimators.py, test_dm_estimators.py, test_meta.py;
not installable next to numpy 2, so its published expectations and invariants are the reference,
with tests/naive_bandits.py's transcription of its formulas).

Each case names the peer file and test. Deliberate differences (asserted as fastengage documents
them): a policy decides before it has learned anything (MABWiser raises); UCB1 and LinUCB score
an arm never played +inf / by its prior width (MABWiser's UCB1 gives it 0); arm ids are strings
or integers (MABWiser also takes datetimes); no reward binarizer (the user binarizes the column;
boolean columns are 0/1); OPE fits its default reward model when none is given (obp's DM needs
``estimated_rewards_by_reg_model``). No counterpart, not ported: warm_start, remove_arm (use
``eligible=``), scale=True, neighborhood policies, obp's tuning/sub-Gaussian estimators.
"""
from __future__ import annotations

import datetime

import naive_bandits as nb
import numpy as np
import pyarrow as pa
import pytest
from mabwiser.mab import MAB, LearningPolicy

from fastengage.bandits import (
    UCB1,
    BetaTS,
    EpsilonGreedy,
    LinEpsilonGreedy,
    LinTS,
    LinUCB,
    evaluate,
)
from fastengage.errors import InputError

# The context history and the two prediction rows of MABWiser's linear tests.
CTX = np.array([[0, 1, 2, 3, 5], [1, 1, 1, 1, 1], [0, 0, 1, 0, 0], [0, 2, 2, 3, 5],
                [1, 3, 1, 1, 1], [0, 0, 0, 0, 0], [0, 1, 4, 3, 5], [0, 1, 2, 4, 5],
                [1, 2, 1, 1, 3], [0, 2, 1, 0, 0]], dtype=float)
CTX16 = np.vstack([CTX, CTX[[6, 7, 8, 9, 3, 4]]])
PREDICT = np.array([[0, 1, 2, 3, 5], [1, 1, 1, 1, 1]], dtype=float)
F = [f"f{j}" for j in range(5)]


def _table(X=None, **cols):
    feats = {} if X is None else {f: X[:, j] for j, f in enumerate(F)}
    return pa.table({**feats, **{k: pa.array(v) for k, v in cols.items()}})


def _learn(cls, arms, decisions, rewards, X=None, **params):
    kw = {"features": F} if X is not None else {}
    policy = cls(arms, **kw, **params)
    return policy.update(_table(X, arm=decisions, r=np.asarray(rewards, float)), arm="arm",
                         reward="r")


def _mab(arms, decisions, rewards, lp, X=None):
    mab = MAB(arms, lp, seed=123456)
    mab.fit(decisions, rewards, X)
    return mab


def _theta(policy, arm):
    return policy._snapshot.theta[policy.arms.to_pylist().index(arm)]


def _linucb_scores(policy, X):
    """x . theta_a + alpha sqrt(x^T A_a^-1 x): what MABWiser's predict_expectations returns."""
    s = policy._snapshot
    width = np.sqrt(np.einsum("nd,kde,ne->nk", X, s.A_inv, X))
    return X @ s.theta.T + policy.params["alpha"] * width


# -- MABWiser tests/test_linucb.py ----------------------------------------------------------
LINUCB_CASES = [  # (peer test, arms, decisions, rewards, alpha, context history, published arms)
    ("test_alpha0", [1, 2, 3], [1, 1, 1, 2, 2, 2, 3, 3, 3, 1], [0, 0, 0, 0, 0, 0, 1, 1, 1, 1],
     0.0, CTX, [3, 3]),
    ("test_alpha1 / test_np / test_df", [1, 2, 3], [1, 1, 1, 2, 2, 3, 3, 3, 3, 3],
     [0, 0, 1, 0, 0, 0, 0, 1, 1, 1], 1.0, CTX, [3, 3]),
    ("test_linucb_t1", [1, 2, 3], [1, 1, 1, 3, 2, 2, 3, 1, 3, 1], [0, 1, 1, 0, 1, 0, 1, 1, 1, 1],
     0.24, CTX, [2, 1]),
    ("test_linucb_t2", [1, 2, 3], [1, 1, 1, 3, 2, 2, 3, 1, 3, 1], [0, 1, 1, 0, 1, 0, 1, 1, 1, 1],
     1.5, CTX, [2, 2]),
    ("test_linucb_t3", [1, 2, 4], [1, 1, 4, 4, 2, 2, 1, 1, 4, 2, 1, 4, 1, 2, 4, 1],
     [7, 9, 10, 20, 2, 5, 8, 15, 17, 11, 0, 5, 2, 9, 3, 1], 1.25, CTX16, [4, 4]),
    ("test_linucb_t4", [1, 2, 4], [1, 1, 4, 4, 2, 2, 1, 1, 4, 2, 1, 4, 1, 2, 4, 1],
     [7, 9, 10, 20, 2, 5, 8, 15, 17, 11, 0, 5, 2, 9, 3, 1], 2.0, CTX16, [4, 4]),
    ("test_linucb_t5", ["one", "two", "three"],
     ["one", "one", "one", "three", "two", "two", "three", "one", "three", "two"],
     [1, 0, 1, 0, 1, 0, 1, 1, 1, 0], 1.0, CTX, ["two", "two"]),
    ("test_linucb_t6", ["one", "two", "three"],
     ["one", "one", "one", "three", "two", "two", "three", "one", "three", "two", "one"],
     [2, 7, 7, 9, 1, 3, 1, 2, 6, 4, 1], 1.25, np.vstack([CTX, CTX[[6]]]), ["three", "one"]),
    ("test_linucb_t8", ["a", "b", "c"], ["a", "b", "c", "a", "b", "c", "a", "b", "c", "a"],
     [-1.25, 0.7, 12, 10, 12, 9.2, -1, -10, 4, 0], 0.5, CTX, ["c", "c"]),
    ("test_unused_arm2", [1, 2, 3, 4], [1, 1, 1, 2, 2, 3, 3, 3, 3, 3],
     [0, 0, 1, 0, 0, 0, 0, 1, 1, 1], 1.0, CTX, [4, 4]),
]


@pytest.mark.parametrize("case", LINUCB_CASES, ids=[c[0] for c in LINUCB_CASES])
def test_linucb_decisions_equal_mabwiser(case):
    # MABWiser tests/test_linucb.py (the test named in the id): same arms as published and as
    # MABWiser's predict on the same data (l2_lambda 1, our l2 1); every seed, propensity 1.
    _, arms, decisions, rewards, alpha, X, published = case
    policy = _learn(LinUCB, arms, decisions, rewards, X, alpha=alpha)
    for seed in (0, 7, 123456):
        out = policy.decide(_table(PREDICT), seed=seed)
        assert out["arm"].to_pylist() == published
        assert out["propensity"].to_pylist() == [1.0, 1.0]
    mab = _mab(arms, decisions, rewards, LearningPolicy.LinUCB(alpha=alpha), X)
    assert mab.predict(PREDICT) == published
    assert [policy.decide_one(x, seed=1)[0] for x in PREDICT] == published


def test_linucb_expectations_equal_published_and_mabwiser():
    # MABWiser tests/test_linucb.py::test_alpha0_expectations: alpha 0, so the score is the
    # ridge mean, which is our expected_reward.
    policy = _learn(LinUCB, [1, 2, 3], [1, 1, 1, 2, 2, 2, 3, 3, 3, 1],
                    [0, 0, 0, 0, 0, 0, 1, 1, 1, 1], CTX, alpha=0.0)
    got = policy.decide(_table(PREDICT), expected=True, seed=0)["expected_reward"].to_pylist()
    np.testing.assert_allclose(got, [[-0.018378378378378413, 0.0, 0.9966292134831471],
                                     [0.14054054054054055, 0.0, 0.43258426966292074]],
                               rtol=1e-9, atol=1e-12)
    # test_alpha1_expectations and test_unused_arm (arm 4 never played: its score is its prior
    # width ||x||, 6.245 = sqrt(39)): mean + alpha * width.
    data = ([1, 1, 1, 2, 2, 3, 3, 3, 3, 3], [0, 0, 1, 0, 0, 0, 0, 1, 1, 1])
    policy = _learn(LinUCB, [1, 2, 3, 4], *data, CTX, alpha=1.0)
    scores = _linucb_scores(policy, PREDICT)
    np.testing.assert_allclose(scores, [[0.9790312458954391, 1.1617706239438832,
                                         1.4247056229871702, 6.244997998398398],
                                        [0.8896475809353053, 0.923364043088837,
                                         1.457085577251709, 2.23606797749979]], rtol=1e-9)
    mab = _mab([1, 2, 3, 4], *data, LearningPolicy.LinUCB(alpha=1.0), CTX)
    theirs = mab.predict_expectations(PREDICT)
    np.testing.assert_allclose(scores, [[e[a] for a in (1, 2, 3, 4)] for e in theirs], rtol=1e-9)


def test_linucb_unused_arm_scaled():
    # MABWiser tests/test_linucb.py::test_unused_arm_scaled / test_unused_arm_scaled2: contexts
    # standardised by the user (StandardScaler) before learning.
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(CTX)
    X, P = scaler.transform(CTX), scaler.transform(PREDICT)
    data = ([1, 1, 1, 2, 2, 3, 3, 3, 3, 3], [0, 0, 1, 0, 0, 0, 0, 1, 1, 1])
    policy = _learn(LinUCB, [1, 2, 3, 4], *data, X, alpha=1.0)
    np.testing.assert_allclose(_linucb_scores(policy, P),
                               [[0.702838715092242, 0.8039804426513, 0.8016765077826691,
                                 1.7398913429630314],
                                [0.814935740273692, 1.09321065622604, 0.6199330260793201,
                                 1.8228899573337314]], rtol=1e-9)
    assert policy.decide(_table(P), seed=0)["arm"].to_pylist() == [4, 4]  # test_unused_arm2


@pytest.mark.parametrize("cls", [LinUCB, LinTS])
def test_fit_twice_and_partial_fit_coefficients(cls):
    # MABWiser tests/test_linucb.py and test_lints.py::test_fit_twice / test_partial_fit: the
    # ridge coefficients (beta[0]) after a first fit, after fit() on new data (a fresh policy
    # here: MABWiser's fit restarts) and after partial_fit() (our update adds).
    first = ([1, 1, 1, 2, 2, 3, 3, 3, 3, 3], [0, 0, 1, 0, 0, 0, 0, 1, 1, 1], CTX)
    second = ([1, 3, 4], [0, 1, 1], np.array([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1],
                                              [0, 0, 1, 0, 0]], dtype=float))
    policy = _learn(cls, [1, 2, 3, 4], *first)
    assert _theta(policy, 1)[0] == pytest.approx(-0.0825688, abs=1e-5)
    assert _theta(policy, 3)[0] == pytest.approx(0.023696, abs=1e-5)
    if cls is LinUCB:
        assert policy.decide(_table(PREDICT), seed=0)["arm"].to_pylist() == [4, 4]
    refit = _learn(cls, [1, 2, 3, 4], *second)
    assert _theta(refit, 1)[0] == 0 and _theta(refit, 4)[0] == 0
    assert _theta(refit, 3)[0] == pytest.approx(0.16667, abs=1e-5)
    policy.update(_table(second[2], arm=second[0], r=np.asarray(second[1], float)), arm="arm",
                  reward="r")
    assert _theta(policy, 1)[0] == pytest.approx(-0.05142857, abs=1e-5)
    assert _theta(policy, 3)[0] == pytest.approx(0.22099152, abs=1e-5)
    assert _theta(policy, 4)[0] == 0
    mab = _mab([1, 2, 3, 4], *first[:2], LearningPolicy.LinUCB(), first[2])
    mab.partial_fit(*second)
    for arm in (1, 2, 3, 4):
        np.testing.assert_allclose(_theta(policy, arm), mab._imp.arm_to_model[arm].beta,
                                   rtol=1e-9, atol=1e-12)


def test_lints_coefficients_and_near_greedy_decisions():
    # MABWiser tests/test_lints.py::test_warm_start ("before warm start" part): arm 1's ridge
    # coefficients, published; arm 3 never played keeps zeros.
    policy = _learn(LinTS, [1, 2, 3], [1, 1, 1, 1, 2, 2, 2, 1, 2, 1],
                    [0, 1, 1, 0, 1, 0, 1, 1, 1, 1], CTX, v=0.24)
    np.testing.assert_allclose(_theta(policy, 1), [0.19635284, 0.11556404, 0.57675997,
                                                   0.30597964, -0.39100933], atol=1e-7)
    assert not _theta(policy, 3).any()
    # test_alpha0_0001 without scale: with a tiny posterior scale both libraries' draws sit on
    # the ridge means, so the decisions are MABWiser's (its alpha is our v).
    for name, arms, decisions, rewards, _, X, _ in LINUCB_CASES:
        ours = _learn(LinTS, arms, decisions, rewards, X, v=1e-7)
        mab = _mab(arms, decisions, rewards, LearningPolicy.LinTS(alpha=1e-7), X)
        assert ours.decide(_table(PREDICT), seed=3)["arm"].to_pylist() == mab.predict(PREDICT), \
            name


@pytest.mark.parametrize("l2", [1.0, 0.87, 0.29])
def test_lingreedy_epsilon_zero_equals_linucb_alpha_zero_and_mabwiser(l2):
    # MABWiser tests/test_lingreedy.py::test_epsilon_zero (arms [3, 3]),
    # test_epsilon_zero_expectations, test_epsilon_zero_vs_linucb (l2 0.87) and
    # test_epsilon_zero_vs_linucb_expectations (l2 0.29): LinGreedy with epsilon 0 is LinUCB
    # with alpha 0; here also against MABWiser's LinGreedy on every LinUCB case above.
    data = ([1, 1, 1, 2, 2, 2, 3, 3, 3, 1], [0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    greedy = _learn(LinEpsilonGreedy, [1, 2, 3], *data, CTX, epsilon=0.0, l2=l2)
    ucb = _learn(LinUCB, [1, 2, 3], *data, CTX, alpha=0.0, l2=l2)
    g = greedy.decide(_table(PREDICT), expected=True, seed=4)
    assert g.equals(ucb.decide(_table(PREDICT), expected=True, seed=4))
    assert g["arm"].to_pylist() == [3, 3]
    mab = _mab([1, 2, 3], *data, LearningPolicy.LinGreedy(epsilon=0, l2_lambda=l2), CTX)
    np.testing.assert_allclose(g["expected_reward"].to_pylist(),
                               [list(e.values()) for e in mab.predict_expectations(PREDICT)],
                               rtol=1e-9, atol=1e-12)
    if l2 == 1.0:
        np.testing.assert_allclose(g["expected_reward"].to_pylist(),
                                   [[-0.018378378378378413, 0.0, 0.9966292134831471],
                                    [0.14054054054054055, 0.0, 0.43258426966292074]],
                                   rtol=1e-9, atol=1e-12)
    for name, arms, decisions, rewards, _, X, _ in LINUCB_CASES:
        ours = _learn(LinEpsilonGreedy, arms, decisions, rewards, X, epsilon=0.0, l2=l2)
        mab = _mab(arms, decisions, rewards, LearningPolicy.LinGreedy(epsilon=0, l2_lambda=l2),
                   X)
        assert ours.decide(_table(PREDICT), seed=0)["arm"].to_pylist() == mab.predict(PREDICT), \
            name


def test_lints_choice_frequencies_and_mabwisers_shared_draws():
    # MABWiser tests/test_lints.py::test_alpha1 data. Linear TS draws each arm's coefficients
    # from its own posterior N(theta_a, v^2 A_a^-1), independently across arms (Agrawal & Goyal
    # 2013); fastengage draws the score x . beta_a ~ N(x . theta_a, v^2 x^T A_a^-1 x), the same
    # law per arm, and its propensities equal the exact argmax probabilities (quadrature).
    data = ([1, 1, 1, 2, 2, 3, 3, 3, 3, 3], [0, 0, 1, 0, 0, 0, 0, 1, 1, 1])
    x = PREDICT[1]
    rows = np.tile(x, (4000, 1))
    policy = _learn(LinTS, [1, 2, 3], *data, CTX, v=1.0)
    snap = policy._snapshot
    mean = snap.theta @ x
    sd = np.sqrt(np.einsum("d,kde,e->k", x, snap.A_inv, x))
    exact = nb.gaussian_argmax_probabilities(mean, sd)
    dist = policy.action_distribution(_table(rows[:40]), propensity_draws=999).mean(axis=0)
    np.testing.assert_allclose(dist, exact, atol=0.01)
    ours = policy.decide(_table(rows), seed=1)["arm"].to_numpy()
    np.testing.assert_allclose([(ours == a).mean() for a in (1, 2, 3)], exact, atol=0.03)
    # Documented difference: MABWiser 2.7.4 deep-copies each arm's model (with its RNG) when
    # fitting, so all arms hold RNGs in the same state and, for a row, transform the same
    # standard normals (draws correlated ~0.7-0.9 across arms): its pick frequencies are those
    # of shared draws, not of TS with independent arms (arm 3: ~0.67 against the exact 0.49
    # here). Reproduced with NumPy from its own beta and A^-1.
    mab = _mab([1, 2, 3], *data, LearningPolicy.LinTS(alpha=1.0), CTX)
    picks = np.array(mab.predict(rows))
    z = np.random.default_rng(0).standard_normal((20000, 5))
    shared = []
    for arm in (1, 2, 3):  # its multivariate_normal(method='cholesky'): beta + L z, one z
        model = mab._imp.arm_to_model[arm]
        shared.append((z @ np.linalg.cholesky(model.A_inv).T + model.beta) @ x)
    winners = np.argmax(shared, axis=0)
    np.testing.assert_allclose([(picks == a).mean() for a in (1, 2, 3)],
                               [(winners == k).mean() for k in range(3)], atol=0.03)

# -- MABWiser tests/test_ucb.py and test_greedy.py -------------------------------------------
UCB_CASES = [  # (peer test, arms, decisions, rewards, alpha, published arm)
    ("test_alpha0", [1, 2, 3], [1, 1, 1, 2, 2, 2, 3, 3, 3], [0, 0, 0, 0, 0, 0, 1, 1, 1], 0.0, 3),
    ("test_alpha1", [1, 2, 3], [1, 1, 1, 2, 2, 3, 3, 3, 3, 3], [0, 0, 1, 0, 0, 0, 0, 1, 1, 1],
     1.0, 1),
    ("test_ucb_t1", [1, 2, 3], [1, 1, 1, 3, 2, 2, 3, 1, 3], [0, 1, 1, 0, 1, 0, 1, 1, 1], 0.24, 1),
    ("test_ucb_t2", [1, 2, 3], [1, 1, 1, 3, 2, 2, 3, 1, 3], [0, 1, 1, 0, 1, 0, 1, 1, 1], 1.5, 2),
    ("test_ucb_t3", [1, 2, 4], [1, 1, 4, 4, 2, 2, 1, 1, 4, 2, 1, 4, 1, 2, 4],
     [7, 9, 10, 20, 2, 5, 8, 15, 17, 11, 0, 5, 2, 9, 3], 1.25, 4),
    ("test_ucb_t4", [1, 2, 4], [1, 1, 4, 4, 2, 2, 1, 1, 4, 2, 1, 4, 1, 2, 4],
     [7, 9, 10, 20, 2, 5, 8, 15, 17, 11, 0, 5, 2, 9, 3], 2.0, 4),
    ("test_ucb_t5", ["one", "two", "three"],
     ["one", "one", "one", "three", "two", "two", "three", "one", "three", "two"],
     [1, 0, 1, 0, 1, 0, 1, 1, 1, 0], 1.0, "three"),
    ("test_ucb_t6", ["one", "two", "three"],
     ["one", "one", "one", "three", "two", "two", "three", "one", "three", "two"],
     [2, 7, 7, 9, 1, 3, 1, 2, 6, 4], 1.25, "three"),
    ("test_ucb_t7", ["a", "b", "c"], ["a", "b", "c", "a", "b", "c", "a", "b", "c", "a"],
     [-1.25, 12, 0.7, 10, 12, 9.2, -1, -10, 4, 0], 1.25, "b"),
    ("test_linucb_t7", ["a", "b", "c"],
     ["a", "b", "c", "a", "b", "c", "a", "b", "c", "a", "a"],
     [-1.25, 12, 0.7, 10, 12, 9.2, -1, -10, 4, 0, 1], 1.25, "b"),
    ("test_ucb_t8", ["a", "b", "c"], ["a", "b", "c", "a", "b", "c", "a", "b", "c", "a"],
     [-1.25, 0.7, 12, 10, 12, 9.2, -1, -10, 4, 0], 0.5, "c"),
    ("test_ucb_contexts", [1, 2, 3], [1, 1, 1, 3, 2, 2, 3, 1, 3], [0, 1, 1, 0, 1, 0, 1, 1, 1],
     1.0, 2),
]


@pytest.mark.parametrize("case", UCB_CASES, ids=[c[0] for c in UCB_CASES])
def test_ucb1_decisions_equal_mabwiser(case):
    # MABWiser tests/test_ucb.py (and test_linucb.py::test_linucb_t7, a UCB1 case): the arm of
    # every row (test_ucb_contexts: 10 rows, any context), as published and as MABWiser's.
    _, arms, decisions, rewards, alpha, published = case
    policy = _learn(UCB1, arms, decisions, rewards, alpha=alpha)
    out = policy.decide(pa.table({"ctx": np.zeros(10)}), seed=5)
    assert out["arm"].to_pylist() == [published] * 10
    assert _mab(arms, decisions, rewards, LearningPolicy.UCB1(alpha=alpha)).predict() == published


def _ucb_bounds(policy):
    s = policy._snapshot
    return dict(zip(policy.arms.to_pylist(), s.base_mean + s.scale * np.sqrt(s.base_var)))


def test_ucb1_expectations_fit_twice_partial_fit_and_confidence():
    # tests/test_ucb.py::test_alpha1_expectations, test_alpha0_expectations
    data = ([1, 1, 1, 2, 2, 3, 3, 3, 3, 3], [0, 0, 1, 0, 0, 0, 0, 1, 1, 1])
    policy = _learn(UCB1, [1, 2, 3], *data, alpha=1.0)
    expected = {1: 1.5723073962832794, 2: 1.5174271293851465, 3: 1.5597051824376162}
    assert _ucb_bounds(policy) == pytest.approx(expected, rel=1e-12)
    assert _mab([1, 2, 3], *data, LearningPolicy.UCB1(1.0)).predict_expectations() == \
        pytest.approx(expected, rel=1e-12)
    zero = _learn(UCB1, [1, 2, 3], [1, 1, 1, 2, 2, 2, 3, 3, 3], [0] * 6 + [1] * 3, alpha=0.0)
    assert _ucb_bounds(zero) == {1: 0.0, 2: 0.0, 3: 1.0}
    # test_partial_fit: arm 4 unplayed; then [1, 3, 4] / [0, 1, 1] added (13 rows in all)
    policy = _learn(UCB1, [1, 2, 3, 4], *data, alpha=1.0)
    policy.update(pa.table({"arm": [1, 3, 4], "r": [0.0, 1.0, 1.0]}), arm="arm", reward="r")
    bounds = _ucb_bounds(policy)
    assert policy._snapshot.base_mean[[0, 3]].tolist() == [0.25, 1.0]
    assert bounds[1] == pytest.approx(1.3824639856219572, rel=1e-12)
    assert bounds[4] == pytest.approx(3.2649279712439143, rel=1e-12)
    assert bounds[2] == pytest.approx(1.6015459273656616, rel=1e-12)
    # test_fit_twice: fit() restarts in MABWiser, a new policy here
    refit = _ucb_bounds(_learn(UCB1, [1, 2, 3, 4], [1, 3, 4], [0, 1, 1], alpha=1.0))
    assert refit[1] == pytest.approx(1.4823038073675112)
    assert refit[4] == pytest.approx(2.4823038073675114)
    # test_confidence: _UCB1._get_ucb(mean 20, alpha, total 500, arm count 150)
    for alpha, published in ((1.0, 20.287856633260894), (0.25, 20.07196415831522),
                             (3.33, 20.95856258875877)):
        arms = np.r_[np.zeros(150, int), np.ones(350, int)]
        policy = _learn(UCB1, [0, 1], arms, np.where(arms == 0, 20.0, 0.0), alpha=alpha)
        assert _ucb_bounds(policy)[0] == pytest.approx(published, rel=1e-12)


def test_ucb1_unplayed_arm_is_tried_first():
    # tests/test_ucb.py::test_unused_arm / test_add_arm: MABWiser scores an arm never played 0
    # (here arm 1, 1.572, would win); fastengage's UCB1 scores it +inf, so an arm is tried once
    # before any is exploited (documented difference, README "Policies").
    data = ([1, 1, 1, 2, 2, 3, 3, 3, 3, 3], [0, 0, 1, 0, 0, 0, 0, 1, 1, 1])
    assert _mab([1, 2, 3, 4], *data, LearningPolicy.UCB1(1.0)).predict() == 1
    policy = _learn(UCB1, [1, 2, 3, 4], *data, alpha=1.0)
    assert policy.decide_one(seed=0) == (4, 1.0)
    policy = _learn(UCB1, [1, 2, 3], [1, 2, 1, 1, 2], [10, 4, 3, 5, 6], alpha=1.0).add_arms([4])
    assert policy.arms.to_pylist() == [1, 2, 3, 4] and policy._counts[3] == 0
    assert policy.decide_one(seed=0)[0] in (3, 4)  # both unplayed: a tie, 1/2 each
    assert policy.decide_one(seed=0)[1] == 0.5


GREEDY_CASES = [  # (peer tests, arms, decisions, rewards)
    ("test_epsilon_0 / test_epsilon_50 / test_epsilon25_*", [1, 2, 3],
     [1, 1, 1, 2, 2, 2, 3, 3, 3], [0, 0, 0, 0, 0, 0, 1, 1, 1]),
    ("test_epsilon_0_missing_decision", [1, 2, 3], [1, 1, 1, 3, 3, 3], [0, 0, 0, 1, 1, 1]),
    ("test_greedy_t1 / t2 / test_greedy_contexts", [1, 2, 3], [1, 1, 1, 3, 2, 2, 3, 1, 3],
     [0, 1, 1, 0, 1, 0, 1, 1, 1]),
    ("test_greedy_t3 / t4", [1, 2, 4], [1, 1, 4, 4, 2, 2, 1, 1, 4, 2, 1, 4, 1, 2, 4],
     [7, 9, 10, 20, 2, 5, 8, 15, 17, 11, 0, 5, 2, 9, 3]),
    ("test_greedy_t5", ["one", "two", "three"],
     ["one", "one", "one", "three", "two", "two", "three", "one", "three", "two"],
     [1, 0, 1, 0, 1, 0, 1, 1, 1, 0]),
    ("test_greedy_t7", ["a", "b", "c"], ["a", "b", "c", "a", "b", "c", "a", "b", "c", "a"],
     [-1.25, 12, 0.7, 10, 12, 9.2, -1, -10, 4, 0]),
]


@pytest.mark.parametrize("case", GREEDY_CASES, ids=[c[0] for c in GREEDY_CASES])
@pytest.mark.parametrize("epsilon", [0.0, 0.25, 0.5, 1.0])
def test_epsilon_greedy_exploits_mabwisers_arm_with_exact_propensities(case, epsilon):
    # MABWiser tests/test_greedy.py: its seeded picks with epsilon > 0 depend on its RNG; what
    # carries over is the exploited arm (MABWiser with epsilon 0, i.e. test_epsilon_0's
    # answer) and, ours, the exact propensities 1 - eps + eps / K for it, eps / K otherwise.
    _, arms, decisions, rewards = case
    best = _mab(arms, decisions, rewards, LearningPolicy.EpsilonGreedy(epsilon=0.0)).predict()
    policy = _learn(EpsilonGreedy, arms, decisions, rewards, epsilon=epsilon)
    dist = policy.action_distribution(pa.table({"ctx": np.zeros(3)}))
    want = np.full(len(arms), epsilon / len(arms))
    want[arms.index(best)] += 1.0 - epsilon
    np.testing.assert_allclose(dist, np.tile(want, (3, 1)), rtol=1e-12)
    if epsilon == 0.0:
        assert policy.decide_one(seed=9) == (best, 1.0)


def test_epsilon_greedy_expectations():
    # tests/test_greedy.py::test_predict_expectation / test_fit_twice (first fit): arm means
    arms, decisions, rewards = [1, 2, 3], [1, 1, 1, 2, 2, 2, 3, 3, 3], [10, 20, 30, -10, 0, 16,
                                                                       2, 7, 3]
    policy = _learn(EpsilonGreedy, arms, decisions, rewards, epsilon=0.5)
    out = policy.decide(pa.table({"ctx": [0]}), expected=True, seed=0)
    assert out["expected_reward"].to_pylist() == [[20.0, 2.0, 4.0]]
    # test_partial_fit: + [1, 1, 2, 2, 3, 3] / [2, 4, 4, 6, 6, 8] (MABWiser's expectations
    # are then exploration draws; the means are what both learn)
    policy.update(pa.table({"arm": [1, 1, 2, 2, 3, 3], "r": [2.0, 4, 4, 6, 6, 8]}), arm="arm",
                  reward="r")
    mab = _mab(arms, decisions, rewards, LearningPolicy.EpsilonGreedy(epsilon=0.0))
    mab.partial_fit([1, 1, 2, 2, 3, 3], [2, 4, 4, 6, 6, 8])
    assert policy._snapshot.base_mean.tolist() == pytest.approx(
        [mab.predict_expectations()[a] for a in arms], rel=1e-12)


# -- MABWiser tests/test_thompson.py --------------------------------------------------------
def test_thompson_boolean_rewards_and_counts():
    # tests/test_thompson.py::test_thompson / test_thompson_boolean_reward: boolean rewards are
    # 0/1 (a "clicked" column), the same statistics as the 0/1 numbers.
    decisions = [1, 1, 1, 2, 2, 3, 3, 3, 3, 3]
    flags = [False, True, True, False, False, False, False, True, True, True]
    as_bool = BetaTS([1, 2, 3]).update(pa.table({"arm": decisions, "r": flags}), arm="arm",
                                       reward="r")
    as_num = _learn(BetaTS, [1, 2, 3], decisions, np.asarray(flags, float))
    assert as_bool._snapshot.beta_a.tolist() == as_num._snapshot.beta_a.tolist() == [3, 1, 4]
    assert as_bool._snapshot.beta_b.tolist() == as_num._snapshot.beta_b.tolist() == [2, 3, 3]
    with pytest.raises(InputError, match="'r' has 1 null"):
        BetaTS([1, 2]).update(pa.table({"arm": [1, 2], "r": [True, None]}), arm="arm",
                              reward="r")
    # test_thompson_convert_to_binary / test_fit_twice / test_partial_fit / test_add_arm:
    # MABWiser binarizes with a callback and counts successes and failures from a prior of 1;
    # here the user binarizes the column and Beta(prior_alpha + s, prior_beta + f) holds the
    # same counts.
    threshold = {1: 7, 2: 12, 3: 0, 4: 7}

    def learn(policy, decisions, rewards):
        flags = [r >= threshold[d] for d, r in zip(decisions, rewards)]
        return policy.update(pa.table({"arm": decisions, "r": flags}), arm="arm", reward="r")

    policy = learn(BetaTS([1, 2, 3]), [1, 2, 1, 1, 2], [10, 4, 3, 5, 6])
    assert policy._snapshot.beta_a.tolist() == [2, 1, 1]  # arm_to_success_count
    assert policy._snapshot.beta_b.tolist() == [3, 3, 1]  # arm_to_fail_count
    learn(policy, [1, 2, 3, 1, 2, 3], [1, 0, 3, 7, 11, 22])  # partial_fit
    assert policy._snapshot.beta_a.tolist() == [3, 1, 3]
    assert policy._snapshot.beta_b.tolist() == [4, 5, 1]
    refit = learn(BetaTS([1, 2, 3]), [1, 2, 3, 1, 2, 3], [1, 0, 3, 7, 11, 22])  # fit again
    assert refit._snapshot.beta_a.tolist() == [2, 1, 3]
    assert refit._snapshot.beta_b.tolist() == [2, 3, 1]
    policy.add_arms([4])
    assert (policy._snapshot.beta_a[3], policy._snapshot.beta_b[3]) == (1, 1)
    learn(policy, [4, 4, 4], [8, 0, 1])
    assert (policy._snapshot.beta_a[3], policy._snapshot.beta_b[3]) == (2, 3)


def test_thompson_rejects_rewards_outside_0_1():
    # tests/test_thompson.py::test_thompson_non_binary_without_threshold (ValueError there)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        _learn(BetaTS, [1, 2, 3], [1, 1, 1, 2, 2, 3, 3, 3, 3, 3],
               [0, 1, 1, 0, 0, 0, 0, 1.25, 1, 1])
    with pytest.raises(InputError, match="not a valid reward"):
        BetaTS([1, 2]).update_one(None, 1, -0.5)


def test_thompson_choice_frequencies_equal_mabwisers():
    # tests/test_thompson.py::test_thompson_unused_arm / test_thompson_multiple data: both draw
    # from Beta(1 + successes, 1 + failures); MABWiser's pick frequencies over 3000 predictions
    # and our propensities (the same argmax probabilities) agree within Monte Carlo error.
    arms, decisions = [1, 2, 3, 4], [1, 1, 1, 2, 2, 3, 3, 3, 3, 3]
    rewards = [0, 1, 1, 0, 0, 0, 0, 1, 1, 1]
    mab = _mab(arms, decisions, rewards, LearningPolicy.ThompsonSampling())
    picks = np.array(mab.predict([[0]] * 3000))
    freq = np.array([(picks == a).mean() for a in arms])
    policy = _learn(BetaTS, arms, decisions, rewards)
    dist = policy.action_distribution(pa.table({"ctx": np.zeros(50)}),
                                      propensity_draws=999).mean(axis=0)  # 50k draws
    np.testing.assert_allclose(dist, freq, atol=0.03)  # 4.4 s.e. of 3000 picks at p = 0.5
    out = policy.decide(pa.table({"ctx": np.zeros(4000)}), seed=2)["arm"].to_numpy()
    np.testing.assert_allclose([(out == a).mean() for a in arms], dist, atol=0.035)


# -- MABWiser tests/test_invalid.py and edge cases ------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: EpsilonGreedy(["a", "b"], epsilon="one"),     # test_invalid_epsilon_type
    lambda: EpsilonGreedy(["a", "b"], epsilon=2),         # test_invalid_epsilon_value
    lambda: EpsilonGreedy(["a", "b"], epsilon=-1),
    lambda: LinUCB(["a"], features=F, alpha=-1),          # test_invalid_ridge_alpha_value
    lambda: LinUCB(["a"], features=F, alpha="1"),         # test_invalid_ridge_alpha_type
    lambda: LinTS(["a"], features=F, l2=-1),              # test_invalid_ridge_l2_lambda_value
    lambda: LinTS(["a"], features=F, l2=0),
    lambda: LinUCB(["a"], features=F, l2=None),           # test_invalid_ridge_l2_lambda_type
    lambda: UCB1(["a"], alpha=-1),                        # test_invalid_ucb_alpha_value
    lambda: UCB1(["a"], alpha=np.nan),
    lambda: UCB1(["a"], alpha=[1]),                       # test_invalid_ucb_alpha_type
    lambda: LinUCB(["a"], features=F, scale=True),        # test_invalid_lp_arg: unknown argument
    lambda: EpsilonGreedy("ab"),                          # test_invalid_arm_not_list
    lambda: EpsilonGreedy([1, 1]),
    lambda: EpsilonGreedy([1, None]),
    lambda: EpsilonGreedy([1.5, 2.5]),
    lambda: EpsilonGreedy([2 ** 64 - 1]),                 # beyond int64
    lambda: EpsilonGreedy([datetime.datetime(2018, 1, 1)]),  # test_linucb_t9/t10: datetimes
    lambda: EpsilonGreedy([1, 2, 3]).add_arms([None]),    # test_invalid_add_arm
    lambda: EpsilonGreedy([1, 2, 3]).add_arms([np.nan]),
    lambda: EpsilonGreedy([1, 2, 3]).add_arms([np.inf]),
    lambda: EpsilonGreedy([1, 2, 3]).add_arms([3]),
    lambda: EpsilonGreedy([1, 2, 3]).add_arms(["x"]),
    lambda: EpsilonGreedy([0, 1]).decide(pa.table({"c": [0]}), seed=[0, 1]),  # test_invalid_seed
    lambda: EpsilonGreedy([0, 1]).decide(pa.table({"c": [0]}), seed="s"),
    lambda: LinUCB([0, 1], features=F).decide_one(np.ones(4)),    # context of the wrong length
    lambda: LinUCB([0, 1], features=F).decide_one(np.ones((1, 5))),  # test_invalid_2d_context_*
    lambda: LinUCB([0, 1], features=F).decide(pa.table({"f0": [1.0]})),  # missing feature column
], ids=lambda f: "")
def test_invalid_parameters_and_arguments_raise_input_error(make):
    # MABWiser tests/test_invalid.py (TypeError / ValueError there; InputError, a ValueError,
    # naming the argument here)
    with pytest.raises(InputError):
        make()


@pytest.mark.parametrize("rewards, problem", [
    ([0, 0, 0, 0, 0, 0, 1, 1, None], "null"),      # test_rewards_null_list / _array / _df
    ([0, 0, 0, 0, 0, 0, 1, 1, np.nan], "NaN"),     # test_rewards_nan_array
    ([0, 0, 0, 0, 0, 0, 1, 1, np.inf], "inf"),     # test_rewards_inf_array / _df
    (["0", "0", "0", "0", "0", "0", "1", "1", "1"], "type string"),
])
@pytest.mark.parametrize("cls", [EpsilonGreedy, LinUCB])
def test_bad_rewards_name_the_column_and_learn_nothing(rewards, problem, cls):
    # MABWiser tests/test_invalid.py::test_rewards_*
    policy = cls([1, 2, 3], **({"features": ["x"]} if cls is LinUCB else {}))
    data = pa.table({"x": np.ones(9), "arm": [1, 1, 1, 2, 2, 2, 3, 3, 3],
                     "r": pa.array(rewards, pa.string() if problem == "type string" else None)})
    with pytest.raises(InputError, match=f"reward column 'r' has .*{problem}"):
        policy.update(data, arm="arm", reward="r")
    assert policy._counts.sum() == 0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_contexts_raise_and_leave_the_policy_unchanged(bad):
    # MABWiser nan/inf contexts: a clear error naming the column (batch) or x (one row), and the
    # policy keeps learning afterwards. update_one with a NaN once put the NaN in the Gram sums
    # for good ("not positive definite" on every later update): fixed, checked first now.
    policy = _learn(LinUCB, [1, 2, 3], [1, 2, 3], [1, 0, 1], CTX[:3])
    before = policy._G.copy()
    X = CTX[:3].copy()
    X[1, 2] = bad
    with pytest.raises(InputError, match="'f2' hold NaN or infinite"):
        policy.update(_table(X, arm=[1, 2, 3], r=[1.0, 1, 1]), arm="arm", reward="r")
    with pytest.raises(InputError, match="'f2' hold NaN or infinite"):
        policy.decide(_table(X), seed=0)
    with pytest.raises(InputError, match="x holds NaN or infinite"):
        policy.update_one(X[1], 2, 1.0)
    with pytest.raises(InputError, match="NaN or infinite"):
        policy.decide_one(X[1], seed=0)
    np.testing.assert_array_equal(policy._G, before)
    policy.update_one(CTX[4], 2, 1.0)
    assert np.isfinite(policy._snapshot.theta).all()


def test_overflowing_statistics_raise_and_leave_the_policy_unchanged():
    # Edge case beyond the peer's: finite values whose squares overflow float64 (x = 1e200,
    # rewards 1e308) once left inf in the statistics (the policy then decided from NaN and
    # could not be saved); now nothing is learned and the error names the column.
    for policy, data in (
            (LinUCB([1, 2], features=["x"]), {"x": [1e200, 1.0], "arm": [1, 2], "r": [1.0, 1]}),
            (EpsilonGreedy([1, 2]), {"arm": [1, 1], "r": [1e308, 1e308]})):
        with pytest.raises(InputError, match="overflows float64"):
            policy.update(pa.table(data), arm="arm", reward="r")
        assert policy._counts.sum() == 0 and not policy._G.any() and not policy._sums2.any()
    policy = LinUCB([1, 2], features=["x"])
    with pytest.raises(InputError, match="overflows float64"):
        policy.update_one(np.array([1e200]), 1, 1.0)
    one = pa.table({"arm": [1], "r": [1.2e154]})  # its square is finite, twice it is not
    other = EpsilonGreedy([1, 2]).update(one, arm="arm", reward="r")
    mine = EpsilonGreedy([1, 2]).update(one, arm="arm", reward="r")
    with pytest.raises(InputError, match="merge overflows"):
        mine.merge(other)
    assert mine._counts.tolist() == [1, 0] and mine._sums[0] == 1.2e154


def test_untrained_single_arm_empty_and_odd_inputs():
    # test_invalid.py::test_predict_with_no_fit / test_exps_without_fit: MABWiser raises before
    # fit; a fastengage policy decides from its priors (documented): uniform over tied arms.
    out = LinUCB([1, 2, 3], features=F).decide(_table(PREDICT), seed=0, expected=True)
    assert out["propensity"].to_pylist() == pytest.approx([1 / 3, 1 / 3])
    assert out["expected_reward"].to_pylist() == [[0.0] * 3] * 2
    assert EpsilonGreedy([1, 2]).decide_one(seed=0)[1] == 0.5
    # one arm: always it, propensity 1, for every kind
    for cls in (EpsilonGreedy, UCB1, BetaTS, LinUCB, LinTS):
        policy = _learn(cls, ["only"], ["only"] * 3, [1, 0, 1],
                        CTX[:3] if cls in (LinUCB, LinTS) else None)
        got = policy.decide(_table(PREDICT) if cls in (LinUCB, LinTS) else
                            pa.table({"c": [0, 0]}), seed=1)
        assert got["arm"].to_pylist() == ["only"] * 2 and got["propensity"].to_pylist() == [1, 1]
    # empty inputs: nothing learned, an empty (typed) decision table
    empty = _table(np.zeros((0, 5)), arm=pa.array([], pa.int64()), r=pa.array([], pa.float64()))
    policy = LinUCB([1, 2], features=F).update(empty, arm="arm", reward="r")
    assert policy._counts.sum() == 0
    out = policy.decide(_table(np.zeros((0, 5)), c=pa.array([], pa.string())), id="c")
    assert out.num_rows == 0 and out.schema.field("arm").type == pa.int64()
    # huge and negative integer ids, uint64 / int8 / dictionary columns, float32 features,
    # unsorted and duplicated rows: the same statistics as the plain int64 / float64 table
    ids = [2 ** 62, -2 ** 63, 0]
    rows = [2, 0, 0, 1, 2, 2, 0]
    X = np.random.default_rng(1).normal(size=(7, 5))
    r = np.arange(7.0)
    plain = _learn(LinUCB, ids, [ids[k] for k in rows], r, X)
    shuffled = np.random.default_rng(2).permutation(7)
    again = _learn(LinUCB, ids, [ids[k] for k in np.array(rows)[shuffled]], r[shuffled],
                   X[shuffled])
    np.testing.assert_allclose(again._snapshot.theta, plain._snapshot.theta, rtol=1e-12)
    f32 = LinUCB(ids, features=F).update(pa.table(
        {**{f: pa.array(X[:, j].astype(np.float32)) for j, f in enumerate(F)},
         "arm": pa.array([ids[k] for k in rows]).dictionary_encode(), "r": r}),
        arm="arm", reward="r")
    ref = _learn(LinUCB, ids, [ids[k] for k in rows], r, X.astype(np.float32).astype(float))
    np.testing.assert_array_equal(f32._G, ref._G)
    small = EpsilonGreedy([1, 2]).update(pa.table({"arm": pa.array([1, 2, 2], pa.int8()),
                                                   "r": [1.0, 0, 0]}), arm="arm", reward="r")
    assert small._counts.tolist() == [1, 2]
    with pytest.raises(InputError, match="does not know: 18446744073709551615"):
        EpsilonGreedy([1, 2]).update(pa.table({"arm": pa.array([2 ** 64 - 1], pa.uint64()),
                                               "r": [1.0]}), arm="arm", reward="r")
    with pytest.raises(InputError, match="does not know"):
        EpsilonGreedy([1, 2]).decide(pa.table({"e": pa.array([[2 ** 64 - 1]],
                                                             pa.list_(pa.uint64()))}),
                                     eligible="e")
    # test_remove_arm has no counterpart: an arm is retired by leaving it out of `eligible`
    policy = _learn(UCB1, [1, 2, 3], [1, 1, 1, 3, 2, 2, 3, 1, 3], [0, 1, 1, 0, 1, 0, 1, 1, 1])
    out = policy.decide(pa.table({"e": [[1, 3]] * 5}), eligible="e", seed=0)
    assert set(out["arm"].to_pylist()) <= {1, 3}


# -- Open Bandit Pipeline tests/ope -----------------------------------------------------------
def _action_dist(n, K, L, rng):
    """obp tests/ope/conftest.py::generate_action_dist"""
    x = rng.uniform(size=(n, K, L))
    return x / x.sum(axis=1)[:, None, :]


def _small(rng, **cols):
    """The 5-round, 4-action, 3-slot inputs of obp's invalid-input tables, as Arrow logs. obp
    draws positions ``np.random.choice(3, size=5)``, so a slot may be missing: here slot 1 is."""
    base = {"a": np.zeros(5, np.int64), "r": np.zeros(5), "p": np.ones(5),
            "pos": np.array([0, 2, 0, 2, 2])}
    return pa.table({**base, **cols})


OPE = dict(action="a", reward="r", propensity="p", position="pos", n_bootstrap=0)
BAD_OPE_INPUTS = [  # (obp test and description, logs columns, target, reward model, our message)
    ("ipw/dr: `pscore` must be positive", {"p": np.arange(5.0)}, None, None,
     r"propensity column 'p': 4 round\(s\) .* outside \(0, 1\] \(first at row 0: 0.0\)"),
    ("pscore above 1 (not a probability)", {"p": np.full(5, 1.5)}, None, None,
     r"propensity column 'p': 5 round"),
    ("pscore NaN", {"p": np.r_[1.0, np.nan, 1, 1, 1]}, None, None, "'p' has 1 NaN"),
    ("pscore null", {"p": pa.array([1.0, None, 1, 1, 1])}, None, None, "'p' has 1 null"),
    ("ipw/dr: `action` elements must be integers in the range (-1)",
     {"a": np.full(5, -1)}, None, None, "action column 'a' .* does not know: -1"),
    ("ipw/dr: `action` elements must be integers in the range (8)",
     {"a": np.full(5, 8)}, None, None, "does not know: 8"),
    ("ipw/dr: `action` elements must be integers (float action)", {"a": np.zeros(5)}, None,
     None, "with a target array, pass arms="),
    ("action null", {"a": pa.array([0, None, 0, 0, 0])}, None, None, "'a' has 1 null"),
    ("reward NaN", {"r": np.r_[0.0, np.nan, 0, 0, 0]}, None, None, "'r' has 1 NaN"),
    ("ipw/dr: `reward` must be 1D array (a string column)", {"r": ["4"] * 5}, None, None,
     "'r' has type string"),
    ("position null", {"pos": pa.array([0, None, 1, 2, 0])}, None, None, "'pos' has 1 null"),
    ("meta: `action_dist` must be a probability distribution", {},
     lambda rng: _action_dist(5, 4, 3, rng) * 2, None,
     r"target: 5 round\(s\) .* do not sum to 1 \(first at row 0: sum 2.0\)"),
    ("negative target probability", {},
     lambda rng: np.tile([[[1.5], [-0.5], [0.0], [0.0]]], (5, 1, 3)), None, "negative"),
    ("meta: Expected `action_dist.shape[0]` (rows)", {},
     lambda rng: _action_dist(4, 4, 3, rng), None, r"shape \(5, 4\) or \(5, 4, 3\)"),
    ("meta: `action_dist` must be 3D array (1-D)", {}, lambda rng: np.full(5, 0.25), None,
     r"\(rows, K\) or \(rows, K, positions\)"),
    ("meta: `action_dist` must be 3D array ('3')", {}, lambda rng: "3", None,
     "path '3' does not exist"),
    ("meta: `action_dist` must be 3D array (None)", {}, lambda rng: None, None,
     "unsupported input of type NoneType"),
    ("dm/dr: Expected `estimated_rewards_by_reg_model.shape == action_dist.shape`", {}, None,
     np.zeros((5, 4, 2)), r"reward_model array must have shape \(5, 4\[, 3\]\)"),
    ("dm/dr: `estimated_rewards_by_reg_model` must be 3D array ('4')", {}, None, "4",
     "scikit-learn estimator or an array"),
    ("q_hat NaN", {}, None, np.full((5, 4, 3), np.nan), "reward_model: 5 round"),
]


@pytest.mark.parametrize("case", BAD_OPE_INPUTS, ids=[c[0] for c in BAD_OPE_INPUTS])
def test_ope_invalid_inputs_name_the_problem(case):
    # obp tests/ope/test_ipw_estimators.py::test_ipw_using_invalid_input_data,
    # test_dr_estimators.py::test_dr_using_invalid_input_data,
    # test_dm_estimators.py::test_dm_using_invalid_input_data and
    # test_meta.py::test_meta_create_estimator_inputs_using_invalid_input_data: every
    # estimator at once here (one call), an InputError naming the column or argument.
    _, cols, target, q_hat, message = case
    rng = np.random.default_rng(12345)
    target = _action_dist(5, 4, 3, rng) if target is None else target(rng)  # None: valid
    q_hat = np.zeros((5, 4, 3)) if q_hat is None else q_hat
    with pytest.raises(InputError, match=message):
        evaluate(_small(rng, **cols), target=target, reward_model=q_hat, **OPE)


@pytest.mark.parametrize("kw", [
    {"clip": ""}, {"clip": None}, {"clip": -1.0}, {"clip": np.nan},   # test_ipw_init_using_...
    {"switch_tau": ""}, {"switch_tau": -1.0}, {"dros_lambda": None},  # test_dr_init_using_...
    {"dros_lambda": np.nan},
    {"n_bootstrap": -1}, {"n_bootstrap": "s"},             # test_meta_estimate_intervals_...
    {"alpha": -1.0}, {"alpha": 2.0}, {"alpha": "0"}, {"seed": "s"},
    {"estimators": ["ipw", "sg-ipw"]}, {"estimators": []},
])
def test_ope_invalid_hyperparameters(kw):
    rng = np.random.default_rng(0)
    args = {**OPE, **kw}
    with pytest.raises(InputError):
        evaluate(_small(rng), target=_action_dist(5, 4, 3, rng), reward_model=np.zeros((5, 4, 3)),
                 **args)


def test_ope_missing_columns_are_named():
    # obp tests/ope/test_meta.py::test_meta_post_init (a bandit_feedback without a necessary
    # key raises "Missing key"): a missing column raises ColumnNotFoundError naming it.
    from fastengage.errors import ColumnNotFoundError

    rng = np.random.default_rng(0)
    for missing, role in (("a", "action"), ("r", "reward"), ("p", "propensity"),
                          ("pos", "position")):
        logs = _small(rng).drop_columns([missing])
        with pytest.raises(ColumnNotFoundError, match=f"{role} column '{missing}'"):
            evaluate(logs, target=_action_dist(5, 4, 3, rng), reward_model=np.zeros((5, 4, 3)),
                     **OPE)


@pytest.mark.parametrize("kw, message", [
    ({"reward_model": "RandomForest"}, "scikit-learn estimator or an array"),  # base_model
    ({"n_folds": 0}, "n_folds must be a positive integer"),     # n_folds == 0, must be >= 1
    ({"n_folds": "a"}, "n_folds must be a positive integer"),   # n_folds must be an int
    ({"action_context": np.zeros(4)}, r"finite \(4, m\) array"),  # must be 2D array
    ({"action_context": np.zeros((3, 2))}, r"finite \(4, m\) array"),
    ({"action_context": np.full((4, 2), np.nan)}, r"finite \(4, m\) array"),
])
def test_reward_model_invalid_arguments(kw, message):
    # obp tests/ope/test_regression_models.py::test_initializing_regression_models_using_
    # invalid_input_data / test_fitting_regression_models_using_invalid_input_data: the
    # arguments of the default reward model's fit (obp's RegressionModel)
    rng = np.random.default_rng(0)
    logs = pa.table({"a": np.arange(12) % 4, "r": np.arange(12) % 2 * 1.0, "p": np.full(12, 0.25),
                     "x": rng.normal(size=12)})
    with pytest.raises(InputError, match=message):
        evaluate(logs, action="a", reward="r", propensity="p", features=["x"], estimators="dm",
                 target=np.full((12, 4), 0.25), n_bootstrap=0, **kw)


def test_ope_valid_hyperparameters_and_all_zero_rewards():
    # obp tests/ope/test_dr_estimators.py::test_dr_init_using_valid_input_data (lambda inf,
    # 0.3, 1) and test_dr_variants_using_valid_input_data: rewards and q_hat all zero, so every
    # estimate is 0.0; obp's positions np.random.choice(3, size=5) need not show every slot
    # (0-based, they index the target's slots directly; a missing slot 1 once raised a shape
    # error). Without a 0 ({1, 2} of 3 slots) 0-based and 1-based labels cannot be told apart:
    # an error (obp would take them as 0-based).
    rng = np.random.default_rng(7)
    pi = _action_dist(5, 4, 3, rng)
    for positions in (np.array([0, 2, 0, 2, 2]), np.array([0, 1, 1, 0, 0]), np.zeros(5, int)):
        logs = _small(rng, a=rng.choice(4, size=5), p=rng.uniform(0.5, 1.0, size=5),
                      pos=positions)
        for lam in (np.inf, 0.3, 1, np.float32(0.5)):
            out = evaluate(logs, target=pi, reward_model=np.zeros((5, 4, 3)), clip=lam,
                           switch_tau=lam, dros_lambda=lam, **OPE)
            assert out["value"].to_pylist() == [0.0] * 7
    # with a reward: obp's own formulas (slot = position value, tests/naive_bandits.py)
    a, pos = rng.choice(4, size=5), np.array([0, 2, 0, 2, 2])
    r, p, q = rng.random(5), rng.uniform(0.2, 1.0, 5), rng.random((5, 4, 3))
    out = evaluate(_small(rng, a=a, r=r, p=p, pos=pos), target=pi, reward_model=q, **OPE)
    lambdas = {"switch-dr": 100.0, "dr-os": 100.0}
    for name, value in zip(out["estimator"].to_pylist(), out["value"].to_pylist()):
        ref = nb.obp_round_rewards(name, r, a, p, pi, q, pos, lambdas.get(name, np.inf)).mean()
        assert value == pytest.approx(ref, rel=1e-12, abs=1e-15), name
    with pytest.raises(InputError, match=r"shows 2 position\(s\) \[1, 2\] but the target "
                       r"has 3 slots"):
        evaluate(_small(rng, pos=np.array([1, 2, 1, 2, 2])), target=pi, reward_model=q, **OPE)
    # positions that are labels (not 0..L-1) keep being dense-ranked
    ranked = evaluate(_small(rng, a=a, r=r, p=p, pos=pos * 10 + 1), target=pi[:, :, [0, 2]],
                      reward_model=q[:, :, [0, 2]], **OPE)
    assert ranked["value"].to_pylist() == out["value"].to_pylist()


@pytest.fixture(scope="module")
def synthetic():
    """obp's SyntheticBanditDataset shape (tests/ope/conftest.py::synthetic_bandit_feedback:
    10 actions, 5 context dimensions, logistic rewards, a softmax behaviour policy), drawn with
    NumPy; ``random_action_dist`` is obp's Random policy: uniform."""
    rng = np.random.default_rng(12345)
    n, K, d = 10_000, 10, 5
    X = rng.normal(size=(n, d))
    q = 1.0 / (1.0 + np.exp(-(X @ rng.normal(size=(d, K)) + rng.normal(size=K))))
    logits = X @ rng.normal(size=(d, K))
    pi_b = np.exp(logits - logits.max(axis=1, keepdims=True))
    pi_b /= pi_b.sum(axis=1, keepdims=True)
    action = (pi_b.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1).clip(max=K - 1)
    reward = (rng.random(n) < q[np.arange(n), action]).astype(float)
    logs = pa.table({"a": action, "r": reward, "p": pi_b[np.arange(n), action]})
    return logs, q[:, :, None], np.full((n, K, 1), 1.0 / K)


def test_ope_invariants_of_obps_random_policy_tests(synthetic):
    logs, q, pi = synthetic
    kw = dict(action="a", reward="r", propensity="p", target=pi, n_bootstrap=0)

    def values(**extra):
        out = evaluate(logs, **{**kw, **extra})
        return dict(zip(out["estimator"].to_pylist(), out["value"].to_pylist()))

    # test_dm_estimators.py::test_dm_using_random_evaluation_policy: a perfect reward model
    # makes DM the true value (np.average of q under the target, averaged over rounds)
    got = values(reward_model=q, switch_tau=0.0, dros_lambda=0.0)
    truth = np.average(q[:, :, 0], weights=pi[:, :, 0], axis=1).mean()
    assert got["dm"] == pytest.approx(truth, rel=1e-12)
    # test_dr_os_using_random_evaluation_policy / test_switch_dr_using_random_evaluation_policy:
    # DR-OS(0) == DM == Switch-DR(0); Switch-DR(1e10) == DR; DR-OS(inf) ~ DR within 1e-5
    assert got["dr-os"] == got["dm"] == got["switch-dr"]
    big = values(reward_model=q, switch_tau=1e10, dros_lambda=np.inf)
    assert big["switch-dr"] == big["dr"]
    assert abs(big["dr-os"] - big["dr"]) < 1e-5
    # test_boundedness_of_snipw / test_boundedness_of_sndr: pscore ** 3 (tiny propensities)
    cubed = logs.set_column(2, "p", pa.array(logs["p"].to_numpy() ** 3))
    out = evaluate(cubed, **{**kw, "reward_model": q})
    bounded = dict(zip(out["estimator"].to_pylist(), out["value"].to_pylist()))
    assert bounded["snipw"] <= 1 and bounded["sndr"] <= 2
    assert bounded["ipw"] > 1  # the unnormalised estimate is not bounded: the check can fail
    # test_ipw_using_random_evaluation_policy: a float per estimator, here with the interval
    out = evaluate(logs, **{**kw, "reward_model": q, "n_bootstrap": 100, "seed": 1})
    assert all(lo <= v <= hi for v, lo, hi in zip(out["value"].to_pylist(),
                                                   out["ci_lower"].to_pylist(),
                                                   out["ci_upper"].to_pylist()))
    # test_meta_estimate_intervals_using_valid_input_data: n_bootstrap_samples 1 is valid
    one = evaluate(logs, **{**kw, "reward_model": q, "n_bootstrap": 1, "seed": 1})
    assert one["ci_lower"].to_pylist() == one["ci_upper"].to_pylist()
    # test_meta_estimated_rewards_by_reg_model_inputs: obp's DM needs q_hat; fastengage fits
    # its default reward model (logistic regression, cross-fitted) when none is given
    fitted = evaluate(logs.slice(0, 2000), estimators="dm", **{**kw, "target": pi[:2000]})
    assert 0.0 < fitted["value"][0].as_py() < 1.0
    # one round, one action; float32 propensities; rounds in any order give the same values
    single = evaluate(pa.table({"a": [0], "r": [1.0], "p": pa.array([0.5], pa.float32())}),
                      action="a", reward="r", propensity="p", target=np.ones((1, 1)),
                      reward_model=np.zeros((1, 1)), n_bootstrap=0)
    assert dict(zip(single["estimator"].to_pylist(), single["value"].to_pylist()))["ipw"] == 2.0
    order = np.random.default_rng(3).permutation(logs.num_rows)
    shuffled = evaluate(logs.take(order), **{**kw, "target": pi[order], "reward_model": q[order]})
    np.testing.assert_allclose(shuffled["value"].to_numpy(),
                               evaluate(logs, **{**kw, "reward_model": q})["value"].to_numpy(),
                               rtol=1e-12)
    with pytest.raises(InputError, match="logs are empty"):
        evaluate(logs.slice(0, 0), **{**kw, "target": pi[:0], "reward_model": q[:0]})


def test_default_reward_model_edge_cases():
    # obp's RegressionModel (its LogisticRegression) raises on a training fold with one reward
    # class - all-zero rewards, or a fold without a click when clicks are rare; fastengage
    # predicts that constant there. Non-0/1 rewards with the default (logistic) model: a clear
    # error instead of scikit-learn's "Unknown label type"; a Policy target without an eligible
    # arm on a round: an error saying so.
    x = np.arange(12.0)
    logs = pa.table({"a": [0, 1] * 6, "r": np.zeros(12), "p": np.full(12, 0.5), "x": x})
    kw = dict(action="a", reward="r", propensity="p", features=["x"], n_bootstrap=0,
              target=np.full((12, 2), 0.5))
    out = evaluate(logs, estimators=["dm", "dr", "sndr"], **kw)
    assert out["value"].to_pylist() == [0.0, 0.0, 0.0]
    rare = logs.set_column(1, "r", pa.array(np.r_[1.0, np.zeros(11)]))
    got = evaluate(rare, estimators=["dm"], n_folds=3, **kw)["value"][0].as_py()
    assert 0.0 <= got < 1.0
    with pytest.raises(InputError, match="needs 0/1 rewards"):
        evaluate(logs.set_column(1, "r", pa.array(np.linspace(0, 3, 12))), estimators=["dm"],
                 **kw)
    from sklearn.linear_model import Ridge

    ridge = evaluate(logs.set_column(1, "r", pa.array(np.linspace(0, 3, 12))),
                     estimators=["dm"], reward_model=Ridge(), **kw)
    assert np.isfinite(ridge["value"][0].as_py())
    policy = LinUCB(["a", "b"], features=["x"])
    with pytest.raises(InputError, match="no eligible arm on 1 round"):
        evaluate(pa.table({"x": [1.0, 2.0], "a": ["a", "b"], "r": [1.0, 0.0], "p": [0.5, 0.5],
                           "e": [["a"], []]}), action="a", reward="r", propensity="p",
                 target=policy, eligible="e", estimators=["ipw"], n_bootstrap=0)


@pytest.mark.parametrize("cls", [LinUCB, LinTS, LinEpsilonGreedy])
def test_partial_fit_snapshot_equals_a_fresh_one(cls):
    # MABWiser's partial_fit path as a service runs it (update_one per event, then a batch):
    # the snapshot, whose arms' singular-value bounds are recomputed only for the arms an
    # update touched, equals bit for bit one built from the same statistics at once.
    rng = np.random.default_rng(5)
    X, arms, r = rng.normal(size=(400, 5)), rng.integers(0, 6, 400), rng.random(400)
    policy = cls(list(range(7)), features=F)
    for i in range(250):
        policy.update_one(X[i], int(arms[i]), r[i])
    policy.update(_table(X[250:], arm=arms[250:], r=r[250:]), arm="arm", reward="r")
    fresh = cls(list(range(7)), features=F)
    for name in ("_G", "_g", "_counts", "_sums", "_sums2"):
        setattr(fresh, name, getattr(policy, name).copy())
    fresh._refresh()
    for name in ("theta", "A_inv", "L_inv", "singular", "bounds", "arm_params"):
        np.testing.assert_array_equal(getattr(policy._snapshot, name),
                                      getattr(fresh._snapshot, name), err_msg=name)
    assert policy.decide(_table(X), seed=1).equals(fresh.decide(_table(X), seed=1))


@pytest.mark.parametrize("bad", ["nan", "arm", "reward", "overflow"])
def test_a_stream_is_learned_all_or_nothing(bad):
    # MABWiser validates all of fit()'s input before it learns; a fastengage stream once kept
    # the batches before a bad one (a corrected retry then counted them twice). Now nothing of
    # the input is learned, and a good stream equals the same rows as one table.
    rng = np.random.default_rng(8)
    X, arms, r = rng.normal(size=(300, 5)), rng.integers(0, 3, 300), rng.random(300)
    batches = [_table(X[i:i + 100], arm=arms[i:i + 100], r=r[i:i + 100]).to_batches()[0]
               for i in (0, 100, 200)]
    last = batches[2].to_pydict()
    if bad == "nan":
        last["f1"][5] = np.nan
    elif bad == "arm":
        last["arm"][5] = 9
    elif bad == "reward":
        last["r"][5] = None
    else:
        last["f1"][5] = 1e200
    broken = batches[:2] + [pa.RecordBatch.from_pydict(last, schema=batches[0].schema)]
    policy = _learn(LinUCB, [0, 1, 2], [0, 1, 2], [1.0, 0.0, 1.0], CTX[:3])
    before = [a.copy() for a in policy._stats()]
    with pytest.raises(InputError):
        policy.update(pa.RecordBatchReader.from_batches(batches[0].schema, broken), arm="arm",
                      reward="r")
    for now, then in zip(policy._stats(), before):
        np.testing.assert_array_equal(now, then)
    streamed = LinUCB([0, 1, 2], features=F).update(
        pa.RecordBatchReader.from_batches(batches[0].schema, batches), arm="arm", reward="r")
    whole = LinUCB([0, 1, 2], features=F).update(pa.Table.from_batches(batches), arm="arm",
                                                 reward="r")
    assert streamed._counts.tolist() == whole._counts.tolist()
    np.testing.assert_allclose(streamed._G, whole._G, rtol=1e-12)
    np.testing.assert_allclose(streamed._snapshot.theta, whole._snapshot.theta, rtol=1e-9)
