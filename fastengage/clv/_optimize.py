"""Maximum likelihood for the CLV models, in log-parameter space.

:func:`maximise` reads only a model's :class:`~._spec.ModelSpec` and a :class:`~._spec.Payload`:
damped Newton steps where the spec declares them (analytic Hessian, or forward differences of the
analytic gradient), from a subsample fit when the data has many patterns; quasi-Newton (L-BFGS-B,
then BFGS, from the model's start and from all-ones) as the fallback. The objective is the mean
penalised negative log-likelihood ``-LL/n + sum_j c_j theta_j^2`` (``c`` from
:meth:`ModelSpec.penalty_weights`). Every kernel call gets ``n_threads``; the kernels' results do
not depend on it, so neither does the fit.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple, Optional

import numpy as np
from scipy import optimize

from ..errors import ConvergenceError
from ..kernels.clv import native as _knative
from ._spec import ModelSpec, Payload

__all__ = ["FitResult", "maximise"]

#: |log(parameter)| beyond this (1e-11 .. 7e10) means the optimiser ran to a boundary.
LOG_BOUND = 25.0


@dataclasses.dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`maximise`.

    ``hessian`` is the Hessian of the penalised negative total log-likelihood in theta (its
    inverse is the covariance); ``method`` is ``"newton"`` or ``"quasi-newton"``; ``evaluations``
    and ``passes`` count the Newton evaluations on the whole data and the passes they took.
    """

    theta: np.ndarray
    log_likelihood: float
    hessian: np.ndarray
    method: str
    attempts: tuple
    evaluations: int = 0
    passes: int = 0


