"""Data-driven customer segments: k-means on feature columns, with stable labels across refits.

Design: :func:`cluster` validates the columns, transforms and scales them, and fits scikit-learn's
``KMeans`` (k-means++ initialisation, several starts; an optional dependency, not re-implemented).
With ``k=None`` it picks k by the silhouette score on a seeded sample and keeps the curve. Labels
are made stable: without a previous model they are ordered by the mean of ``order_by`` (highest
first: segment 0 holds the best customers by that column); with ``previous=`` each new centroid is
matched to a previous one by the Hungarian method (``scipy.optimize.linear_sum_assignment`` on
centroid distances in the previous model's scaled space), and the agreement is reported.

The fitted :class:`Segments` saves to the safe bundle format (centroids and scaling as arrays,
settings as JSON) and assigns new customers with :meth:`Segments.predict` (nearest centroid).
"""
from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa

from .._io.persist import load_bundle, save_bundle
from .._io.sources import open_source
from ..errors import InputError, ModelFormatError

__all__ = ["cluster", "Segments", "TRANSFORMS"]

TRANSFORMS = ("log1p", "none")
_KIND, _VERSION = "segments", 1
_MAX_K = 1000
_MAX_COLUMNS = 10_000


def _read_matrix(data, columns, id_column=None):
    source = open_source(data)
    wanted = {f"column {c}": c for c in columns}
    if id_column is not None:
        wanted["id"] = id_column
    source.require(wanted)
    names = list(dict.fromkeys(wanted.values()))
    batches = list(source.batches(names))
    if batches:
        table = pa.Table.from_batches(batches)
    else:  # zero batches (an empty stream): an empty table of the input's types
        table = pa.schema([source.schema.field(name) for name in names]).empty_table()
    X = np.empty((table.num_rows, len(columns)), dtype=np.float64)
    for j, name in enumerate(columns):
        X[:, j] = _feature_values(table.column(name), name)
    ids = table.column(id_column) if id_column is not None else None
    return X, ids, table


