"""The policies: how each one turns its additive statistics into the numbers a decision reads
(see :class:`~fastengage.bandits.policies.Policy` for everything they share)."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..kernels.bandits import decide as _decide
from ..kernels.bandits import ridge as _ridge
from .policies import Policy

__all__ = ["UCB1", "BetaTS", "EpsilonGreedy", "GaussianTS", "HybridLinUCB", "LinEpsilonGreedy",
           "LinTS", "LinUCB"]

_POS = (0.0, np.inf)
_PROB = (0.0, 1.0)


class EpsilonGreedy(Policy):
    """Best empirical mean (0 for an arm never played) with probability ``1 - epsilon``, a
    uniformly random eligible arm otherwise."""

    KIND = _decide.GREEDY
    PARAMS = (("epsilon", 0.1, _PROB),)

    def _derive(self):
        K = self._counts.shape[0]
        mean = np.divide(self._sums, self._counts, out=np.zeros(K), where=self._counts > 0)
        return mean, np.zeros(K), 0.0, np.ones(K), np.ones(K)


class UCB1(Policy):
    """Argmax of ``mean + alpha * sqrt(2 ln N / n_a)`` (N rows learned in all); an arm never
    played scores +inf, so each arm is tried once first (ties broken at random)."""

    KIND = _decide.UCB
    PARAMS = (("alpha", 1.0, _POS),)

    def _derive(self):
        K, n = self._counts.shape[0], self._counts
        played = n > 0
        mean = np.divide(self._sums, n, out=np.zeros(K), where=played)
        total = max(float(n.sum()), 1.0)
        var = np.full(K, np.inf)
        var[played] = 2.0 * np.log(total) / n[played]
        return mean, var, self.params["alpha"], np.ones(K), np.ones(K)


class BetaTS(Policy):
    """Beta-Bernoulli Thompson sampling: arm ``a`` scores a draw of
    Beta(prior_alpha + successes, prior_beta + failures); rewards must lie in [0, 1]."""

    KIND = _decide.BETA_TS
    BINARY_REWARDS = True
    PARAMS = (("prior_alpha", 1.0, (1e-12, np.inf)), ("prior_beta", 1.0, (1e-12, np.inf)))

    def _derive(self):
        K = self._counts.shape[0]
        a = self.params["prior_alpha"] + self._sums
        b = self.params["prior_beta"] + (self._counts - self._sums)
        return np.zeros(K), np.zeros(K), 0.0, a, b


class GaussianTS(Policy):
    """Gaussian Thompson sampling with known noise: the mean reward of arm ``a`` has prior
    N(prior_mean, prior_sd^2); rewards are N(mean, noise_sd^2); each arm scores a draw of its
    posterior N(m_a, s_a^2), ``1/s_a^2 = 1/prior_sd^2 + n_a/noise_sd^2``."""

    KIND = _decide.GAUSS_TS
    # the standard deviations are squared: bounded so that their precisions stay finite and
    # non-zero (a saved file with noise_sd=1e200 once raised OverflowError at load)
    PARAMS = (("prior_mean", 0.0, (-np.inf, np.inf)), ("prior_sd", 1.0, (1e-12, 1e12)),
              ("noise_sd", 1.0, (1e-12, 1e12)))

    def _derive(self):
        K = self._counts.shape[0]
        p0 = 1.0 / self.params["prior_sd"] ** 2
        nv = 1.0 / self.params["noise_sd"] ** 2
        precision = p0 + self._counts * nv
        mean = (self.params["prior_mean"] * p0 + self._sums * nv) / precision
        return mean, 1.0 / precision, 1.0, np.ones(K), np.ones(K)


class _Linear(Policy):
    CONTEXTUAL = True

    def _derive(self):
        K = self._counts.shape[0]
        return np.zeros(K), np.zeros(K), self._scale(), np.ones(K), np.ones(K)

    def _scale(self) -> float:
        return 0.0


class LinUCB(_Linear):
    """Disjoint LinUCB (Li et al. 2010): per-arm ridge ``theta_a = (G_a + l2 I)^-1 g_a``; arm
    score ``x . theta_a + alpha * sqrt(x^T A_a^-1 x)`` (MABWiser's LinUCB with the same alpha
    and l2 chooses the same arms); ties broken at random, propensity 1 / n_tied."""

    KIND = _decide.UCB
    PARAMS = (("alpha", 1.0, _POS), ("l2", 1.0, (1e-12, np.inf)))

    def _scale(self):
        return self.params["alpha"]


class LinTS(_Linear):
    """Linear Thompson sampling (Agrawal & Goyal 2013): ``theta ~ N(theta_a, v^2 A_a^-1)``; the
    score ``x . theta`` is drawn directly as N(x . theta_a, v^2 x^T A_a^-1 x), which is the same
    distribution for the row's decision."""

    KIND = _decide.GAUSS_TS
    PARAMS = (("v", 1.0, _POS), ("l2", 1.0, (1e-12, np.inf)))

    def _scale(self):
        return self.params["v"]


class LinEpsilonGreedy(_Linear):
    """Epsilon-greedy over per-arm ridge predictions ``x . theta_a``."""

    KIND = _decide.GREEDY
    PARAMS = (("epsilon", 0.1, _PROB), ("l2", 1.0, (1e-12, np.inf)))


class HybridLinUCB(LinUCB):
    """Hybrid LinUCB (Li et al. 2010, Algorithm 2): arm ``a`` scores
    ``z . beta + x . theta_a + alpha * sqrt(s_a)``, where ``z`` are the ``shared`` features,
    whose coefficient ``beta`` is learned from every arm's rows, and ``x`` the arm's own
    ``features`` with per-arm ``theta_a``; ``s_a`` is the paper's variance term. Ridge ``l2``
    on ``beta`` and every ``theta_a`` (the paper's identity priors when ``l2 = 1``).

    The statistics are those of a disjoint LinUCB on ``w = [z; x]`` (per-arm sums of ``w w^T``
    and ``r w``: additive, so ``update``, ``update_one``, ``merge`` and saving work as for every
    policy); the shared part is pooled over arms when the snapshot is built, so every decision
    reads all arms' data and an update re-solves every arm. Columns are read as
    ``shared + features``; ``decide_one(w)`` takes that concatenation, shared values first.
    """

    def __init__(self, arms, *, features: list[str] | None = None,
                 shared: list[str] | None = None, **params):
        lists = []
        for role, names in (("features", features), ("shared", shared)):
            if (names is None or isinstance(names, str) or not len(names)
                    or not all(isinstance(f, str) for f in names)):
                raise InputError(f"HybridLinUCB needs {role}=[column names] (at least one)")
            lists.append(list(names))
        own, common = lists
        if set(own) & set(common):
            raise InputError(f"columns {sorted(set(own) & set(common))} are both shared and "
                             "per-arm features")
        self.shared = common
        super().__init__(arms, features=common + own, **params)

    def _refresh(self, arms=None) -> None:
        super()._refresh(None)  # beta pools every arm: re-solve them all

    def _solve(self, theta, A_inv, L_inv, rows) -> None:
        P, c = _ridge.hybrid_joint(self._G, self._g, len(self.shared), self.params["l2"])
        bad = _ridge.solve_arms(P, c, 0.0, theta, A_inv, L_inv)
        if bad >= 0:
            raise InputError(f"the joint ridge matrix of arm {self._arms[bad]} is not positive "
                             "definite")

    def merge(self, other):
        if isinstance(other, HybridLinUCB) and len(other.shared) != len(self.shared):
            raise InputError("merge needs hybrid policies with the same number of shared "
                             "features")
        return super().merge(other)
