"""Peers' own test suites, ported to fastengage's segments and identity resolution.

* ``fastengage.segments.cluster`` against scikit-learn's ``sklearn/cluster/tests/test_k_means.py``
  (scikit-learn 1.9): every case with a counterpart (blobs, predict, n_init, integer and float32
  input, one cluster, more clusters than distinct points, thread count), run against
  ``KMeans`` itself on the same scaled data. Sample weights and ``init=`` arrays have no
  counterpart (``cluster`` takes neither).
* ``fastengage.identity.resolve`` against networkx's
  ``networkx/algorithms/components/tests/test_connected.py`` / ``test_weakly_connected.py`` and
  scipy's ``scipy/sparse/csgraph/tests/test_connected_components.py`` (the weak-connection
  cases: identity links have no direction), run against ``nx.connected_components`` /
  ``csgraph.connected_components`` on the same links, plus self links, cycles, a large
  component, ``max_degree`` cuts and odd Arrow inputs.

Kept differences (asserted as our documented behaviour):
* k above the number of distinct rows: scikit-learn warns (ConvergenceWarning) and leaves a
  cluster empty; ``cluster`` raises InputError (a segment that can never hold a customer).
* An empty link table: networkx returns no components; ``resolve`` raises InputError (an empty
  input is bad input, DESIGN "Data in, data out").
* Labels: ``cluster`` renumbers scikit-learn's clusters (segment 0 = highest ``order_by``
  centroid), so partitions and centroid sets are compared, not label values.
"""
import json
import warnings

import numpy as np
import pyarrow as pa
import pytest

from fastengage.errors import InputError
from fastengage.identity import apply_identity, resolve
from fastengage.segments import cluster
from naive_identity import resolve_reference

sklearn = pytest.importorskip("sklearn")
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics.cluster import v_measure_score  # noqa: E402

# test_k_means.py's module data: non-centred, sparse centres, 100 blobs points, random_state=42
CENTERS = np.array([[0.0, 5.0, 0.0, 0.0, 0.0], [1.0, 1.0, 4.0, 0.0, 0.0], [1.0, 0.0, 0.0, 5.0, 1.0]])
X_BLOBS, TRUE_LABELS = make_blobs(n_samples=100, centers=CENTERS, cluster_std=1.0, random_state=42)
NAMES = [f"f{j}" for j in range(5)]


def _table(X, names=None, typ=None):
    names = names or [f"f{j}" for j in range(X.shape[1])]
    return pa.table({n: pa.array(X[:, j], typ) for j, n in enumerate(names)})


def _scaled(X, transform):
    """The space ``cluster`` runs k-means in: sign-preserving log1p (or none), standardised."""
    T = np.sign(X) * np.log1p(np.abs(X)) if transform == "log1p" else X.astype(np.float64)
    scale = T.std(axis=0)
    scale[scale == 0] = 1.0
    return (T - T.mean(axis=0)) / scale


def _same_rows(a, b, atol=1e-9):
    """The rows of ``a`` are those of ``b`` in some order (centroid sets are equal)."""
    assert a.shape == b.shape
    left = list(range(len(b)))
    for row in a:
        d = np.abs(b[left] - row).max(axis=1)
        j = int(np.argmin(d))
        assert d[j] <= atol, (row, b)
        left.pop(j)


def _inertia(Z, centroids):
    return float(((Z[:, None, :] - centroids[None]) ** 2).sum(axis=2).min(axis=1).sum())


def _labels(seg, table):
    return seg.predict(table).column("segment").to_numpy()


# -- scikit-learn: test_k_means.py --------------------------------------------------------------

