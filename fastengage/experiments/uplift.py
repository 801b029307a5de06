"""Uplift modelling on top of any scorer, uplift/Qini curves, and campaign ROI with intervals."""
from __future__ import annotations

import copy

import numpy as np
import pyarrow as pa

from ..errors import InputError
from ..kernels.experiments.native import ranking_cumulants
from . import stats as st
from ._aggregate import load, value_matrix


def _xy(data, features, treatment, outcome=None):
    cols = list(features) + [treatment] + ([outcome] if outcome else [])
    table = load(data, {}, cols)
    X = value_matrix(table, list(features)).T
    t = value_matrix(table, [treatment])[0]
    if not np.all((t == 0) | (t == 1)):
        raise InputError(f"treatment column {treatment!r} must hold 0/1 (or booleans)")
    y = value_matrix(table, [outcome])[0] if outcome else None
    if y is not None:
        _finite(y, outcome)
    return X, t.astype(bool), y


def _finite(values, column):
    bad = int(np.sum(~np.isfinite(values)))
    if bad:  # value_matrix refuses nulls; NaN and inf would only come out as NaN estimates
        raise InputError(f"column {column!r} holds {bad} NaN or infinite value(s)")


def _score(model, X):
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(X))[:, 1]
    return np.asarray(model.predict(X), dtype=np.float64)


class TwoModelUplift:
    """Uplift = score of a model fitted on treated users - score of one fitted on controls.
    ``estimator`` is any object with ``fit(X, y)`` and ``predict_proba`` or ``predict``
    (scikit-learn, LightGBM, ...); it is copied for each arm."""

    def __init__(self, estimator, estimator_control=None):
        self.treated_model = copy.deepcopy(estimator)
        self.control_model = copy.deepcopy(estimator_control or estimator)

    def fit(self, data, *, features, treatment: str, outcome: str) -> "TwoModelUplift":
        X, t, y = _xy(data, features, treatment, outcome)
        if t.all() or not t.any():
            raise InputError(f"treatment column {treatment!r} must hold both treated (1) and "
                             f"control (0) users to fit a model on each; found only "
                             f"{int(t[0])}")
        self.features = list(features)
        self.treated_model.fit(X[t], y[t])
        self.control_model.fit(X[~t], y[~t])
        return self

    def predict(self, data) -> np.ndarray:
        X = value_matrix(load(data, {}, self.features), self.features).T
        return _score(self.treated_model, X) - _score(self.control_model, X)


class TransformedOutcomeUplift:
    """Regress Z = Y (T - p) / (p (1 - p)) on the features (E[Z | x] is the uplift; p is the
    treatment propensity, the treated share unless given). ``regressor`` has fit/predict."""

    def __init__(self, regressor, propensity: float | None = None):
        self.model = copy.deepcopy(regressor)
        self.propensity = propensity

    def fit(self, data, *, features, treatment: str, outcome: str):
        X, t, y = _xy(data, features, treatment, outcome)
        p = t.mean() if self.propensity is None else float(self.propensity)
        if not 0 < p < 1:
            raise InputError("both treated and control users are needed")
        self.features = list(features)
        self.model.fit(X, y * (t - p) / (p * (1 - p)))
        return self

    def predict(self, data) -> np.ndarray:
        X = value_matrix(load(data, {}, self.features), self.features).T
        return np.asarray(self.model.predict(X), dtype=np.float64)


def _curve_inputs(outcome, uplift, treated):
    """float64 outcome and uplift, uint8 treated, checked: the kernel reads all three at the
    rows of the uplift ordering without bounds checks, and a NaN score has no rank."""
    arrays = {"outcome": np.asarray(outcome), "uplift": np.asarray(uplift),
              "treated": np.asarray(treated)}
    for name, a in arrays.items():
        if a.dtype == object:  # e.g. an Arrow array with nulls
            raise InputError(f"{name} must hold numbers without nulls")
    sizes = {name: a.shape for name, a in arrays.items()}
    if any(len(shape) != 1 for shape in sizes.values()) or \
            len({shape[0] for shape in sizes.values()}) != 1:
        raise InputError(f"outcome, uplift and treated must be 1-d and of one length; got "
                         f"shapes {sizes}")
    t = arrays["treated"]
    if t.dtype != bool:
        t = t.astype(np.float64)
        if not np.all((t == 0) | (t == 1)):
            raise InputError("treated must hold 0/1 (or booleans); found "
                             f"{np.unique(t[(t != 0) & (t != 1)])[:5].tolist()}")
    values = {}
    for name in ("outcome", "uplift"):
        v = np.ascontiguousarray(arrays[name], dtype=np.float64)
        bad = int(np.sum(np.isnan(v) if name == "uplift" else ~np.isfinite(v)))
        if bad:  # an infinite score still ranks; an infinite outcome makes every point inf/NaN
            raise InputError(f"{name} holds {bad} NaN or null" +
                             (" value(s)" if name == "uplift" else " or infinite value(s)"))
        values[name] = v
    return values["outcome"], values["uplift"], np.ascontiguousarray(t, dtype=bool).view(np.uint8)


