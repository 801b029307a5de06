"""Linear and logistic models scored by the fused native kernel (``kernels/scoring/native.pyx``).

``score = b + W x`` with ``W`` of shape ``(K, F)``, then an optional link: logistic
``p = 1 / (1 + exp(-score))`` (one column per output; a single output of a two-class model
becomes ``[1 - p, p]``), or softmax over the ``K`` outputs (multinomial logistic regression).
Columns are read straight from the Arrow buffers, one float64 array per feature, and never
stacked into an ``n x F`` matrix. Arithmetic is float64 (ONNX Runtime computes in float32, so
results agree with it to float32 precision, not bit for bit).

File format (``LinearModel.save``/``load_model``), UTF-8 JSON, nothing executable::

    {"format": "fastengage.linear", "version": 1, "kind": "classifier" | "regressor",
     "features": [F names], "coefficients": [[F floats] * K], "intercepts": [K floats],
     "link": "identity" | "logistic" | "softmax", "classes": [labels] (classifiers)}
"""
from __future__ import annotations

import json
import math
import os
from functools import partial

import numpy as np

from ..errors import ModelFormatError
from ..kernels.common import launch
from ..kernels.scoring import native as score_native
from ._columns import feature_columns
from .model import Model


__all__ = ["LinearModel"]

FORMAT = "fastengage.linear"
VERSION = 1
_LINKS = ("identity", "logistic", "softmax")


