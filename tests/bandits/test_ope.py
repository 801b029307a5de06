"""Off-policy evaluation against Open Bandit Pipeline's formulas (tests/naive_bandits.py) on
generated logs and on the Open Bandit Dataset sample, and the end-to-end BTS check."""
from __future__ import annotations

import naive_bandits as nb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastengage.bandits import LinEpsilonGreedy, evaluate, load_open_bandit, load_open_bandit_items
from fastengage.errors import InputError

NAMES = ["ipw", "snipw", "dm", "dr", "sndr", "switch-dr", "dr-os"]


def _generated(n, K, L, seed):
    rng = np.random.default_rng(seed)
    pb = rng.dirichlet(np.ones(K), size=n)
    action = np.array([rng.choice(K, p=p) for p in pb])
    pscore = pb[np.arange(n), action]
    position = rng.permutation(np.arange(n) % L)  # every slot occurs (positions are dense-ranked)
    reward = (rng.random(n) < 0.3).astype(float)
    pi_e = rng.dirichlet(np.ones(K) * 0.5, size=(n, L)).transpose(0, 2, 1).copy()
    q_hat = rng.random((n, K, L))
    logs = pa.table({"a": action, "r": reward, "p": pscore, "pos": position * 10 + 1})
    return logs, action, reward, pscore, position, pi_e, q_hat


def _values(result):
    return dict(zip(result["estimator"].to_pylist(), result["value"].to_pylist()))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(3, 300), K=st.integers(1, 6), L=st.integers(1, 3), seed=st.integers(0, 999),
       clip=st.sampled_from([np.inf, 2.0]), tau=st.sampled_from([0.5, 3.0, np.inf]),
       lam=st.sampled_from([0.0, 1.0, 50.0, np.inf]))
def test_estimators_equal_obp_formulas_on_generated_logs(n, K, L, seed, clip, tau, lam):
    logs, a, r, p, pos, pi_e, q_hat = _generated(n, K, L, seed)
    if lam == 0.0:
        pi_e = np.maximum(pi_e, 1e-3)  # obp's DR-OS is 0/0 at lambda 0 and a zero weight
        pi_e /= pi_e.sum(axis=1, keepdims=True)
    res = evaluate(logs, action="a", reward="r", propensity="p", position="pos", target=pi_e,
                   reward_model=q_hat, n_bootstrap=0, clip=clip, switch_tau=tau,
                   dros_lambda=lam)
    got = _values(res)
    lambdas = {"ipw": clip, "dr": clip, "switch-dr": tau, "dr-os": lam}
    for name in NAMES:
        ref = nb.obp_round_rewards(name, r, a, p, pi_e, q_hat, pos, lambdas.get(name, np.inf))
        assert got[name] == pytest.approx(ref.mean(), abs=1e-9, rel=1e-9), name


def test_bootstrap_matches_reference_and_threads(parallel_always):
    logs, a, r, p, pos, pi_e, q_hat = _generated(500, 4, 2, 3)
    one = evaluate(logs, action="a", reward="r", propensity="p", position="pos", target=pi_e,
                   reward_model=q_hat, n_bootstrap=200, seed=9, n_threads=1)
    two = evaluate(logs, action="a", reward="r", propensity="p", position="pos", target=pi_e,
                   reward_model=q_hat, n_bootstrap=200, seed=9, n_threads=2)
    assert one.equals(two)
    idx = np.stack([nb.bootstrap_indices(np.uint64(9), b, 500) for b in range(200)])
    for row in one.to_pylist():
        lam = {"switch-dr": 100.0, "dr-os": 100.0}.get(row["estimator"], np.inf)
        rr = nb.obp_round_rewards(row["estimator"], r, a, p, pi_e, q_hat, pos, lam)
        _, lo, hi = nb.obp_interval(rr, idx)
        assert row["ci_lower"] == pytest.approx(lo, abs=1e-12)
        assert row["ci_upper"] == pytest.approx(hi, abs=1e-12)
        boot = [rr[ix].mean() for ix in idx]
        assert row["std_error"] == pytest.approx(np.std(boot, ddof=1), rel=1e-9)
    w = pi_e[np.arange(500), a, pos] / p
    assert one["ess"][0].as_py() == pytest.approx(w.sum() ** 2 / (w ** 2).sum())


@pytest.fixture(scope="module")
def open_bandit():
    """Random and BTS logs with obp's default features: one-hot user features (drop_first)
    as context, label-encoded item categories + item_feature_0 as action context."""
    import pandas as pd
    from sklearn.preprocessing import LabelEncoder

    random_logs, bts_logs = load_open_bandit("random"), load_open_bandit("bts")
    df = random_logs.to_pandas()
    users = df[[c for c in df.columns if c.startswith("user_feature")]]
    context = pd.get_dummies(users, drop_first=True).to_numpy(dtype=float)
    names = [f"u{j}" for j in range(context.shape[1])]
    logs = pa.table({"item": random_logs["item_id"], "click": random_logs["click"],
                     "pscore": random_logs["propensity_score"],
                     "position": random_logs["position"],
                     **{n: context[:, j] for j, n in enumerate(names)}})
    items = load_open_bandit_items().to_pandas().sort_values("item_id")
    cats = items[["item_feature_1", "item_feature_2", "item_feature_3"]]
    action_context = np.c_[cats.apply(LabelEncoder().fit_transform).to_numpy(),
                           items["item_feature_0"].to_numpy()]
    # BTS's action distribution estimated from its own logs: the share of each item per slot.
    bts = bts_logs.to_pandas()
    dist = np.zeros((80, 3))
    for j, slot in enumerate(sorted(bts["position"].unique())):
        dist[:, j] = np.bincount(bts.loc[bts["position"] == slot, "item_id"], minlength=80)
    dist /= dist.sum(axis=0, keepdims=True)
    pi_e = np.ascontiguousarray(np.broadcast_to(dist, (logs.num_rows, 80, 3)))
    on_policy = float(np.mean(bts["click"]))
    return logs, names, context, action_context, pi_e, on_policy, df


