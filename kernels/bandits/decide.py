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

from ..common.config import BANDIT_DECIDE_CHUNK, BANDIT_ROWWISE_BELOW, NJIT
from ..common.launch import parallel_kernel
from .rng import next_beta, next_index, next_normal, next_uniform, stream_base

GREEDY = 0
UCB = 1
GAUSS_TS = 2
BETA_TS = 3


@njit(**NJIT)
def _axpy(dst, t, src):
    """``dst += t * src`` element-wise (contiguous rows of one feature: the loop vectorises)."""
    for r in range(dst.shape[0]):
        dst[r] += t * src[r]


@njit(**NJIT)
def _axpy2(dst, t0, src0, t1, src1):
    """``dst += t0 * src0`` then ``dst += t1 * src1`` in one pass (same rounding as two)."""
    for r in range(dst.shape[0]):
        dst[r] = (dst[r] + t0 * src0[r]) + t1 * src1[r]


@njit(**NJIT)
def arm_means(XC, lo, m, theta, base_mean, M):
    """``M[a, r] = base_mean[a] + theta[a] . x`` for the rows ``x = XC[:, lo + r]``, r < m.

    The loop over rows is innermost and runs over contiguous feature columns, so it is SIMD;
    each row's sum still adds its terms in feature order, so a row gets the same bits in any
    block and alone (``decide_single``)."""
    if m < BANDIT_ROWWISE_BELOW:  # a handful of rows (decide_one): plain loops, same order
        for r in range(m):
            for a in range(theta.shape[0]):
                s = base_mean[a]
                for j in range(XC.shape[0]):
                    s += theta[a, j] * XC[j, lo + r]
                M[a, r] = s
        return
    for a in range(theta.shape[0]):
        Ma = M[a][:m]
        Ma[:] = base_mean[a]
        for j in range(XC.shape[0]):
            _axpy(Ma, theta[a, j], XC[j][lo:lo + m])


@njit(**NJIT)
def arm_widths(XC, lo, m, L_inv, base_var, scale, z, W):
    """``W[r] = scale * sqrt(base_var + |L_inv x|^2)`` for the rows ``x = XC[:, lo + r]``
    (``x^T A^-1 x = |L^-1 x|^2``, ``L`` the Cholesky factor of ``A``: half the work of the
    quadratic form). Rows innermost, as in :func:`arm_means`."""
    Wm = W[:m]
    zm = z[:m]
    Wm[:] = base_var
    if m < BANDIT_ROWWISE_BELOW:  # as in arm_means
        for r in range(m):
            for i in range(XC.shape[0]):
                zr = 0.0
                for j in range(i + 1):
                    zr += L_inv[i, j] * XC[j, lo + r]
                Wm[r] += zr * zr
    else:
        for i in range(XC.shape[0]):
            zm[:] = 0.0
            for j in range(0, i, 2):  # features two by two: half the passes over z
                _axpy2(zm, L_inv[i, j], XC[j][lo:lo + m], L_inv[i, j + 1],
                       XC[j + 1][lo:lo + m])
            if i % 2 == 0:
                _axpy(zm, L_inv[i, i], XC[i][lo:lo + m])
            for r in range(m):
                Wm[r] += zm[r] * zm[r]
    for r in range(m):
        q = Wm[r]
        if q != np.inf:
            Wm[r] = scale * math.sqrt(q) if q > 0.0 else 0.0


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
        k = 0
        if eps > 0.0 or n_best > 1:  # else the draw could only say 0: skip the stream
            state = stream_base(seed, row)
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
    state, chosen = _sample_scores(stream_base(seed, row), elig, kind, mean, width, beta_a, beta_b, score)
    dist[chosen] += 1.0
    for _ in range(draws):
        state, other = _sample_scores(state, elig, kind, mean, width, beta_a, beta_b, score)
        dist[other] += 1.0
    for a in range(K):
        dist[a] /= draws + 1.0
    return chosen, dist[chosen]


