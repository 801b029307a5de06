"""Decisions of every bandit policy, one row at a time, with the probability of the chosen arm.

A policy is reduced to per-arm numbers that the API computes from its statistics:

* ``mean[a] = base_mean[a] + theta[a] . x`` (``theta`` has zero columns for non-contextual
  policies) and ``width[a] = scale * sqrt(base_var[a] + x^T A_inv[a] x)``;
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


@njit(**NJIT)
def arm_moments(x, elig, theta, A_inv, base_mean, base_var, scale, mean, width):
    """Fill ``mean`` and ``width`` of the eligible arms for context ``x``."""
    K = theta.shape[0]
    d = x.shape[0]
    for a in range(K):
        if not elig[a]:
            continue
        m = base_mean[a]
        for j in range(d):
            m += theta[a, j] * x[j]
        v = base_var[a]
        if d > 0 and scale != 0.0:  # greedy policies never read the width
            quad = 0.0
            for i in range(d):
                acc = 0.0
                for j in range(d):
                    acc += A_inv[a, i, j] * x[j]
                quad += acc * x[i]
            v += quad
        mean[a] = m
        if v == np.inf:
            width[a] = np.inf
        else:
            width[a] = scale * math.sqrt(v) if v > 0.0 else 0.0


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
def decide_row(x, elig, theta, A_inv, base_mean, base_var, scale, beta_a, beta_b, kind,
               epsilon, seed, row, draws, mean, width, score, dist):
    """Decide one row. Returns ``(arm, propensity)``; ``dist`` receives the policy's probability
    of every arm for this row (exact, or the Monte Carlo shares for Thompson sampling)."""
    K = theta.shape[0]
    n_elig = 0
    for a in range(K):
        dist[a] = 0.0
        if elig[a]:
            n_elig += 1
    if n_elig == 0:
        return -1, np.nan
    arm_moments(x, elig, theta, A_inv, base_mean, base_var, scale, mean, width)
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


@parallel_kernel
def decide_rows(X, mask, theta, A_inv, base_mean, base_var, scale, beta_a, beta_b, kind,
                epsilon, seed, row0, draws, out_arm, out_prop, out_mean, out_dist):
    """Decide every row of ``X``; ``mask`` is (n, K) uint8 or (0, K) for "all arms eligible".

    ``out_mean`` (n, K) receives each eligible arm's expected reward (NaN for the others) and
    ``out_dist`` (n, K) each arm's probability; pass (0, K) arrays to skip either.
    """
    n = X.shape[0]
    K = theta.shape[0]
    n_chunks = (n + BANDIT_DECIDE_CHUNK - 1) // BANDIT_DECIDE_CHUNK
    for c in prange(n_chunks):
        mean = np.zeros(K)
        width = np.zeros(K)
        score = np.zeros(K)
        dist = np.zeros(K)
        everyone = np.ones(K, dtype=np.uint8)
        for i in range(c * BANDIT_DECIDE_CHUNK, min(n, (c + 1) * BANDIT_DECIDE_CHUNK)):
            elig = mask[i] if mask.shape[0] > 0 else everyone
            arm, p = decide_row(X[i], elig, theta, A_inv, base_mean, base_var, scale, beta_a,
                                beta_b, kind, epsilon, seed, row0 + i, draws, mean, width,
                                score, dist)
            out_arm[i] = arm
            out_prop[i] = p
            if out_mean.shape[0] > 0:
                for a in range(K):
                    out_mean[i, a] = mean[a] if elig[a] else np.nan
            if out_dist.shape[0] > 0:
                for a in range(K):
                    out_dist[i, a] = dist[a]


@njit(**NJIT)
def decide_single(x, elig, theta, A_inv, base_mean, base_var, scale, beta_a, beta_b, kind,
                  epsilon, seed, row, draws):
    """One decision for a service (``Policy.decide_one``): ``(arm, propensity)``, GIL released."""
    K = theta.shape[0]
    mean = np.zeros(K)
    width = np.zeros(K)
    score = np.zeros(K)
    dist = np.zeros(K)
    return decide_row(x, elig, theta, A_inv, base_mean, base_var, scale, beta_a, beta_b, kind,
                      epsilon, seed, row, draws, mean, width, score, dist)
