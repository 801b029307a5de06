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

All randomness of row ``i`` comes from the counter stream ``(seed, row0 + i)`` (see ``rng``), so
results do not depend on the thread count.
"""
import math

import numpy as np
from numba import njit, prange

from ..common.config import BANDIT_DECIDE_CHUNK, NJIT
from ..common.launch import parallel_kernel
from .rng import next_beta, next_index, next_normal, next_uniform, stream_base

GREEDY = 0
UCB = 1
GAUSS_TS = 2
BETA_TS = 3


#: Rows scored together by :func:`block_moments` (eight scalar lanes the compiler keeps in
#: registers; a wider block would spill). Not a tunable: the code below is written for eight.
LANES = 8


@njit(**NJIT)
def lane_means(XT, theta, base_mean, M):
    """``M[r, a] = base_mean[a] + theta[a] . x_r`` for the eight rows in ``XT`` (d x 8, the rows
    transposed; unused lanes hold zeros). Each lane keeps its sum in a scalar, so the eight rows
    run side by side in registers and each row's arithmetic is the same sequence whichever block
    or lane it falls in (a row decided alone by ``decide_single`` gets the bits of a batch)."""
    d = XT.shape[0]
    for a in range(theta.shape[0]):
        b = base_mean[a]
        m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = b
        for j in range(d):
            t = theta[a, j]
            xt = XT[j]
            m0 += t * xt[0]
            m1 += t * xt[1]
            m2 += t * xt[2]
            m3 += t * xt[3]
            m4 += t * xt[4]
            m5 += t * xt[5]
            m6 += t * xt[6]
            m7 += t * xt[7]
        M[0, a], M[1, a], M[2, a], M[3, a] = m0, m1, m2, m3
        M[4, a], M[5, a], M[6, a], M[7, a] = m4, m5, m6, m7


@njit(**NJIT)
def lane_widths(XT, a, L_inv, base_var, scale, W):
    """``W[r, a] = scale * sqrt(base_var[a] + |L_inv[a] x_r|^2)`` for the eight lanes
    (``x^T A^-1 x = |L^-1 x|^2`` with ``L`` the Cholesky factor of ``A``)."""
    d = XT.shape[0]
    v = base_var[a]
    q0 = q1 = q2 = q3 = q4 = q5 = q6 = q7 = v
    L = L_inv[a]
    for i in range(d):
        z0 = z1 = z2 = z3 = z4 = z5 = z6 = z7 = 0.0
        for j in range(i + 1):
            lij = L[i, j]
            xt = XT[j]
            z0 += lij * xt[0]
            z1 += lij * xt[1]
            z2 += lij * xt[2]
            z3 += lij * xt[3]
            z4 += lij * xt[4]
            z5 += lij * xt[5]
            z6 += lij * xt[6]
            z7 += lij * xt[7]
        q0 += z0 * z0
        q1 += z1 * z1
        q2 += z2 * z2
        q3 += z3 * z3
        q4 += z4 * z4
        q5 += z5 * z5
        q6 += z6 * z6
        q7 += z7 * z7
    W[0, a], W[1, a], W[2, a], W[3, a] = q0, q1, q2, q3
    W[4, a], W[5, a], W[6, a], W[7, a] = q4, q5, q6, q7
    for r in range(LANES):
        q = W[r, a]
        if q != np.inf:
            W[r, a] = scale * math.sqrt(q) if q > 0.0 else 0.0


@njit(**NJIT)
def block_moments(XT, m, theta, L_inv, base_mean, base_var, scale, bound0, bound1, prune,
                  M, W, norm, best):
    """Means and widths of every arm for the ``m`` rows in ``XT``.

    With ``prune`` (UCB without an eligibility mask), an arm's width is computed only if its
    score could reach the best: ``width <= bound0[a] + bound1[a] * |x|`` (``bound1`` is the
    spectral norm of ``L_inv[a]`` times the scale, with a relative margin far above rounding),
    and every score is at least its mean, so an arm with ``mean + bound < max mean`` on every
    lane can be neither the argmax nor tied with it; its width is set to -inf. Decisions and
    propensities are exactly those of the full computation.
    """
    K = theta.shape[0]
    d = XT.shape[0]
    lane_means(XT, theta, base_mean, M)
    if d == 0 or scale == 0.0:
        for a in range(K):
            for r in range(LANES):
                v = base_var[a]
                W[r, a] = np.inf if v == np.inf else (scale * math.sqrt(v) if v > 0.0 else 0.0)
        return
    if not prune:
        for a in range(K):
            lane_widths(XT, a, L_inv, base_var, scale, W)
        return
    for r in range(m):
        s = 0.0
        for j in range(d):
            s += XT[j, r] * XT[j, r]
        norm[r] = math.sqrt(s)
        b = M[r, 0]
        for a in range(1, K):
            b = max(b, M[r, a])
        best[r] = b
    for a in range(K):
        need = False
        for r in range(m):
            if M[r, a] + bound0[a] + bound1[a] * norm[r] >= best[r]:
                need = True
        if need:
            lane_widths(XT, a, L_inv, base_var, scale, W)
        else:
            for r in range(LANES):
                W[r, a] = -np.inf


@njit(**NJIT)
def load_lanes(XC, b0, m, XT):
    """Rows ``b0 .. b0+m-1`` of ``XC`` (features x rows) into ``XT``; lanes past ``m`` get 0."""
    for j in range(XC.shape[0]):
        for r in range(m):
            XT[j, r] = XC[j, b0 + r]
        for r in range(m, LANES):
            XT[j, r] = 0.0


@njit(**NJIT)
def _sample_scores(state, elig, kind, mean, width, beta_a, beta_b, score):
    """One Thompson draw of every eligible arm's score; returns ``(state, argmax)``."""
    best = -np.inf
    arm = -1
    for a in range(elig.shape[0]):
        if not elig[a]:
            continue
        if kind == BETA_TS:
            state, s = next_beta(state, beta_a[a], beta_b[a])
        else:
            state, z = next_normal(state)
            s = mean[a] + width[a] * z
        score[a] = s
        if arm < 0 or s > best:
            best = s
            arm = a
    return state, arm


