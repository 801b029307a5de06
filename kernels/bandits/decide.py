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

from ..common.config import (
    BANDIT_BOUND_SLACK,
    BANDIT_DECIDE_CHUNK,
    BANDIT_ROWWISE_BELOW,
    NJIT,
)
from ..common.launch import parallel_kernel
from ..common.columns import column_view
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
def _axpy4(dst, t0, s0, t1, s1, t2, s2, t3, s3):
    """``dst += t0 s0``, then ``t1 s1``, ``t2 s2``, ``t3 s3`` in one pass: the same rounding
    as four passes, a quarter of the loads and stores of ``dst``."""
    for r in range(dst.shape[0]):
        dst[r] = (((dst[r] + t0 * s0[r]) + t1 * s1[r]) + t2 * s2[r]) + t3 * s3[r]


@njit(**NJIT)
def _accumulate(dst, coef, count, XC, lo):
    """``dst[r] += coef[j] * XC[j, lo + r]`` for ``j < count`` in the order of ``j`` (so each
    row's sum adds its terms in feature order, as the row-by-row loops do), four feature
    columns per pass over the contiguous rows."""
    m = dst.shape[0]
    j = 0
    while j + 4 <= count:
        _axpy4(dst, coef[j], XC[j][lo:lo + m], coef[j + 1], XC[j + 1][lo:lo + m],
               coef[j + 2], XC[j + 2][lo:lo + m], coef[j + 3], XC[j + 3][lo:lo + m])
        j += 4
    while j < count:
        _axpy(dst, coef[j], XC[j][lo:lo + m])
        j += 1


@njit(**NJIT)
def arm_means(XC, lo, m, theta, base_mean, M):
    """``M[a, r] = base_mean[a] + theta[a] . x`` for the rows ``x = XC[:, lo + r]``, r < m.

    The loop over rows is innermost and runs over contiguous feature columns, so it is SIMD;
    each row's sum still adds its terms in feature order, so a row gets the same bits in any
    block and alone (``decide_single``)."""
    d = XC.shape[0]
    if m < BANDIT_ROWWISE_BELOW:  # a handful of rows (decide_one): plain loops, same order
        for r in range(m):
            for a in range(theta.shape[0]):
                s = base_mean[a]
                for j in range(d):
                    s += theta[a, j] * XC[j, lo + r]
                M[a, r] = s
        return
    for a in range(theta.shape[0]):
        Ma = M[a][:m]
        Ma[:] = base_mean[a]
        _accumulate(Ma, theta[a], d, XC, lo)


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
            _accumulate(zm, L_inv[i], i + 1, XC, lo)
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
    """One allocation of float scratch and one of int scratch for a block of ``B`` rows:
    ``(M, W, XG, z, norm, best, wg, thr, cnt, score, dist, mrow, wrow, rows, top, opened)``
    (fewer allocations keep ``decide_single`` fast)."""
    buf = np.empty(2 * K * B + d * B + 6 * B + 4 * K)
    M = buf[:K * B].reshape((K, B))
    W = buf[K * B:2 * K * B].reshape((K, B))
    at = 2 * K * B
    XG = buf[at:at + d * B].reshape((d, B))
    at += d * B
    z, norm, best = buf[at:at + B], buf[at + B:at + 2 * B], buf[at + 2 * B:at + 3 * B]
    wg, thr, cnt = buf[at + 3 * B:at + 4 * B], buf[at + 4 * B:at + 5 * B], \
        buf[at + 5 * B:at + 6 * B]
    at += 6 * B
    ints = np.empty(3 * B, dtype=np.int64)
    return (M, W, XG, z, norm, best, wg, thr, cnt, buf[at:at + K], buf[at + K:at + 2 * K],
            buf[at + 2 * K:at + 3 * K], buf[at + 3 * K:at + 4 * K], ints[:B], ints[B:2 * B],
            ints[2 * B:])


@njit(**NJIT)
def _may_win(mean, ub, thr):
    """Whether an arm with this mean and width bound ``ub`` could reach the row's threshold
    ``thr`` (the least score the row's top-mean arm can have, minus slack). The slack on both
    sides is ``BANDIT_BOUND_SLACK`` times the magnitudes, far above the rounding of any score,
    so a skipped arm's computed score is strictly below the top arm's: not a winner, not tied."""
    return (mean + ub) + BANDIT_BOUND_SLACK * (abs(mean) + ub) >= thr


