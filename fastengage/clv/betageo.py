"""BG/NBD (Fader, Hardie & Lee 2005) and MBG/NBD (Batislam, Denizel & Filiztekin 2007).

Model (BG/NBD): while alive, purchases follow a Poisson process of rate lambda ~ Gamma(r, alpha);
after each repeat purchase the customer drops out with probability p ~ Beta(a, b). MBG/NBD also
lets the customer drop out at time zero. Time is in the unit of ``recency``/``T`` (weeks for
CDNOW). Likelihood: FHL 2005 eq. 6 (Batislam et al. eq. 4); P(alive): eq. 13; conditional
expectation: eq. 10; E[X(t)]: eq. 9; P(X(t)=x): eq. 8.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from ..kernels.clv import betageo as _k
from ._spec import ModelSpec, Newton, Payload, TransactionKernels
from ._transaction import TransactionModel

__all__ = ["BetaGeo", "ModifiedBetaGeo"]


@dataclasses.dataclass(frozen=True)
class BetaGeoPayload(Payload):
    """Distinct (x, t_x, T) patterns with weights ``w``, and the tables the likelihood kernel
    reads: distinct frequencies ``ux`` and distinct recency/T values ``uy``; pattern i is
    (ux[ix[i]], uy[itx[i]], uy[iT[i]]). ``modified`` = 1 for MBG/NBD."""

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    w: np.ndarray
    ux: np.ndarray
    uy: np.ndarray
    ix: np.ndarray
    iT: np.ndarray
    itx: np.ndarray
    modified: int

    def subsample(self, step):
        # its own tables: the distinct values of the whole data would all be tabulated
        sl = slice(step // 2, None, step)
        return _payload(self.x[sl].copy(), self.tx[sl].copy(), self.T[sl].copy(),
                        self.w[sl] * step, self.modified)


def _payload(x, tx, T, w, modified):
    # distinct frequencies and distinct recency/T values: the kernel tabulates every special
    # function over them, leaving one exp and one log1p per pattern
    n = x.shape[0]
    ymax = max(float(tx.max()), float(T.max()))
    common = dict(total_weight=float(w.sum()), n_patterns=int(n),
                  time_scale=float(T.max()) if T.max() > 0 else 1.0,
                  x=x, tx=tx, T=T, w=w, modified=int(modified))
    if ymax < 4 * n + 1024 and x.max() < 4 * n + 1024 and np.array_equal(x, np.floor(x)) \
            and np.array_equal(tx, np.floor(tx)) and np.array_equal(T, np.floor(T)):
        # whole numbers: the values are their own table indices
        return BetaGeoPayload(ux=np.arange(x.max() + 1.0), uy=np.arange(ymax + 1.0),
                              ix=x.astype(np.int64), iT=T.astype(np.int64),
                              itx=tx.astype(np.int64), **common)
    ux, ix = np.unique(x, return_inverse=True)
    uy, iy = np.unique(np.concatenate([tx, T]), return_inverse=True)
    return BetaGeoPayload(ux=ux, uy=uy, ix=ix.astype(np.int64),
                          iT=np.ascontiguousarray(iy[n:], np.int64),
                          itx=np.ascontiguousarray(iy[:n], np.int64), **common)


def _start(p: BetaGeoPayload):
    mean_T = float(np.average(p.T, weights=p.w)) if p.w.sum() > 0 else 1.0
    mean_x = float(np.average(p.x, weights=p.w)) if p.w.sum() > 0 else 0.0
    return np.array([1.0, max(mean_T / (1.0 + mean_x), 1e-3), 1.0, 1.0])


def _derivs(theta, p: BetaGeoPayload, n_threads, want_hess=True):
    return _k.loglik_derivs_tab(theta, p.ux, p.uy, p.ix, p.iT, p.itx, p.w, p.modified, want_hess,
                                n_threads=n_threads)


def _loglik(theta, p: BetaGeoPayload, n_threads):
    ll, g, _ = _derivs(theta, p, n_threads, False)
    return ll, g


def _spec(kind):
    return ModelSpec(kind=kind, param_names=("r", "alpha", "a", "b"), loglik=_loglik,
                     start=_start, newton=Newton(hessian=_derivs), time_params=("alpha",))


def _kernels(modified):
    m = int(modified)

    def individual_ll(theta, x, tx, T, n_threads=None):
        return _k.loglik_grad(theta, x, tx, T, np.ones_like(x), m, n_threads=n_threads)[2]

    def bind(kernel):
        return functools.partial(_append_modified, kernel, m)

    return TransactionKernels(
        payload=functools.partial(_payload, modified=m),
        alive=bind(_k.probability_alive), alive_now=bind(_alive_now),
        expected=bind(_k.expected_purchases), discounted=bind(_k.discounted_if_alive),
        population=bind(_k.population_expected), pmf=bind(_k.probability_n_purchases),
        individual_ll=individual_ll)


def _alive_now(theta, x, tx, T, modified, n_threads=None):
    """P(alive at T): ``probability_alive`` with no future time (one kernel for both)."""
    return _k.probability_alive(theta, x, tx, T, np.zeros_like(x), modified, n_threads=n_threads)


def _append_modified(kernel, modified, *args, n_threads=None):
    return kernel(*args, modified, n_threads=n_threads)


class BetaGeo(TransactionModel):
    """BG/NBD: ``params_`` = {r, alpha, a, b}.

    Parameters
    ----------
    penalizer : float
        L2 penalty: the optimiser minimises ``-LL/n + penalizer * (r^2 + (alpha/max T)^2 + a^2
        + b^2)`` (lifetimes' ``penalizer_coef``, which rescales time by 1/max(T)); the penalised
        fit does not depend on the time unit. ``log_likelihood_`` is the unpenalised total.

    Examples
    --------
    >>> from fastengage import clv
    >>> s = clv.summary(tx, customer="id", time="date", freq="D", freq_multiplier=7)  # doctest: +SKIP
    >>> m = clv.BetaGeo().fit(s)                                                       # doctest: +SKIP
    >>> m.expected_purchases(39, s["frequency"], s["recency"], s["T"])                 # doctest: +SKIP
    """

    spec = _spec("clv.betageo")
    kernels = _kernels(0)


class ModifiedBetaGeo(BetaGeo):
    """MBG/NBD (Batislam et al. 2007): BG/NBD with a drop-out opportunity at time zero.

    ``params_`` = {r, alpha, a, b}; same methods and penalty convention as :class:`BetaGeo`.
    """

    spec = _spec("clv.modifiedbetageo")
    kernels = _kernels(1)