@njit(**NJIT)
def choose(elig, mean, width, beta_a, beta_b, kind, epsilon, seed, row, draws, score, dist):
    """Decide one row from its arms' ``mean`` and ``width``. Returns ``(arm, propensity)``;
    ``dist`` receives the policy's probability of every arm for this row (exact, or the Monte
    Carlo shares for Thompson sampling)."""
    K = mean.shape[0]
    n_elig = 0
    for a in range(K):
        dist[a] = 0.0
        if elig[a]:
            n_elig += 1
    if n_elig == 0:
        return -1, np.nan
    if kind == BETA_TS:
        for a in range(K):
            if elig[a]:
                mean[a] = beta_a[a] / (beta_a[a] + beta_b[a])
    state = stream_base(seed, row)
    if kind == GREEDY or kind == UCB:
        best = -np.inf
        n_best = 0
        for a in range(K):
            if not elig[a]:
                continue
            s = mean[a] + width[a] if kind == UCB else mean[a]
            score[a] = s
            if n_best == 0 or s > best:
                best = s
                n_best = 1
            elif s == best:
                n_best += 1
        eps = epsilon if kind == GREEDY else 0.0
        explore = False
        if eps > 0.0:
            state, u = next_uniform(state)
            explore = u < eps
        state, k = next_index(state, n_elig if explore else n_best)
        chosen = -1
        for a in range(K):
            if not elig[a]:
                continue
            is_best = score[a] == best
            dist[a] = eps / n_elig + ((1.0 - eps) / n_best if is_best else 0.0)
            if explore or is_best:
                if k == 0 and chosen < 0:
                    chosen = a
                k -= 1
        return chosen, dist[chosen]
    state, chosen = _sample_scores(state, elig, kind, mean, width, beta_a, beta_b, score)
    dist[chosen] += 1.0
    for _ in range(draws):
        state, other = _sample_scores(state, elig, kind, mean, width, beta_a, beta_b, score)
        dist[other] += 1.0
    for a in range(K):
        dist[a] /= draws + 1.0
    return chosen, dist[chosen]


@njit(**NJIT)
def gather_lanes(XC, rows, k0, m, XT):
    """Rows ``rows[k0 .. k0+m-1]`` of ``XC`` into ``XT``; other lanes get zeros."""
    for j in range(XC.shape[0]):
        for r in range(m):
            XT[j, r] = XC[j, rows[k0 + r]]
        for r in range(m, LANES):
            XT[j, r] = 0.0


@njit(**NJIT)
def chunk_moments(XC, lo, hi, theta, L_inv, base_mean, base_var, scale, bound0, bound1, prune,
                  Mc, Wc, XT, M8, W8, norm, best, rows):
    """Means ``Mc`` and widths ``Wc`` (row ``i`` at ``i - lo``) of every arm for rows
    ``lo .. hi-1``. Widths are computed eight (row, arm) pairs at a time; with ``prune`` only for
    the pairs whose score could reach the row's best (see :func:`block_moments`), grouped by arm,
    so a trained policy computes one or two widths per row instead of K."""
    K = theta.shape[0]
    d = XC.shape[0]
    n = hi - lo
    for b0 in range(lo, hi, LANES):
        m = min(LANES, hi - b0)
        load_lanes(XC, b0, m, XT)
        lane_means(XT, theta, base_mean, M8)
        for r in range(m):
            for a in range(K):
                Mc[b0 - lo + r, a] = M8[r, a]
    if d == 0 or scale == 0.0:
        for a in range(K):
            v = base_var[a]
            w = np.inf if v == np.inf else (scale * math.sqrt(v) if v > 0.0 else 0.0)
            for k in range(n):
                Wc[k, a] = w
        return
    if not prune:
        for b0 in range(lo, hi, LANES):
            m = min(LANES, hi - b0)
            load_lanes(XC, b0, m, XT)
            for a in range(K):
                lane_widths(XT, a, L_inv, base_var, scale, W8)
            for r in range(m):
                for a in range(K):
                    Wc[b0 - lo + r, a] = W8[r, a]
        return
    for k in range(n):
        s = 0.0
        for j in range(d):
            s += XC[j, lo + k] * XC[j, lo + k]
        norm[k] = math.sqrt(s)
        b = Mc[k, 0]
        for a in range(1, K):
            b = max(b, Mc[k, a])
        best[k] = b
    for a in range(K):
        count = 0
        for k in range(n):
            if Mc[k, a] + bound0[a] + bound1[a] * norm[k] >= best[k]:
                rows[count] = lo + k
                count += 1
            else:
                Wc[k, a] = -np.inf
        for k0 in range(0, count, LANES):
            m = min(LANES, count - k0)
            gather_lanes(XC, rows, k0, m, XT)
            lane_widths(XT, a, L_inv, base_var, scale, W8)
            for r in range(m):
                Wc[rows[k0 + r] - lo, a] = W8[r, a]


