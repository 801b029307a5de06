"""Clustering segments (fastengage.segments.cluster) against scikit-learn's KMeans on the same
scaled data, stable labels across refits, safe save/load."""
import io
import json
import zipfile

import numpy as np
import pyarrow as pa
import pytest

from fastengage.errors import InputError, ModelFormatError
from fastengage.segments import Segments, cluster

sklearn = pytest.importorskip("sklearn")


def _blobs(n=3000, k=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[1, 1, 10], [30, 2, 200], [200, 20, 5000], [5, 50, 900]], float)[:k]
    labels = rng.integers(0, k, n)
    X = centers[labels] * np.exp(rng.normal(0, 0.15, (n, 3)))
    return pa.table({"id": np.arange(n), "recency": X[:, 0], "frequency": X[:, 1],
                     "spend": X[:, 2]}), labels


COLS = ["recency", "frequency", "spend"]


def test_labels_are_sklearn_kmeans_on_the_scaled_data_up_to_order():
    from sklearn.cluster import KMeans

    table, _ = _blobs()
    seg = cluster(table, columns=COLS, k=4, seed=3, order_by="spend")
    X = np.column_stack([table.column(c).to_numpy() for c in COLS])
    Z = np.log1p(X)
    Z = (Z - Z.mean(0)) / Z.std(0)
    ref = KMeans(4, init="k-means++", n_init=4, random_state=3).fit(Z).labels_
    ours = seg.predict(table).column("segment").to_numpy()
    # the same partition: a bijection between the two labelings
    assert len(set(zip(ours.tolist(), ref.tolist()))) == 4


def test_segment_zero_has_the_highest_order_by_centroid():
    table, _ = _blobs()
    seg = cluster(table, columns=COLS, k=4, seed=0, order_by="spend")
    prof = seg.profile(table, revenue="spend")
    med = prof.column("median_spend").to_numpy()
    assert np.all(np.diff(med) < 0)
    assert abs(prof.column("share_of_customers").to_numpy().sum() - 1) < 1e-12
    assert abs(prof.column("share_of_revenue").to_numpy().sum() - 1) < 1e-12


def test_k_none_finds_the_true_number_by_silhouette():
    table, truth = _blobs()
    seg = cluster(table, columns=COLS, k=None, seed=0, k_range=(2, 7))
    assert seg.k == 4 and set(seg.silhouette_) == set(range(2, 8))
    labels = seg.predict(table).column("segment").to_numpy()
    assert len(set(zip(labels.tolist(), truth.tolist()))) == 4


def test_refit_with_previous_keeps_labels():
    table, _ = _blobs()
    first = cluster(table, columns=COLS, k=4, seed=0, order_by="frequency")
    rng = np.random.default_rng(9)
    shuffled = table.take(pa.array(rng.permutation(table.num_rows)))
    again = cluster(shuffled, columns=COLS, k=4, seed=7, previous=first)
    assert again.agreement_ == 1.0
    a = first.predict(table).column("segment").to_numpy()
    b = again.predict(table).column("segment").to_numpy()
    assert np.array_equal(a, b)
    more = cluster(table, columns=COLS, k=5, seed=1, previous=first)  # a new segment goes last
    assert more.k == 5 and more.agreement_ > 0.7


def test_save_load_round_trip_and_hostile_files(tmp_path):
    table, _ = _blobs(500)
    seg = cluster(table, columns=COLS, k=3, seed=0)
    path = tmp_path / "seg.fe"
    seg.save(path)
    back = Segments.load(path)
    assert back.predict(table, id="id").equals(seg.predict(table, id="id"))

    def tamper(meta_change=None, member=None, data=None):
        raw = io.BytesIO(path.read_bytes())
        out = io.BytesIO()
        with zipfile.ZipFile(raw) as zin, zipfile.ZipFile(out, "w") as zout:
            for info in zin.infolist():
                body = zin.read(info)
                if info.filename == "meta.json" and meta_change:
                    header = json.loads(body)
                    header["meta"].update(meta_change)
                    body = json.dumps(header).encode()
                if info.filename == member:
                    body = data
                zout.writestr(info.filename, body)
        return io.BytesIO(out.getvalue())

    for change in ({"k": 10**9}, {"k": 0}, {"k": "3"}, {"columns": ["a", "a", "b"]},
                   {"columns": {"x": 1}}, {"transform": "exp"}, {"silhouette": []}):
        with pytest.raises(ModelFormatError):
            Segments.load(tamper(change))
    nan = io.BytesIO()
    np.save(nan, np.full((3, 3), np.nan))
    with pytest.raises(ModelFormatError):
        Segments.load(tamper(member="centroids.npy", data=nan.getvalue()))
    wrong = io.BytesIO()
    np.save(wrong, np.zeros((3, 2)))
    with pytest.raises(ModelFormatError):
        Segments.load(tamper(member="centroids.npy", data=wrong.getvalue()))
    # found by the fuzzer: a 5000-digit silhouette key (int() refuses it), and a tiny scale
    # that overflowed the distances into an arbitrary argmin
    odd = Segments.load(tamper({"silhouette": {"9" * 5000: 0.5, "3": 0.25}}))
    assert odd.silhouette_ == {3: 0.25}
    tiny = io.BytesIO()
    np.save(tiny, np.full(3, 1e-310))
    extreme = Segments.load(tamper(member="scale.npy", data=tiny.getvalue()))
    with pytest.raises(InputError, match="overflow"):
        extreme.predict(table, id="id")


def test_bad_input_names_the_column():
    table, _ = _blobs(100)
    with pytest.raises(InputError, match="spend"):
        cluster(table.set_column(3, "spend", pa.array([None] * 100, pa.float64())), columns=COLS, k=2)
    with pytest.raises(InputError, match="numeric"):
        cluster(table.append_column("s", pa.array(["x"] * 100)), columns=["s"], k=2)
    with pytest.raises(InputError, match="k must be"):
        cluster(table, columns=COLS, k=0)
    with pytest.raises(InputError, match="order_by"):
        cluster(table, columns=COLS, k=2, order_by="nope")


def test_rfm_clusters_on_online_retail(retail_table):
    import fastengage as fe

    f = fe.rfm(retail_table, customer="CustomerID", time="InvoiceDate", amount="amount",
               order="InvoiceNo", drop_null_customers=True)
    seg = cluster(f, columns=["recency_days", "frequency", "monetary_total"], k=4, seed=0,
                  order_by="monetary_total")
    labels = seg.predict(f).column("segment").to_numpy()
    assert np.bincount(labels, minlength=4).min() > 0
    # segment 0 (highest spend centroid) holds the Champions more than any other segment
    champions = (f.column("segment").to_numpy(zero_copy_only=False) == "Champions")
    share = [champions[labels == s].mean() for s in range(4)]
    assert int(np.argmax(share)) == 0
