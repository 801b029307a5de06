"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987), as written by Fader & Hardie (2005),
"A note on deriving the Pareto/NBD model and related expressions".

While alive, purchases are Poisson with rate lambda ~ Gamma(r, alpha); the lifetime is exponential
with rate mu ~ Gamma(s, beta). Likelihood: eq. (22) of the note, with the Gauss hypergeometric
term computed after Euler's transformation (bounded terms, see ``kernels/clv/pareto.py``);
P(alive): eq. (18); conditional expectation: eq. (26); E[X(t)]: eq. (17); P(X(t)=x): eq. (19),
evaluated as an integral over the lifetime (see ``kernels/clv/pareto.probability_n_purchases``).
The loops are compiled ahead of time (kernels/clv/models_native.pyx), so a first fit in a
fresh process compiles nothing (issue #11).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..kernels.clv import pareto as _k
from ._inputs import compress
from ._spec import ModelSpec, Newton, Payload, TransactionKernels
from ._transaction import TransactionModel

__all__ = ["ParetoNBD"]


@dataclasses.dataclass(frozen=True)
class ParetoPayload(Payload):
    """Distinct (x, t_x, T) patterns with weights ``w``; F(y) of the likelihood depends on (x, y)
    only, so it is evaluated once per distinct pair (qx[q], qy[q]), y in {t_x, T}: pattern i has
    x = ux[ix[i]], F(t_x) at pair ia[i] and F(T) at pair ib[i]; pair q has x = ux[jq[q]]."""

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    w: np.ndarray
    qx: np.ndarray
    qy: np.ndarray
    jq: np.ndarray
    ux: np.ndarray
    ix: np.ndarray
    ia: np.ndarray
    ib: np.ndarray

    def subsample(self, step):
        # its own pairs: F is evaluated per distinct (x, y) pair, most of which the subsample
        # does not have
        sl = slice(step // 2, None, step)
        return _payload(self.x[sl].copy(), self.tx[sl].copy(), self.T[sl].copy(),
                        self.w[sl] * step)


def _payload(x, tx, T, w):
    n = x.shape[0]
    (qx, qy), _, pair = compress(np.concatenate([x, x]), np.concatenate([tx, T]))
    ux, ix = np.unique(x, return_inverse=True)
    return ParetoPayload(total_weight=float(w.sum()), n_patterns=int(n),
                         time_scale=float(T.max()) if T.max() > 0 else 1.0,
                         x=x, tx=tx, T=T, w=w, qx=qx, qy=qy,
                         jq=np.searchsorted(ux, qx).astype(np.int64), ux=ux, ix=ix.astype(np.int64),
                         ia=np.ascontiguousarray(pair[:n]), ib=np.ascontiguousarray(pair[n:]))


def _start(p: ParetoPayload):
    mean_T = float(np.average(p.T, weights=p.w)) if p.w.sum() > 0 else 1.0
    mean_x = float(np.average(p.x, weights=p.w)) if p.w.sum() > 0 else 0.0
    scale = max(mean_T / (1.0 + mean_x), 1e-3)
    return np.array([1.0, scale, 1.0, max(mean_T, 1e-3)])


def _loglik(theta, p: ParetoPayload, n_threads):
    return _k.loglik_grad_tab(theta, p.qx, p.qy, p.jq, p.ux, p.ix, p.ia, p.ib, p.T, p.w,
                              n_threads=n_threads)


def _alive_now(theta, x, tx, T, n_threads=None):
    """P(alive at T): ``probability_alive`` with no future time (one kernel for both)."""
    return _k.probability_alive(theta, x, tx, T, np.zeros_like(x), n_threads=n_threads)


def _individual_ll(theta, x, tx, T, n_threads=None):
    return _k.loglik_grad(theta, x, tx, T, np.ones_like(x), n_threads=n_threads)[2]


class ParetoNBD(TransactionModel):
    """Pareto/NBD: ``params_`` = {r, alpha, s, beta}.

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters, ``-LL/n + penalizer * (r^2 + (alpha/max T)^2 + s^2 +
        (beta/max T)^2)``: time is measured in units of max(T) as lifetimes does, so the
        penalised fit does not depend on the time unit. (lifetimes' Pareto/NBD divides the
        log-likelihood by the mean weight instead of the total; fastengage uses ``n`` for every
        model.)
    """

    # Newton steps with a finite-difference Hessian of the analytic gradient (5 passes a step)
    # from a subsample fit: ~4x fewer passes than L-BFGS-B on 100k customers. 15 iterations at
    # most: each costs 5 passes, so a ridge is handed to L-BFGS-B early. The subsample has
    # ~4,000 patterns: in the hard region of #10.17 (20k customers, beta >> alpha) ~2,000 have
    # no interior maximum, the prefit walks the s/beta ridge and the whole-data fit starts over
    # (50 passes instead of 30); on the 100k bench data both take the same time.
    spec = ModelSpec(kind="clv.paretonbd", param_names=("r", "alpha", "s", "beta"),
                     loglik=_loglik, start=_start,
                     newton=Newton(hessian=None, max_iter=15, prefit_min_patterns=10_000,
                                   prefit_patterns=4_000),
                     time_params=("alpha", "beta"))
    kernels = TransactionKernels(
        payload=_payload, alive=_k.probability_alive, alive_now=_alive_now,
        expected=_k.expected_purchases, discounted=_k.discounted_if_alive,
        population=_k.population_expected, pmf=_k.probability_n_purchases,
        individual_ll=_individual_ll)
