"""Machinery shared by every CLV model: input columns, pattern compression, maximum likelihood in
log-parameter space with analytic gradients, Hessian-based standard errors, persistence.

A model subclass declares its parameter names, its data columns and two kernel calls (the
weighted log-likelihood with its gradient, and a starting point); everything else lives here.
"""
from __future__ import annotations

import math
import os
from typing import Callable, NamedTuple, Sequence

import numpy as np
import pyarrow as pa
from scipy import optimize

from .._io.sources import amount_to_float64, open_source
from .._io.persist import load_bundle, save_bundle
from ..errors import ConvergenceError, InputError
from ..kernels.clv import special as _kspecial
from ..kernels.clv import summary as _ks

__all__ = ["BaseModel", "read_columns", "as_float_array", "compress"]


def _one_blas_thread():
    """Limit BLAS to one thread around the optimiser: its 4x4 linear algebra is tiny, and
    OpenBLAS threads waking on a busy machine made L-BFGS-B 10-30x slower (measured)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is optional
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")

_Z95 = 1.959963984540054
#: |log(parameter)| beyond this (1e-11 .. 7e10) means the optimiser ran to a boundary.
_LOG_BOUND = 25.0


def _is_table_like(obj) -> bool:
    return isinstance(obj, (pa.Table, pa.RecordBatch, pa.RecordBatchReader, str, os.PathLike)) or \
        hasattr(obj, "__arrow_c_stream__")


def read_columns(data, names: dict[str, str | None]) -> dict[str, np.ndarray]:
    """Read numeric columns ``{role: column}`` from any Arrow input as float64 arrays."""
    src = open_source(data)
    roles = src.require(names)
    parts: dict[str, list] = {role: [] for role in roles}
    for batch in src.batches(list(roles.values())):
        for role, col in roles.items():
            parts[role].append(amount_to_float64(batch.column(col), col, role))
    out = {}
    for role, col in roles.items():
        out[role] = np.concatenate(parts[role]) if parts[role] else np.zeros(0)
    return out


def as_float_array(values, name: str, check_finite: bool = True) -> np.ndarray:
    """A 1-D contiguous float64 copy-free view of array-like ``values`` (NaN/inf rejected unless
    ``check_finite=False``, for callers whose kernel counts them in its own pass)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return amount_to_float64(values, name, name)
    arr = np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))
    if check_finite and not np.isfinite(arr).all():
        raise InputError(f"{name} has {int(np.count_nonzero(~np.isfinite(arr)))} NaN/inf value(s)")
    return arr


def compress(*cols: np.ndarray, weights: np.ndarray | None = None):
    """Distinct rows of the columns, their total weight and the inverse index.

    Returns (pattern_columns, pattern_weights, inverse).
    """
    stacked = np.ascontiguousarray(np.column_stack(cols))
    first, inverse, counts = _ks.unique_patterns(stacked)
    pats = [np.ascontiguousarray(c[first]) for c in cols]
    if weights is None:
        w = counts.astype(np.float64)
    else:
        w = np.bincount(inverse, weights=weights, minlength=first.shape[0])
    return pats, w, inverse


#: Whole-number data whose T stays below this uses the dense pattern path (an int32 slot array
#: over the (t_x <= T) triangle, 2 MB at most).
INT_PATTERN_MAX_Y = 1024


def compress_rft(x, tx, T, weights=None):
    """Distinct (x, t_x, T) patterns and their weights for a likelihood (no inverse needed).

    Whole-number data (days, weeks) with T below INT_PATTERN_MAX_Y take a dense, cache-resident
    path; anything else the general hash.
    """
    w = np.empty(0) if weights is None else np.ascontiguousarray(weights, np.float64)
    ok, px, ptx, pT, pw = _ks.whole_patterns(x, tx, T, w, INT_PATTERN_MAX_Y)
    if ok:
        return [px, ptx, pT], pw
    pats, pw, _ = compress(x, tx, T, weights=weights)
    return pats, pw