@pytest.mark.parametrize("transform", ["none", "log1p"])
@pytest.mark.parametrize("seed", [0, 42])
def test_k_means_function_blobs(transform, seed):
    # sklearn test_k_means.py::test_k_means_function: three blobs, labels perfect up to a
    # permutation (v_measure 1), inertia > 0; here also the centroids and inertia equal KMeans'
    # on the same scaled data
    seg = cluster(_table(X_BLOBS, NAMES), columns=NAMES, k=3, transform=transform, seed=seed)
    Z = _scaled(X_BLOBS, transform)
    peer = KMeans(n_clusters=3, init="k-means++", n_init=4, random_state=seed).fit(Z)
    _same_rows(seg.centroids_, peer.cluster_centers_)
    assert _inertia(Z, seg.centroids_) == pytest.approx(peer.inertia_, rel=1e-9)
    labels = _labels(seg, _table(X_BLOBS, NAMES))
    assert v_measure_score(peer.labels_, labels) == pytest.approx(1.0)
    # the peer's own claim (perfect labels) is on the raw X; cluster always standardises (a
    # documented choice: RFM columns differ in scale by orders of magnitude), which moves a few
    # boundary points of these overlapping blobs: ours equal KMeans' on the standardised X
    raw = KMeans(n_clusters=3, random_state=seed).fit(X_BLOBS).labels_
    assert v_measure_score(TRUE_LABELS, raw) == pytest.approx(1.0)
    assert v_measure_score(TRUE_LABELS, labels) == pytest.approx(v_measure_score(TRUE_LABELS, peer.labels_))
    assert seg.centroids_.shape == (3, 5) and np.unique(labels).size == 3


@pytest.mark.parametrize("transform", ["none", "log1p"])
def test_kmeans_predict_training_rows_and_centroids(transform):
    # sklearn test_k_means.py::test_kmeans_predict: predict(X) equals labels_, and predicting the
    # centroids gives arange(k). Blobs of 200 points, 10 features, 10 centres.
    X, _ = make_blobs(n_samples=200, n_features=10, centers=10, random_state=0)
    table = _table(X)
    cols = table.column_names
    seg = cluster(table, columns=cols, k=10, transform=transform, seed=0)
    peer = KMeans(n_clusters=10, init="k-means++", n_init=4, random_state=0).fit(_scaled(X, transform))
    ours = _labels(seg, table)
    assert len(set(zip(ours.tolist(), peer.labels_.tolist()))) == 10  # the same partition
    # the centroids back in the input's units (undo the scaling and the log) are their own segment
    T = seg.centroids_ * seg.scale_ + seg.mean_
    raw = np.sign(T) * np.expm1(np.abs(T)) if transform == "log1p" else T
    np.testing.assert_array_equal(_labels(seg, _table(raw, cols)), np.arange(10))


def test_n_init_is_scikit_learns():
    # sklearn test_k_means.py::test_n_init (more starts, inertia no worse): n_init passes through
    # to KMeans; the same starts give the same centroids, and 10 starts are no worse than one
    Z = _scaled(X_BLOBS, "log1p")
    inertia = {}
    for n_init in (1, 5, 10):
        seg = cluster(_table(X_BLOBS, NAMES), columns=NAMES, k=5, n_init=n_init, seed=3)
        peer = KMeans(n_clusters=5, init="k-means++", n_init=n_init, random_state=3).fit(Z)
        _same_rows(seg.centroids_, peer.cluster_centers_)
        inertia[n_init] = _inertia(Z, seg.centroids_)
    assert inertia[10] <= inertia[1] * (1 + 1e-12)


@pytest.mark.parametrize("typ", [pa.int32(), pa.int64(), pa.uint64(), pa.int8(), pa.decimal128(6, 0)])
def test_integer_input(typ):
    # sklearn test_k_means.py::test_integer_input: integer X works (converted to float64)
    X = np.array([[0, 0], [10, 10], [12, 9], [-1, 1], [2, 0], [8, 10]])
    if typ == pa.uint64():
        X = X + 1  # no negatives in uint64
    cols = ["a", "b"]
    table = pa.table({c: pa.array(X[:, j].tolist(), typ) for j, c in enumerate(cols)})
    seg = cluster(table, columns=cols, k=2, transform="none", seed=0)
    assert seg.centroids_.dtype == np.float64
    assert v_measure_score(_labels(seg, table), [0, 1, 1, 0, 0, 1]) == pytest.approx(1.0)
    float_seg = cluster(_table(X.astype(np.float64), cols), columns=cols, k=2, transform="none", seed=0)
    np.testing.assert_array_equal(seg.centroids_, float_seg.centroids_)


