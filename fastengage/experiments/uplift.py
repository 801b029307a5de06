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
    return X, t.astype(bool), y


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


def _curve_points(outcome, uplift, treated):
    uplift = np.asarray(uplift, dtype=np.float64)
    order = np.argsort(-uplift, kind="stable")
    treated = np.ascontiguousarray(treated, dtype=bool).view(np.uint8)
    return ranking_cumulants(order, uplift, treated, np.ascontiguousarray(outcome, np.float64))


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
