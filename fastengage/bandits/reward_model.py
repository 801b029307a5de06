"""Reward models for the direct-method and doubly-robust estimators.

:func:`fit_predict_rewards` follows Open Bandit Pipeline's ``RegressionModel.fit_predict``
("normal" fitting): one model per position, trained on ``[context, action_context[action]]``
(one-hot actions by default), predictions ``q_hat[i, a, p]`` for every action, and K-fold
cross-fitting (``KFold(n_folds, shuffle=True, random_state=seed)``) so that no round is scored
by a model that saw it. Any scikit-learn estimator works: classifiers contribute
``predict_proba[:, 1]``, regressors ``predict``. The default is a logistic regression.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["default_reward_model", "fit_predict_rewards"]


def default_reward_model(seed: int = 0):
    """``LogisticRegression(max_iter=1000, random_state=seed)`` (needs scikit-learn)."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:  # pragma: no cover - scikit-learn is in the bandits extra
        raise ImportError("the default reward model needs scikit-learn "
                          "(pip install 'fastengage[bandits]'), or pass q_hat as reward_model=")
    return LogisticRegression(max_iter=1000, random_state=seed)


def _design(context, actions, action_context):
    return np.c_[context, action_context[actions]]


class _Constant:
    """The reward model of a training set whose rewards are all one value (a classifier cannot
    be fitted on one class; obp's RegressionModel raises there): that value."""

    def __init__(self, value: float):
        self.value = value

    def predict(self, X):
        return np.full(X.shape[0], self.value)


def _predict(model, X):
    from sklearn.base import is_classifier

    if isinstance(model, _Constant):
        return model.predict(X)
    if is_classifier(model):
        proba = model.predict_proba(X)
        classes = list(model.classes_)
        return proba[:, classes.index(1)] if 1 in classes else np.zeros(X.shape[0])
    return model.predict(X)


def _fit(base, context, action, reward, position, n_positions, action_context):
    from sklearn.base import clone, is_classifier

    models = []
    for p in range(n_positions):
        rows = position == p
        if not rows.any():
            raise InputError(f"no logged rounds at position {p}: cannot fit its reward model")
        seen = np.unique(reward[rows])
        if is_classifier(base) and seen.size == 1:  # e.g. no click in a fold of rare clicks
            models.append(_Constant(float(seen[0])))
            continue
        model = clone(base)
        model.fit(_design(context[rows], action[rows], action_context), reward[rows])
        models.append(model)
    return models


def fit_predict_rewards(context, action, reward, position, n_actions: int, n_positions: int,
                        model=None, n_folds: int = 3, seed: int = 0, action_context=None):
    """``q_hat`` of shape (rounds, n_actions, n_positions), cross-fitted over ``n_folds``."""
    from sklearn.model_selection import KFold

    if model is None and not np.isin(reward, (0.0, 1.0)).all():
        raise InputError("the default reward model (logistic regression) needs 0/1 rewards; "
                         "the reward column holds other values: pass reward_model= a "
                         "scikit-learn regressor (e.g. Ridge()) or an array of q_hat")
    base = default_reward_model(seed) if model is None else model
    if not hasattr(base, "fit"):
        raise InputError("reward_model must be a scikit-learn estimator or an array of q_hat")
    n = action.shape[0]
    context = np.zeros((n, 0)) if context is None else np.asarray(context, dtype=np.float64)
    action_context = (np.eye(n_actions, dtype=int) if action_context is None
                      else np.asarray(action_context))
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 1:
        raise InputError("n_folds must be a positive integer")
    q_hat = np.zeros((n, n_actions, n_positions))

    def predict_into(models, rows):
        m = int(rows.sum()) if rows.dtype == bool else rows.shape[0]
        for a in range(n_actions):
            X = _design(context[rows], np.full(m, a), action_context)
            for p in range(n_positions):
                q_hat[rows, a, p] = _predict(models[p], X)

    if n_folds == 1:
        predict_into(_fit(base, context, action, reward, position, n_positions, action_context),
                     np.arange(n))
        return q_hat
    for train, test in KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(context):
        models = _fit(base, context[train], action[train], reward[train], position[train],
                      n_positions, action_context)
        predict_into(models, test)
    return q_hat