@njit(**NJIT)
def scratch_for(d, K, B):
    """One allocation of float scratch for a block of ``B`` rows: ``(M, W, XG, z, norm, best,
    wg, score, dist, mrow, wrow)`` as views (fewer allocations keep ``decide_single`` fast)."""
    buf = np.empty(2 * K * B + d * B + 4 * B + 4 * K)
    M = buf[:K * B].reshape((K, B))
    W = buf[K * B:2 * K * B].reshape((K, B))
    at = 2 * K * B
    XG = buf[at:at + d * B].reshape((d, B))
    at += d * B
    z, norm, best, wg = buf[at:at + B], buf[at + B:at + 2 * B], buf[at + 2 * B:at + 3 * B], \
        buf[at + 3 * B:at + 4 * B]
    at += 4 * B
    return (M, W, XG, z, norm, best, wg, buf[at:at + K], buf[at + K:at + 2 * K],
            buf[at + 2 * K:at + 3 * K], buf[at + 3 * K:at + 4 * K])


@njit(**NJIT)
def block_moments(XC, lo, hi, theta, L_inv, base_mean, base_var, scale, bound0, bound1, prune,
                  M, W, XG, z, norm, best, wg, rows):
    """Means ``M[a, k]`` and widths ``W[a, k]`` of every arm for rows ``lo + k < hi``.

    With ``prune`` (UCB, every arm eligible), an arm's width is computed only for the rows where
    its score could reach the row's best: ``width <= bound0[a] + bound1[a] * |x|`` (``bound1``
    is the spectral norm of ``L_inv[a]`` times the scale, with a relative margin far above
    rounding) and every score is at least its mean, so an arm with ``mean + bound < max mean``
    can be neither the argmax nor tied with it; its width is set to -inf. Those rows are
    gathered into ``XG`` so the width loop stays contiguous. Decisions and propensities are
    exactly those of the full computation; a trained policy computes one or two widths per row.
    """
    K = theta.shape[0]
    d = XC.shape[0]
    m = hi - lo
    arm_means(XC, lo, m, theta, base_mean, M)
    if d == 0 or scale == 0.0:
        for a in range(K):
            v = base_var[a]
            W[a, :m] = np.inf if v == np.inf else (scale * math.sqrt(v) if v > 0.0 else 0.0)
        return
    if not prune:
        for a in range(K):
            arm_widths(XC, lo, m, L_inv[a], base_var[a], scale, z, W[a])
        return
    norm[:m] = 0.0  # |x| and the best mean of every row, rows innermost (SIMD)
    for j in range(d):
        x = XC[j][lo:lo + m]
        for k in range(m):
            norm[k] += x[k] * x[k]
    best[:m] = M[0, :m]
    for a in range(1, K):
        for k in range(m):
            best[k] = max(best[k], M[a, k])
    for k in range(m):
        norm[k] = math.sqrt(norm[k])
    for a in range(K):
        count = 0
        for k in range(m):
            W[a, k] = -np.inf
            if M[a, k] + bound0[a] + bound1[a] * norm[k] >= best[k]:
                rows[count] = k
                count += 1
        if count == 0:
            continue
        for j in range(d):
            src = XC[j]
            dst = XG[j]
            for c in range(count):
                dst[c] = src[lo + rows[c]]
        arm_widths(XG, 0, count, L_inv[a], base_var[a], scale, z, wg)
        for c in range(count):
            W[a, rows[c]] = wg[c]