@njit(**NJIT)
def ucb_contenders(XC, lo, m, M, bounds, norm, best, thr, cnt, top):
    """For UCB rows where every arm is eligible: ``top[k]`` the arm of the largest mean (first
    one), ``thr[k]`` the least score it can have, and ``cnt[k]`` how many other arms
    :func:`_may_win` against it. With ``bounds`` = (ub0, ub1, lb0, lb1) per arm, an arm's
    width lies in ``[max(lb0, lb1 |x|), ub0 + ub1 |x|]`` (spectral norms of ``L_inv``: see the
    policy snapshot). A row with ``cnt == 0`` is decided by its means alone: ``top`` is the
    unique argmax of ``mean + width``, so no width needs computing. Rows innermost and no
    branches on the data (selects), so the loops are SIMD and mispredict nothing."""
    K, d = M.shape[0], XC.shape[0]
    norm[:m] = 0.0
    for j in range(d):
        x = XC[j][lo:lo + m]
        for k in range(m):
            norm[k] += x[k] * x[k]
    for k in range(m):
        norm[k] = math.sqrt(norm[k])
        best[k] = M[0, k]
        top[k] = 0
    for a in range(1, K):
        Ma = M[a]
        for k in range(m):
            higher = Ma[k] > best[k]
            top[k] = a if higher else top[k]
            best[k] = Ma[k] if higher else best[k]
    for k in range(m):
        t = top[k]
        lb = max(bounds[2, t], bounds[3, t] * norm[k])
        thr[k] = (best[k] + lb) - BANDIT_BOUND_SLACK * (abs(best[k]) + lb)
        cnt[k] = 0.0
    for a in range(K):
        u0, u1 = bounds[0, a], bounds[1, a]
        Ma = M[a]
        for k in range(m):
            rival = (top[k] != a) & _may_win(Ma[k], u0 + u1 * norm[k], thr[k])
            cnt[k] += 1.0 if rival else 0.0


@njit(**NJIT)
def open_widths(XC, lo, n_open, opened, M, W, XG, z, wg, rows, L_inv, base_var, scale, bounds,
                norm, thr, top):
    """Widths ``W[a, k]`` of the rows ``k`` in ``opened[:n_open]`` (those :func:`ucb_contenders`
    could not decide by their means): computed for the top arm and every arm that may win,
    -inf for the others (they can neither win nor tie). Each arm's rows are gathered into
    ``XG`` so the width loop stays contiguous."""
    K, d = M.shape[0], XC.shape[0]
    for a in range(K):
        u0, u1 = bounds[0, a], bounds[1, a]
        count = 0
        for c in range(n_open):
            k = opened[c]
            W[a, k] = -np.inf
            if top[k] == a or _may_win(M[a, k], u0 + u1 * norm[k], thr[k]):
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
def _decide_row(i, k, elig, M, W, beta_a, beta_b, kind, epsilon, seed, row0, draws, scratch,
                out_arm, out_prop, out_mean, out_dist):
    """Row ``i`` (column ``k`` of the block's ``M`` and ``W``) through :func:`choose`."""
    score, dist, mrow, wrow = scratch[9], scratch[10], scratch[11], scratch[12]
    K = M.shape[0]
    for a in range(K):
        mrow[a] = M[a, k]
        wrow[a] = W[a, k]
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


@njit(**NJIT)
def _decided(i, k, a, M, out_arm, out_prop, out_mean, out_dist):
    """Row ``i`` goes to its unique best arm ``a`` with probability 1 (every arm eligible)."""
    out_arm[i], out_prop[i] = a, 1.0
    if out_mean.shape[0] > 0:
        for b in range(M.shape[0]):
            out_mean[i, b] = M[b, k]
    if out_dist.shape[0] > 0:
        out_dist[i, :] = 0.0
        out_dist[i, a] = 1.0


@njit(**NJIT)
def decide_block(XC, lo, hi, mask, theta, L_inv, base_mean, base_var, scale, bounds, beta_a,
                 beta_b, kind, epsilon, seed, row0, draws, prune, everyone, scratch, out_arm,
                 out_prop, out_mean, out_dist):
    """Decide rows ``lo .. hi-1`` (``out_*`` indexed from ``lo``).

    With ``prune`` (UCB, every arm eligible, a contextual width) a row whose means decide it
    (:func:`ucb_contenders`) goes to its top arm without computing a width; the others get the
    widths of the arms that may win (:func:`open_widths`) and go through :func:`choose`.
    Other deterministic policies (greedy with epsilon 0, UCB without context) on rows where
    every arm is eligible take the argmax block-wise. Only rows with a tie, a mask or
    randomness go through :func:`choose`, which would give the same arm and a propensity of
    exactly 1 to a unique best. Decisions and propensities are exactly those of the full
    computation (tests compare both). Returns how many rows had a non-finite mean (a NaN or
    infinite feature, or an overflow: the caller checks the features)."""
    M, W, XG, z, norm, best, wg, thr, cnt, _, _, _, _, rows, top, opened = scratch
    K, d = theta.shape[0], XC.shape[0]
    m = hi - lo
    arm_means(XC, lo, m, theta, base_mean, M)
    n_bad = 0  # rows whose first mean is not finite: NaN or inf in x (0 * inf is NaN too)
    if d > 0:
        M0 = M[0]
        for k in range(m):
            n_bad += 0 if M0[k] - M0[k] == 0.0 else 1
    if prune and d > 0 and scale > 0.0:
        ucb_contenders(XC, lo, m, M, bounds, norm, best, thr, cnt, top)
        n_open = 0
        for k in range(m):
            if cnt[k] > 0.0:
                opened[n_open] = k
                n_open += 1
            else:
                _decided(lo + k, k, top[k], M, out_arm, out_prop, out_mean, out_dist)
        open_widths(XC, lo, n_open, opened, M, W, XG, z, wg, rows, L_inv, base_var, scale,
                    bounds, norm, thr, top)
        for c in range(n_open):
            _decide_row(lo + opened[c], opened[c], everyone, M, W, beta_a, beta_b, kind,
                        epsilon, seed, row0, draws, scratch, out_arm, out_prop, out_mean,
                        out_dist)
        return n_bad
    for a in range(K):
        if d == 0 or scale == 0.0:
            v = base_var[a]
            W[a, :m] = np.inf if v == np.inf else (scale * math.sqrt(v) if v > 0.0 else 0.0)
        else:
            arm_widths(XC, lo, m, L_inv[a], base_var[a], scale, z, W[a])
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
                higher = s > best[k]
                norm[k] = 1.0 if higher else (norm[k] + 1.0 if s == best[k] else norm[k])
                rows[k] = a if higher else rows[k]
                best[k] = s if higher else best[k]
    for k in range(m):
        if direct and norm[k] == 1.0:
            _decided(lo + k, k, rows[k], M, out_arm, out_prop, out_mean, out_dist)
        else:
            _decide_row(lo + k, k, mask[lo + k] if mask.shape[0] > 0 else everyone, M, W,
                        beta_a, beta_b, kind, epsilon, seed, row0, draws, scratch, out_arm,
                        out_prop, out_mean, out_dist)
    return n_bad