def test_open_bandit_estimators_and_reward_model_equal_obp(open_bandit):
    from sklearn.linear_model import LogisticRegression

    logs, names, context, action_context, pi_e, _, df = open_bandit
    action = df["item_id"].to_numpy()
    position = df["position"].to_numpy() - 1
    reward, pscore = df["click"].to_numpy().astype(float), df["propensity_score"].to_numpy()
    base = LogisticRegression(max_iter=1000, random_state=12345)
    q_ref = nb.obp_regression_fit_predict(base, context, action, reward, position, 80, 3,
                                          action_context, n_folds=3, random_state=12345)
    res = evaluate(logs, action="item", reward="click", propensity="pscore", position="position",
                   target=pi_e, features=names, arms=list(range(80)),
                   action_context=action_context, reward_model=base, n_folds=3, seed=12345,
                   n_bootstrap=0)
    got = _values(res)
    for name in NAMES:
        lam = {"switch-dr": 100.0, "dr-os": 100.0}.get(name, np.inf)
        ref = nb.obp_round_rewards(name, reward, action, pscore, pi_e, q_ref, position, lam)
        assert got[name] == pytest.approx(ref.mean(), abs=1e-9), name


def test_open_bandit_bts_on_random_logs_lands_near_on_policy_value(open_bandit):
    logs, names, _, action_context, pi_e, on_policy, _ = open_bandit
    assert on_policy == pytest.approx(0.0042, abs=5e-5)  # the BTS logs' own mean click rate
    res = evaluate(logs, action="item", reward="click", propensity="pscore", position="position",
                   target=pi_e, features=names, arms=list(range(80)),
                   action_context=action_context, n_folds=3, seed=12345, n_bootstrap=1000)
    rows = {row["estimator"]: row for row in res.to_pylist()}
    for name in ("ipw", "snipw", "dr", "sndr", "switch-dr", "dr-os"):
        row = rows[name]
        assert row["ci_lower"] < on_policy < row["ci_upper"], name
        # obp's published IPW 0.00455 / DR 0.00473 (ZOZOTOWN prior) sit inside the same intervals.
        assert row["ci_lower"] < 0.00455 < row["ci_upper"], name
    assert abs(rows["ipw"]["value"] - on_policy) < 0.0015
    assert abs(rows["dr"]["value"] - on_policy) < 0.0015


def test_target_as_policy_and_as_table():
    rng = np.random.default_rng(0)
    n = 2000
    x = rng.normal(size=n)
    action = rng.integers(0, 3, n)
    reward = (rng.random(n) < 0.2 + 0.2 * (action == (x > 0))).astype(float)
    logs = pa.table({"x": x, "arm": pa.array(np.array(["a", "b", "c"])[action]), "r": reward,
                     "p": np.full(n, 1 / 3)})
    policy = LinEpsilonGreedy(["a", "b", "c"], features=["x"], epsilon=0.2)
    policy.update(logs, arm="arm", reward="r")
    dist = policy.action_distribution(logs)
    by_policy = evaluate(logs, action="arm", reward="r", propensity="p", target=policy,
                         features=["x"], n_bootstrap=0)
    table = pa.table({"a": dist[:, 0], "b": dist[:, 1], "c": dist[:, 2]})
    by_table = evaluate(logs, action="arm", reward="r", propensity="p", target=table,
                        features=["x"], n_bootstrap=0)
    assert by_policy.equals(by_table)
    implicit = evaluate(logs, action="arm", reward="r", propensity="p", target=policy,
                        n_bootstrap=0)  # features default to the policy's own
    assert implicit.equals(by_policy)
    ipw = (dist[np.arange(n), action] * 3 * reward).mean()
    assert _values(by_policy)["ipw"] == pytest.approx(ipw, rel=1e-12)


def test_bad_inputs_are_named():
    logs, a, r, p, pos, pi_e, q_hat = _generated(50, 3, 1, 0)
    with pytest.raises(InputError, match="sum to 1"):
        evaluate(logs, action="a", reward="r", propensity="p", target=pi_e[:, :, 0] * 2,
                 estimators="ipw", n_bootstrap=0)
    bad = logs.set_column(2, "p", pa.array(np.zeros(50)))
    with pytest.raises(InputError, match="propensity"):
        evaluate(bad, action="a", reward="r", propensity="p", target=pi_e[:, :, 0],
                 estimators="ipw", n_bootstrap=0)
    with pytest.raises(InputError, match="unknown estimator"):
        evaluate(logs, action="a", reward="r", propensity="p", target=pi_e[:, :, 0],
                 estimators=["ips"])
    with pytest.raises(InputError, match="shape"):
        evaluate(logs, action="a", reward="r", propensity="p", target=pi_e[:10, :, 0])
    with pytest.raises(InputError, match="does not know"):
        evaluate(logs, action="a", reward="r", propensity="p", target=pi_e[:, :2, 0],
                 estimators="ipw")