def test_float_precision():
    # sklearn test_k_means.py::test_float_precision: float32 and float64 input give the same
    # labels and centroids within rtol 1e-4 (we convert float32 to float64 once)
    t64 = _table(X_BLOBS, NAMES)
    t32 = _table(X_BLOBS.astype(np.float32), NAMES, pa.float32())
    s64 = cluster(t64, columns=NAMES, k=3, seed=0)
    s32 = cluster(t32, columns=NAMES, k=3, seed=0)
    np.testing.assert_array_equal(_labels(s64, t64), _labels(s32, t32))
    np.testing.assert_allclose(s32.centroids_, s64.centroids_, atol=np.abs(s64.centroids_).max() * 1e-4)
    peer = KMeans(n_clusters=3, init="k-means++", n_init=4, random_state=0).fit(
        _scaled(X_BLOBS.astype(np.float32).astype(np.float64), "log1p"))
    _same_rows(s32.centroids_, peer.cluster_centers_)


@pytest.mark.parametrize("X, k, distinct", [
    # sklearn test_k_means.py::test_kmeans_warns_less_centers_than_unique_points
    (np.array([[0, 0], [0, 1], [1, 0], [1, 0]], float), 4, 3),
    # sklearn test_k_means.py::test_relocating_with_duplicates (issue #28055)
    (np.array([[0, 0], [1, 1], [1, 1], [1, 0], [0, 1]], float), 5, 4),
])
def test_more_segments_than_distinct_points_is_an_error(X, k, distinct):
    # kept difference: scikit-learn warns and leaves a cluster empty; we refuse with the count
    with pytest.warns(ConvergenceWarning, match="Number of distinct clusters"):
        KMeans(n_clusters=k, n_init=1, random_state=0).fit(X)
    with pytest.raises(InputError, match=f"k={k} segments but the columns have only {distinct} distinct"):
        cluster(_table(X, ["a", "b"]), columns=["a", "b"], k=k, transform="none")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # k = distinct points: no warning
        seg = cluster(_table(X, ["a", "b"]), columns=["a", "b"], k=distinct, transform="none")
    labels = _labels(seg, _table(X, ["a", "b"]))
    assert np.unique(labels).size == distinct
    _, first = np.unique(X, axis=0, return_inverse=True)
    assert v_measure_score(first.ravel(), labels) == pytest.approx(1.0)  # duplicates together


def test_one_cluster_is_the_mean():
    # sklearn test_k_means.py::test_warning_elkan_1_cluster fits n_clusters=1: one centroid, the
    # mean (0 in the standardised space)
    seg = cluster(_table(X_BLOBS, NAMES), columns=NAMES, k=1, seed=0)
    peer = KMeans(n_clusters=1, n_init=4, random_state=0).fit(_scaled(X_BLOBS, "log1p"))
    np.testing.assert_allclose(seg.centroids_, peer.cluster_centers_, atol=1e-12)
    np.testing.assert_allclose(seg.centroids_, 0.0, atol=1e-12)
    assert (_labels(seg, _table(X_BLOBS, NAMES)) == 0).all()


def test_result_equal_in_diff_n_threads():
    # sklearn test_k_means.py::test_result_equal_in_diff_n_threads: 1 and 2 OpenMP threads agree
    from threadpoolctl import threadpool_limits

    X = np.random.RandomState(0).normal(size=(50, 10))
    table = _table(X)
    with threadpool_limits(limits=1, user_api="openmp"):
        one = cluster(table, columns=table.column_names, k=3, transform="none", seed=0)
    with threadpool_limits(limits=2, user_api="openmp"):
        two = cluster(table, columns=table.column_names, k=3, transform="none", seed=0)
    np.testing.assert_array_equal(_labels(one, table), _labels(two, table))  # the peer's claim
    np.testing.assert_allclose(one.centroids_, two.centroids_, rtol=1e-12, atol=1e-12)


def test_unsorted_and_chunked_rows_give_the_same_partition():
    # edge cases beyond the peer: row order and Arrow chunking do not change well-separated blobs
    table = _table(X_BLOBS, NAMES)
    seg = cluster(table, columns=NAMES, k=3, seed=0)
    order = np.random.default_rng(5).permutation(100)
    shuffled = pa.Table.from_batches(table.take(order).to_batches(max_chunksize=7))
    again = cluster(shuffled, columns=NAMES, k=3, seed=0)
    _same_rows(again.centroids_, seg.centroids_, atol=1e-9)
    np.testing.assert_array_equal(_labels(again, table), _labels(seg, table))