def _one_blas_thread():
    """Limit BLAS to one thread around the optimiser: its 4x4 linear algebra is tiny, and
    OpenBLAS threads waking on a busy machine made L-BFGS-B 10-30x slower (measured)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is optional
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class _Problem:
    """The data-bound pieces: the kernels at one payload with one thread count."""

    def __init__(self, spec: ModelSpec, payload: Payload, pen_w: np.ndarray, n_threads):
        self.spec, self.payload, self.pen_w, self.n_threads = spec, payload, pen_w, n_threads
        self.W = float(payload.total_weight)

    def loglik_grad(self, theta):
        return self.spec.loglik(np.asarray(theta, np.float64), self.payload, self.n_threads)

    def loglik_derivs(self, theta):
        newton = self.spec.newton
        if newton.hessian is not None:
            return newton.hessian(np.asarray(theta, np.float64), self.payload, self.n_threads)
        # forward differences of the analytic gradient (steps 1e-6 theta_j, symmetrised): the
        # Newton direction is exact to ~1e-6, enough for quadratic convergence in practice
        ll, g = self.loglik_grad(theta)
        H = jacobian(lambda th: self.loglik_grad(th)[1], theta, 1e-6 * theta, g0=g)
        return ll, g, 0.5 * (H + H.T)

    def with_payload(self, payload):
        return _Problem(self.spec, payload, self.pen_w, self.n_threads)

    def objective(self):
        """Mean penalised negative log-likelihood in u = log(theta), with its gradient (the last
        point cached: the optimiser, the polish and the convergence check ask for it again)."""
        last = {}

        def f(u):
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
            ll, grad = self.loglik_grad(theta)
            if not np.isfinite(ll) or not np.all(np.isfinite(grad)):
                return np.inf, np.zeros_like(u)
            val = -ll / self.W + float(np.sum(self.pen_w * theta ** 2))
            g = (-grad / self.W + 2.0 * self.pen_w * theta) * theta
            return val, g
        return f


def maximise(spec: ModelSpec, payload: Payload, penalizer: float, start=None,
             n_threads: Optional[int] = None) -> FitResult:
    """Maximum likelihood estimates of ``spec``'s parameters on ``payload`` (see the module
    docstring). Raises :class:`ConvergenceError` when no run converges."""
    pen_w = spec.penalty_weights(penalizer, payload.time_scale)
    prob = _Problem(spec, payload, pen_w, n_threads)
    theta0 = spec.start(payload) if start is None else np.asarray(start, float)
    tried = []
    if spec.newton is not None:
        u0 = np.log(theta0)
        if start is None:
            u0 = _prefit(prob, u0, tried)
        res = _newton(prob, u0, spec.newton.max_iter)
        tried.append(res.note)
        if res.ok:
            H = -res.last.hess + 2.0 * prob.W * np.diag(pen_w)
            return FitResult(np.exp(res.u), float(res.last.ll), H, "newton", tuple(tried),
                             res.evaluations,
                             res.evaluations * spec.newton.passes_per_step(len(spec.param_names)))
    with _one_blas_thread():
        u = _quasi_newton(prob, theta0, tried)
    theta = np.exp(u)
    ll, _ = prob.loglik_grad(theta)

    def neg_grad(th):
        return -prob.loglik_grad(th)[1] + 2.0 * prob.W * pen_w * th
    H = jacobian(neg_grad, theta, 1e-6 * theta)
    return FitResult(theta, float(ll), 0.5 * (H + H.T), "quasi-newton", tuple(tried))


def _quasi_newton(prob: _Problem, theta0, tried):
    f = prob.objective()
    k = len(prob.spec.param_names)
    best = None
    for u0 in (np.log(theta0), np.zeros(k)):
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
            u = _newton_polish(f, res.x)
            val, g = f(u)
            gnorm = float(np.max(np.abs(g))) if np.isfinite(val) else np.inf
            note = res.message
            if np.any(np.abs(u) > LOG_BOUND):
                # a parameter ran off to 0 or infinity: no interior maximum was found
                gnorm = np.inf
                note = f"parameters ran to the boundary: {np.exp(u).tolist()}"
            tried.append(f"{method} from {np.round(np.exp(u0), 4).tolist()}: "
                         f"objective {val:.6g}, max |gradient| {gnorm:.2e} ({note})")
            if np.isfinite(val) and (best is None or val < best[1]):
                best = (u, val, gnorm)
            if np.isfinite(val) and gnorm < 1e-5:
                return u
    if best is not None and best[2] < 1e-4:
        return best[0]
    name = prob.spec.kind.split(".", 1)[1]
    raise ConvergenceError(
        f"{name}.fit did not converge (maximum likelihood in log-parameter space, analytic "
        "gradient). Tried: " + "; ".join(tried)
        + ". Check the input (units of recency/T, frequency = repeat purchases), try a "
        "penalizer > 0 or other starting values via fit(..., initial_params=...)."
    )


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


class _NewtonResult(NamedTuple):
    ok: bool
    u: np.ndarray
    last: Optional[_Point]
    evaluations: int
    note: str


def _prefit(prob: _Problem, u0, tried):
    """Starting values from a Newton fit on every k-th pattern (weights times k) when the data
    has many patterns: a few cheap steps there leave 2-3 on the whole data."""
    settings = prob.spec.newton
    n = prob.payload.n_patterns
    if n < settings.prefit_min_patterns:
        return u0
    step = n // settings.prefit_patterns
    sub = prob.payload.subsample(step)
    if sub is None:
        return u0
    res = _newton(prob.with_payload(sub), u0, settings.max_iter)
    tried.append(f"start from every {step}-th pattern: {res.note}")
    # a subsample without an interior maximum walks a ridge (e.g. Pareto/NBD's s, beta -> inf
    # on BG/NBD-like data): its end point is a worse start than the model's own
    return res.u if res.ok and np.all(np.abs(res.u) < LOG_BOUND) else u0


def _newton(prob: _Problem, u0, max_iter: int) -> _NewtonResult:
    """Damped Newton (Levenberg-Marquardt) steps on the mean penalised negative log-likelihood
    in log-parameter space.

    In u = log(theta) the gradient is g_u = theta * g and the Hessian
    H_u = diag(theta) H diag(theta) + diag(g_u). A step is the Newton step when H_u is positive
    definite and the step lies within a trust radius (max |s|, 1 at the start, grown to at most 3
    after accepted steps, a quarter of the rejected step after a rejection), else the
    Levenberg-Marquardt step (H_u + lam I) s = -g_u with the smallest lam (in factors of 4) that
    brings it inside.

    Converged when the gradient is below 1e-10, the full Newton step below 1e-9 in every
    coordinate (relative change of the parameters), or when the iteration is visibly in its
    quadratic phase: after an accepted full step s_prev, the next full step s is at most 1e-4 and
    half of s_prev, and the error left after taking it, estimated as (|s| / |s_prev|^2) |s|^2, is
    below 1e-9. That last step is then taken without another pass over the data: the
    log-likelihood at u + s is its second-order Taylor value (exact to far below its own
    rounding) and the Hessian (standard errors) the one at u, which differs by a relative
    O(|s|) <= 1e-4.
    """
    counter = [0]

    def evaluate(u):
        if np.any(np.abs(u) > LOG_BOUND):
            return None
        theta = np.exp(u)
        counter[0] += 1
        ll, g, H = prob.loglik_derivs(theta)
        ok, val, g_u, H_u, gmax = _knative.log_space_objective(
            theta, float(ll), np.ascontiguousarray(g, np.float64),
            np.ascontiguousarray(H, np.float64), prob.W, prob.pen_w)
        return _Point(val, g_u, H_u, ll, g, H, gmax) if ok else None

    u = np.asarray(u0, dtype=np.float64).copy()
    cur = evaluate(u)
    radius = 1.0       # trust radius in log-parameter space (max |step|)
    prev_full = None   # size of the last accepted undamped step
    start_note = f"Newton from {np.round(np.exp(u), 4).tolist()}"
    if cur is None:
        return _NewtonResult(False, u, None, counter[0], f"{start_note}: not finite at the start")
    for _ in range(max_iter):
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
        # the Newton step if it lies within the trust radius, else the Levenberg-Marquardt step
        # (H_u + lam I) s = -g_u with lam raised until it does (no evaluations needed)
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
        # relative) exceeds the predicted decrease: accept a step that lowers the gradient there
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


def _taylor_point(u: np.ndarray, s: np.ndarray, p: _Point) -> _Point:
    """The log-likelihood at u + s by its second-order Taylor expansion in u (gradient
    theta * grad, Hessian diag(theta) hess diag(theta) + diag(theta * grad)); the Hessian in
    theta is kept from ``p``."""
    theta = np.exp(u)
    g_ll = theta * p.grad
    H_ll = p.hess * np.outer(theta, theta) + np.diag(g_ll)
    ll = p.ll + float(g_ll @ s) + 0.5 * float(s @ H_ll @ s)
    return _Point(np.nan, p.g_u, p.H_u, ll, p.grad, p.hess, p.gmax)


def _damped_step(H: np.ndarray, g: np.ndarray, lam: float):
    """-(H + lam I)^-1 g, or None when H + lam I is not positive definite."""
    ok, step = _knative.damped_newton_step(np.ascontiguousarray(H), np.ascontiguousarray(g),
                                             float(lam))
    return step if ok else None


def _newton_polish(f, u, steps: int = 4):
    """Safeguarded Newton steps (forward-difference Hessian of the analytic gradient), taken only
    while the gradient of the mean objective is above 1e-9."""
    val, g = f(u)
    for _ in range(steps):
        if not np.isfinite(val) or np.max(np.abs(g)) < 1e-9:
            break
        H = jacobian(lambda v: f(v)[1], u, 1e-6, g0=g)
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


def jacobian(fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h, g0=None):
    """Forward-difference Jacobian of a vector function (used on analytic gradients only), from
    ``g0 = fun(x)`` when given."""
    x = np.asarray(x, dtype=np.float64)
    hs = np.broadcast_to(np.asarray(h, dtype=np.float64), x.shape)
    if g0 is None:
        g0 = fun(x)
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = hs[j]
        cols.append((np.asarray(fun(x + e)) - np.asarray(g0)) / hs[j])
    return np.column_stack(cols)