@parallel_kernel
def decide_rows(XC, mask, theta, L_inv, base_mean, base_var, scale, bound0, bound1, beta_a,
                beta_b, kind, epsilon, seed, row0, draws, out_arm, out_prop, out_mean, out_dist):
    """Decide every row of ``XC`` (features x rows: each feature column contiguous, as Arrow
    holds it); ``mask`` is (n, K) uint8 or (0, K) for "all arms eligible".

    ``out_mean`` (n, K) receives each eligible arm's expected reward (NaN for the others) and
    ``out_dist`` (n, K) each arm's probability; pass (0, K) arrays to skip either.
    """
    n = XC.shape[1]
    d = XC.shape[0]
    K = theta.shape[0]
    n_chunks = (n + BANDIT_DECIDE_CHUNK - 1) // BANDIT_DECIDE_CHUNK
    prune = kind == UCB and mask.shape[0] == 0
    for c in prange(n_chunks):
        XT = np.empty((d, LANES))
        M8 = np.empty((LANES, K))
        W8 = np.empty((LANES, K))
        Mc = np.empty((BANDIT_DECIDE_CHUNK, K))
        Wc = np.empty((BANDIT_DECIDE_CHUNK, K))
        norm = np.empty(BANDIT_DECIDE_CHUNK)
        best = np.empty(BANDIT_DECIDE_CHUNK)
        rows = np.empty(BANDIT_DECIDE_CHUNK, dtype=np.int64)
        score = np.zeros(K)
        dist = np.zeros(K)
        everyone = np.ones(K, dtype=np.uint8)
        lo = c * BANDIT_DECIDE_CHUNK
        hi = min(n, lo + BANDIT_DECIDE_CHUNK)
        chunk_moments(XC, lo, hi, theta, L_inv, base_mean, base_var, scale, bound0, bound1, prune,
                      Mc, Wc, XT, M8, W8, norm, best, rows)
        for i in range(lo, hi):
            elig = mask[i] if mask.shape[0] > 0 else everyone
            arm, p = choose(elig, Mc[i - lo], Wc[i - lo], beta_a, beta_b, kind, epsilon, seed,
                            row0 + i, draws, score, dist)
            out_arm[i] = arm
            out_prop[i] = p
            if out_mean.shape[0] > 0:
                for a in range(K):
                    out_mean[i, a] = Mc[i - lo, a] if elig[a] else np.nan
            if out_dist.shape[0] > 0:
                for a in range(K):
                    out_dist[i, a] = dist[a]


@njit(**NJIT)
def decide_single(x, elig, theta, L_inv, arm_params, scale, kind, epsilon, seed, row, draws):
    """One decision for a service (``Policy.decide_one``): ``(arm, propensity)``, GIL released.

    ``arm_params`` (6, K) stacks base_mean, base_var, bound0, bound1, beta_a, beta_b: fewer
    arguments and one scratch allocation keep a call to a few microseconds."""
    K = theta.shape[0]
    d = x.shape[0]
    scratch = np.empty(d * LANES + 2 * LANES * K + 2 * LANES + 2 * K)
    XT = scratch[:d * LANES].reshape((d, LANES))
    at = d * LANES
    M = scratch[at:at + LANES * K].reshape((LANES, K))
    at += LANES * K
    W = scratch[at:at + LANES * K].reshape((LANES, K))
    at += LANES * K
    norm = scratch[at:at + LANES]
    best = scratch[at + LANES:at + 2 * LANES]
    at += 2 * LANES
    score = scratch[at:at + K]
    dist = scratch[at + K:at + 2 * K]
    load_lanes(x.reshape((d, 1)), 0, 1, XT)
    prune = kind == UCB
    for a in range(K):
        prune = prune and elig[a] != 0
    block_moments(XT, 1, theta, L_inv, arm_params[0], arm_params[1], scale, arm_params[2],
                  arm_params[3], prune, M, W, norm, best)
    return choose(elig, M[0], W[0], arm_params[4], arm_params[5], kind, epsilon, seed, row,
                  draws, score, dist)
