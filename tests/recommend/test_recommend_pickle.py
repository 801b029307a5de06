"""Pickling (issue #9, bug 4): recommenders, Interactions and id encoders pickle in process for
joblib, multiprocessing and Spark broadcast, through the safe model-file format (the pickle
carries the bytes of a bundle, rebuilt by the validating loader); ``load()`` never unpickles."""
import concurrent.futures as cf
import io
import multiprocessing
import pickle

import numpy as np
import pyarrow as pa
import pytest

from fastengage._io.ids import IdEncoder
from fastengage.errors import ModelFormatError
from fastengage.recommend import ALS, Interactions
from recommend_models import small_models

MODELS = small_models("bm25", numpy_als=True)


@pytest.fixture(scope="module")
def events():
    rng = np.random.default_rng(8)
    n = 800
    return pa.table({"c": pa.array([f"u{c}" for c in rng.integers(0, 50, n)]),
                     "i": rng.integers(0, 30, n)})


@pytest.fixture(scope="module", params=list(MODELS))
def fitted(request, events):
    return MODELS[request.param]().fit(events, customer="c", item="i")


def test_recommender_round_trip(fitted):
    clone = pickle.loads(pickle.dumps(fitted))
    assert type(clone) is type(fitted) and repr(clone) == repr(fitted)
    assert clone.recommend(n=5).equals(fitted.recommend(n=5))
    assert clone.similar_items([1, 2], n=3).equals(fitted.similar_items([1, 2], n=3))
    items, scores = clone.recommend_one("u3", n=4)
    ref_items, ref_scores = fitted.recommend_one("u3", n=4)
    assert items.tolist() == ref_items.tolist()
    np.testing.assert_array_equal(scores, ref_scores)


def test_unfitted_recommender_round_trip():
    model = ALS(factors=7, regularization=0.5, n_threads=1)
    clone = pickle.loads(pickle.dumps(model))
    assert repr(clone) == repr(model) and clone.customers_ is None


def test_pickle_payload_is_the_validated_file(fitted):
    """The pickled bytes go through the loader: a tampered payload is a ModelFormatError."""
    func, (cls, data) = fitted.__reduce__()
    assert data[:2] == b"PK"  # a ZIP bundle, no pickled Python objects inside
    buf = io.BytesIO()
    fitted.save(buf)
    assert type(fitted).load(io.BytesIO(data)).recommend(n=3).equals(fitted.recommend(n=3))
    with pytest.raises(ModelFormatError):
        func(cls, data[: len(data) // 2])
    with pytest.raises(ModelFormatError):
        func(dict, data)


def test_interactions_round_trip(events):
    inter = Interactions.from_data(events, customer="c", item="i", weighting="log")
    clone = pickle.loads(pickle.dumps(inter))
    assert (clone.matrix != inter.matrix).nnz == 0 and clone.shape == inter.shape
    assert clone.weighting == "log" and clone.log_epsilon == inter.log_epsilon
    assert clone.customers.ids().equals(inter.customers.ids())
    assert clone.items.ids().equals(inter.items.ids())
    assert clone.to_arrow().equals(inter.to_arrow())
    a = ALS(factors=4, iterations=2, seed=0).fit(inter).recommend(n=3)
    assert ALS(factors=4, iterations=2, seed=0).fit(clone).recommend(n=3).equals(a)


@pytest.mark.parametrize("ids", [pa.array([5, 9, 5, 2**40]), pa.array(["x", "y", "x"]),
                                 pa.array(["p", "q"]).dictionary_encode(),
                                 pa.array([3, 1], pa.uint64())])
def test_id_encoder_round_trip(ids):
    enc = IdEncoder("col", "item")
    codes = enc.encode(ids)
    clone = pickle.loads(pickle.dumps(enc))
    assert (clone.column, clone.role, clone.kind, clone.type, clone.input_type) == \
        (enc.column, enc.role, enc.kind, enc.type, enc.input_type)
    np.testing.assert_array_equal(clone.lookup(ids), codes)
    assert clone.ids().equals(enc.ids())
    np.testing.assert_array_equal(clone.encode(ids), codes)  # still usable, lock rebuilt


def _recommend_chunk(model, customers):
    return model.recommend(customers, n=4).to_pylist()


def test_joblib_processes(fitted, events):
    joblib = pytest.importorskip("joblib")
    customers = events.column("c").unique().to_pylist()
    chunks = [customers[i::2] for i in range(2)]
    out = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(_recommend_chunk)(fitted, c) for c in chunks)
    assert out == [_recommend_chunk(fitted, c) for c in chunks]


def test_multiprocessing_spawn(events):
    model = ALS(factors=4, iterations=2, seed=2).fit(events, customer="c", item="i")
    customers = events.column("c").unique().to_pylist()[:10]
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        got = pool.submit(_recommend_chunk, model, customers).result(timeout=600)
    assert got == _recommend_chunk(model, customers)
