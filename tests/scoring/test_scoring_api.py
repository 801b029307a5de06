"""Model.score over every Arrow input, bad inputs and bad model files, threads, latency."""
import io
import pickle
import statistics
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from onnx import TensorProto, helper, numpy_helper
from threadpoolctl import threadpool_limits

from fastengage.errors import ColumnNotFoundError, InputError, ModelFormatError
from fastengage.scoring import LinearModel, load_model
from fastengage.scoring.export import sklearn_to_onnx

F = 5
NAMES = ["recency", "frequency", "monetary", "tenure", "visits"]


@pytest.fixture(scope="module")
def hgb_onnx():
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, F))
    y = (X[:, 0] - X[:, 2] > 0).astype(int)
    with threadpool_limits(1):  # OpenMP training threads crawl on a shared, loaded machine
        return sklearn_to_onnx(HistGradientBoostingClassifier(max_iter=20).fit(X, y), NAMES)


@pytest.fixture
def table():
    rng = np.random.default_rng(1)
    n = 3000
    return pa.table({"customer": pa.array([f"c{i:05d}" for i in range(n)]),
                     **{name: rng.normal(size=n) for name in NAMES},
                     "segment": pa.array(["a"] * n)})


def _equal(a, b):
    assert a.column_names == b.column_names
    for name in a.column_names:
        assert a.column(name).to_pylist() == b.column(name).to_pylist(), name


def test_every_input_kind_gives_the_same_scores(hgb_onnx, table, tmp_path):
    model = load_model(hgb_onnx)
    ref = model.score(table, id="customer")
    assert ref.num_rows == table.num_rows
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=700)
    inputs = [
        table.to_batches(max_chunksize=1000)[0],
        pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=512)),
        ds.dataset(path),
        str(path),
    ]
    for data in inputs:
        n = data.num_rows if hasattr(data, "num_rows") and not isinstance(data, ds.Dataset) else table.num_rows
        _equal(model.score(data, id="customer"), ref.slice(0, n))
    pl = pytest.importorskip("polars")
    _equal(model.score(pl.from_arrow(table), id="customer"), ref)
    _equal(model.score(table.to_pandas(types_mapper=None), id="customer"), ref)
    # streaming in small batches yields one output batch per input batch
    batches = list(model.score_batches(str(path), id="customer", batch_size=500))
    assert max(b.num_rows for b in batches) <= 500
    _equal(pa.Table.from_batches(batches), ref)


def test_missing_feature_column_lists_available(hgb_onnx, table):
    model = load_model(hgb_onnx)
    with pytest.raises(ColumnNotFoundError, match=r"'visits'.*available columns: 'customer'"):
        model.score(table.drop_columns(["visits"]), id="customer")
    with pytest.raises(ColumnNotFoundError, match="id column 'cust'"):
        model.score(table, id="cust")