class BaseModel:
    """Common shape of the CLV models (see the subclasses for the model equations).

    Attributes (after ``fit``)
    --------------------------
    params_ : dict[str, float]
        Maximum-likelihood estimates under the papers' names.
    log_likelihood_ : float
        Total (weighted) log-likelihood at ``params_`` (not the mean, and without the penalty).
    standard_errors_ : dict[str, float]
        From the inverse of the observed information (Hessian of the penalised negative
        log-likelihood: analytic for models fitted by Newton steps, else by finite differences of
        the analytic gradient).
    covariance_ : numpy.ndarray
        The inverse Hessian, in ``param_names`` order.
    n_ : float
        Number (total weight) of fitted customers / observations.
    fit_info_ : dict
        ``attempts``: what the optimiser tried, in order; for models fitted by Newton steps,
        ``evaluations`` (points where the Hessian was computed on the whole data) and ``passes``
        (passes over the whole data they took).
    """

    _kind = ""
    _version = 1
    param_names: tuple[str, ...] = ()

    def __init__(self, penalizer: float = 0.0):
        if not (penalizer >= 0 and math.isfinite(penalizer)):
            raise InputError(f"penalizer must be a finite non-negative number, got {penalizer!r}")
        self.penalizer = float(penalizer)
        self.params_: dict[str, float] | None = None
        self.log_likelihood_: float | None = None
        self.standard_errors_: dict[str, float] | None = None
        self.covariance_: np.ndarray | None = None
        self.n_: float | None = None
        self.fit_info_: dict = {}

    # -- to be provided by subclasses -------------------------------------------------------
    def _loglik_grad(self, theta: np.ndarray, data: tuple) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    #: True when the model provides ``_loglik_derivs`` (then fitted by Newton steps).
    _has_hessian = False
    #: Passes over the data per ``_loglik_derivs`` call (1 for an analytic Hessian).
    _passes_per_hessian = 1

    def _loglik_derivs(self, theta: np.ndarray, data: tuple):
        """(ll, gradient, Hessian) w.r.t. the parameters, weighted sums over the data."""
        raise NotImplementedError

    def _fd_loglik_derivs(self, theta: np.ndarray, data: tuple):
        """(ll, gradient, Hessian) with the Hessian by forward differences of the analytic
        gradient (steps 1e-6 theta_j, symmetrised): 1 + len(theta) gradient passes. For models
        whose Hessian has no cheap closed form; Newton steps with it still converge in a few
        iterations (the direction is exact to ~1e-6)."""
        ll, g = self._loglik_grad(theta, data)
        H = _jacobian(lambda th: self._loglik_grad(th, data)[1], theta, 1e-6 * theta, g0=g)
        return ll, g, 0.5 * (H + H.T)

    def _subsample(self, data: tuple, step: int):
        """The payload restricted to every ``step``-th pattern, weights times ``step`` (a cheap
        stand-in for the whole data when looking for starting values); ``None`` if unsupported."""
        return None

    def _start(self, data: tuple) -> np.ndarray:
        return np.ones(len(self.param_names))

    # -- fitting ------------------------------------------------------------------------------
    def _theta(self) -> np.ndarray:
        self._check_fitted()
        return np.array([self.params_[k] for k in self.param_names], dtype=np.float64)

    def _check_fitted(self):
        if self.params_ is None:
            raise InputError(f"{type(self).__name__} is not fitted: call fit(...) first")

    def _objective(self, data, total_weight):
        """Mean penalised negative log-likelihood in log-parameter space, with its gradient."""
        pen = self.penalizer
        last = {}

        def f(u):
            # the optimiser, the polish and the convergence check ask for the same point again
            key = np.asarray(u, dtype=np.float64).tobytes()
            if key in last:
                val, g = last[key]
                return val, g.copy()
            val, g = _f(u)
            last.clear()
            last[key] = (val, g.copy())
            return val, g

        def _f(u):
            theta = np.exp(u)
            if not np.all(np.isfinite(theta)) or np.any(theta <= 0):
                return np.inf, np.zeros_like(u)
            ll, grad = self._loglik_grad(theta, data)
            if not np.isfinite(ll) or not np.all(np.isfinite(grad)):
                return np.inf, np.zeros_like(u)
            val = -ll / total_weight + pen * float(np.sum(theta ** 2))
            g = (-grad / total_weight + 2.0 * pen * theta) * theta
            return val, g
        return f

    def _maximise(self, data, total_weight, start: np.ndarray | None = None):
        """Maximum likelihood in log-parameter space.

        Models with an analytic Hessian first take damped Newton steps (:meth:`_newton`) from
        ``start``, else from a fit on a subsample of the patterns; quasi-Newton (L-BFGS-B, then
        BFGS, from the model's start and from all-ones) is the fallback. Returns
        (u, attempts, newton_result_or_None).
        """
        tried = []
        if self._has_hessian:
            u0 = np.log(self._start(data) if start is None else np.asarray(start, float))
            if start is None:
                u0 = self._prefit(data, u0, tried)
            res = self._newton(data, total_weight, u0)
            tried.append(res.note)
            if res.ok:
                return res.u, tried, res
        with _one_blas_thread():
            return self._quasi_newton(data, total_weight, start, tried)

    def _quasi_newton(self, data, total_weight, start, tried):
        f = self._objective(data, total_weight)
        starts = [np.log(self._start(data) if start is None else np.asarray(start, float))]
        starts.append(np.zeros(len(self.param_names)))
        best = None
        for u0 in starts:
            for method in ("L-BFGS-B", "BFGS"):
                opts = {"maxiter": 5000}
                if method == "L-BFGS-B":
                    opts.update(ftol=1e-15, gtol=1e-10, maxcor=20)
                else:
                    opts.update(gtol=1e-9)
                try:
                    res = optimize.minimize(f, u0, jac=True, method=method, options=opts)
                except (FloatingPointError, ValueError) as exc:
                    tried.append(f"{method} from {np.round(np.exp(u0), 4).tolist()}: {exc}")
                    continue
                u = self._newton_polish(f, res.x)
                val, g = f(u)
                gnorm = float(np.max(np.abs(g))) if np.isfinite(val) else np.inf
                note = res.message
                if np.any(np.abs(u) > _LOG_BOUND):
                    # a parameter ran off to 0 or infinity: no interior maximum was found
                    gnorm = np.inf
                    note = f"parameters ran to the boundary: {np.exp(u).tolist()}"
                tried.append(f"{method} from {np.round(np.exp(u0), 4).tolist()}: "
                             f"objective {val:.6g}, max |gradient| {gnorm:.2e} ({note})")
                if np.isfinite(val) and (best is None or val < best[1]):
                    best = (u, val, gnorm, method)
                if np.isfinite(val) and gnorm < 1e-5:
                    return u, tried, None
        if best is not None and best[2] < 1e-4:
            return best[0], tried, None
        raise ConvergenceError(
            f"{type(self).__name__}.fit did not converge (maximum likelihood in log-parameter space, "
            "analytic gradient). Tried: " + "; ".join(tried)
            + ". Check the input (units of recency/T, frequency = repeat purchases), try a "
            "penalizer > 0 or other starting values via fit(..., initial_params=...)."
        )

    #: Newton iterations before giving up (then quasi-Newton takes over): a well-posed fit
    #: converges in ~10 from the usual starts; a likelihood without an interior maximum walks
    #: its ridge until this runs out.
    NEWTON_MAX_ITER = 60

    def _newton(self, data, total_weight, u0) -> "_NewtonResult":
        """Damped Newton (Levenberg-Marquardt) steps on the mean penalised negative
        log-likelihood in log-parameter space, with the model's analytic Hessian.

        In u = log(theta) the gradient is g_u = theta * g and the Hessian
        H_u = diag(theta) H diag(theta) + diag(g_u). A step is the Newton step when H_u is
        positive definite and the step lies within a trust radius (max |s|, 1 at the start, grown
        to at most 3 after accepted steps, a quarter of the rejected step after a rejection), else
        the Levenberg-Marquardt step (H_u + lam I) s = -g_u with the smallest lam (in factors of
        4) that brings it inside.

        Converged when the gradient is below 1e-10, the full Newton step below 1e-9 in every
        coordinate (relative change of the parameters), or when the iteration is visibly in its
        quadratic phase: after an accepted full step s_prev, the next full step s is at most
        1e-4 and half of s_prev, and the error left after taking it, estimated as
        (|s| / |s_prev|^2) |s|^2, is below 1e-9. That last step is then taken without another
        pass over the data: the log-likelihood at u + s is its second-order Taylor value (exact to
        far below its own rounding) and the Hessian (standard errors) the one at u, which
        differs by a relative O(|s|) <= 1e-4.
        """
        pen = self.penalizer
        counter = [0]

        def evaluate(u):
            if np.any(np.abs(u) > _LOG_BOUND):
                return None
            theta = np.exp(u)
            counter[0] += 1
            ll, g, H = self._loglik_derivs(theta, data)
            ok, val, g_u, H_u, gmax = _kspecial.log_space_objective(theta, ll, g, H,
                                                                    total_weight, pen)
            return _Point(val, g_u, H_u, ll, g, H, gmax) if ok else None

        u = np.asarray(u0, dtype=np.float64).copy()
        cur = evaluate(u)
        radius = 1.0       # trust radius in log-parameter space (max |step|)
        prev_full = None   # size of the last accepted undamped step
        start_note = f"Newton from {np.round(np.exp(u), 4).tolist()}"
        if cur is None:
            return _NewtonResult(False, u, None, counter[0], f"{start_note}: not finite at the start")
        for _ in range(self.NEWTON_MAX_ITER):
            gmax = cur.gmax
            newton_step = _damped_step(cur.H_u, cur.g_u, 0.0)
            size = np.inf if newton_step is None else float(np.max(np.abs(newton_step)))
            if gmax < 1e-10 or size < 1e-9:
                return _NewtonResult(True, u, cur, counter[0],
                                     f"{start_note}: converged, objective {cur.val:.10g}, max "
                                     f"|gradient| {gmax:.2e}, {counter[0]} evaluations")
            if prev_full is not None and size <= 1e-4 and size <= 0.5 * prev_full and \
                    size ** 3 / prev_full ** 2 <= 1e-9:
                return _NewtonResult(True, u + newton_step, _taylor_point(u, newton_step, cur),
                                     counter[0],
                                     f"{start_note}: converged, last step {size:.1e} taken "
                                     f"without another evaluation, {counter[0]} evaluations")
            # the Newton step if it lies within the trust radius, else the Levenberg-Marquardt
            # step (H_u + lam I) s = -g_u with lam raised until it does (no evaluations needed)
            step, lam = newton_step, 0.0
            if step is None or size > radius:
                lam = 1e-8 * max(1.0, float(np.max(np.abs(cur.H_u))))
                while True:
                    step = _damped_step(cur.H_u, cur.g_u, lam)
                    if step is not None and np.max(np.abs(step)) <= radius:
                        break
                    lam *= 4.0
                    if lam > 1e12:
                        break
                if step is None or np.max(np.abs(step)) > radius:
                    break
            big = float(np.max(np.abs(step)))
            cand = evaluate(u + step)
            # near the optimum the objective's rounding (a sum of large cancelling terms, ~1e-13
            # relative) exceeds the predicted decrease: accept a step that lowers the gradient
            # there
            if cand is not None and (cand.val < cur.val or (
                    cand.val <= cur.val + 1e-11 * (1.0 + abs(cur.val)) and cand.gmax < gmax)):
                prev_full = big if lam == 0.0 else None
                u, cur = u + step, cand
                radius = min(3.0, max(radius, 2.0 * big))
            else:
                prev_full = None
                radius = big / 4.0
                if radius < 1e-12:
                    break
        return _NewtonResult(False, u, None, counter[0],
                             f"{start_note}: stopped at {np.exp(u).tolist()} after "
                             f"{counter[0]} evaluations without converging")

    #: Pattern counts from which a subsample fit supplies the starting values, and its size.
    PREFIT_MIN_PATTERNS = 40_000
    PREFIT_PATTERNS = 8_000

    def _prefit(self, data, u0, tried):
        """Starting values from a Newton fit on every k-th pattern (weights times k) when the
        data has many patterns: a few cheap steps there leave 2-3 on the whole data."""
        n = self._n_patterns(data)
        if n < self.PREFIT_MIN_PATTERNS:
            return u0
        step = n // self.PREFIT_PATTERNS
        sub = self._subsample(data, step)
        if sub is None:
            return u0
        sub_data, sub_weight = sub
        res = self._newton(sub_data, sub_weight, u0)
        tried.append(f"start from every {step}-th pattern: {res.note}")
        return res.u if np.all(np.isfinite(res.u)) and np.all(np.abs(res.u) < _LOG_BOUND) else u0

    def _n_patterns(self, data) -> int:
        return int(data[3].shape[0])

    def _newton_polish(self, f, u, steps: int = 4):
        """Safeguarded Newton steps (forward-difference Hessian of the analytic gradient), taken
        only while the gradient of the mean objective is above 1e-9."""
        val, g = f(u)
        for _ in range(steps):
            if not np.isfinite(val) or np.max(np.abs(g)) < 1e-9:
                break
            H = _jacobian(lambda v: f(v)[1], u, 1e-6, g0=g)
            H = 0.5 * (H + H.T)
            try:
                step = np.linalg.solve(H, -g)
            except np.linalg.LinAlgError:
                break
            if not np.all(np.isfinite(step)):
                break
            improved = False
            for shrink in (1.0, 0.5, 0.25, 0.1):
                cand = u + shrink * step
                v2, g2 = f(cand)
                if np.isfinite(v2) and v2 <= val + 1e-15 * abs(val) and \
                        np.max(np.abs(g2)) < np.max(np.abs(g)):
                    u, val, g = cand, v2, g2
                    improved = True
                    break
            if not improved:
                break
        return u

    def _finish_fit(self, data, total_weight, u, newton=None):
        theta = np.exp(u)
        pen = self.penalizer
        if newton is not None:
            # the last Newton evaluation holds the log-likelihood and the analytic Hessian here
            ll, H_ll = newton.last.ll, newton.last.hess
            H = -H_ll + 2.0 * pen * total_weight * np.eye(theta.size)
        else:
            ll, _ = self._loglik_grad(theta, data)

            def neg_grad(th):
                _, g = self._loglik_grad(th, data)
                return -g + 2.0 * pen * total_weight * th
            H = _jacobian(neg_grad, theta, 1e-6 * theta)
            H = 0.5 * (H + H.T)
        self.params_ = {k: float(v) for k, v in zip(self.param_names, theta)}
        self.log_likelihood_ = float(ll)
        self.n_ = float(total_weight)
        try:
            cov = np.linalg.inv(H)
            se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
        except np.linalg.LinAlgError:
            cov = np.full_like(H, np.nan)
            se = np.full(len(theta), np.nan)
        self.covariance_ = cov
        self.standard_errors_ = {k: float(v) for k, v in zip(self.param_names, se)}
        return self

    def _fit_data(self, data, total_weight, initial_params=None):
        if not total_weight > 0:
            raise InputError(f"{type(self).__name__}.fit needs at least one observation")
        start = None
        if initial_params is not None:
            start = np.array([initial_params[k] for k in self.param_names], dtype=np.float64) \
                if isinstance(initial_params, dict) else np.asarray(initial_params, float)
        u, tried, newton = self._maximise(data, total_weight, start)
        self.fit_info_ = {"attempts": tried}
        if newton is not None:
            self.fit_info_["evaluations"] = newton.evaluations
            self.fit_info_["passes"] = newton.evaluations * self._passes_per_hessian
        return self._finish_fit(data, total_weight, u, newton)

    # -- inference ----------------------------------------------------------------------------
    def confidence_intervals(self, level: float = 0.95) -> pa.Table:
        """Wald intervals ``estimate +/- z * se`` from the Hessian, one row per parameter.

        Returns a table with columns ``param``, ``estimate``, ``se``, ``lower``, ``upper``.
        """
        from scipy.stats import norm
        self._check_fitted()
        z = float(norm.ppf(0.5 + level / 2.0))
        est = self._theta()
        se = np.array([self.standard_errors_[k] for k in self.param_names])
        return pa.table({"param": list(self.param_names), "estimate": est, "se": se,
                         "lower": est - z * se, "upper": est + z * se})

    # -- persistence --------------------------------------------------------------------------
    def _extra_meta(self) -> dict:
        return {}

    def _load_extra(self, meta: dict) -> None:
        pass

    def save(self, path) -> None:
        """Write the fitted model as a fastengage bundle (JSON + .npy; never pickle).

        Layout: ``meta.json`` with ``kind`` = ``"clv.<model>"``, ``version`` = 1, and ``meta`` =
        {params, param_names, log_likelihood, standard_errors, penalizer, n}; ``covariance.npy``.
        """
        self._check_fitted()
        meta = {"params": self.params_, "param_names": list(self.param_names),
                "log_likelihood": self.log_likelihood_, "standard_errors": {
                    k: (None if not np.isfinite(v) else v) for k, v in self.standard_errors_.items()},
                "penalizer": self.penalizer, "n": self.n_, **self._extra_meta()}
        save_bundle(path, self._kind, self._version, meta,
                    arrays={"covariance": np.asarray(self.covariance_, dtype=np.float64)})

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save` (raises ModelFormatError on a wrong/newer file)."""
        from ..errors import ModelFormatError
        bundle = load_bundle(path, cls._kind, cls._version)
        meta = bundle.meta
        model = cls(penalizer=float(meta.get("penalizer", 0.0)))
        try:
            model.params_ = {k: float(meta["params"][k]) for k in cls.param_names}
            model.log_likelihood_ = meta["log_likelihood"]
            model.standard_errors_ = {k: (np.nan if meta["standard_errors"].get(k) is None
                                          else float(meta["standard_errors"][k]))
                                      for k in cls.param_names}
            model.n_ = meta.get("n")
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{cls._kind} file has malformed parameters: {exc}") from exc
        if not all(math.isfinite(v) and v > 0 for v in model.params_.values()):
            raise ModelFormatError(f"{cls._kind} file has non-positive or non-finite parameters")
        model.covariance_ = bundle.array("covariance")
        model._load_extra(meta)
        return model

    def __repr__(self):
        if self.params_ is None:
            return f"{type(self).__name__}(unfitted)"
        ps = ", ".join(f"{k}={v:.6g}" for k, v in self.params_.items())
        return f"{type(self).__name__}({ps}, log_likelihood={self.log_likelihood_:.4f})"


class _Point(NamedTuple):
    """One evaluation of the Newton iteration: the objective, its gradient and Hessian in
    u = log(theta), the log-likelihood with its gradient and Hessian in theta, max |g_u|."""
    val: float
    g_u: np.ndarray
    H_u: np.ndarray
    ll: float
    grad: np.ndarray
    hess: np.ndarray
    gmax: float


def _taylor_point(u: np.ndarray, s: np.ndarray, p: _Point) -> _Point:
    """The log-likelihood at u + s by its second-order Taylor expansion in u (gradient
    theta * grad, Hessian diag(theta) hess diag(theta) + diag(theta * grad)); the Hessian in theta
    is kept from ``p``."""
    theta = np.exp(u)
    g_ll = theta * p.grad
    H_ll = p.hess * np.outer(theta, theta) + np.diag(g_ll)
    ll = p.ll + float(g_ll @ s) + 0.5 * float(s @ H_ll @ s)
    return _Point(np.nan, p.g_u, p.H_u, ll, p.grad, p.hess, p.gmax)


class _NewtonResult:
    """Outcome of :meth:`BaseModel._newton`: ``last`` is the :class:`_Point` at ``u`` when it
    converged."""

    __slots__ = ("ok", "u", "last", "evaluations", "note")

    def __init__(self, ok, u, last, evaluations, note):
        self.ok, self.u, self.last, self.evaluations, self.note = ok, u, last, evaluations, note


def _damped_step(H: np.ndarray, g: np.ndarray, lam: float):
    """-(H + lam I)^-1 g, or None when H + lam I is not positive definite."""
    ok, step = _kspecial.damped_newton_step(np.ascontiguousarray(H), np.ascontiguousarray(g),
                                             float(lam))
    return step if ok else None


def _jacobian(fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h, g0=None,
              central: bool = False):
    """Finite-difference Jacobian of a vector function (used on analytic gradients only):
    forward differences from ``g0 = fun(x)`` when given, else central differences."""
    x = np.asarray(x, dtype=np.float64)
    hs = np.broadcast_to(np.asarray(h, dtype=np.float64), x.shape)
    if g0 is None and not central:
        g0 = fun(x)
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = hs[j]
        if central:
            cols.append((np.asarray(fun(x + e)) - np.asarray(fun(x - e))) / (2.0 * hs[j]))
        else:
            cols.append((np.asarray(fun(x + e)) - np.asarray(g0)) / hs[j])
    return np.column_stack(cols)


def check_rft(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray,
              names: Sequence[str] = ("frequency", "recency", "T"),
              check_finite: bool = False) -> None:
    """Validate BTYD summaries: same length, x >= 0, 0 <= t_x <= T (and, with ``check_finite``,
    no NaN/inf), in one pass of a kernel."""
    if not (frequency.shape == recency.shape == T.shape):
        raise InputError(f"{names[0]}, {names[1]} and {names[2]} must have the same length "
                         f"(got {frequency.shape[0]}, {recency.shape[0]}, {T.shape[0]})")
    # contiguous copies of broadcast views (a no-op for the arrays fit passes)
    bad_x, bad_tx, bad_T, neg_x, neg_tx, over = _ks.rft_violations(
        *(np.ascontiguousarray(a, dtype=np.float64) for a in (frequency, recency, T)))
    if check_finite:
        for name, bad in zip(names, (bad_x, bad_tx, bad_T)):
            if bad:
                raise InputError(f"{name} has {bad} NaN/inf value(s)")
    if neg_x:
        raise InputError(f"{names[0]} has negative values (it counts repeat purchases)")
    if neg_tx:
        raise InputError(f"{names[1]} has negative values")
    if over:
        raise InputError(f"{names[1]} exceeds {names[2]} for {over} customer(s); recency is the "
                         "time from first to last purchase and T the time from first purchase "
                         "to the end of the period")