def test_refit_with_fewer_segments_keeps_their_numbers(tmp_path):
    # sklearn test_k_means.py::test_kmeans_init_fitted_centers (a refit from a fitted solution
    # keeps it) has its counterpart in previous=; edge case beyond the peer: a segment that
    # disappeared. Before, k=3 after k=4 renumbered the kept segments 0..2 (segment 2 became 1)
    # and agreement_ read 0.37 though no customer moved.
    from fastengage.segments import Segments

    rng = np.random.default_rng(0)
    corners = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], float)
    X = corners[rng.integers(0, 4, 400)] + rng.normal(0, 0.5, (400, 2))
    table = _table(X, ["a", "b"])
    first = cluster(table, columns=["a", "b"], k=4, transform="none", seed=0)
    before = _labels(first, table)
    kept = table.filter(pa.array(before != 1))
    second = cluster(kept, columns=["a", "b"], k=3, transform="none", seed=1, previous=first)
    assert second.agreement_ == 1.0 and second.labels_.tolist() == [0, 2, 3]
    np.testing.assert_array_equal(_labels(second, kept), before[before != 1])
    assert second.profile(kept).column("segment").to_pylist() == [0, 2, 3]
    path = tmp_path / "seg.fe"
    second.save(path)
    back = Segments.load(path)
    assert back.labels_.tolist() == [0, 2, 3] and back.predict(kept).equals(second.predict(kept))
    import io
    import zipfile

    from fastengage.errors import ModelFormatError

    def with_labels(labels):
        out = io.BytesIO()
        with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w") as zout:
            for info in zin.infolist():
                body = zin.read(info)
                if info.filename == "meta.json":
                    header = json.loads(body)
                    if labels is None:
                        del header["meta"]["labels"]
                    else:
                        header["meta"]["labels"] = labels
                    body = json.dumps(header).encode()
                zout.writestr(info.filename, body)
        return io.BytesIO(out.getvalue())

    assert Segments.load(with_labels(None)).labels_.tolist() == [0, 1, 2]  # files before labels
    for bad in ([0, 0, 1], [0, 1], [0, -1, 2], [0, True, 2], "012", [0, 1, 2**40]):
        with pytest.raises(ModelFormatError, match="labels"):
            Segments.load(with_labels(bad))
    grown = cluster(table, columns=["a", "b"], k=4, transform="none", seed=0, previous=second)
    assert sorted(grown.labels_.tolist()) == [0, 2, 3, 4]  # the new segment gets a new number