def test_wrong_dtype_and_nulls(hgb_onnx, table):
    model = load_model(hgb_onnx)
    bad = table.set_column(table.schema.get_field_index("monetary"), "monetary",
                           pa.array(["x"] * table.num_rows))
    with pytest.raises(InputError, match="'monetary' has type string"):
        model.score(bad, id="customer")
    nulls = table.set_column(table.schema.get_field_index("tenure"), "tenure",
                             pa.array([None, 1.0] * (table.num_rows // 2)))
    # trees: null = missing value, scored by the model's missing rule
    out = model.score(nulls, id="customer")
    nan_rows = nulls.to_pandas().fillna(np.nan)
    assert out.num_rows == table.num_rows and np.isfinite(out.column("probability_1").to_numpy()).all()
    with pytest.raises(InputError, match="'tenure' has 1500 null"):
        model.score(nulls, id="customer", nulls="error")
    rt = load_model(hgb_onnx, backend="onnxruntime")
    with pytest.raises(InputError, match="'tenure' has 1500 null"):
        rt.score(nulls, id="customer")
    del nan_rows
    ids = table.set_column(0, "customer", pa.array([None] + ["x"] * (table.num_rows - 1)))
    with pytest.raises(InputError, match="id column 'customer' has 1 null"):
        model.score(ids, id="customer")


def test_booleans_and_ints_are_numbers(hgb_onnx, table):
    model = load_model(hgb_onnx)
    t = table.set_column(table.schema.get_field_index("visits"), "visits",
                         pa.array(np.arange(table.num_rows) % 2 == 0))
    assert model.score(t).num_rows == table.num_rows


@pytest.mark.parametrize("blob,match", [
    (b"", "empty"),
    (b"\x80\x04\x95 pickle", "pickle"),
    (pickle.dumps({"a": 1}), "pickle"),
    (b"\x08\x07\x12\x00garbage-not-onnx" * 3, "ONNX"),
    (b"tree\nversion=v4\n", "LightGBM"),
    (b"tree\nversion=v4\nmax_feature_idx=1\nfeature_names=a b\nobjective=binary sigmoid:1\n\n"
     b"Tree=0\nnum_leaves=2\n"
     b"split_feature=7\nthreshold=0.5\ndecision_type=2\nleft_child=-1\nright_child=-2\n"
     b"leaf_value=0 1\n\nend of trees\n", "feature out of range"),
    (b"tree\nversion=v4\nmax_feature_idx=1\nfeature_names=a b\nobjective=lambdamart_weird\n\n"
     b"Tree=0\nnum_leaves=1\n"
     b"leaf_value=0.5\n\nend of trees\n", "objective"),
    (b"tree\nversion=v4\nmax_feature_idx=1\nobjective=regression\n\nTree=0\nnum_leaves=1\n"
     b"leaf_value=0.5\n\nend of trees\n", "feature_names"),  # LightGBM refuses it too
])
def test_malformed_model_files(blob, match):
    with pytest.raises(ModelFormatError, match=match):
        load_model(blob)


def test_unsupported_graph_runs_on_onnxruntime_with_note():
    rng = np.random.default_rng(2)
    W = rng.normal(size=(F, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "W2"], ["y"])],
        "mlp", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, F])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        initializer=[numpy_helper.from_array(W, "W"),
                     numpy_helper.from_array(np.ones((3, 1), np.float32), "W2")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    model = load_model(proto.SerializeToString(), features=NAMES)
    assert model.backend == "onnxruntime"
    assert "Relu" in model.note
    X = rng.normal(size=(100, F))
    out = model.score(pa.table({n: X[:, j] for j, n in enumerate(NAMES)}))
    ref = np.maximum(X.astype(np.float32) @ W, 0).sum(axis=1)
    np.testing.assert_allclose(out.column("value").to_numpy(), ref, rtol=1e-5)
    with pytest.raises(InputError, match="features="):
        load_model(proto.SerializeToString()).score(pa.table({"a": [1.0]}))


def test_zipmap_and_string_labels(table):
    from sklearn.linear_model import LogisticRegression

    X = np.column_stack([table.column(n).to_numpy() for n in NAMES])
    y = np.where(X[:, 0] > 0, "churn", "stay")
    b = sklearn_to_onnx(LogisticRegression().fit(X, y), NAMES, zipmap=True)
    for backend in ("auto", "onnxruntime"):
        out = load_model(b, backend=backend).score(table, id="customer")
        assert out.column_names == ["customer", "probability_churn", "probability_stay"]
        p = out.column("probability_churn").to_numpy()
        assert ((p > 0.5) == (X[:, 0] > 0)).mean() > 0.95


@pytest.mark.parametrize("backend", ["native", "onnxruntime", "linear"])
def test_eight_threads_equal_serial(hgb_onnx, table, backend):
    if backend == "linear":
        model = LinearModel(np.arange(1.0, F + 1), 0.5, features=NAMES, link="logistic",
                            classes=[0, 1])
    else:
        model = load_model(hgb_onnx, backend=backend)
    serial = [model.score(table.slice(i * 250, 1000), id="customer") for i in range(8)]
    if backend != "onnxruntime":  # native results do not depend on the kernel's thread count
        for i, ref in enumerate(serial):
            assert model.score(table.slice(i * 250, 1000), id="customer", n_threads=1).equals(ref)
    results = [None] * 8
    errors = []

    def work(i):
        try:
            for _ in range(5):
                results[i] = model.score(table.slice(i * 250, 1000), id="customer")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for a, b in zip(results, serial):
        assert a.equals(b)


def test_single_row_latency(hgb_onnx, table):
    """One customer at a time, as a service scores: p50/p99 measured and bounded loosely."""
    model = load_model(hgb_onnx)
    row = table.slice(5, 1)
    model.score(row, id="customer")
    times = []
    for _ in range(300):
        t0 = time.perf_counter()
        model.score(row, id="customer")
        times.append(time.perf_counter() - t0)
    times.sort()
    p50, p99 = statistics.median(times), times[int(0.99 * len(times)) - 1]
    print(f"\nsingle-row latency: p50 {p50 * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us")
    assert p50 < 0.005


def test_given_features_override_and_count_check(table):
    model = LinearModel(np.ones(2), 1.0)
    with pytest.raises(InputError, match="does not name"):
        model.score(table)
    out = model.score(table, features=["recency", "tenure"])
    ref = 1 + table.column("recency").to_numpy() + table.column("tenure").to_numpy()
    np.testing.assert_allclose(out.column("value").to_numpy(), ref)
    with pytest.raises(InputError, match="takes 2"):
        model.score(table, features=["recency"])


def test_model_file_from_stream(tmp_path, hgb_onnx):
    path = tmp_path / "m.onnx"
    path.write_bytes(hgb_onnx)
    assert load_model(path).backend == "native-trees"
    assert load_model(io.BytesIO(hgb_onnx).getvalue()).backend == "native-trees"
    with pytest.raises(ModelFormatError, match="cannot read"):
        load_model(tmp_path / "missing.onnx")


def test_cli_score(tmp_path, hgb_onnx, table):
    import pyarrow.parquet as pq

    from fastengage.cli import main

    model_path = tmp_path / "m.onnx"
    model_path.write_bytes(hgb_onnx)
    data = tmp_path / "in.parquet"
    pq.write_table(table, data)
    out = tmp_path / "out.parquet"
    assert main(["score", str(model_path), str(data), "--id", "customer", "-o", str(out),
                 "--batch-size", "1000", "-q"]) == 0
    got = pq.read_table(out)
    _equal(got, load_model(hgb_onnx).score(table, id="customer"))
    # bad input: one line, non-zero exit, no partial output
    bad = tmp_path / "bad.parquet"
    assert main(["score", str(model_path), str(data), "--id", "nope", "-o", str(bad), "-q"]) == 2
    assert not bad.exists()
    assert main(["score", str(data), str(data), "--id", "customer", "-o", str(bad), "-q"]) == 2


def test_one_input_per_column_model_maps_inputs_by_name(table):
    """Converters can give each column its own input; names then come from the inputs."""
    w = np.array([[0.5], [-2.0]], np.float32)
    graph = helper.make_graph(
        [helper.make_node("Concat", ["tenure", "recency"], ["x"], axis=1),
         helper.make_node("MatMul", ["x", "w"], ["y"])],
        "two_inputs",
        [helper.make_tensor_value_info("tenure", TensorProto.FLOAT, [None, 1]),
         helper.make_tensor_value_info("recency", TensorProto.DOUBLE, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        initializer=[numpy_helper.from_array(w, "w")])
    graph.node.insert(0, helper.make_node("Cast", ["recency"], ["recency32"], to=TensorProto.FLOAT))
    graph.node[1].input[1] = "recency32"
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    model = load_model(proto.SerializeToString())
    assert model.backend == "onnxruntime" and "one input per column" in model.note
    assert model.features == ["tenure", "recency"]
    out = model.score(table, id="customer")
    ref = 0.5 * table.column("tenure").to_numpy() - 2.0 * table.column("recency").to_numpy()
    np.testing.assert_allclose(out.column("value").to_numpy(), ref, rtol=1e-5, atol=1e-5)


def test_integer_input_model_refuses_float_columns(table):
    w = np.array([[2], [3]], np.int64)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "w"], ["y"]),
         helper.make_node("Cast", ["y"], ["yf"], to=TensorProto.FLOAT)],
        "ints", [helper.make_tensor_value_info("X", TensorProto.INT64, [None, 2])],
        [helper.make_tensor_value_info("yf", TensorProto.FLOAT, [None, 1])],
        initializer=[numpy_helper.from_array(w, "w")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    model = load_model(proto.SerializeToString(), features=["a", "b"])
    ints = pa.table({"a": pa.array([1, 2], pa.int32()), "b": pa.array([10, 20])})
    np.testing.assert_array_equal(model.score(ints).column("value").to_numpy(), [32, 64])
    with pytest.raises(InputError, match="'b' has type double; the model input expects integers"):
        model.score(ints.set_column(1, "b", pa.array([1.5, 2.0])))


@pytest.mark.parametrize("backend", ["native-trees", "native-linear"])
def test_n_threads_is_honoured_and_never_changes_bits(hgb_onnx, table, backend, monkeypatch):
    """score(n_threads=1) runs its threaded kernels on one thread; 1 and 2 threads give the same
    bits (each row is summed by one thread)."""
    import numba

    from fastengage.kernels.common import launch

    if backend == "native-trees":
        model = load_model(hgb_onnx)
    else:
        from fastengage.scoring import LinearModel

        model = LinearModel([[0.5, -1.0, 2.0, 0.0, 1.5]], [0.1], features=NAMES, link="logistic")
    big = pa.table({name: np.random.default_rng(0).normal(size=5000) for name in NAMES})
    seen = []
    real = launch.run_threaded

    def spy(worker, n_threads=None):
        seen.append(launch.resolve_threads(n_threads))
        return real(worker, n_threads)

    monkeypatch.setattr(launch, "run_threaded", spy)
    one = model.score(big, n_threads=1)
    assert seen and set(seen) == {1}
    seen.clear()
    two = model.score(big, n_threads=2)
    assert set(seen) == {min(2, numba.config.NUMBA_NUM_THREADS)}
    assert one.equals(two)