def _curve_points(outcome, uplift, treated):
    outcome, uplift, treated = _curve_inputs(outcome, uplift, treated)
    order = np.argsort(-uplift, kind="stable")
    return ranking_cumulants(order, uplift, treated, outcome)


def uplift_curve(outcome, uplift, treated):
    """(x, y): targeted users and (treated rate - control rate) x targeted users at each distinct
    score, best first, as scikit-uplift's ``uplift_curve``."""
    c = _curve_points(outcome, uplift, treated)
    rate_t = np.divide(c[:, 3], c[:, 1], out=np.zeros(len(c)), where=c[:, 1] != 0)
    rate_c = np.divide(c[:, 4], c[:, 2], out=np.zeros(len(c)), where=c[:, 2] != 0)
    y = (rate_t - rate_c) * c[:, 0]
    return np.concatenate([[0.0], c[:, 0]]), np.concatenate([[0.0], y])


def qini_curve(outcome, uplift, treated):
    """(x, y): treated conversions - control conversions x treated/control sizes, as
    scikit-uplift's ``qini_curve``."""
    c = _curve_points(outcome, uplift, treated)
    y = c[:, 3] - c[:, 4] * np.divide(c[:, 1], c[:, 2], out=np.zeros(len(c)), where=c[:, 2] != 0)
    return np.concatenate([[0.0], c[:, 0]]), np.concatenate([[0.0], y])


def curve_area(x, y):
    """Area between a curve and the random-targeting line through its end point (trapezoids);
    > 0 when the ranking beats random targeting."""
    area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))
    return area - float(x[-1] * y[-1] / 2)


def campaign_roi(data, *, treatment: str, values, cost_per_contact: float = 0.0,
                 fixed_cost: float = 0.0, alpha: float = 0.05) -> pa.Table:
    """What a campaign earned: per value column (conversion flag, revenue, CLV from
    ``fastengage.clv`` ...), the incremental total over the treated users
    (difference in means x treated users, Welch interval; conversions with the z interval),
    the campaign cost (per treated contact + fixed) and ROI = (incremental - cost) / cost with
    its interval."""
    values = [values] if isinstance(values, str) else list(values)
    table = load(data, {"treatment": treatment}, values)
    t = value_matrix(table, [treatment])[0]
    if not np.all((t == 0) | (t == 1)):
        raise InputError(f"treatment column {treatment!r} must hold 0/1 (or booleans)")
    t = t.astype(bool)
    n_t, n_c = int(t.sum()), int((~t).sum())
    if n_t < 2 or n_c < 2:
        raise InputError("campaign_roi needs at least 2 treated and 2 control users")
    matrix = value_matrix(table, values)
    cost = cost_per_contact * n_t + fixed_cost
    rows = {k: [] for k in ("value", "per_user_lift", "incremental", "incremental_low",
                            "incremental_high", "p_value", "cost", "roi", "roi_low", "roi_high")}
    for name, v in zip(values, matrix):
        _finite(v, name)
        a, b = v[~t], v[t]
        if np.all((v == 0) | (v == 1)):
            out = st.conversion(a.sum(), n_c, b.sum(), n_t, alpha)
        else:
            out = st.welch(a.mean(), a.var(ddof=1), n_c, b.mean(), b.var(ddof=1), n_t, alpha)
        inc = [float(out[k]) * n_t for k in ("diff", "ci_low", "ci_high")]
        rows["value"].append(name)
        rows["per_user_lift"].append(float(out["diff"]))
        rows["incremental"].append(inc[0])
        rows["incremental_low"].append(inc[1])
        rows["incremental_high"].append(inc[2])
        rows["p_value"].append(float(out["p_value"]))
        rows["cost"].append(cost)
        roi = [(x - cost) / cost if cost > 0 else None for x in inc]
        rows["roi"].append(roi[0])
        rows["roi_low"].append(roi[1])
        rows["roi_high"].append(roi[2])
    return pa.table(rows)