def test_odd_arrow_inputs():
    cols = ["a", "b"]
    X = np.array([[1.0, 2.0], [1.5, 2.5], [40.0, 80.0], [42.0, 81.0]])
    plain = _table(X, cols)
    seg = cluster(plain, columns=cols, k=2, seed=0)
    want = _labels(seg, plain)
    # dictionary-encoded numeric columns equal the plain ones
    dictionary = pa.table({c: pa.array(X[:, j]).dictionary_encode() for j, c in enumerate(cols)})
    np.testing.assert_array_equal(cluster(dictionary, columns=cols, k=2, seed=0).centroids_, seg.centroids_)
    np.testing.assert_array_equal(_labels(seg, dictionary), want)
    # ids of every kind come back as they were
    for ids in (pa.array(["w", "x", "y", "z"]), pa.array([2**64 - 1, 0, 5, 2**63], pa.uint64()),
                pa.array([-2**63, 1, 2, 2**63 - 1]), pa.array(["w", "x", "w", "y"]).dictionary_encode(),
                pa.array(["w", "x", "y", "z"], pa.large_string())):
        out = seg.predict(plain.append_column("id", ids), id="id")
        assert out.column("id").combine_chunks().equals(ids)
        np.testing.assert_array_equal(out.column("segment").to_numpy(), want)
    # uint64 features past 2**53 become the nearest double (as numpy/scikit-learn convert them)
    big = pa.table({"a": pa.array([2**64 - 1, 2**64 - 2**40, 3, 0], pa.uint64())})
    two = cluster(big, columns=["a"], k=2, transform="none", seed=0)
    assert v_measure_score(_labels(two, big), [0, 0, 1, 1]) == pytest.approx(1.0)
    # one row: one segment; zero rows: an error to fit, an empty answer to predict/profile
    one = plain.slice(0, 1)
    assert _labels(cluster(one, columns=cols, k=1), one).tolist() == [0]
    with pytest.raises(InputError, match="no rows"):
        cluster(plain.slice(0, 0), columns=cols, k=1)
    assert seg.predict(plain.slice(0, 0)).num_rows == 0
    empty_stream = pa.RecordBatchReader.from_batches(plain.schema, [])
    assert seg.predict(empty_stream).num_rows == 0
    assert seg.profile(plain.slice(0, 0)).column("customers").to_pylist() == [0, 0]
    # nulls, non-finite, non-numeric, overflowing columns: errors naming the column
    with pytest.raises(InputError, match="'b' has 1 null"):
        cluster(plain.set_column(1, "b", pa.array([1.0, None, 2.0, 3.0])), columns=cols, k=2)
    with pytest.raises(InputError, match="'a' has 1 non-finite"):
        cluster(plain.set_column(0, "a", pa.array([1.0, np.nan, 2.0, 3.0])), columns=cols, k=2)
    with pytest.raises(InputError, match="'a' has type string"):
        cluster(plain.set_column(0, "a", pa.array(["1", "2", "3", "4"])), columns=cols, k=2)
    with pytest.raises(InputError, match="'a' has values too large"):
        cluster(pa.table({"a": [1e308, -1e308, 1e308, 0.0]}), columns=["a"], k=2, transform="none")
    # all rows alike: k=None cannot choose (scikit-learn's silhouette raised a raw ValueError)
    same = pa.table({"a": [3.0] * 10, "b": [1.0] * 10})
    with pytest.raises(InputError, match="1 distinct"):
        cluster(same, columns=cols, k=None)
    for bad in ({"k": True}, {"k": 2, "n_init": 0}, {"k": 2, "columns": ["a", "a"]},
                {"k": None, "k_range": (2,)}, {"k": None, "k_range": "ab"},
                {"k": None, "k_range": (2.5, 4)}):
        with pytest.raises(InputError):
            cluster(plain, **{"columns": cols, **bad})


# -- networkx: test_connected.py / test_weakly_connected.py; scipy: test_connected_components.py --

def _links(edges, typ=pa.int64()):
    edges = list(edges)
    return pa.table({"l": pa.array([a for a, _ in edges], typ), "r": pa.array([b for _, b in edges], typ)})


def _components(table):
    """{frozenset of ids} from resolve's output, checking customer_key / component_size."""
    groups = {}
    for i, key in zip(table.column("id").to_pylist(), table.column("customer_key").to_pylist()):
        groups.setdefault(key, set()).add(i)
    for key, members in groups.items():
        assert key == min(members)  # the smallest id of the component
    sizes = dict(zip(table.column("id").to_pylist(), table.column("component_size").to_pylist()))
    for members in groups.values():
        assert all(sizes[i] == len(members) for i in members)
    return {frozenset(m) for m in groups.values()}


def _graph_links(G):
    """An nx graph as links: its edges, and a self link for each node without edges."""
    return list(G.edges()) + [(n, n) for n in G.nodes() if G.degree(n) == 0]


def test_connected_components_networkx_graph():
    # networkx test_connected.py::TestConnected::test_connected_components and
    # test_number_connected_components: grid + lollipop + house, three components
    nx = pytest.importorskip("networkx")
    cnlti = nx.convert_node_labels_to_integers
    G = nx.union(nx.union(cnlti(nx.grid_2d_graph(2, 2), first_label=0, ordering="sorted"),
                          cnlti(nx.lollipop_graph(3, 3), first_label=4, ordering="sorted")),
                 cnlti(nx.house_graph(), first_label=10, ordering="sorted"))
    got = resolve(_links(_graph_links(G)), left="l", right="r")
    published = {frozenset([0, 1, 2, 3]), frozenset([4, 5, 6, 7, 8, 9]), frozenset([10, 11, 12, 13, 14])}
    assert _components(got) == published == {frozenset(c) for c in nx.connected_components(G)}
    assert json.loads(got.schema.metadata[b"fastengage"])["components"] == nx.number_connected_components(G) == 3


