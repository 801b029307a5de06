"""Hostile model files (issue #10, findings 1, 3, 6, 7): every array a loader returns is checked
against the metadata and against every index a kernel will use, before any kernel sees it.

Each case edits one member of a valid file. Before the checks, the bad neighbour ids, seen
indices and factor widths loaded silently and then crashed or read garbage in a kernel; now
``load`` raises ModelFormatError naming the member."""
import io
import json

import numpy as np
import pyarrow as pa
import pytest

from fastengage.errors import ModelFormatError
from recommend_models import small_models
from bundle_edit import load_npy, members, npy, rezip

MODELS = small_models("cosine")


@pytest.fixture(scope="module")
def events():
    rng = np.random.default_rng(3)
    n = 600
    return pa.table({"c": rng.integers(0, 40, n), "i": rng.integers(0, 25, n)})


@pytest.fixture(scope="module", params=list(MODELS))
def saved(request, events):
    model = MODELS[request.param]().fit(events, customer="c", item="i")
    buf = io.BytesIO()
    model.save(buf)
    return request.param, type(model), buf.getvalue(), model


def with_array(raw, name, edit):
    parts = members(raw)
    arr = load_npy(parts[f"{name}.npy"]).copy()
    arr = edit(arr)
    parts[f"{name}.npy"] = npy(arr)
    return rezip(parts)


def with_meta(raw, edit):
    parts = members(raw)
    header = json.loads(parts["meta.json"])
    edit(header["meta"])
    parts["meta.json"] = json.dumps(header).encode()
    return rezip(parts)


def set_at(index, value):
    def edit(arr):
        arr[index] = value
        return arr
    return edit


def test_valid_file_round_trips(saved):
    _, cls, raw, model = saved
    loaded = cls.load(io.BytesIO(raw))
    assert loaded.recommend(n=4).equals(model.recommend(n=4))


# -- finding 1: ItemKNN neighbour ids --------------------------------------------------------
@pytest.mark.parametrize("value", [2**40, 25, -2, -1])
def test_knn_neighbour_ids_out_of_range(saved, value):
    name, cls, raw, _ = saved
    if name != "knn":
        pytest.skip("ItemKNN only")
    with pytest.raises(ModelFormatError, match="neighbours"):
        cls.load(with_array(raw, "neighbours", set_at((0, 0), value)))


def test_knn_counts_and_similarities(saved):
    name, cls, raw, _ = saved
    if name != "knn":
        pytest.skip("ItemKNN only")
    with pytest.raises(ModelFormatError, match="counts"):
        cls.load(with_array(raw, "counts", set_at(0, 6)))
    with pytest.raises(ModelFormatError, match="counts"):
        cls.load(with_array(raw, "counts", set_at(0, -1)))
    with pytest.raises(ModelFormatError, match="similarities"):
        cls.load(with_array(raw, "similarities", set_at((0, 0), np.inf)))
    with pytest.raises(ModelFormatError, match="neighbours"):  # K of another width
        cls.load(with_array(raw, "neighbours", lambda a: np.hstack([a, a[:, :1]])))


# -- finding 3: the seen CSR and the factor matrices -----------------------------------------
@pytest.mark.parametrize("value", [2**40, -1, 25])
def test_seen_indices_out_of_range(saved, value):
    _, cls, raw, _ = saved
    with pytest.raises(ModelFormatError, match="seen_indices"):
        cls.load(with_array(raw, "seen_indices", set_at(3, value)))


def _wrapping_pointers(arr):
    # found by the fuzzer: differences of pointers near +-2**63 wrap around to small positive
    # steps, so a check by np.diff saw a non-decreasing array and indexing then failed
    # (four steps of 2**62 go once around the int64 circle back to 0, then the real rows)
    arr = arr.copy()
    assert arr[5] > 0
    arr[1:5] = [2**62, -2**63, -2**62, 0]
    return arr


@pytest.mark.parametrize("edit", [set_at(5, 10**9), set_at(5, -3), set_at(0, 1), set_at(-1, 3),
                                  _wrapping_pointers],
                         ids=["huge", "negative", "start", "end", "wrapping"])
def test_seen_indptr_not_monotone_or_out_of_range(saved, edit):
    _, cls, raw, _ = saved
    with pytest.raises(ModelFormatError, match="seen_indptr"):
        cls.load(with_array(raw, "seen_indptr", edit))


def test_seen_indices_unsorted_within_a_row(saved):
    _, cls, raw, model = saved
    indptr = model.seen_indptr_
    row = int(np.argmax(np.diff(indptr) >= 2))
    a = int(indptr[row])

    def swap(arr):
        arr[a], arr[a + 1] = arr[a + 1], arr[a]
        return arr
    with pytest.raises(ModelFormatError, match="strictly increasing"):
        cls.load(with_array(raw, "seen_indices", swap))


