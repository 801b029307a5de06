"""Models shipped to workers and applied per batch or per bucket (score, recommend, CLV).

A model travels as ``pickle.dumps(model)``, which for every fastengage model is its model file
plus the name of the validating loader (``__reduce__`` of scoring models, recommenders and CLV
models): a worker rebuilds it with the same checks as ``load``. Each worker process loads a
shipped model once (:func:`worker_model`) and keeps it for its later tasks.
"""
from __future__ import annotations

import hashlib
import io
import pickle
import threading

import numpy as np
import pyarrow as pa

_LOADED: dict[str, object] = {}
_LOCK = threading.Lock()


def score_features(model, features) -> list:
    """The feature columns a scoring adapter reads: ``features`` or the names the model stores."""
    feats = list(features) if features is not None else model.features
    if feats is None:
        from ..errors import InputError
        raise InputError("the model does not name its features: pass features=")
    return feats


def ship(model) -> tuple[str, bytes]:
    """``(token, bytes)`` to send to workers; the token names the model in their caches."""
    data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    return hashlib.sha256(data).hexdigest(), data


def ship_saved(obj) -> tuple[str, bytes]:
    """``(token, bytes)`` of an object that has no pickling of its own (bandit policies): the
    file its ``save`` writes, read back on a worker by its validating loader."""
    buf = io.BytesIO()
    obj.save(buf)
    data = buf.getvalue()
    return hashlib.sha256(data).hexdigest(), data


def worker_model(token: str, data, load=pickle.loads):
    """The shipped model in this worker process (loaded on first use). ``data``: the bytes, or
    a callable returning them (a Spark broadcast's ``value`` read lazily); ``load``: bytes ->
    object (``pickle.loads`` of a model whose pickle is its model file, or a safe loader)."""
    model = _LOADED.get(token)
    if model is None:
        with _LOCK:
            model = _LOADED.get(token)
            if model is None:
                model = load(data() if callable(data) else data)
                _LOADED[token] = model
    return model


def score_batches(batches, model, options: dict):
    """Scores of every row (``model.score_batches`` on each incoming batch)."""
    for batch in batches:
        if batch.num_rows:
            yield from model.score_batches(batch, **options)


def recommend_batches(batches, model, customer: str, options: dict):
    """Top-n items of the customers in ``customer`` of each batch (``model.recommend``)."""
    for batch in batches:
        if batch.num_rows:
            yield from model.recommend(batch.column(customer), **options).to_batches()


def recommend_schema(model) -> pa.Schema:
    """Schema of :func:`recommend_batches`' output (that of ``model.recommend``)."""
    return model.recommend(model.customers_.ids().slice(0, 1), n=1).schema


def predict_batches(batches, model, t: float, options: dict):
    """CLV predictions per customer summary row (``model.predict``)."""
    for batch in batches:
        if batch.num_rows:
            yield from model.predict(batch, t, **options).to_batches()


def summary_bucket(table: pa.Table, settings: dict, as_of_us: int) -> pa.Table:
    """``fastengage.clv.summary`` of a table holding ALL rows of its customers, with the global
    ``as_of`` (a customer's summary depends only on its own rows and ``as_of``)."""
    from ..clv import summary
    from .._io.times import parse_time
    from .._io.sources import time_to_us
    schema = summary_schema(table.schema.field(settings["customer"]).type, settings)
    if table.num_rows == 0:
        return schema.empty_table()
    cut = settings.get("calibration_end")
    if cut is not None:
        # summary refuses a table without calibration rows; a bucket may simply have none
        first = int(time_to_us(table.column(settings["time"]), settings["time"]).min())
        if first > parse_time(cut, "calibration_end"):
            return schema.empty_table()
    out = summary(table, **settings, as_of=np.datetime64(as_of_us, "us"), n_threads=1)
    return out.cast(schema).replace_schema_metadata(None)


def summary_schema(customer_type: pa.DataType, settings: dict) -> pa.Schema:
    """Schema of :func:`summary_bucket`'s output (that of ``fastengage.clv.summary``)."""
    names = ["frequency", "recency", "T"]
    money = settings.get("amount") is not None
    if money:
        names.append("monetary_value")
    if settings.get("calibration_end") is not None:
        names += ["frequency_holdout"] + (["monetary_value_holdout"] if money else [])
        names.append("duration_holdout")
    return pa.schema([(settings["customer"], customer_type)] + [(n, pa.float64()) for n in names])


def fit_patterns(model, patterns: pa.Table, columns=("frequency", "recency", "T"),
                 weights: str = "count", n_threads=None):
    """Fit a CLV transaction model on the driver from pattern counts (distinct summary rows and
    how many customers have each, aggregated by the engine: small). Patterns are sorted first,
    so the likelihood sums in one order whatever the engine returned."""
    order = np.lexsort([patterns.column(c).to_numpy() for c in reversed(columns)])
    cols = [np.ascontiguousarray(patterns.column(c).to_numpy()[order], dtype=np.float64)
            for c in columns]
    w = np.ascontiguousarray(patterns.column(weights).to_numpy()[order], dtype=np.float64)
    return model.fit(*cols, weights=w, n_threads=n_threads)
