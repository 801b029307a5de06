"""A seeded synthetic environment to test policies: contextual linear or logistic rewards,
configurable arms and features, and optional drift of the arms' coefficients.

Arm ``a`` has coefficients ``beta[a]`` (standard normal / sqrt(d)); a context ``x`` is standard
normal. The expected reward is ``x . beta[a]`` (``"linear"``, observed with Gaussian noise) or
``sigmoid(x . beta[a] + intercept)`` (``"logistic"``, observed as a click). With ``drift > 0``
the coefficients take a Gaussian random-walk step of scale ``drift / sqrt(d)`` per round.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError

__all__ = ["LinearEnvironment", "simulate"]


class LinearEnvironment:
    """Seeded contextual environment; all randomness comes from ``seed``."""

    def __init__(self, n_arms: int = 5, n_features: int = 10, *, reward: str = "linear",
                 noise_sd: float = 0.1, intercept: float = -2.0, drift: float = 0.0,
                 seed: int = 0):
        if reward not in ("linear", "logistic"):
            raise InputError("reward must be 'linear' or 'logistic'")
        if n_arms < 1 or n_features < 1 or noise_sd < 0 or drift < 0:
            raise InputError("n_arms and n_features must be >= 1; noise_sd and drift >= 0")
        self.n_arms, self.n_features, self.reward = int(n_arms), int(n_features), reward
        self.noise_sd, self.intercept, self.drift = float(noise_sd), float(intercept), float(drift)
        self._rng = np.random.default_rng(seed)
        self.beta = self._rng.normal(size=(n_arms, n_features)) / np.sqrt(n_features)
        self.features = [f"x{j}" for j in range(n_features)]
        self.arms = [f"arm{k}" for k in range(n_arms)]

    def contexts(self, n: int) -> np.ndarray:
        return self._rng.normal(size=(n, self.n_features))

    def expected(self, X: np.ndarray) -> np.ndarray:
        """(n, n_arms) expected reward of every arm for every context."""
        z = X @ self.beta.T
        return z if self.reward == "linear" else 1.0 / (1.0 + np.exp(-(z + self.intercept)))

    def outcomes(self, X: np.ndarray, arms: np.ndarray) -> np.ndarray:
        """Observed rewards of arm codes ``arms``; then the coefficients drift one step per row."""
        mean = self.expected(X)[np.arange(X.shape[0]), arms]
        if self.reward == "linear":
            r = mean + self.noise_sd * self._rng.normal(size=mean.shape)
        else:
            r = (self._rng.random(mean.shape) < mean).astype(np.float64)
        if self.drift:
            steps = self._rng.normal(size=(X.shape[0],) + self.beta.shape).sum(axis=0)
            self.beta += self.drift / np.sqrt(self.n_features) * steps
        return r

    def table(self, X: np.ndarray, **columns) -> pa.Table:
        return pa.table({**{f: X[:, j] for j, f in enumerate(self.features)}, **columns})


def simulate(policy, env: LinearEnvironment, n_rounds: int, *, batch_size: int = 1,
             seed: int = 0) -> pa.Table:
    """Run ``policy`` for ``n_rounds`` rows: decide a batch, observe, update, repeat.

    Returns one row per round: ``round``, ``arm``, ``propensity``, ``reward``, ``regret``
    (best expected reward minus the chosen arm's) and ``cumulative_regret``.
    """
    if batch_size < 1 or n_rounds < 1:
        raise InputError("n_rounds and batch_size must be positive")
    ids = pa.array(env.arms)
    parts = {"arm": [], "propensity": [], "reward": [], "regret": []}
    for b, start in enumerate(range(0, n_rounds, batch_size)):
        X = env.contexts(min(batch_size, n_rounds - start))
        table = env.table(X)
        out = policy.decide(table, features=env.features, seed=seed * 1_000_003 + b)
        chosen = out["arm"].combine_chunks()
        codes = pc.index_in(chosen, value_set=ids).to_numpy(zero_copy_only=False)
        expected = env.expected(X)
        r = env.outcomes(X, codes)
        parts["arm"].append(chosen)
        parts["propensity"].append(out["propensity"].to_numpy())
        parts["reward"].append(r)
        parts["regret"].append(expected.max(axis=1) - expected[np.arange(X.shape[0]), codes])
        policy.update(env.table(X, arm=chosen, reward=r), arm="arm", reward="reward",
                      features=env.features)
    regret = np.concatenate(parts["regret"])
    return pa.table({"round": np.arange(n_rounds), "arm": pa.concat_arrays(parts["arm"]),
                     "propensity": np.concatenate(parts["propensity"]),
                     "reward": np.concatenate(parts["reward"]), "regret": regret,
                     "cumulative_regret": np.cumsum(regret)})
