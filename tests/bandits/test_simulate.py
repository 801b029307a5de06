"""Regret on the seeded simulator: LinUCB and linear TS learn (sublinear cumulative regret)."""
from __future__ import annotations

import pytest

from fastengage.bandits import EpsilonGreedy, LinTS, LinUCB
from fastengage.bandits.simulate import LinearEnvironment, simulate

T = 4000


def _regret(cls, reward, seed=1, drift=0.0, **params):
    env = LinearEnvironment(5, 8, reward=reward, noise_sd=0.5, intercept=0.0, drift=drift,
                            seed=seed)
    policy = cls(env.arms, features=env.features, **params)
    out = simulate(policy, env, T, batch_size=10, seed=2)
    return out["cumulative_regret"].to_numpy(), out


@pytest.mark.parametrize("reward,limit", [("linear", 0.3), ("logistic", 0.75)])
@pytest.mark.parametrize("cls", [LinUCB, LinTS])
def test_linear_policies_reach_sublinear_regret(cls, reward, limit):
    R, _ = _regret(cls, reward)
    R_blind, _ = _regret(EpsilonGreedy, reward)  # ignores the context: regret grows linearly
    first, second = R[T // 2 - 1], R[-1] - R[T // 2 - 1]
    blind_second = R_blind[-1] - R_blind[T // 2 - 1]
    # Linear growth gives second ~= first; sqrt(T) growth gives 0.41; log(T) much less.
    assert second < limit * first
    assert blind_second > 0.9 * R_blind[T // 2 - 1]
    assert R[-1] < 0.35 * R_blind[-1]


def test_simulation_is_reproducible_and_drift_changes_it():
    _, a = _regret(LinTS, "linear", seed=3)
    _, b = _regret(LinTS, "linear", seed=3)
    assert a.equals(b)
    _, c = _regret(LinTS, "linear", seed=3, drift=0.01)
    assert not c.equals(a)
    props = a["propensity"].to_numpy()
    assert ((props > 0) & (props <= 1)).all()
