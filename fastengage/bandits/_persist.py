"""Save and load bandit policies in the safe bundle format (JSON + .npy + Arrow IPC, no pickle).

A policy file holds ``meta.json`` (class, hyperparameters, feature names; for hybrid LinUCB
``n_shared``, how many of the features are shared, they come first), the additive
statistics (``counts``, ``sums``, ``sums2``: K-vectors; ``G``: K x d x d; ``g``: K x d) and the
arm ids (``arms.arrow``). Loading checks every member against the metadata before anything is
built; a malformed file raises :class:`~fastengage.errors.ModelFormatError` naming the member.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from .._io.persist import load_bundle, save_bundle
from ..errors import InputError, ModelFormatError
from . import kinds

KIND = "bandit_policy"
VERSION = 1
_CLASSES = {cls.__name__: cls for cls in (kinds.EpsilonGreedy, kinds.UCB1, kinds.BetaTS,
                                          kinds.GaussianTS, kinds.LinUCB, kinds.LinTS,
                                          kinds.LinEpsilonGreedy, kinds.HybridLinUCB)}
_STATS = ("counts", "sums", "sums2", "G", "g")


def save_policy(policy, path) -> None:
    with policy._lock:
        arrays = {"counts": policy._counts.copy(), "sums": policy._sums.copy(),
                  "sums2": policy._sums2.copy(), "G": policy._G.copy(), "g": policy._g.copy()}
        meta = {"class": type(policy).__name__, "params": dict(policy.params),
                "features": policy.features, "n_arms": len(policy._arms),
                "n_features": policy.n_features}
        if isinstance(policy, kinds.HybridLinUCB):
            meta["n_shared"] = len(policy.shared)
        arms = policy._arms
    save_bundle(path, KIND, VERSION, meta, arrays=arrays, tables={"arms": pa.table({"arm": arms})})


def _fail(member: str, problem: str):
    raise ModelFormatError(f"bandit policy file: {member}: {problem}")


def _meta(bundle):
    meta = bundle.meta
    if not isinstance(meta, dict):
        _fail("meta.json", "meta is not an object")
    cls = _CLASSES.get(meta.get("class")) if isinstance(meta.get("class"), str) else None
    if cls is None:
        _fail("meta.json", f"unknown policy class {meta.get('class')!r}")
    params = meta.get("params")
    if not isinstance(params, dict) or set(params) != {name for name, _, _ in cls.PARAMS}:
        _fail("meta.json", f"params must name exactly {[n for n, _, _ in cls.PARAMS]}")
    K, d = meta.get("n_arms"), meta.get("n_features")
    for name, value in (("n_arms", K), ("n_features", d)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            _fail("meta.json", f"{name} must be a non-negative integer, got {value!r}")
    if K < 1 or (d and not cls.CONTEXTUAL) or d > 100_000:
        _fail("meta.json", f"n_arms={K}, n_features={d} do not fit a {cls.__name__}")
    features = meta.get("features")
    if features is not None and (not isinstance(features, list) or len(features) != d
                                 or not all(isinstance(f, str) for f in features)):
        _fail("meta.json", f"features must be a list of {d} column names or null")
    if features is None and d:
        _fail("meta.json", "a policy with features must name them")
    if cls is kinds.HybridLinUCB:
        k = meta.get("n_shared")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < d:
            _fail("meta.json", f"n_shared must be an integer in [1, {d - 1}], got {k!r}")
        params = {**params, "shared": features[:k]}
        features = features[k:]
    elif "n_shared" in meta:
        _fail("meta.json", f"n_shared is only meaningful for HybridLinUCB, not {cls.__name__}")
    return cls, params, features, K, d


def _arrays(bundle, K: int, d: int):
    shapes = {"counts": (K,), "sums": (K,), "sums2": (K,), "G": (K, d, d), "g": (K, d)}
    out = {}
    for name in _STATS:
        member = f"{name}.npy"
        if name not in bundle.arrays:
            _fail(member, "missing")
        arr = bundle.arrays[name]
        if arr.dtype != np.float64 or arr.shape != shapes[name]:
            _fail(member, f"expected float64 of shape {shapes[name]}, got {arr.dtype} {arr.shape}")
        if not np.isfinite(arr).all():
            _fail(member, "holds non-finite values")
        out[name] = np.ascontiguousarray(arr)
    counts, sums, sums2 = out["counts"], out["sums"], out["sums2"]
    if (counts < 0).any() or (counts != np.round(counts)).any():
        _fail("counts.npy", "counts must be non-negative integers")
    with np.errstate(over="ignore"):  # inf > x is the refusal we want
        inconsistent = (sums ** 2 > sums2 * np.maximum(counts, 1) * (1 + 1e-9) + 1e-9).any()
    if (sums2 < 0).any() or inconsistent:
        _fail("sums2.npy", "sums of squares are inconsistent with the sums (Cauchy-Schwarz)")
    if (counts == 0).any() and ((sums[counts == 0] != 0).any() or (sums2[counts == 0] != 0).any()):
        _fail("sums.npy", "an arm with no rows has non-zero reward sums")
    G = out["G"]
    if d:
        if not np.array_equal(G, G.transpose(0, 2, 1)):
            _fail("G.npy", "Gram matrices must be symmetric")
        if (np.diagonal(G, axis1=1, axis2=2) < 0).any():
            _fail("G.npy", "Gram matrices must have non-negative diagonals")
    return out


def _arms(bundle, K: int) -> pa.Array:
    if "arms" not in bundle.tables:
        _fail("arms.arrow", "missing")
    table = bundle.tables["arms"]
    if table.schema.names != ["arm"] or table.num_rows != K:
        _fail("arms.arrow", f"expected one column 'arm' of {K} rows")
    arms = table.column("arm").combine_chunks()
    if not (pa.types.is_int64(arms.type) or pa.types.is_string(arms.type)):
        _fail("arms.arrow", f"arm ids must be int64 or string, got {arms.type}")
    try:
        from ._columns import arm_array

        return arm_array(arms)
    except InputError as exc:
        _fail("arms.arrow", str(exc))


def load_policy(path):
    """Load a policy written by :meth:`Policy.save`.

    Raises
    ------
    ModelFormatError
        If the file is not a fastengage bandit policy, or any member is malformed.
    """
    bundle = load_bundle(path, KIND, VERSION)
    cls, params, features, K, d = _meta(bundle)
    arrays = _arrays(bundle, K, d)
    arms = _arms(bundle, K)
    try:
        policy = cls(arms, features=features, **params)
    except InputError as exc:
        _fail("meta.json", f"params: {exc}")
    if cls.BINARY_REWARDS and ((arrays["sums"] < 0).any()
                               or (arrays["sums"] > arrays["counts"]).any()):
        _fail("sums.npy", "Beta-Bernoulli successes must lie between 0 and the count")
    policy._counts, policy._sums, policy._sums2 = arrays["counts"], arrays["sums"], arrays["sums2"]
    policy._G, policy._g = arrays["G"], arrays["g"]
    try:
        policy._refresh()
    except InputError as exc:
        _fail("G.npy", str(exc))
    return policy