def _feature_values(column, name):
    """One feature column as float64: integers of any width (uint64 past 2**53 too: the nearest
    double, as scikit-learn converts them), floats, decimals, booleans, and dictionaries of
    those (decoded); nulls and non-finite values are refused, naming the column."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    typ = column.type
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ)
            or pa.types.is_decimal(typ) or pa.types.is_boolean(typ)):
        raise InputError(f"column {name!r} has type {typ}; segments need numeric columns")
    if column.null_count:
        raise InputError(f"column {name!r} has {column.null_count} null value(s); fill or drop them")
    # unsafe: integers past 2**53 round to the nearest double instead of raising ArrowInvalid
    values = np.asarray(column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False),
                        dtype=np.float64)
    if not np.isfinite(values).all():
        raise InputError(f"column {name!r} has {int((~np.isfinite(values)).sum())} non-finite value(s)")
    return values


def _transform(X, transform):
    if transform == "log1p":
        return np.sign(X) * np.log1p(np.abs(X))  # symmetric: negative totals (net returns) allowed
    return X.copy()


class Segments:
    """A fitted segmentation: scaling, centroids in the scaled space, and how labels were ordered."""

    def __init__(self, columns, transform, mean, scale, centroids, *, order_by, seed,
                 silhouette=None, agreement=None, labels=None):
        self.columns = list(columns)
        self.transform = transform
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.scale_ = np.asarray(scale, dtype=np.float64)
        self.centroids_ = np.asarray(centroids, dtype=np.float64)
        self.order_by = order_by
        self.seed = seed
        self.silhouette_ = silhouette or {}
        self.agreement_ = agreement
        # the segment number of each centroid: 0..k-1, except after a refit with fewer segments
        # than ``previous`` (the matched segments keep their old numbers, e.g. 0, 2, 3)
        self.labels_ = (np.arange(self.k, dtype=np.int32) if labels is None
                        else np.asarray(labels, dtype=np.int32))

    @property
    def k(self) -> int:
        return self.centroids_.shape[0]

    def _scaled(self, X):
        return (_transform(X, self.transform) - self.mean_) / self.scale_

    def _labels(self, X):
        return self.labels_[self._nearest(X)]

    def _nearest(self, X):
        """Index of the nearest centroid of each row."""
        with np.errstate(over="ignore", invalid="ignore"):
            Z = self._scaled(X)
            # |z - c|^2 = |z|^2 - 2 z.c + |c|^2; the |z|^2 term does not change the argmin
            d = -2.0 * Z @ self.centroids_.T + (self.centroids_ ** 2).sum(axis=1)
        if not np.isfinite(d).all():
            # only a model with extreme scaling or centroids (or features ~1e150 from them) gets
            # here; an argmin over inf/NaN would label rows arbitrarily
            raise InputError("segment distances overflow: the features are too far from the "
                             "model's scaling or centroids to assign segments")
        return np.argmin(d, axis=1).astype(np.int32)

    def predict(self, features, *, id: str | None = None) -> pa.Table:
        """Segment of each row of ``features`` (nearest centroid): ``[id,] segment``."""
        X, ids, _ = _read_matrix(features, self.columns, id)
        out = {"segment": pa.array(self._labels(X))}
        return pa.table({id: ids, **out} if id is not None else out)

    def profile(self, features, *, revenue: str | None = None) -> pa.Table:
        """Per segment: size, share of customers, share of ``revenue`` (if given), and the median
        of every input column."""
        cols = list(self.columns) + ([revenue] if revenue and revenue not in self.columns else [])
        X, _, table = _read_matrix(features, cols)
        labels = self._nearest(X[:, :len(self.columns)])  # centroid index; segment: labels_
        size = np.bincount(labels, minlength=self.k)
        out = {"segment": pa.array(self.labels_), "customers": pa.array(size),
               "share_of_customers": pa.array(size / max(1, len(labels)))}
        if revenue:
            r = X[:, cols.index(revenue)]
            total = r.sum()
            out["share_of_revenue"] = pa.array(np.bincount(labels, weights=r, minlength=self.k)
                                               / (total if total else 1.0))
        for j, name in enumerate(self.columns):
            med = [float(np.median(X[labels == s, j])) if size[s] else float("nan")
                   for s in range(self.k)]
            out[f"median_{name}"] = pa.array(med)
        return pa.table(out)

    def plot(self, features, *, x: str | None = None, y: str | None = None, ax=None):
        """Scatter of two input columns (log scale when transformed), coloured by segment."""
        import matplotlib.pyplot as plt

        x = x or self.columns[0]
        y = y or self.columns[min(1, len(self.columns) - 1)]
        X, _, _ = _read_matrix(features, self.columns)
        labels = self._labels(X)
        ax = ax or plt.subplots(figsize=(6, 4.5))[1]
        tx = _transform(X, self.transform)
        sc = ax.scatter(tx[:, self.columns.index(x)], tx[:, self.columns.index(y)], c=labels,
                        s=4, cmap="tab10", alpha=0.6)
        ax.set_xlabel(f"{self.transform}({x})" if self.transform != "none" else x)
        ax.set_ylabel(f"{self.transform}({y})" if self.transform != "none" else y)
        ax.legend(*sc.legend_elements(), title="segment", fontsize="small")
        return ax

    # -- safe persistence ---------------------------------------------------------------------
    def save(self, path) -> None:
        meta = {"columns": self.columns, "transform": self.transform, "order_by": self.order_by,
                "seed": self.seed, "k": self.k, "silhouette": {str(k): v for k, v in self.silhouette_.items()},
                "agreement": self.agreement_, "labels": self.labels_.tolist()}
        save_bundle(path, _KIND, _VERSION, meta,
                    {"mean": self.mean_, "scale": self.scale_, "centroids": self.centroids_})

    @classmethod
    def load(cls, path) -> "Segments":
        with load_bundle(path, _KIND, _VERSION) as b:
            m = b.meta
            columns = m.get("columns")
            if (not isinstance(columns, list) or not 0 < len(columns) <= _MAX_COLUMNS
                    or not all(isinstance(c, str) for c in columns) or len(set(columns)) != len(columns)):
                raise ModelFormatError("segments file: 'columns' must be a list of distinct names")
            k = m.get("k")
            if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= _MAX_K:
                raise ModelFormatError(f"segments file: 'k' must be an integer in 1..{_MAX_K}")
            if m.get("transform") not in TRANSFORMS:
                raise ModelFormatError(f"segments file: unknown transform {m.get('transform')!r}")
            d = len(columns)
            mean = b.array("mean", dtype=np.float64, shape=(d,))
            scale = b.array("scale", dtype=np.float64, shape=(d,))
            centroids = b.array("centroids", dtype=np.float64, shape=(k, d))
            for name, arr in (("mean", mean), ("scale", scale), ("centroids", centroids)):
                if not np.isfinite(arr).all():
                    raise ModelFormatError(f"segments file: {name}.npy has non-finite values")
            if not (scale > 0).all():
                raise ModelFormatError("segments file: scale.npy must be positive")
            labels = m.get("labels")  # absent in files written before it existed: 0..k-1
            if labels is not None and (
                    not isinstance(labels, list) or len(labels) != k
                    or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31
                               for v in labels) or len(set(labels)) != k):
                raise ModelFormatError("segments file: 'labels' must list k distinct segment numbers")
            agreement = m.get("agreement")
            if agreement is not None and not isinstance(agreement, (int, float)):
                raise ModelFormatError("segments file: 'agreement' must be a number or null")
            sil = m.get("silhouette", {})
            if not isinstance(sil, dict):
                raise ModelFormatError("segments file: 'silhouette' must be an object")
            return cls(columns, m["transform"], mean, scale, centroids,
                       order_by=m.get("order_by"), seed=m.get("seed"),
                       silhouette={int(a): float(v) for a, v in sil.items()
                                   if str(a).isdigit() and len(str(a)) <= 4
                                   and isinstance(v, (int, float))},
                       agreement=agreement, labels=labels)


def _kmeans(Z, k, seed, n_init):
    try:
        from sklearn.cluster import KMeans
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError("segments.cluster needs scikit-learn: pip install 'fastengage[segments]'") from exc
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # "fewer distinct clusters than n_clusters": the caller turns it into an InputError
        warnings.simplefilter("ignore", ConvergenceWarning)
        return KMeans(n_clusters=k, init="k-means++", n_init=n_init, random_state=seed).fit(Z)


def cluster(features, *, columns: list[str], k: int | None = None, transform: str = "log1p",
            seed: int = 0, n_init: int = 4, k_range: tuple[int, int] = (2, 8),
            sample_size: int = 20_000, order_by: str | None = None,
            previous: Segments | None = None) -> Segments:
    """Fit k-means segments on ``columns`` of ``features`` (e.g. the output of ``rfm()``).

    Parameters
    ----------
    columns : list of str
        Numeric feature columns (no nulls, finite).
    k : int, optional
        Number of segments; ``None`` chooses it in ``k_range`` (inclusive) by the silhouette score
        on a seeded sample of ``sample_size`` rows (``Segments.silhouette_`` holds the curve).
    transform : "log1p" or "none"
        ``log1p`` (sign-preserving) tames the long tails of counts and spend; then every column is
        standardised (mean 0, standard deviation 1) before k-means.
    order_by : str, optional
        Column whose centroid value orders the labels (segment 0 = highest); default: the first
        column (with ``rfm()`` output, pass e.g. ``order_by="monetary_total"``).
    previous : Segments, optional
        A model fitted before: new segments take the label of the previous centroid they match
        (Hungarian matching), and ``agreement_`` is the share of customers whose label is the same
        under both models.
    """
    if not isinstance(columns, (list, tuple)) or not columns or not all(isinstance(c, str) for c in columns):
        raise InputError("columns= must be a non-empty list of column names")
    if len(set(columns)) != len(columns):  # a saved model must load: its columns are distinct
        raise InputError(f"columns={list(columns)} names a column more than once")
    if isinstance(n_init, bool) or not isinstance(n_init, (int, np.integer)) or n_init < 1:
        raise InputError(f"n_init must be a positive integer, got {n_init!r}")
    if transform not in TRANSFORMS:
        raise InputError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
    order_by = order_by or columns[0]
    if order_by not in columns:
        raise InputError(f"order_by={order_by!r} must be one of columns={list(columns)}")
    X, _, _ = _read_matrix(features, list(columns))
    n = X.shape[0]
    if n == 0:
        raise InputError("no customers to cluster: the input has no rows")
    T = _transform(X, transform)
    with np.errstate(over="ignore", invalid="ignore"):
        mean = T.mean(axis=0)
        scale = T.std(axis=0)
    bad = ~(np.isfinite(mean) & np.isfinite(scale))
    if bad.any():  # squares past 1e154 overflow: every z would be 0, one segment in disguise
        name = columns[int(np.argmax(bad))]
        raise InputError(f"column {name!r} has values too large to standardise (up to "
                         f"{np.abs(X[:, int(np.argmax(bad))]).max():.3g}); rescale it or use "
                         "transform='log1p'")
    scale[scale == 0] = 1.0
    Z = (T - mean) / scale
    rng = np.random.default_rng(seed)
    silhouette = {}
    if k is None:
        from sklearn.metrics import silhouette_score

        if (not isinstance(k_range, (tuple, list)) or len(k_range) != 2
                or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                           for v in k_range) or not 2 <= k_range[0] <= k_range[1]):
            raise InputError(f"k_range must be (lo, hi) with integers 2 <= lo <= hi, got {k_range!r}")
        lo, hi = (int(v) for v in k_range)
        sample = Z[rng.choice(n, min(n, sample_size), replace=False)]
        # silhouette needs 2..n-1 non-empty clusters, and k-means finds at most as many
        # clusters as distinct rows (more would leave segments empty)
        distinct = len(np.unique(sample, axis=0))
        for kk in range(lo, min(hi, len(sample) - 1, distinct) + 1):
            labels = _kmeans(sample, kk, seed, n_init).labels_
            silhouette[kk] = float(silhouette_score(sample, labels))
        if not silhouette:
            raise InputError(f"too few customers ({n}, {distinct} distinct in the sample) to "
                             "choose k by silhouette; pass k=")
        k = max(silhouette, key=lambda kk: (silhouette[kk], -kk))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= min(n, _MAX_K):
        raise InputError(f"k must be an integer in 1..{min(n, _MAX_K)}, got {k!r}")
    fitted = _kmeans(Z, int(k), seed, n_init)
    if np.bincount(fitted.labels_, minlength=int(k)).min() == 0:
        # scikit-learn only warns (ConvergenceWarning) and leaves a segment empty for good
        raise InputError(f"k={k} segments but the columns have only "
                         f"{len(np.unique(Z, axis=0))} distinct row(s) (duplicate customers); "
                         "pass a smaller k")
    centroids = fitted.cluster_centers_
    agreement = labels = None
    if previous is not None:
        centroids, labels, agreement = _match_previous(centroids, mean, scale, transform, previous,
                                                       X, columns)
    else:
        j = list(columns).index(order_by)
        # order by the centroid's value of order_by in the original units (monotone in the mean)
        centroids = centroids[np.argsort(-centroids[:, j], kind="stable")]
    return Segments(columns, transform, mean, scale, centroids, order_by=order_by, seed=seed,
                    silhouette=silhouette, agreement=agreement, labels=labels)


def _match_previous(centroids, mean, scale, transform, previous, X, columns):
    from scipy.optimize import linear_sum_assignment

    if list(previous.columns) != list(columns) or previous.transform != transform:
        raise InputError("previous= was fitted on other columns or another transform")
    # compare in the previous model's scaled space
    raw = centroids * scale + mean
    in_prev = (raw - previous.mean_) / previous.scale_
    cost = ((in_prev[:, None, :] - previous.centroids_[None, :, :]) ** 2).sum(axis=2)
    rows, cols = linear_sum_assignment(cost)
    # matched new centroids take the old segments' numbers (in the old order); with more segments
    # than before the unmatched ones get new numbers after the old ones, with fewer the numbers
    # of the unmatched old segments are simply not used (a segment keeps its number either way)
    order = list(rows[np.argsort(cols)])
    labels = [int(previous.labels_[c]) for c in np.sort(cols)]
    unmatched = [r for r in range(centroids.shape[0]) if r not in set(rows)]
    order += unmatched
    labels += list(range(int(previous.labels_.max()) + 1,
                         int(previous.labels_.max()) + 1 + len(unmatched)))
    matched = centroids[np.asarray(order)]
    new = Segments(columns, transform, mean, scale, matched, order_by=previous.order_by, seed=None,
                   labels=labels)
    agreement = float(np.mean(new._labels(X) == previous._labels(X)))
    return matched, np.asarray(labels, dtype=np.int32), agreement
