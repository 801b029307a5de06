"""The :class:`Model` every loader returns, and the streaming ``score`` loop they share.

A model maps named Arrow feature columns to score columns. ``score`` opens any input the Arrow
layer accepts, checks that the id and feature columns exist, streams record batches through
the backend's ``_predict`` (native kernels or ONNX Runtime) and returns a ``pyarrow.Table``:
the id column, then ``probability_<class>`` per class in class order (classifiers) or
``value`` (``value_<k>`` for several targets).

Null rule per path (``nulls=None`` picks the path's default):

* native tree ensembles: a null is a missing value (NaN) and follows the model's own missing
  rule (``missing_value_tracks_true`` in ONNX, ``default_left``/missing type in LightGBM);
* native linear models and ONNX Runtime: a null raises :class:`~fastengage.errors.InputError`
  naming the column (pass ``nulls="nan"`` to hand NaN to a model that handles it).
"""
from __future__ import annotations

import threading
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa

from .._io.columns import consented_input
from .._io.sources import open_source
from ..errors import ColumnNotFoundError, InputError
from ._columns import NULL_RULES

__all__ = ["Model"]

#: Below this many rows a batch is scored serially: no thread-pool launch, lowest latency.
SERIAL_ROWS = 512


class Model:
    """A loaded model, ready to score Arrow data.

    Attributes
    ----------
    features : list of str or None
        Input column names, in the model's order (None when the file does not name them; then
        ``features=`` must be given to :meth:`score`).
    n_features : int
    kind : "classifier" or "regressor"
    classes : list or None
        Class labels in output order (classifiers).
    backend : str
        ``"native-trees"``, ``"native-linear"`` or ``"onnxruntime"``.
    note : str
        Why the native path was not taken (empty when it was).
    """

    default_nulls = "error"

    def __init__(self, *, features, n_features, kind, classes=None, backend, note=""):
        self.features = list(features) if features is not None else None
        self.n_features = int(n_features)
        self.kind = kind
        self.classes = list(classes) if classes is not None else None
        self.backend = backend
        self.note = note
        self._lock = threading.Lock()

    def __reduce__(self):
        """Pickling (Spark broadcast, joblib, multiprocessing) goes through the model file: the
        bytes the model was loaded from (a linear model built in code: its JSON), re-read by
        the validating :func:`~fastengage.scoring.load_model`; never the objects themselves."""
        from . import model_from_file
        source = getattr(self, "_file", None)
        if source is None and hasattr(self, "to_dict"):
            import json
            source = (json.dumps(self.to_dict()).encode(), "auto", None)
        if source is None:
            raise TypeError(f"{type(self).__name__} was not read from a model file, so it cannot "
                            "be pickled; load it with fastengage.scoring.load_model")
        return (model_from_file, source)

    def __repr__(self) -> str:
        extra = f", note={self.note!r}" if self.note else ""
        return (f"{type(self).__name__}(kind={self.kind!r}, backend={self.backend!r}, "
                f"n_features={self.n_features}{extra})")

    @property
    def output_names(self) -> list[str]:
        """Names of the score columns :meth:`score` returns (after the id column)."""
        if self.kind == "classifier":
            return [f"probability_{c}" for c in self.classes]
        n = self._n_outputs()
        return ["value"] if n == 1 else [f"value_{k}" for k in range(n)]

    # -- to be provided by backends ------------------------------------------------------------

    def _n_outputs(self) -> int:
        raise NotImplementedError

    def _predict(self, batch: pa.RecordBatch, features: list[str], nulls: str,
                 parallel: bool, n_threads: int | None) -> np.ndarray:
        """Scores ``(n, n_outputs)`` of one batch (features already checked to exist)."""
        raise NotImplementedError

    # -- public --------------------------------------------------------------------------------

    def _resolve_features(self, features: Sequence[str] | None) -> list[str]:
        if features is None:
            if self.features is None:
                raise InputError(
                    f"this model does not name its {self.n_features} input features; pass "
                    "features=[...] (column names in the model's input order)"
                )
            return list(self.features)
        features = list(features)
        if len(features) != self.n_features:
            raise InputError(f"features= names {len(features)} column(s); the model takes "
                             f"{self.n_features}")
        return features

    def score_batches(self, data, *, id: str | None = None, features: Sequence[str] | None = None,
                      batch_size: int | None = None, n_threads: int | None = None,
                      nulls: str | None = None, consent=None) -> Iterator[pa.RecordBatch]:
        """Like :meth:`score` but yield one output record batch per input batch (streaming)."""
        feats = self._resolve_features(features)
        nulls = nulls or self.default_nulls
        if nulls not in NULL_RULES:
            raise InputError(f"nulls= must be one of {NULL_RULES}, got {nulls!r}")
        if batch_size is not None and int(batch_size) < 1:
            raise InputError(f"batch_size must be a positive number of rows, got {batch_size}")
        if consent is not None and id is None:
            raise InputError("consent= needs id= (the customer column whose consent is checked)")
        src = open_source(consented_input(data, consent, customer=id, batch_size=batch_size))
        if id is not None:
            src.require({"id": id})
        available = set(src.schema.names)
        missing = [name for name in feats if name not in available]
        if missing:
            raise ColumnNotFoundError(
                "feature column(s) " + ", ".join(repr(m) for m in missing)
                + " not in the input; available columns: "
                + ", ".join(repr(n) for n in src.schema.names)
            )
        names = self.output_names
        columns = ([id] if id is not None else []) + feats
        for batch in src.batches(columns, batch_size=batch_size):
            scores = self._predict(batch, feats, nulls, batch.num_rows > SERIAL_ROWS, n_threads)
            arrays = []
            if id is not None:
                ids = batch.column(id)
                if ids.null_count:
                    raise InputError(f"id column {id!r} has {ids.null_count} null value(s) "
                                     f"in a batch of {batch.num_rows} rows")
                arrays.append(ids)
            arrays += [pa.array(np.ascontiguousarray(scores[:, k])) for k in range(scores.shape[1])]
            yield pa.RecordBatch.from_arrays(arrays, names=([id] if id is not None else []) + names)

    def score(self, data, *, id: str | None = None, features: Sequence[str] | None = None,
              batch_size: int | None = None, n_threads: int | None = None,
              nulls: str | None = None, consent=None) -> pa.Table:
        """Score every row of ``data``.

        Parameters
        ----------
        data : any input of :func:`fastengage._input.open_source` (Table, RecordBatch, reader,
            Dataset, Parquet path, polars/pandas/DuckDB via ``__arrow_c_stream__``).
        id : str, optional
            Column copied to the output to key the scores (its nulls raise).
        features : list of str, optional
            Input columns in the model's feature order (default: the names stored in the model).
        batch_size : int, optional
            Rows per streamed batch (default: whole in-memory tables in one pass, the source's
            own batches otherwise).
        n_threads : int, optional
            Threads for the native kernels / ONNX Runtime (default: all cores).
        nulls : {"error", "nan"}, optional
            Null rule (default: the path's own, see the module docstring).
        consent : fastengage.privacy.ConsentFilter, optional
            Score only the rows whose customer (``id``) has consent for the filter's purpose at
            its ``as_of`` (what was excluded: ``consent.last_report``).

        Returns
        -------
        pyarrow.Table
            ``id`` (if given) then :attr:`output_names`; float32 for ONNX tree models and ONNX
            Runtime, float64 for LightGBM and linear models; one row per input row, in input
            order.
        """
        batches = list(self.score_batches(data, id=id, features=features, batch_size=batch_size,
                                          n_threads=n_threads, nulls=nulls, consent=consent))
        if not batches:
            raise InputError("the input has no rows to score")
        return pa.Table.from_batches(batches)

    def predict(self, X: np.ndarray, *, n_threads: int | None = None) -> np.ndarray:
        """Scores of a NumPy matrix ``X`` ``(n, n_features)``, columns in the model's feature
        order (NaN passed through as missing). The low-latency entry for a service scoring one
        customer at a time: no Arrow round trip."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise InputError(f"X must have shape (n, {self.n_features}), got {X.shape}")
        return self._predict_matrix(X, X.shape[0] > SERIAL_ROWS, n_threads)

    def _predict_matrix(self, X, parallel, n_threads):
        names = [f"f{j}" for j in range(self.n_features)]
        batch = pa.RecordBatch.from_arrays([pa.array(X[:, j]) for j in range(X.shape[1])], names=names)
        return self._predict(batch, names, "nan", parallel, n_threads)
