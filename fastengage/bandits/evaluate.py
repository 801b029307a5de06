"""Off-policy evaluation: what would a target policy have earned on logged decisions?

Estimators are Open Bandit Pipeline's (``obp.ope``), with its definitions and argument meanings:
``ipw``, ``snipw``, ``dm``, ``dr``, ``sndr``, ``switch-dr`` and ``dr-os`` (formulas in
``fastengage.kernels.bandits.ope``). Confidence intervals are percentile bootstraps of the mean
round reward, as obp's ``estimate_interval`` (rounds resampled with replacement), drawn from
counter streams so that any thread count gives the same interval for a seed. ``ess`` is Kish's
effective sample size ``(sum w)^2 / sum w^2`` of the weights each estimator puts on the logged
rewards (null for ``dm``).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.sources import amount_to_float64, open_source
from ..errors import InputError
from ..kernels.bandits import ope as _ope
from ..kernels.common.config import BANDIT_OPE_CHUNK
from ._columns import arm_array, arm_codes, feature_matrix, reward_float64
from .policies import Policy, _seed64, _threads
from .reward_model import fit_predict_rewards

__all__ = ["ESTIMATORS", "evaluate"]

ESTIMATORS = {"ipw": _ope.IPW, "snipw": _ope.SNIPW, "dm": _ope.DM, "dr": _ope.DR,
              "sndr": _ope.SNDR, "switch-dr": _ope.SWITCH_DR, "dr-os": _ope.DR_OS}
_NEEDS_MODEL = {"dm", "dr", "sndr", "switch-dr", "dr-os"}
#: Target probabilities at a round's position must sum to 1 within this tolerance.
_SUM_TOLERANCE = 1e-6


def _positions(table, position, slots):
    """Each round's slot index and the number of slots. Positions are dense-ranked (obp's
    OpenBanditDataset does the same), except when the target (or ``q_hat``) array has more
    ``slots`` than the logs show positions and the positions are 0-based slot indices
    (integers from 0, all below ``slots``): then they index its slots directly, as obp's
    estimators do (a slot no logged round shows; dense ranking would shift the slots after
    it). Fewer positions without a 0 (1-based labels with one missing?) stay an error: which
    slot each means is ambiguous."""
    if position is None:
        return np.zeros(table.num_rows, dtype=np.int64), 1
    col = table.column(position).combine_chunks()
    if col.null_count:
        raise InputError(f"position column {position!r} has {col.null_count} null value(s)")
    levels = pc.unique(col).sort()
    if slots is not None and len(levels) < slots:
        if (pa.types.is_integer(col.type) and levels[0].as_py() == 0
                and levels[-1].as_py() < slots):
            return np.ascontiguousarray(col.to_numpy(), dtype=np.int64), slots
        shown = levels.to_pylist()
        raise InputError(f"position column {position!r} shows {len(shown)} position(s) "
                         f"{shown[:6]}{' ...' if len(shown) > 6 else ''} but the target has "
                         f"{slots} slots: give 0-based slot indices (0..{slots - 1}), or labels "
                         "covering every slot (they are dense-ranked)")
    codes = pc.index_in(col, value_set=levels).to_numpy()
    return np.ascontiguousarray(codes, np.int64), len(levels)


def _target_array(target, table, arms, features, n, L, eligible, seed, draws, n_threads):
    if isinstance(target, Policy):
        dist = target.action_distribution(table, features=features, eligible=eligible,
                                          seed=seed, propensity_draws=draws, n_threads=n_threads)
        return np.repeat(dist[:, :, None], L, axis=2) if L > 1 else dist[:, :, None]
    if isinstance(target, np.ndarray):
        pi = target
    else:
        tsource = open_source(target)
        names = [str(a) for a in arms.to_pylist()]
        tsource.require({f"target for arm {a!r}": a for a in names})
        ttable = pa.Table.from_batches(list(tsource.batches(names)), schema=None)
        pi = np.stack([amount_to_float64(ttable.column(a), a, role="target probability")
                       for a in names], axis=1) if names else np.zeros((ttable.num_rows, 0))
    pi = np.asarray(pi, dtype=np.float64)
    if pi.ndim == 2:
        pi = pi[:, :, None]
    if pi.ndim != 3 or pi.shape[0] != n or pi.shape[1] != len(arms) or pi.shape[2] not in (1, L):
        raise InputError(f"target probabilities must have shape ({n}, {len(arms)}) or "
                         f"({n}, {len(arms)}, {L}), got {pi.shape}")
    if pi.shape[2] != L:
        pi = np.repeat(pi, L, axis=2)
    return np.ascontiguousarray(pi)


def _arms_for(target, arms, action_col, action):
    if isinstance(target, Policy):
        return target.arms
    if arms is not None:
        return arm_array(arms)
    if isinstance(target, np.ndarray):
        if target.ndim not in (2, 3):
            raise InputError(f"target probabilities must be a (rows, K) or (rows, K, positions) "
                             f"array, got shape {target.shape}")
        if not pa.types.is_integer(action_col.type):
            raise InputError("with a target array, pass arms=[ids in column order] (or log "
                             "integer actions 0..K-1)")
        return pa.array(np.arange(target.shape[1]), pa.int64())
    names = open_source(target).schema.names
    return arm_array([int(a) for a in names] if pa.types.is_integer(action_col.type) else names)


def evaluate(logs, *, action: str, reward: str, propensity: str, target,
             position: str | None = None,
             features: list[str] | None = None, arms=None, eligible=None,
             estimators=("ipw", "snipw", "dm", "dr", "sndr", "switch-dr", "dr-os"),
             reward_model=None, action_context=None, n_folds: int = 3,
             n_bootstrap: int = 1000, alpha: float = 0.05,
             seed: int = 0, clip: float = np.inf, switch_tau: float = 100.0,
             dros_lambda: float = 100.0, propensity_draws: int | None = None,
             n_threads: int | None = None) -> pa.Table:
    """Estimate the policy value of ``target`` on logged bandit feedback.

    Parameters
    ----------
    logs : Arrow-readable data with one row per logged decision.
    action, reward, propensity : column names: the logged arm id, its reward, and the logging
        policy's probability of that arm (obp's ``pscore``).
    target : a :class:`Policy` (its action distribution on the logs' ``features`` is used), a
        NumPy array of target probabilities (rows, K) or (rows, K, positions) in ``arms`` order
        (obp's ``action_dist``), or an Arrow-readable table with one probability column per arm,
        named by the arm id.
    position : optional column of slot positions (dense-ranked; obp's ``position``).
    features : context columns for the target policy and the default reward model.
    reward_model : ``None`` (logistic regression, cross-fitted over ``n_folds``), any
        scikit-learn estimator (fitted the same way), or an array ``q_hat`` of shape
        (rows, K[, positions]) of expected rewards.
    action_context : optional (K, m) array of arm features for the reward model (obp's
        ``action_context``; one-hot arms by default).
    n_bootstrap, alpha, seed : percentile bootstrap of ``n_bootstrap`` resamples for a
        ``1 - alpha`` interval (``n_bootstrap=0`` skips intervals).
    clip, switch_tau, dros_lambda : obp's ``lambda_`` of IPW/DR (weight clipping), of Switch-DR
        and of DR-OS.

    Returns
    -------
    pyarrow.Table with ``estimator``, ``value``, ``ci_lower``, ``ci_upper``, ``std_error``
    (bootstrap; the three are null with ``n_bootstrap=0``), ``ess`` and ``n_rounds``, one row
    per estimator.
    """
    names = [estimators] if isinstance(estimators, str) else list(estimators)
    unknown = [e for e in names if e not in ESTIMATORS]
    if unknown or not names:
        raise InputError(f"unknown estimator(s) {unknown}; choose from {list(ESTIMATORS)}")
    for label, value in (("clip", clip), ("switch_tau", switch_tau),
                         ("dros_lambda", dros_lambda), ("alpha", alpha)):
        if (not isinstance(value, (int, float, np.integer, np.floating))
                or isinstance(value, (bool, np.bool_)) or not value >= 0.0):
            raise InputError(f"{label} must be a number >= 0, got {value!r}")
    if (not isinstance(n_bootstrap, (int, np.integer)) or isinstance(n_bootstrap, bool)
            or n_bootstrap < 0):
        raise InputError("n_bootstrap must be a non-negative integer")
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha must lie in (0, 1), got {alpha!r}")
    if features is None and isinstance(target, Policy) and target.features is not None:
        features = target.features  # the policy's own context columns
    features = list(features) if features is not None else []
    source = open_source(logs)
    roles = {"action": action, "reward": reward, "propensity": propensity, "position": position}
    if isinstance(eligible, str):
        roles["eligible"] = eligible
    cols = source.require(roles)
    source.require({f"feature {f!r}": f for f in features})
    batches = list(source.batches(list(cols.values()) + features))
    n = sum(batch.num_rows for batch in batches)
    if n == 0:
        raise InputError("logs are empty")
    table = pa.Table.from_batches(batches)
    action_col = table.column(action).combine_chunks()
    arm_ids = _arms_for(target, arms, action_col, action)
    codes = arm_codes(action_col, arm_ids, action, role="action")
    r = reward_float64(table.column(reward), reward)
    pscore = amount_to_float64(table.column(propensity), propensity, role="propensity")
    pos, L = _positions(table, position, _slots(target, reward_model))
    seed64 = _seed64(seed)
    pi_e = _target_array(target, table, arm_ids, features or None, n, L, eligible, seed,
                         propensity_draws, n_threads)
    K = pi_e.shape[1]
    needs_model = any(e in _NEEDS_MODEL for e in names)
    q_hat = np.zeros((0, K, L))
    if needs_model:
        if isinstance(reward_model, np.ndarray):
            q_hat = np.asarray(reward_model, dtype=np.float64)  # no copy when already float64
            if q_hat.ndim == 2:
                q_hat = q_hat[:, :, None]
            if q_hat.shape[:2] != (n, K) or q_hat.shape[2] not in (1, L):
                raise InputError(f"reward_model array must have shape ({n}, {K}[, {L}]), "
                                 f"got {reward_model.shape}")
            if q_hat.shape[2] != L:
                q_hat = np.repeat(q_hat, L, axis=2)
            q_hat = np.ascontiguousarray(q_hat)
        else:
            X = feature_matrix(table, features) if features else None
            q_hat = fit_predict_rewards(X, codes, r, pos, K, L, reward_model, n_folds, seed,
                                        _action_context(action_context, K))
    w, dm, qf = np.empty(n), np.empty(n if needs_model else 0), np.empty(n if needs_model else 0)
    bad = np.empty(n, dtype=np.uint8)
    n_chunks = -(-n // BANDIT_OPE_CHUNK)
    chunk_w = np.empty((n_chunks, 2))
    _ope.round_terms(codes, pos, pscore, pi_e, q_hat, _SUM_TOLERANCE, w, dm, qf, bad, chunk_w,
                     n_threads=_threads(n, n_threads))
    if bad.any():
        raise _bad_rounds(bad.view(bool), pscore, propensity, pi_e, q_hat, pos,
                          isinstance(target, Policy))
    sum_w, sum_w2 = chunk_w.sum(axis=0)  # chunk sums added in chunk order
    mean_w = float(sum_w) / n
    est_codes = np.array([ESTIMATORS[e] for e in names], dtype=np.int64)
    rounds = np.empty((n if n_bootstrap else 0, len(names)))
    chunk_sums = np.empty((n_chunks, len(names)))
    _ope.round_rewards(r, w, dm, qf, mean_w, float(clip), float(switch_tau), float(dros_lambda),
                       est_codes, rounds, chunk_sums, n_threads=_threads(n, n_threads))
    values = chunk_sums.sum(axis=0) / n
    lo = hi = se = pa.nulls(len(names), pa.float64())  # no bootstrap, no interval
    if n_bootstrap:
        boot = np.empty((int(n_bootstrap), len(names)))
        _ope.bootstrap_means(rounds, seed64, boot,
                             n_threads=_threads(n * int(n_bootstrap), n_threads))
        lo, hi = np.percentile(boot, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
        se = boot.std(axis=0, ddof=1) if n_bootstrap > 1 else pa.nulls(len(names), pa.float64())
    cache = {"raw": float(sum_w) ** 2 / float(sum_w2) if sum_w2 > 0 else 0.0}
    ess = [_ess(e, w, clip, switch_tau, dros_lambda, cache) for e in names]
    return pa.table({"estimator": names, "value": values, "ci_lower": lo, "ci_upper": hi,
                     "std_error": se, "ess": pa.array(ess, pa.float64()),
                     "n_rounds": pa.array([n] * len(names), pa.int64())})


def _slots(target, reward_model):
    """How many slots (positions) the target or ``q_hat`` array has, if either is 3-D."""
    for given in (target, reward_model):
        if isinstance(given, np.ndarray) and given.ndim == 3:
            return given.shape[2]
    return None


def _bad_rounds(bad, pscore, propensity, pi_e, q_hat, pos, policy: bool) -> InputError:
    """The error for the rounds the OPE kernel flagged, naming the input and the first row."""
    rows = np.flatnonzero(bad)
    ps = pscore[rows]
    wrong = rows[~((ps > 0.0) & (ps <= 1.0))]
    if wrong.size:
        return InputError(f"propensity column {propensity!r}: {wrong.size} round(s) have a "
                          f"propensity outside (0, 1] (first at row {wrong[0]}: "
                          f"{float(pscore[wrong[0]])!r}); a logged action's propensity must "
                          "be > 0")
    pi = pi_e[rows, :, pos[rows]]
    with np.errstate(invalid="ignore"):
        wrong = rows[(~(pi >= 0.0)).any(axis=1) | ~(np.abs(pi.sum(axis=1) - 1.0)
                                                     <= _SUM_TOLERANCE)]
    if wrong.size and policy and not pi_e[wrong, :, pos[wrong]].any():
        return InputError(f"the target policy has no eligible arm on {wrong.size} round(s) "
                          f"(first at row {wrong[0]}): it takes no action there, so OPE has "
                          "no value for them; give every logged round an eligible arm")
    if wrong.size:
        i = wrong[0]
        return InputError(f"target: {wrong.size} round(s) have probabilities (at the round's "
                          "position) that are negative, not finite or do not sum to 1 (first "
                          f"at row {i}: sum {float(pi_e[i, :, pos[i]].sum())!r})")
    return InputError(f"reward_model: {rows.size} round(s) have non-finite expected rewards at "
                      f"their position (first at row {rows[0]})")


def _action_context(action_context, K):
    if action_context is None:
        return None
    ac = np.asarray(action_context, dtype=np.float64)
    if ac.ndim != 2 or ac.shape[0] != K or not np.isfinite(ac).all():
        raise InputError(f"action_context must be a finite ({K}, m) array, got shape {ac.shape}")
    return ac


def _ess(name, w, clip, tau, lam, cache):
    """Kish's effective sample size of the weights ``name`` puts on the logged rewards."""
    if name == "dm":
        return None
    key = {"ipw": "clip", "dr": "clip", "switch-dr": "switch", "dr-os": "shrink"}.get(name, "raw")
    if key == "clip" and not clip < np.inf or key == "shrink" and not lam < np.inf:
        key = "raw"
    if key not in cache:
        if key == "clip":
            w = np.minimum(w, clip)
        elif key == "switch":
            w = np.where(w <= tau, w, 0.0)
        elif key == "shrink":
            den = w * w + lam
            w = np.divide(lam * w, den, out=np.zeros_like(w), where=den > 0)
        s2 = float(np.dot(w, w))
        cache[key] = float(w.sum()) ** 2 / s2 if s2 > 0 else 0.0
    return cache[key]