@parallel_kernel
def decide_rows(addresses, n, mask, theta, L_inv, base_mean, base_var, scale, bounds, beta_a,
                beta_b, kind, epsilon, seed, row0, draws, out_arm, out_prop, out_mean, out_dist,
                out_bad):
    """Decide every row of the ``n``-row input whose feature column ``j`` (float64) is at
    ``addresses[j]`` (see :mod:`.columns`); ``mask`` is (n, K) uint8 or (0, K) for "all arms
    eligible"; ``bounds`` (4, K) the width bounds ``ub0, ub1, lb0, lb1`` (see
    :func:`ucb_contenders`). Each task copies its chunk of every column into a features x rows
    block (contiguous rows per feature, in cache) and decides it.

    ``out_mean`` (n, K) receives each eligible arm's expected reward (NaN for the others) and
    ``out_dist`` (n, K) each arm's probability; pass (0, K) arrays to skip either.
    ``out_bad[c]`` (one per ``BANDIT_DECIDE_CHUNK`` rows) counts the chunk's rows whose means
    are not finite, so the caller proves the features finite without reading them again.
    """
    d = addresses.shape[0]
    K = theta.shape[0]
    B = BANDIT_DECIDE_CHUNK
    n_chunks = (n + B - 1) // B
    prune = kind == UCB and mask.shape[0] == 0
    for c in prange(n_chunks):
        scratch = scratch_for(d, K, B)
        everyone = np.ones(K, dtype=np.uint8)
        lo = c * B
        hi = min(n, lo + B)
        XC = np.empty((d, hi - lo))
        for j in range(d):
            XC[j] = column_view(addresses[j], n)[lo:hi]
        # The block's rows are rows lo.. of the outputs, the mask and the random streams.
        out_bad[c] = decide_block(XC, 0, hi - lo, mask[lo:hi], theta, L_inv, base_mean,
                                  base_var, scale, bounds, beta_a, beta_b, kind, epsilon, seed,
                                  row0 + lo, draws, prune, everyone, scratch, out_arm[lo:hi],
                                  out_prop[lo:hi], out_mean[lo:hi], out_dist[lo:hi])


@njit(**NJIT)
def decide_single(x, elig, theta, L_inv, arm_params, scale, kind, epsilon, seed, row, draws):
    """One decision for a service (``Policy.decide_one``): ``(arm, propensity)``, GIL released;
    the same arithmetic as row ``row`` of :func:`decide_rows`.

    ``arm_params`` (8, K) stacks base_mean, base_var, the four width bounds, beta_a, beta_b:
    fewer arguments and one scratch allocation keep a call to a few microseconds. Returns arm
    -2 when ``x`` holds NaN or infinity (the caller raises)."""
    K = theta.shape[0]
    d = x.shape[0]
    for j in range(d):
        if not math.isfinite(x[j]):
            return -2, np.nan
    prune = kind == UCB
    for a in range(K):
        prune = prune and elig[a] != 0
    arm = np.empty(1, dtype=np.int64)
    prop = np.empty(1)
    none = np.empty((0, K))
    decide_block(x.reshape((d, 1)), 0, 1, elig.reshape((1, K)), theta, L_inv, arm_params[0],
                 arm_params[1], scale, arm_params[2:6], arm_params[6], arm_params[7], kind,
                 epsilon, seed, row, draws, prune, elig, scratch_for(d, K, 1), arm, prop, none,
                 none)
    return arm[0], prop[0]