class LinearModel(Model):
    """A linear/logistic model with coefficients given directly or read from ONNX/JSON.

    Parameters
    ----------
    coefficients : (K, F) or (F,) array_like
    intercepts : (K,) array_like or float
    features : list of F str, optional
    link : {"identity", "logistic", "softmax"}
    classes : list, optional
        Class labels, making this a classifier: ``K == len(classes)``, or ``K == 1`` with two
        classes (the single score is the log-odds of ``classes[1]``).
    l1_normalize : bool
        Divide each row's outputs by their sum (what ONNX ``Normalizer(norm="L1")`` does after
        a one-vs-rest logistic model).
    """

    def __init__(self, coefficients, intercepts=0.0, *, features=None, link="identity",
                 classes=None, l1_normalize=False, note=""):
        coef = np.atleast_2d(np.asarray(coefficients, dtype=np.float64))
        k, f = coef.shape
        icpt = np.broadcast_to(np.asarray(intercepts, dtype=np.float64).ravel(), (k,)).copy() \
            if np.size(intercepts) in (1, k) else None
        if icpt is None:
            raise ModelFormatError(f"linear model: {np.size(intercepts)} intercepts for {k} outputs")
        if link not in _LINKS:
            raise ModelFormatError(f"linear model: link must be one of {_LINKS}, got {link!r}")
        if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(icpt))):
            raise ModelFormatError("linear model: coefficients and intercepts must be finite")
        if features is not None and len(features) != f:
            raise ModelFormatError(f"linear model: {len(features)} feature names for {f} coefficients")
        if classes is not None and not (len(classes) == k or (k == 1 and len(classes) == 2)):
            raise ModelFormatError(f"linear model: {len(classes)} classes for {k} outputs")
        super().__init__(features=features, n_features=f,
                         kind="classifier" if classes is not None else "regressor",
                         classes=classes, backend="native-linear", note=note)
        self.coefficients = np.ascontiguousarray(coef)
        self.intercepts = icpt
        self.link = link
        self.l1_normalize = bool(l1_normalize)
        self._coef, self._icpt = self.coefficients, self.intercepts
        if link == "identity":
            self._post = score_native.PAIR_ONE_MINUS if (classes and k == 1) else score_native.NONE
        elif link == "logistic":
            self._post = score_native.PAIR_SIGMOID if (classes and k == 1) else score_native.SIGMOID
            if (classes and k == 2 and np.array_equal(coef[0], -coef[1])
                    and icpt[0] == -icpt[1]):
                # Converters write a two-class logistic model as [-w, w]: one dot product
                # gives both probabilities.
                self._post = score_native.PAIR_PLAIN_LOGISTIC
                self._coef, self._icpt = np.ascontiguousarray(coef[1:]), icpt[1:].copy()
        else:
            self._post = score_native.SOFTMAX

    def _n_outputs(self) -> int:
        if self._post in (score_native.PAIR_PLAIN_LOGISTIC, score_native.PAIR_SIGMOID,
                          score_native.PAIR_ONE_MINUS):
            return 2
        return self.coefficients.shape[0]

    def _predict(self, batch, features, nulls, parallel, n_threads):
        return self.predict_columns(tuple(feature_columns(batch, features, np.float64, nulls)),
                                    parallel=parallel, n_threads=n_threads)

    def _predict_matrix(self, X, parallel, n_threads):
        X = np.asarray(X, dtype=np.float64)
        return self.predict_columns(tuple(np.ascontiguousarray(X[:, j]) for j in range(X.shape[1])),
                                    parallel=parallel, n_threads=n_threads)

    def predict_columns(self, cols, *, parallel: bool = True,
                        n_threads: int | None = None) -> np.ndarray:
        """Scores ``(n, n_outputs)`` float64 from a tuple of F contiguous float64 columns.

        The result is a transposed view of an output-major array: each column is contiguous.
        """
        n = cols[0].shape[0] if cols else 0
        out = np.empty((self._n_outputs(), n), np.float64)
        mode, dest = self._post, out
        if mode == score_native.PAIR_ONE_MINUS:  # identity on one output of a two-class model
            mode, dest = score_native.NONE, out[1:]
        args = (tuple(cols), self._coef, self._icpt, mode, dest, np.zeros(1, np.int64))
        if parallel:
            launch.run_threaded(partial(score_native.linear_worker, *args), n_threads)
        else:
            score_native.linear_worker(*args)
        if mode != self._post:
            out[0] = 1.0 - out[1]
        if self.l1_normalize:
            total = np.abs(out).sum(axis=0, keepdims=True)
            np.divide(out, total, out=out, where=total != 0)
        return out.T

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "kind": self.kind,
                "features": self.features, "coefficients": self.coefficients.tolist(),
                "intercepts": self.intercepts.tolist(), "link": self.link,
                "classes": self.classes, "l1_normalize": self.l1_normalize}

    def save(self, path: str | os.PathLike) -> None:
        """Write the model as fastengage linear-model JSON (see the module docstring)."""
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "LinearModel":
        """Read fastengage linear-model JSON; raises ModelFormatError on anything unexpected
        (every field's type, the coefficient shape, non-finite numbers, duplicate classes)."""
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ModelFormatError(f"linear model JSON is malformed: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ModelFormatError(f"not a fastengage linear model (format must be {FORMAT!r})")
        version = doc.get("version")
        if type(version) is not int or not 1 <= version <= VERSION:
            raise ModelFormatError(f"linear model version {version!r}; this fastengage reads 1..{VERSION}")
        coef = _numbers(doc.get("coefficients"), "coefficients", (1, 2))
        icpt = _numbers(doc.get("intercepts", 0.0), "intercepts", (0, 1))
        kind = doc.get("kind", "classifier" if doc.get("classes") else "regressor")
        if kind not in ("classifier", "regressor"):
            raise ModelFormatError(f"linear model: kind must be 'classifier' or 'regressor', got {kind!r}")
        classes = doc.get("classes") if kind == "classifier" else None
        if kind == "classifier":
            if not isinstance(classes, list) or not all(
                    type(c) in (int, str) for c in classes) or len(set(classes)) != len(classes):
                raise ModelFormatError("linear model: classes must be a list of distinct "
                                       "integers or strings")
        features = doc.get("features")
        if features is not None and not (isinstance(features, list)
                                         and all(isinstance(x, str) for x in features)):
            raise ModelFormatError("linear model: features must be a list of column names")
        link = doc.get("link", "identity")
        if not isinstance(link, str):
            raise ModelFormatError(f"linear model: link must be one of {_LINKS}, got {link!r}")
        l1 = doc.get("l1_normalize", False)
        if not isinstance(l1, bool):
            raise ModelFormatError(f"linear model: l1_normalize must be true or false, got {l1!r}")
        return cls(coef, icpt, features=features, link=link, classes=classes, l1_normalize=l1)


def _numbers(value, name, ndims) -> np.ndarray:
    """A finite float64 array from nested JSON lists of numbers (no bools, strings, dicts,
    ragged rows), with ``ndim`` in ``ndims``."""
    try:
        arr = np.array(value, dtype=object)
    except (ValueError, TypeError):
        arr = None
    if arr is None or arr.ndim not in ndims or not all(
            type(v) in (int, float) for v in arr.reshape(-1)):
        raise ModelFormatError(f"linear model: {name} must be "
                               + ("a number or " if 0 in ndims else "")
                               + "a list" + (" of equal-length lists" if 2 in ndims else "")
                               + " of numbers")
    try:
        out = arr.astype(np.float64)
    except OverflowError:  # an integer beyond float64
        out = np.full(arr.shape, np.inf)
    if out.size == 0 and 0 not in ndims:
        raise ModelFormatError(f"linear model: {name} is empty")
    if not np.all(np.isfinite(out)):
        raise ModelFormatError(f"linear model: {name} must be finite")
    return out
