"""Decisions of every bandit policy, one row at a time, with the probability of the chosen arm.

A policy is reduced to per-arm numbers that the API computes from its statistics:

* ``mean[a] = base_mean[a] + theta[a] . x`` (``theta`` has zero columns for non-contextual
  policies) and ``width[a] = scale * sqrt(base_var[a] + |L_inv[a] x|^2)``, where ``L_inv[a]``
  is the inverse Cholesky factor of the arm's ridge matrix (``|L^-1 x|^2 = x^T A^-1 x``);
* ``kind`` says how arms are scored: ``GREEDY`` (epsilon-greedy on ``mean``), ``UCB`` (argmax of
  ``mean + width``), ``GAUSS_TS`` (argmax of ``mean + width * z``, z standard normal) or
  ``BETA_TS`` (argmax of a Beta(``beta_a[a]``, ``beta_b[a]``) draw).

Ties of the greedy and UCB scores are broken uniformly at random, and the propensity is exact:
``epsilon / n_eligible + (1 - epsilon) * [a is a best arm] / n_best``. For Thompson sampling it is
estimated by Monte Carlo: the share of arm ``a`` among the decision's own draw plus ``draws``
further draws of every arm's score from the same row stream. A row with no eligible arm gets arm
``-1`` and propensity NaN.

UCB rows where every arm is eligible skip the widths that cannot change the decision: with the
snapshot's width bounds (``bounds`` = ub0, ub1, lb0, lb1 per arm: an arm's width lies in
``[max(lb0, lb1 |x|), ub0 + ub1 |x|]``), a row whose top-mean arm's least score beats every other
arm's greatest one (by ``BANDIT_BOUND_SLACK`` of the magnitudes, far above rounding) goes to that
arm with probability 1, and the other rows compute only the widths of the arms that may win.
Decisions and propensities are exactly those of the full computation (tests compare both).

All randomness of row ``i`` comes from the counter stream ``(seed, row0 + i)``
(``decide_rng.h``), so results do not depend on the thread count.

The row loops are C compiled at build time (``decide_core.h`` through :mod:`.decide_native`;
``decide_one``'s server calls the same C function): no JIT compilation on a cold first call
(issue #11). They replaced Numba kernels of the same arithmetic in session 8, bit for bit.
"""
import numpy as np

from ..common.config import BANDIT_BOUND_SLACK, BANDIT_DECIDE_CHUNK, BANDIT_ROWWISE_BELOW
from ..common.launch import run_threaded
from . import decide_native as _native

GREEDY = _native.GREEDY
UCB = _native.UCB
GAUSS_TS = _native.GAUSS_TS
BETA_TS = _native.BETA_TS


def decide_rows(addresses, n, mask, theta, L_inv, base_mean, base_var, scale, bounds, beta_a,
                beta_b, kind, epsilon, seed, row0, draws, out_arm, out_prop, out_mean, out_dist,
                out_bad, n_threads=None):
    """Decide every row of the ``n``-row input whose feature column ``j`` (float64, contiguous)
    is at ``addresses[j]`` (the caller keeps the columns alive); ``mask`` is (n, K) uint8 or
    (0, K) for "all arms eligible"; ``bounds`` (4, K) the width bounds ``ub0, ub1, lb0, lb1``.
    Chunks of ``BANDIT_DECIDE_CHUNK`` rows are copied into a features x rows block (contiguous
    rows per feature, in cache) and decided, on ``n_threads`` threads
    (:func:`kernels.common.launch.run_threaded`).

    ``out_mean`` (n, K) receives each eligible arm's expected reward (NaN for the others) and
    ``out_dist`` (n, K) each arm's probability; pass (0, K) arrays to skip either.
    ``out_bad[c]`` (one per ``BANDIT_DECIDE_CHUNK`` rows) counts the chunk's rows whose means
    are not finite, so the caller proves the features finite without reading them again.
    """
    next_chunk = np.zeros(1, np.int64)
    n_chunks = -(-n // BANDIT_DECIDE_CHUNK)

    def worker():
        _native.decide_worker(addresses, n, mask, theta, L_inv, base_mean, base_var, scale,
                              bounds, beta_a, beta_b, kind, epsilon, seed, row0, draws,
                              out_arm, out_prop, out_mean, out_dist, out_bad, next_chunk,
                              BANDIT_DECIDE_CHUNK, BANDIT_BOUND_SLACK, BANDIT_ROWWISE_BELOW)

    run_threaded(worker, n_threads=n_threads if n_chunks > 1 else 1)


def decide_single(x, elig, theta, L_inv, arm_params, scale, kind, epsilon, seed, row, draws):
    """One decision as ``Policy.decide_one`` makes it: ``(arm, propensity)``, the same
    arithmetic as row ``row`` of :func:`decide_rows`. ``arm_params`` (8, K) stacks base_mean,
    base_var, the four width bounds, beta_a, beta_b. Returns arm -2 when ``x`` holds NaN or
    infinity (the caller raises). (The server of ``decide_one`` calls the C function itself.)"""
    return _native.decide_single(x, elig, theta, L_inv, arm_params, scale, kind, epsilon,
                                 np.uint64(seed), row, draws, BANDIT_BOUND_SLACK,
                                 BANDIT_ROWWISE_BELOW)