def test_connected_components_grid():
    # networkx test_connected.py: test_number_connected_components2, test_connected_components2,
    # test_node_connected_components (the 4x4 grid labelled 1..16 is one component)
    nx = pytest.importorskip("networkx")
    grid = nx.convert_node_labels_to_integers(nx.grid_2d_graph(4, 4), first_label=1)
    got = resolve(_links(grid.edges()), left="l", right="r")
    assert _components(got) == {frozenset(range(1, 17))} == {frozenset(nx.node_connected_component(grid, 1))}
    assert set(got.column("customer_key").to_pylist()) == {1}
    assert set(got.column("component_size").to_pylist()) == {16}


def _weak_graphs(nx):
    """The directed graphs of networkx test_weakly_connected.py::TestWeaklyConnected.setup_class."""
    edges = [[(1, 2), (2, 3), (2, 8), (3, 4), (3, 7), (4, 5), (5, 3), (5, 6), (7, 4), (7, 6), (8, 1), (8, 7)],
             [(1, 2), (1, 3), (1, 4), (4, 2), (3, 4), (2, 3)],
             [(1, 2), (2, 3), (3, 2), (2, 1)]]
    graphs = [nx.DiGraph(e) for e in edges]
    # Eppstein's tests
    graphs.append(nx.DiGraph({0: [1], 1: [2, 3], 2: [4, 5], 3: [4, 5], 4: [6], 5: [], 6: []}))
    graphs.append(nx.DiGraph({0: [1], 1: [2, 3, 4], 2: [0, 3], 3: [4], 4: [3]}))
    graphs.append(nx.disjoint_union(nx.path_graph(5, create_using=nx.DiGraph),
                                    nx.path_graph(5, create_using=nx.DiGraph)))  # test_connected_mutability
    return graphs


def test_weakly_connected_components_networkx_digraphs():
    # networkx test_weakly_connected.py::test_weakly_connected_components and
    # test_number_weakly_connected_components; links have no direction, so the weak components
    # are ours; each id in exactly one component (test_connected_mutability)
    nx = pytest.importorskip("networkx")
    for G in _weak_graphs(nx):
        for reverse in (False, True):
            links = [(b, a) for a, b in G.edges()] if reverse else list(G.edges())
            got = resolve(_links(links), left="l", right="r")
            expected = {frozenset(c) for c in nx.weakly_connected_components(G)}
            assert _components(got) == expected
            report = json.loads(got.schema.metadata[b"fastengage"])
            assert report["components"] == nx.number_weakly_connected_components(G)
            assert report["ids"] == G.number_of_nodes() == got.num_rows


def test_null_graph_is_an_error():
    # networkx test_weakly_connected.py::test_null_graph: no components for an empty graph;
    # kept difference: an empty link table is bad input here (DESIGN "Data in, data out")
    nx = pytest.importorskip("networkx")
    assert list(nx.weakly_connected_components(nx.DiGraph())) == []
    empty = pa.table({"l": pa.array([], pa.int64()), "r": pa.array([], pa.int64())})
    with pytest.raises(InputError, match="empty"):
        resolve(empty, left="l", right="r")
    with pytest.raises(InputError, match="empty"):  # every link null and dropped
        resolve(pa.table({"l": pa.array([None], pa.int64()), "r": [1]}), left="l", right="r",
                drop_null_links=True)


@pytest.mark.parametrize("matrix, n_components", [
    # scipy test_connected_components.py::test_weak_connections
    ([[0, 1, 0], [0, 0, 0], [0, 0, 0]], 2),
    # scipy test_connected_components.py::test_weak_connections2
    ([[0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 1, 0, 1, 0],
      [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0]], 2),
    # scipy test_connected_components.py::test_fully_connected_graph (self links included)
    (np.ones((4, 4)).tolist(), 1),
    # scipy test_connected_components.py::test_int64_indices_undirected
    ([[0, 1], [0, 0]], 1),
    # test_ticket1876's graph, weakly connected
    ([[0, 1, 1, 0], [1, 0, 0, 1], [0, 0, 0, 1], [0, 0, 1, 0]], 1),
])
def test_scipy_csgraph_cases(matrix, n_components):
    from scipy.sparse import csgraph

    A = np.asarray(matrix)
    n, labels = csgraph.connected_components(A, directed=True, connection="weak")
    assert n == n_components
    rows, cols = np.nonzero(A)
    lonely = [i for i in range(len(A)) if not A[i].any() and not A[:, i].any()]
    got = resolve(_links(list(zip(rows.tolist(), cols.tolist())) + [(i, i) for i in lonely]),
                  left="l", right="r")
    expected = {frozenset(np.flatnonzero(labels == c).tolist()) for c in range(n)}
    assert _components(got) == expected
    assert json.loads(got.schema.metadata[b"fastengage"])["self_links"] == int(np.trace(A)) + len(lonely)