@pytest.mark.parametrize("name", ["user_factors", "item_factors"])
def test_factor_width_and_values(saved, name):
    kind, cls, raw, _ = saved
    if kind == "knn":
        pytest.skip("factor models only")
    wider = with_array(raw, name, lambda a: np.hstack([a, a[:, :1]]))
    with pytest.raises(ModelFormatError, match=name):
        cls.load(wider)
    with pytest.raises(ModelFormatError, match=name):
        cls.load(with_array(raw, name, set_at((1, 1), np.nan)))
    with pytest.raises(ModelFormatError, match=name):  # another dtype than the parameters say
        cls.load(with_array(raw, name, lambda a: a.astype(np.float64)))
    with pytest.raises(ModelFormatError, match=name):  # rows of another model
        cls.load(with_array(raw, name, lambda a: a[:-1]))


def test_arrays_disagree_on_sizes(saved):
    _, cls, raw, _ = saved
    with pytest.raises(ModelFormatError, match="seen_data"):
        cls.load(with_array(raw, "seen_data", lambda a: a[:-1]))
    with pytest.raises(ModelFormatError, match="seen_data"):
        cls.load(with_array(raw, "seen_data", lambda a: a.astype(np.float64)))
    with pytest.raises(ModelFormatError, match="seen_data"):
        cls.load(with_array(raw, "seen_data", set_at(0, np.nan)))


# -- findings 6, 7: bounded reads, every malformed field a ModelFormatError --------------------
def test_declared_size_checked_before_reading(saved):
    _, cls, raw, _ = saved
    parts = members(raw)
    parts["seen_data.npy"] = parts["seen_data.npy"] + b"\0" * (1 << 20)  # more than the header
    with pytest.raises(ModelFormatError, match="declares"):
        cls.load(rezip(parts))
    parts = members(raw)
    parts["meta.json"] = parts["meta.json"] + b" " * (1 << 20)
    with pytest.raises(ModelFormatError, match="meta.json"):
        cls.load(rezip(parts))


def test_id_tables(saved):
    _, cls, raw, _ = saved
    parts = members(raw)
    parts["items.arrow"] = parts["customers.arrow"]  # another length than the arrays
    with pytest.raises(ModelFormatError, match="items.arrow"):
        cls.load(rezip(parts))
    parts = members(raw)
    sink = pa.BufferOutputStream()
    ids = pa.table({"id": pa.array([1, 1] + list(range(2, 25)), pa.int64())})
    with pa.ipc.new_file(sink, ids.schema) as writer:
        writer.write_table(ids)
    parts["items.arrow"] = sink.getvalue().to_pybytes()
    meta = json.loads(parts["meta.json"])
    del meta["meta"]["member_bytes"]  # an older file: bounded, then checked
    parts["meta.json"] = json.dumps(meta).encode()
    with pytest.raises(ModelFormatError, match="items.arrow"):
        cls.load(rezip(parts))


def test_members_missing_or_extra(saved):
    _, cls, raw, _ = saved
    parts = members(raw)
    del parts["seen_indices.npy"]
    with pytest.raises(ModelFormatError, match="missing"):
        cls.load(rezip(parts))
    parts = members(raw)
    parts["payload.pkl"] = b"\x80\x04N."
    with pytest.raises(ModelFormatError, match="payload.pkl"):
        cls.load(rezip(parts))


@pytest.mark.parametrize("edit", [
    lambda m: m["params"].update(factors="x", K="x"),
    lambda m: m["params"].update(factors=-1, K=-1),
    lambda m: m["params"].update(unknown=1),
    lambda m: m["params"].update(n_threads=0),
    lambda m: m["params"].update(dtype="object", similarity="euclid"),
    lambda m: m["params"].update(factors=[1], K=[1]),
    lambda m: m.update(params=[]),
    lambda m: m.update(weighting="nope"),
    lambda m: m.update(log_epsilon=float("nan")),
    lambda m: m.update(log_epsilon=1e400),
    lambda m: m.update(customer_column=3),
    lambda m: m.update(sizes={"C": 10**12}),
], ids=["str", "negative", "unknown", "threads", "dtype", "list", "params", "weighting",
        "eps_nan", "eps_inf", "column", "sizes"])
def test_malformed_metadata(saved, edit):
    _, cls, raw, _ = saved
    with pytest.raises(ModelFormatError):
        cls.load(with_meta(raw, edit))


def test_garbage_is_a_model_format_error(saved):
    _, cls, raw, _ = saved
    for blob in (b"", b"PK\x03\x04garbage", raw[: len(raw) // 2], b"\x80\x04N."):
        with pytest.raises(ModelFormatError):
            cls.load(io.BytesIO(blob))
