"""Fuzz targets of saved bandit policies (see harness.py): each loads a policy from the mutated
bytes and uses it as a service would (a batch decision with and without an eligibility mask, one
decision, one update, save), so a value that passes the loader but breaks a kernel (a crash, an
out-of-bounds access under NUMBA_BOUNDSCHECK=1, an exception other than ModelFormatError /
InputError) is a finding. Seeds: a trained, saved policy of every kind."""
from __future__ import annotations

import functools
import io

import numpy as np
import pyarrow as pa

from harness import Target

_D = 3
_NAMES = [f"f{j}" for j in range(_D)]


@functools.lru_cache(maxsize=None)
def _rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, _D))
    X[0] = 0.0
    X[1] = 1e6  # a large context
    return pa.table({n: X[:, j] for j, n in enumerate(_NAMES)}), X


@functools.lru_cache(maxsize=None)
def _policies():
    from fastengage import bandits as b

    rng = np.random.default_rng(1)
    n = 300
    X = rng.normal(size=(n, _D))
    arms = rng.integers(0, 3, n)
    logs = pa.table({**{f: X[:, j] for j, f in enumerate(_NAMES)},
                     "arm": pa.array(np.asarray(["a", "b", "c"])[arms]),
                     "r": (rng.random(n) < 0.3).astype(float)})
    made = {
        "epsilon_greedy": b.EpsilonGreedy(["a", "b", "c"], epsilon=0.2),
        "ucb1": b.UCB1(["a", "b", "c"]),
        "beta_ts": b.BetaTS(["a", "b", "c"]),
        "gaussian_ts": b.GaussianTS(["a", "b", "c"]),
        "linucb": b.LinUCB(["a", "b", "c"], features=_NAMES),
        "lin_ts": b.LinTS(["a", "b", "c"], features=_NAMES),
        "lin_greedy": b.LinEpsilonGreedy(["a", "b", "c"], features=_NAMES),
        "hybrid_linucb": b.HybridLinUCB(["a", "b", "c"], features=_NAMES[1:],
                                        shared=_NAMES[:1]),
    }
    return {name: p.update(logs, arm="arm", reward="r") for name, p in made.items()}


def _use(policy):
    table, X = _rows()
    K = len(policy.arms)
    d = policy.n_features
    features = _NAMES[:d] if d <= _D else None
    if d > _D:  # a mutated feature count: the policy's own names are not columns here
        return
    policy.decide(table, features=features, seed=1, expected=True, propensity_draws=3)
    mask = np.random.default_rng(2).random((table.num_rows, K)) < 0.5
    policy.decide(table, features=features, eligible=mask, seed=2, propensity_draws=3)
    x = X[1, :d]
    policy.decide_one(x, seed=3)
    policy.update_one(x, policy.arms[0].as_py(), 1.0)
    policy.save(io.BytesIO())


def _target(name: str) -> Target:
    def run(data: bytes):
        from fastengage.bandits import load_policy

        _use(load_policy(io.BytesIO(data)))

    def seeds():
        buf = io.BytesIO()
        _policies()[name].save(buf)
        return [buf.getvalue()]

    return Target(f"bandit_{name}", run, seeds, kind="zip")


TARGETS = [_target(n) for n in ("epsilon_greedy", "ucb1", "beta_ts", "gaussian_ts", "linucb",
                                "lin_ts", "lin_greedy", "hybrid_linucb")]