@njit(**NJIT)
def decide_block(XC, lo, hi, mask, theta, L_inv, base_mean, base_var, scale, bound0, bound1,
                 beta_a, beta_b, kind, epsilon, seed, row0, draws, prune, everyone, scratch, rows,
                 out_arm, out_prop, out_mean, out_dist):
    """Decide rows ``lo .. hi-1`` (``out_*`` indexed from ``lo``).

    Deterministic policies (UCB, greedy with epsilon 0) on rows where every arm is eligible
    take the argmax block-wise; only rows with a tie go through :func:`choose` (which would
    give the same arm and a propensity of exactly 1 to a unique best)."""
    M, W, XG, z, norm, best, wg, score, dist, mrow, wrow = scratch
    K = theta.shape[0]
    block_moments(XC, lo, hi, theta, L_inv, base_mean, base_var, scale, bound0, bound1, prune,
                  M, W, XG, z, norm, best, wg, rows)
    m = hi - lo
    direct = (kind == UCB or (kind == GREEDY and epsilon == 0.0)) and mask.shape[0] == 0
    if direct:
        ucb = kind == UCB
        for k in range(m):
            best[k] = M[0, k] + W[0, k] if ucb else M[0, k]
            rows[k] = 0
            norm[k] = 1.0  # the number of arms tied at the best
        for a in range(1, K):
            for k in range(m):
                s = M[a, k] + W[a, k] if ucb else M[a, k]
                if s > best[k]:
                    best[k], rows[k], norm[k] = s, a, 1.0
                elif s == best[k]:
                    norm[k] += 1.0
    for i in range(lo, hi):
        if direct and norm[i - lo] == 1.0:
            a = rows[i - lo]
            out_arm[i], out_prop[i] = a, 1.0
            if out_mean.shape[0] > 0:
                for b in range(K):
                    out_mean[i, b] = M[b, i - lo]
            if out_dist.shape[0] > 0:
                out_dist[i, :] = 0.0
                out_dist[i, a] = 1.0
            continue
        elig = mask[i] if mask.shape[0] > 0 else everyone
        for a in range(K):
            mrow[a] = M[a, i - lo]
            wrow[a] = W[a, i - lo]
        arm, p = choose(elig, mrow, wrow, beta_a, beta_b, kind, epsilon, seed, row0 + i, draws,
                        score, dist)
        out_arm[i] = arm
        out_prop[i] = p
        if out_mean.shape[0] > 0:
            for a in range(K):
                out_mean[i, a] = mrow[a] if elig[a] else np.nan  # choose() sets Beta means
        if out_dist.shape[0] > 0:
            for a in range(K):
                out_dist[i, a] = dist[a]


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
    B = BANDIT_DECIDE_CHUNK
    n_chunks = (n + B - 1) // B
    prune = kind == UCB and mask.shape[0] == 0
    for c in prange(n_chunks):
        scratch = scratch_for(d, K, B)
        rows = np.empty(B, dtype=np.int64)
        everyone = np.ones(K, dtype=np.uint8)
        lo = c * B
        decide_block(XC, lo, min(n, lo + B), mask, theta, L_inv, base_mean, base_var, scale,
                     bound0, bound1, beta_a, beta_b, kind, epsilon, seed, row0, draws, prune,
                     everyone, scratch, rows, out_arm, out_prop, out_mean, out_dist)


@njit(**NJIT)
def decide_single(x, elig, theta, L_inv, arm_params, scale, kind, epsilon, seed, row, draws):
    """One decision for a service (``Policy.decide_one``): ``(arm, propensity)``, GIL released;
    the same arithmetic as row ``row`` of :func:`decide_rows`.

    ``arm_params`` (6, K) stacks base_mean, base_var, bound0, bound1, beta_a, beta_b: fewer
    arguments and one scratch allocation keep a call to a few microseconds."""
    K = theta.shape[0]
    d = x.shape[0]
    prune = kind == UCB
    for a in range(K):
        prune = prune and elig[a] != 0
    arm = np.empty(1, dtype=np.int64)
    prop = np.empty(1)
    none = np.empty((0, K))
    decide_block(x.reshape((d, 1)), 0, 1, elig.reshape((1, K)), theta, L_inv, arm_params[0],
                 arm_params[1], scale, arm_params[2], arm_params[3], arm_params[4], arm_params[5],
                 kind, epsilon, seed, row, draws, prune, elig, scratch_for(d, K, 1),
                 np.empty(1, dtype=np.int64), arm, prop, none, none)
    return arm[0], prop[0]
