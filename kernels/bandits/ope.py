"""Off-policy evaluation: the per-round terms of Open Bandit Pipeline's estimators and a seeded
bootstrap of their means.

Notation (obp's): ``w_i = pi_e(a_i | x_i, p_i) / pi_b(a_i | x_i)``, ``q_hat(x, a, p)`` the reward
model, ``dm_i = sum_a pi_e(a|x_i,p_i) q_hat(x_i,a,p_i) / sum_a pi_e(a|x_i,p_i)`` (obp's
``np.average``), ``qf_i = q_hat(x_i, a_i, p_i)``. Round rewards:

=========  =============================================================
IPW        min(w, clip) r
SNIPW      w r / mean(w)
DM         dm
DR         dm + min(w, clip) (r - qf)
SNDR       dm + w (r - qf) / mean(w)
Switch-DR  dm + [w <= tau] w (r - qf)
DR-OS      dm + lam w / (w^2 + lam) (r - qf)
=========  =============================================================

Each estimate is the mean of its round rewards, and its bootstrap resamples rounds (as obp's
``estimate_confidence_interval_by_bootstrap``) from the counter stream ``(seed, replicate)``.
"""
import numpy as np
from numba import prange

from ..common.config import BANDIT_OPE_CHUNK
from ..common.launch import parallel_kernel
from .rng import next_index, stream_base

IPW = 0
SNIPW = 1
DM = 2
DR = 3
SNDR = 4
SWITCH_DR = 5
DR_OS = 6


@parallel_kernel
def round_terms(action, position, pscore, pi_e, q_hat, tol, out_w, out_dm, out_qf, out_bad,
                chunk_w):
    """Per round: ``w``, ``dm``, ``qf`` (the last two only when ``q_hat`` has rows) and
    ``out_bad = 1`` when the round's target probabilities at its position are negative, do not
    sum to 1 within ``tol``, its logged propensity is not in (0, 1], or a reward-model value at
    its position is not finite. ``chunk_w[c] = (sum w, sum w^2)`` over chunk ``c`` of
    ``BANDIT_OPE_CHUNK`` rounds (chunks are fixed, so their sums do not depend on threads)."""
    n = action.shape[0]
    K = pi_e.shape[1]
    has_q = q_hat.shape[0] > 0
    n_chunks = (n + BANDIT_OPE_CHUNK - 1) // BANDIT_OPE_CHUNK
    for c in prange(n_chunks):
        sw = 0.0
        sw2 = 0.0
        for i in range(c * BANDIT_OPE_CHUNK, min(n, (c + 1) * BANDIT_OPE_CHUNK)):
            a = action[i]
            p = position[i]
            ps = pscore[i]
            bad = not (ps > 0.0 and ps <= 1.0)
            total = 0.0
            num = 0.0
            for b in range(K):
                pb = pi_e[i, b, p]
                if not pb >= 0.0:
                    bad = True
                total += pb
                if has_q:
                    qb = q_hat[i, b, p]
                    if not abs(qb) < np.inf:
                        bad = True
                    num += pb * qb
            if abs(total - 1.0) > tol:
                bad = True
            out_bad[i] = bad
            w = pi_e[i, a, p] / ps
            out_w[i] = w
            sw += w
            sw2 += w * w
            if has_q:
                out_dm[i] = num / total
                out_qf[i] = q_hat[i, a, p]
        chunk_w[c, 0] = sw
        chunk_w[c, 1] = sw2


@parallel_kernel
def round_rewards(reward, w, dm, qf, mean_w, clip, tau, lam, estimators, out, chunk_sums):
    """``out[i, e]``: round reward of estimator ``estimators[e]`` (codes above) for round ``i``;
    ``chunk_sums[c, e]``: their sum over chunk ``c`` (added in chunk order by the caller).
    ``out`` with zero rows is not filled (no bootstrap needs it)."""
    n = reward.shape[0]
    E = estimators.shape[0]
    store = out.shape[0] > 0
    n_chunks = (n + BANDIT_OPE_CHUNK - 1) // BANDIT_OPE_CHUNK
    for c in prange(n_chunks):
        for e in range(E):
            chunk_sums[c, e] = 0.0
        for i in range(c * BANDIT_OPE_CHUNK, min(n, (c + 1) * BANDIT_OPE_CHUNK)):
            wi = w[i]
            r = reward[i]
            for e in range(E):
                code = estimators[e]
                if code == IPW:
                    v = min(wi, clip) * r
                elif code == SNIPW:
                    v = wi * r / mean_w
                elif code == DM:
                    v = dm[i]
                elif code == DR:
                    v = dm[i] + min(wi, clip) * (r - qf[i])
                elif code == SNDR:
                    v = dm[i] + wi * (r - qf[i]) / mean_w
                elif code == SWITCH_DR:
                    v = dm[i] + (wi * (r - qf[i]) if wi <= tau else 0.0)
                else:  # DR_OS
                    den = wi * wi + lam
                    shrunk = (lam * wi / den if den > 0.0 else 0.0) if lam < np.inf else wi
                    v = dm[i] + shrunk * (r - qf[i])
                if store:
                    out[i, e] = v
                chunk_sums[c, e] += v


@parallel_kernel
def bootstrap_means(values, seed, out):
    """``out[b, e]``: mean of ``values[:, e]`` over ``n`` rounds drawn with replacement from the
    stream ``(seed, b)``; one replicate per task, so any thread count gives the same bits."""
    n = values.shape[0]
    E = values.shape[1]
    for b in prange(out.shape[0]):
        state = stream_base(seed, b)
        acc = np.zeros(E)
        for _ in range(n):
            state, j = next_index(state, n)
            for e in range(E):
                acc[e] += values[j, e]
        for e in range(E):
            out[b, e] = acc[e] / n
