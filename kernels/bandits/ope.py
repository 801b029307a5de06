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

from ..common.config import BANDIT_OPE_CHUNK
from ..common.launch import run_threaded
from . import ope_native as _native

IPW = int(_native.Estimator.IPW)
SNIPW = int(_native.Estimator.SNIPW)
DM = int(_native.Estimator.DM)
DR = int(_native.Estimator.DR)
SNDR = int(_native.Estimator.SNDR)
SWITCH_DR = int(_native.Estimator.SWITCH_DR)
DR_OS = int(_native.Estimator.DR_OS)


def _counter():
    return np.zeros(1, dtype=np.int64)


def round_terms(action, position, pscore, pi_e, q_hat, tol, out_w, out_dm, out_qf, out_bad,
                chunk_w, *, n_threads=None):
    """Per round: ``w``, ``dm``, ``qf`` (the last two only when ``q_hat`` has rows) and
    ``out_bad = 1`` when the round's target probabilities at its position are negative, do not
    sum to 1 within ``tol``, its logged propensity is not in (0, 1], or a reward-model value at
    its position is not finite. ``chunk_w[c] = (sum w, sum w^2)`` over chunk ``c`` of
    ``BANDIT_OPE_CHUNK`` rounds (chunks are fixed, so their sums do not depend on threads)."""
    args = (action, position, pscore, pi_e, q_hat, float(tol), BANDIT_OPE_CHUNK, out_w, out_dm,
            out_qf, out_bad, chunk_w, _counter())
    run_threaded(lambda: _native.round_terms_worker(*args), n_threads)


def round_rewards(reward, w, dm, qf, mean_w, clip, tau, lam, estimators, out, chunk_sums, *,
                  n_threads=None):
    """``out[i, e]``: round reward of estimator ``estimators[e]`` (codes above) for round ``i``;
    ``chunk_sums[c, e]``: their sum over chunk ``c`` (added in chunk order by the caller).
    ``out`` with zero rows is not filled (no bootstrap needs it)."""
    args = (reward, w, dm, qf, float(mean_w), float(clip), float(tau), float(lam), estimators,
            BANDIT_OPE_CHUNK, out, chunk_sums, _counter())
    run_threaded(lambda: _native.round_rewards_worker(*args), n_threads)


def bootstrap_means(values, seed, out, *, n_threads=None):
    """``out[b, e]``: mean of ``values[:, e]`` over ``n`` rounds drawn with replacement from the
    stream ``(seed, b)``; one replicate per task, so any thread count gives the same bits."""
    counter = _counter()
    run_threaded(lambda: _native.bootstrap_worker(values, int(seed), out, counter), n_threads)
