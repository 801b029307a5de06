"""The contract between a CLV model and the machinery that fits and serves it.

A model class declares ONE :class:`ModelSpec` (its parameters, its likelihood kernels, whether it
is fitted by Newton steps and with which Hessian, its starting point, which parameters carry the
time unit) and builds ONE typed :class:`Payload` per fit (the compressed data its kernels read).
Transaction models (frequency/recency/T) also declare their prediction kernels as one
:class:`TransactionKernels`. Everything is composed from these frozen objects: there are no hook
methods or flags to override, so a renamed or forgotten piece is a ``TypeError`` when the class is
created, not a silent fallback to another path (tests/clv/test_contract.py checks that every
model's Newton path runs where it is declared).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np

__all__ = ["Payload", "Newton", "ModelSpec", "TransactionKernels"]


@dataclasses.dataclass(frozen=True)
class Payload:
    """What a model's likelihood kernels receive: the distinct data patterns (fields of the
    model's own subclass) and these common figures.

    Attributes
    ----------
    total_weight : float
        Customers (observations) represented, the ``n`` of the mean objective ``-LL/n + penalty``.
    n_patterns : int
        Rows the kernels loop over (decides whether a subsample start pays off).
    time_scale : float
        The time unit's scale of the data (the longest observation period, max T) for models
        whose parameters carry time units; 1.0 otherwise. The penalty is applied to the
        parameters measured in this unit, which makes a penalised fit unit-free.
    """

    total_weight: float
    n_patterns: int
    time_scale: float

    def subsample(self, step: int) -> Optional["Payload"]:
        """Every ``step``-th pattern with its weight times ``step`` (a cheap stand-in for the
        whole data when looking for starting values); ``None`` when the model has none."""
        return None


#: ``(theta, payload, n_threads) -> (ll, gradient)``: weighted total log-likelihood and its
#: gradient w.r.t. the parameters (float64 arrays in ``param_names`` order).
LoglikGrad = Callable[[np.ndarray, Payload, Optional[int]], tuple]
#: ``(theta, payload, n_threads) -> (ll, gradient, hessian)``.
LoglikHessian = Callable[[np.ndarray, Payload, Optional[int]], tuple]


@dataclasses.dataclass(frozen=True)
class Newton:
    """A model fitted by damped Newton steps (quasi-Newton only if they fail).

    Attributes
    ----------
    hessian : callable or None
        The analytic ``(ll, gradient, hessian)`` kernel (one pass over the data per step), or
        ``None`` for forward differences of the analytic gradient (1 + k passes per step).
    max_iter : int
        Newton iterations before handing over to quasi-Newton: a well-posed fit converges in
        ~10 from the usual starts; a likelihood without an interior maximum walks its ridge
        until this runs out.
    prefit_min_patterns, prefit_patterns : int
        From ``prefit_min_patterns`` distinct patterns on, the starting values come from a Newton
        fit on every k-th pattern (about ``prefit_patterns`` of them): a few cheap steps there
        leave 2-3 on the whole data.
    """

    hessian: Optional[LoglikHessian] = None
    max_iter: int = 60
    prefit_min_patterns: int = 40_000
    prefit_patterns: int = 8_000

    def passes_per_step(self, n_params: int) -> int:
        return 1 if self.hessian is not None else 1 + n_params


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything the optimiser and persistence need to know about a model.

    Attributes
    ----------
    kind : str
        The saved file's kind, ``"clv.<model>"``.
    param_names : tuple of str
        Parameters under the papers' names, all > 0 (fitted in log space).
    loglik : callable
        The :data:`LoglikGrad` kernel.
    start : callable
        ``payload -> theta0`` (positive starting values).
    newton : Newton or None
        How Newton steps are taken; ``None`` = quasi-Newton (L-BFGS-B, then BFGS).
    time_params : tuple of str
        Parameters in the unit of time (e.g. BG/NBD's ``alpha``): the penalty sees them divided
        by the payload's ``time_scale``.
    """

    kind: str
    param_names: tuple
    loglik: LoglikGrad
    start: Callable[[Payload], np.ndarray]
    newton: Optional[Newton] = None
    time_params: tuple = ()

    def __post_init__(self):
        if not self.kind.startswith("clv.") or not self.param_names:
            raise TypeError(f"ModelSpec needs kind 'clv.<model>' and parameters, got {self.kind!r}")
        unknown = set(self.time_params) - set(self.param_names)
        if unknown:
            raise TypeError(f"time_params {sorted(unknown)} are not parameters of {self.kind}")
        if self.newton is not None and not isinstance(self.newton, Newton):
            raise TypeError("ModelSpec.newton must be a Newton(...) or None")

    def penalty_weights(self, penalizer: float, time_scale: float) -> np.ndarray:
        """Per-parameter weights c_j of the penalty sum_j c_j theta_j^2: ``penalizer`` for
        unit-free parameters and ``penalizer / time_scale^2`` for time-unit ones (lifetimes
        rescales time by 1/max(T) before penalising; this is the same objective)."""
        w = np.full(len(self.param_names), float(penalizer))
        for j, name in enumerate(self.param_names):
            if name in self.time_params:
                w[j] /= time_scale * time_scale
        return w


@dataclasses.dataclass(frozen=True)
class TransactionKernels:
    """Prediction kernels of a (frequency, recency, T) model. Each takes the parameter vector
    and float64 arrays of one length and returns float64 per row; all accept ``n_threads=``.

    * ``alive(theta, x, tx, T, future_t)``: P(alive at T + future_t)
    * ``alive_now(theta, x, tx, T)``: P(alive at T)
    * ``expected(theta, t, x, tx, T)``: E[purchases in (T, T + t]]
    * ``discounted(theta, x, T, times, disc)``: sum_h (E[Y(t_h) | alive] - E[Y(t_h-1) | alive])
      disc_h per (x, T), for CLV
    * ``population(theta, t)``: E[X(t)] for a new customer
    * ``pmf(theta, t, n)``: P(X(t) = n)
    * ``individual_ll(theta, x, tx, T)``: per-customer log-likelihood

    and ``payload(x, tx, T, w)``: the model's :class:`Payload` of the distinct (x, t_x, T)
    patterns ``x, tx, T`` with weights ``w`` (what ``ModelSpec.loglik`` reads).
    """

    payload: Callable
    alive: Callable
    alive_now: Callable
    expected: Callable
    discounted: Callable
    population: Callable
    pmf: Callable
    individual_ll: Callable
