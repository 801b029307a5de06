"""The shape every CLV model shares: a :class:`~._spec.ModelSpec` declared on the class, the fit
(delegated to :mod:`._optimize`), standard errors, intervals and persistence.

A model subclass sets ``spec = ModelSpec(...)`` and builds its :class:`~._spec.Payload` in
``fit``; it overrides nothing else of this class. The input helpers live in :mod:`._inputs`
(re-exported here for older imports).
"""
from __future__ import annotations

import io
import math

import numpy as np
import pyarrow as pa

from ..errors import InputError
from ._inputs import (INT_PATTERN_MAX_Y, as_float_array, check_rft, compress, compress_rft,
                      is_table_like, read_columns)
from ._optimize import maximise
from ._persist import load_model_fields, save_model
from ._spec import ModelSpec, Payload

__all__ = ["BaseModel", "read_columns", "as_float_array", "compress", "compress_rft",
           "check_rft", "INT_PATTERN_MAX_Y"]

# the old private name, kept for modules that imported it from here
_is_table_like = is_table_like


class BaseModel:
    """Common shape of the CLV models (see the subclasses for the model equations).

    Parameters
    ----------
    penalizer : float
        L2 penalty: the optimiser minimises ``-LL/n + penalizer * sum_j theta_j^2`` (lifetimes'
        ``penalizer_coef``), with the parameters that carry the time unit (``alpha`` of
        BG/NBD; ``alpha`` and ``beta`` of Pareto/NBD) measured in units of the longest
        observation period max(T), as lifetimes does by rescaling time by 1/max(T). The penalised
        fit therefore does not depend on the time unit of the data (days or weeks give the same
        model). ``log_likelihood_`` is the unpenalised total.

    Attributes (after ``fit``)
    --------------------------
    params_ : dict[str, float]
        Maximum-likelihood estimates under the papers' names.
    log_likelihood_ : float
        Total (weighted) log-likelihood at ``params_`` (not the mean, and without the penalty).
    standard_errors_ : dict[str, float]
        From the inverse of the observed information (Hessian of the penalised negative
        log-likelihood: analytic for models fitted by Newton steps with an analytic Hessian, else
        by finite differences of the analytic gradient).
    covariance_ : numpy.ndarray
        The inverse Hessian, in ``param_names`` order.
    n_ : float
        Number (total weight) of fitted customers / observations.
    fit_info_ : dict
        ``method``: ``"newton"`` or ``"quasi-newton"``; ``attempts``: what the optimiser tried,
        in order; for Newton fits ``evaluations`` (points where the Hessian was computed on the
        whole data) and ``passes`` (passes over the whole data they took).
    """

    #: The model's contract (see :class:`~._spec.ModelSpec`); every concrete model sets it.
    spec: ModelSpec | None = None
    param_names: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("spec")
        if spec is not None:
            if not isinstance(spec, ModelSpec):
                raise TypeError(f"{cls.__name__}.spec must be a ModelSpec, got {type(spec).__name__}")
            cls.param_names = spec.param_names

    def __init__(self, penalizer: float = 0.0):
        if isinstance(penalizer, bool) or not isinstance(penalizer, (int, float, np.floating,
                                                                     np.integer)) or \
                not (penalizer >= 0 and math.isfinite(penalizer)):
            raise InputError(f"penalizer must be a finite non-negative number, got {penalizer!r}")
        self.penalizer = float(penalizer)
        self.params_: dict[str, float] | None = None
        self.log_likelihood_: float | None = None
        self.standard_errors_: dict[str, float] | None = None
        self.covariance_: np.ndarray | None = None
        self.n_: float | None = None
        self.fit_info_: dict = {}

    # -- fitting ------------------------------------------------------------------------------
    def _theta(self) -> np.ndarray:
        self._check_fitted()
        return np.array([self.params_[k] for k in self.param_names], dtype=np.float64)

    def _check_fitted(self):
        if self.params_ is None:
            raise InputError(f"{type(self).__name__} is not fitted: call fit(...) first")

    def _fit_payload(self, payload: Payload, initial_params=None, n_threads=None):
        """Maximum likelihood on ``payload`` (see :func:`._optimize.maximise`); sets the fitted
        attributes and returns ``self``."""
        if not payload.total_weight > 0:
            raise InputError(f"{type(self).__name__}.fit needs at least one observation")
        start = None
        if initial_params is not None:
            try:
                start = np.array([initial_params[k] for k in self.param_names], dtype=np.float64) \
                    if isinstance(initial_params, dict) else \
                    np.asarray(initial_params, float).reshape(-1)
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"initial_params must give {list(self.param_names)}: {exc}") from None
            if start.shape != (len(self.param_names),) or not np.all(start > 0) or \
                    not np.all(np.isfinite(start)):
                raise InputError(f"initial_params must be {len(self.param_names)} finite positive "
                                 f"values for {list(self.param_names)}")
        res = maximise(self.spec, payload, self.penalizer, start, n_threads)
        theta = res.theta
        self.params_ = {k: float(v) for k, v in zip(self.param_names, theta)}
        self.log_likelihood_ = float(res.log_likelihood)
        self.n_ = float(payload.total_weight)
        self.fit_info_ = {"method": res.method, "attempts": list(res.attempts)}
        if res.method == "newton":
            self.fit_info_["evaluations"] = res.evaluations
            self.fit_info_["passes"] = res.passes
        try:
            cov = np.linalg.inv(res.hessian)
            se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
        except np.linalg.LinAlgError:
            cov = np.full_like(res.hessian, np.nan)
            se = np.full(len(theta), np.nan)
        self.covariance_ = cov
        self.standard_errors_ = {k: float(v) for k, v in zip(self.param_names, se)}
        return self

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
    def save(self, path) -> None:
        """Write the fitted model as a fastengage bundle (JSON + .npy; never pickle); the layout
        is described in :mod:`fastengage.clv._persist`."""
        self._check_fitted()
        save_model(path, self.spec.kind, self.param_names, self.params_, self.log_likelihood_,
                   self.standard_errors_, self.penalizer, self.n_, self.covariance_)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`. Every member and field is validated first;
        a wrong, newer, oversized or malformed file raises ModelFormatError."""
        fields = load_model_fields(path, cls.spec.kind, cls.param_names)
        model = cls(penalizer=fields["penalizer"])
        model.params_ = fields["params"]
        model.log_likelihood_ = fields["log_likelihood"]
        model.standard_errors_ = fields["standard_errors"]
        model.n_ = fields["n"]
        model.covariance_ = fields["covariance"]
        return model

    def __reduce__(self):
        """Pickling (joblib, multiprocessing, Spark broadcast) goes through the model file: a
        fitted model is pickled as the bytes :meth:`save` writes and rebuilt by the validating
        loader (``fit_info_`` is not carried, as with :meth:`load`); an unfitted one as its
        penalizer. :meth:`load` itself never unpickles."""
        if self.params_ is None:
            return (_unfitted_model, (type(self), self.penalizer))
        buf = io.BytesIO()
        self.save(buf)
        return (_model_from_bytes, (type(self), buf.getvalue()))

    # -- privacy ------------------------------------------------------------------------------
    def forget(self, customers, *, request: str | None = None):
        """``forget`` of :mod:`fastengage.privacy.forget`, for a model that keeps no customer.

        A fitted CLV model holds only population parameters (``params_``, their covariance, the
        log-likelihood and the total weight ``n_``): no id, no per-customer row or output, so
        nothing is removed and its saved bytes hold no trace of any id. The parameters are
        still estimated from every fitted customer's data: removing a customer's contribution
        needs a refit on the summary without them (``AuditRecord.exact`` is False and the notes
        say so). Returns the :class:`~fastengage.privacy.forget.AuditRecord`; the model is
        unchanged. Present so that ``forget_everywhere`` can be given every object a service
        holds."""
        from ..privacy.forget import audit, count_requested
        requested = count_requested(customers)
        return audit(type(self).__name__, requested=requested, found=0, rows_removed=0,
                     exact=False, request=request,
                     notes="holds population parameters only (no ids or per-customer data); "
                           "their fit used every fitted customer: refit on the summary without "
                           "the forgotten customers to remove their contribution",
                     fitted_weight=self.n_)

    def __repr__(self):
        if self.params_ is None:
            return f"{type(self).__name__}(unfitted)"
        ps = ", ".join(f"{k}={v:.6g}" for k, v in self.params_.items())
        ll = "None" if self.log_likelihood_ is None else f"{self.log_likelihood_:.4f}"
        return f"{type(self).__name__}({ps}, log_likelihood={ll})"


def _unfitted_model(cls, penalizer: float):
    """Unpickle an unfitted CLV model."""
    return cls(penalizer=penalizer)


def _model_from_bytes(cls, data: bytes):
    """Unpickle a fitted CLV model: ``data`` is a model file, read by the validating loader."""
    if not (isinstance(cls, type) and issubclass(cls, BaseModel) and cls.spec is not None):
        from ..errors import ModelFormatError
        raise ModelFormatError(f"{cls!r} is not a CLV model class")
    return cls.load(io.BytesIO(data))