def test_self_links_cycles_and_a_large_component_against_scipy():
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(11)
    n = 60_000
    chain = rng.permutation(n)  # one path through every id, links shuffled and some reversed
    left, right = chain[:-1].copy(), chain[1:].copy()
    flip = rng.random(n - 1) < 0.5
    left[flip], right[flip] = right[flip], left[flip]
    extra = rng.integers(0, n, (500, 2))  # cycles
    selfs = np.repeat(rng.integers(0, n, 50), 2)  # self links, repeated
    lonely = np.arange(n, n + 10)  # ids known only by a self link
    l = np.concatenate([left, extra[:, 0], selfs, lonely])
    r = np.concatenate([right, extra[:, 1], selfs, lonely])
    order = rng.permutation(l.size)
    got = resolve(pa.table({"l": l[order] + 10**12, "r": r[order] + 10**12}), left="l", right="r")
    k, labels = connected_components(coo_matrix((np.ones(l.size), (l, r)), shape=(n + 10, n + 10)),
                                     directed=False)
    assert k == 11
    ids = got.column("id").to_numpy() - 10**12
    sizes = got.column("component_size").to_numpy()
    np.testing.assert_array_equal(sizes, np.bincount(labels)[labels[ids]])
    keys = got.column("customer_key").to_numpy()
    big = labels[ids] == labels[0]
    assert (keys[big] == 10**12).all() and (keys[~big] == ids[~big] + 10**12).all()
    report = json.loads(got.schema.metadata[b"fastengage"])
    assert report["largest_component"] == n and report["self_links"] == selfs.size + lonely.size


def test_links_per_id_are_the_multigraph_degree():
    # the ``links`` column: link rows touching an id, repeated links each counted, a self link
    # once (networkx's MultiGraph degree counts a self loop twice)
    nx = pytest.importorskip("networkx")
    rng = np.random.default_rng(4)
    edges = [tuple(e) for e in rng.integers(0, 15, (80, 2)).tolist()]
    G = nx.MultiGraph(edges)
    got = resolve(_links(edges), left="l", right="r")
    loops = {v: sum(1 for a, b in edges if a == b == v) for v in G}
    assert dict(zip(got.column("id").to_pylist(), got.column("links").to_pylist())) == \
        {v: G.degree(v) - loops[v] for v in G}
    assert _components(got) == {frozenset(c) for c in nx.connected_components(G)}


@pytest.mark.parametrize("max_degree", [1, 2, 3])
def test_max_degree_cuts_like_removing_the_hub_in_networkx(max_degree):
    # the counterpart of a cut id in networkx: the node kept, its edges removed
    nx = pytest.importorskip("networkx")
    rng = np.random.default_rng(max_degree)
    edges = [tuple(e) for e in rng.integers(0, 40, (60, 2)).tolist()] + [(99, i) for i in range(8)]
    G = nx.Graph(edges)
    degree = {v: len(set(G.neighbors(v)) - {v}) for v in G}  # self links do not count
    cut = [v for v in G if degree[v] > max_degree]
    H = G.copy()
    H.remove_edges_from(list(H.edges(cut)))
    got = resolve(_links(edges), left="l", right="r", max_degree=max_degree)
    assert _components(got) == {frozenset(c) for c in nx.connected_components(H)}
    assert dict(zip(got.column("id").to_pylist(), got.column("degree").to_pylist())) == degree
    assert sorted(np.array(got.column("id").to_pylist())[got.column("cut").to_numpy(zero_copy_only=False)]) == sorted(cut)
    assert json.loads(got.schema.metadata[b"fastengage"])["ids_cut"] == len(cut)


@pytest.mark.parametrize("left_type, right_type, out_type", [
    (pa.int32(), pa.int64(), pa.int64()),
    (pa.int8(), pa.int16(), pa.int16()),
    (pa.uint8(), pa.uint64(), pa.uint64()),
    (pa.uint32(), pa.int32(), pa.int64()),
    (pa.int64(), pa.uint64(), pa.int64()),
    ("dictionary<int32>", pa.int64(), pa.int64()),
])
def test_link_columns_of_two_integer_types(left_type, right_type, out_type):
    # regression (f57f11e): int32 beside int64 failed with "does not fit int32, the type of its
    # first batch"; the ids are coded in one type
    pairs = [(1, 2), (2, 3), (7, 8), (100, 100)]
    left = pa.array([a for a, _ in pairs])
    left = left.cast(pa.int32()).dictionary_encode() if left_type == "dictionary<int32>" else left.cast(left_type)
    table = pa.table({"l": left,
                      "r": pa.array([b for _, b in pairs]).cast(right_type)})
    got = resolve(table, left="l", right="r")
    assert got.column("id").type == out_type
    expected, _ = resolve_reference(pairs)
    assert {i: (k, s) for i, k, s in zip(*(got.column(c).to_pylist() for c in ("id", "customer_key", "component_size")))} == expected
    if pa.types.is_unsigned_integer(right_type) and pa.types.is_signed_integer(table.schema.field("l").type):
        wide = table.set_column(1, "r", pa.array([2**64 - 1, 3, 8, 100], pa.uint64()))
        with pytest.raises(InputError, match="'r' .* do not fit int64"):
            resolve(wide, left="l", right="r")


@pytest.mark.parametrize("typ", [pa.string(), pa.large_string(), pa.string_view(), "dictionary", pa.int64(), pa.uint64()])
def test_odd_arrow_link_inputs(typ):
    if typ in (pa.int64(), pa.uint64()):
        ids = [0, 2**63 - 1, 5, 2**63 - 2] if typ == pa.int64() else [2**64 - 1, 0, 2**63, 7]
    else:
        ids = ["", "é", "b", "a" * 40]
    pairs = [(ids[0], ids[1]), (ids[1], ids[0]), (ids[2], ids[2]), (ids[3], ids[1])]
    if typ == "dictionary":
        table = pa.table({"l": pa.array([a for a, _ in pairs]).dictionary_encode(),
                          "r": pa.array([b for _, b in pairs]).dictionary_encode()})
    else:
        table = _links(pairs, typ)
    key = (lambda s: s.encode()) if isinstance(ids[0], str) else (lambda x: x)
    expected, _ = resolve_reference(pairs, None, key)
    for data in (table, pa.Table.from_batches(table.to_batches(max_chunksize=1))):
        got = resolve(data, left="l", right="r")
        assert {i: (k, s) for i, k, s in zip(*(got.column(c).to_pylist() for c in ("id", "customer_key", "component_size")))} == expected
    one = resolve(table.slice(0, 1), left="l", right="r")  # one row
    assert one.num_rows == 2 and len(set(one.column("customer_key").to_pylist())) == 1
    # events of the same ids roll up to the key; unknown ids keep their own, nulls stay null
    events = pa.table({"c": pa.array([ids[3], None, ids[2]], table.schema.field("l").type)})
    rolled = apply_identity(events, resolve(table, left="l", right="r"), customer="c")
    assert rolled.column("c").to_pylist() == [min([ids[0], ids[1], ids[3]], key=key), None, ids[2]]
    # nulls in a link: an error naming the columns, or dropped and counted
    nulls = pa.table({"l": pa.concat_arrays([table.column("l").combine_chunks(),
                                             pa.nulls(1, table.schema.field("l").type)]),
                      "r": pa.concat_arrays([table.column("r").combine_chunks(), table.column("r").chunk(0).slice(0, 1)])})
    with pytest.raises(InputError, match="null id in 'l' or 'r'"):
        resolve(nulls, left="l", right="r")
    with pytest.raises(InputError, match="two id columns"):  # was a raw IndexError
        resolve(table, left="l", right="l")
    # string_view: Arrow has no filter/take kernel for it (a raw ArrowNotImplementedError before)
    for data in (nulls, pa.RecordBatchReader.from_batches(nulls.schema, nulls.to_batches(max_chunksize=2))):
        dropped = resolve(data, left="l", right="r", drop_null_links=True)
        assert json.loads(dropped.schema.metadata[b"fastengage"])["null_links_dropped"] == 1
        assert {i: (k, s) for i, k, s in zip(*(dropped.column(c).to_pylist() for c in ("id", "customer_key", "component_size")))} == expected
