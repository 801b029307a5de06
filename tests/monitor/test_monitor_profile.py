"""Profiles: batch/merge invariance, the sketch's tracked rank-error bound (and the drift error
it implies), and the safe file format with validation of every member."""
import io
import json
import zipfile

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

import naive_monitor
from fastengage.errors import InputError, ModelFormatError
from fastengage.monitor import Profile, drift


def _table(seed, n=4000):
    rng = np.random.default_rng(seed)
    return pa.table({"x": rng.normal(size=n), "k": rng.integers(0, 9, n),
                     "s": pa.array(rng.choice(["a", "b", "c", None], n)),
                     "f": pa.array(np.where(rng.random(n) < 0.1, np.nan, rng.random(n)))})


def test_summary_matches_numpy():
    t = _table(0)
    s = {r["column"]: r for r in Profile.from_data(t).summary().to_pylist()}
    f = t["f"].to_numpy()
    valid = f[~np.isnan(f)]
    assert s["f"]["count"] == valid.size and s["f"]["null_count"] == np.isnan(f).sum()
    assert s["f"]["mean"] == pytest.approx(valid.mean(), rel=1e-12)
    assert s["f"]["std"] == pytest.approx(valid.std(), rel=1e-12)
    assert (s["x"]["min"], s["x"]["max"]) == (t["x"].to_numpy().min(), t["x"].to_numpy().max())
    assert s["s"]["distinct"] == 3 and s["s"]["null_count"] == t["s"].null_count
    assert all(r["exact"] for r in s.values())


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.integers(1, 800), min_size=1, max_size=6),
       st.integers(8, 64))
def test_sketch_rank_error_stays_within_its_tracked_bound(seed, sizes, k):
    rng = np.random.default_rng(seed)
    parts = [rng.normal(size=s).round(rng.integers(0, 3)) for s in sizes]
    profiles = [Profile.from_data(pa.table({"x": p}), mode="sketch", sketch_size=k) for p in parts]
    merged = profiles[0]
    for p in profiles[1:]:
        merged.merge(p)
    merged.update(pa.table({"x": parts[0][: len(parts[0]) // 2]}))
    everything = np.concatenate(parts + [parts[0][: len(parts[0]) // 2]])
    state = merged.state("x")
    values, weights = state.points()
    n = everything.size
    bound = state.rank_error
    # the bound stated a priori: n * (ceil(log2(n / k)) + 1) / k
    assert bound <= n * (max(np.ceil(np.log2(max(n / k, 1))), 0) + 1) / k + 1e-9
    assert weights.sum() == n and state.n == n
    for x in np.concatenate([everything, [-np.inf, np.inf]]):
        true = np.count_nonzero(everything <= x)
        assert abs(naive_monitor.weighted_rank(values, weights, x) - true) <= bound


def test_sketch_drift_is_within_the_stated_error_of_exact():
    rng = np.random.default_rng(7)
    ref = pa.table({"x": rng.lognormal(size=60_000)})
    cur = pa.table({"x": rng.lognormal(0.05, 1.0, size=40_000)})
    exact = drift(ref, cur).to_pylist()[0]
    p_ref = Profile.from_data(ref, mode="sketch", sketch_size=256)
    p_cur = Profile.from_data(cur.slice(0, 20_000), mode="sketch", sketch_size=256)
    p_cur.update(cur.slice(20_000))
    approx = drift(p_ref, p_cur).to_pylist()[0]
    eps = approx["rank_error"]
    assert 0 < eps < 0.05
    assert abs(approx["ks_statistic"] - exact["ks_statistic"]) <= eps
    span = max(ref["x"].to_numpy().max(), cur["x"].to_numpy().max())
    assert abs(approx["wasserstein"] - exact["wasserstein"]) <= eps * span
    assert approx["wasserstein_norm"] == pytest.approx(exact["wasserstein"] / np.std(
        ref["x"].to_numpy()), abs=eps * span)


def test_auto_mode_switches_to_sketch_past_the_limit():
    t = _table(1, 5000)
    p = Profile.from_data(t, ["x"], exact_limit=3000)
    assert not p.summary()["exact"][0].as_py()
    p2 = Profile.from_data(t.slice(0, 2000), ["x"], exact_limit=3000)
    assert p2.summary()["exact"][0].as_py()
    p2.update(t.slice(2000))
    assert not p2.summary()["exact"][0].as_py()


def test_exact_split_and_merge_orders_agree():
    t = _table(2)
    whole = Profile.from_data(t, mode="exact")
    a = Profile.from_data(t.slice(2500), mode="exact")
    a.merge(Profile.from_data(t.slice(0, 2500), mode="exact"))
    for c in ("x", "k", "f"):
        assert np.array_equal(a.state(c).values, whole.state(c).values)
    assert a.state("s").values.equals(whole.state("s").values)
    assert np.array_equal(a.state("s").counts, whole.state("s").counts)


@pytest.mark.parametrize("mode", ["exact", "sketch"])
def test_save_load_roundtrip(tmp_path, mode):
    p = Profile.from_data(_table(3), mode=mode, sketch_size=64)
    path = tmp_path / "p.fe"
    p.save(path)
    q = Profile.load(path)
    assert q.summary().equals(p.summary())
    cur = _table(4)
    assert drift(q, cur).equals(drift(p, cur))


def _kinds_and_types(profile):
    """Each column's kind and, for a categorical one, its categories' Arrow type."""
    return {c: (k, profile.state(c).values.type if k == "categorical" else None)
            for c, k in profile.kinds.items()}


def _typed_table(n):
    rng = np.random.default_rng(5)
    return pa.table({"i": pa.array(rng.integers(0, 4, n), pa.int32()),
                     "s": pa.array(rng.choice(["a", "b"], n)).dictionary_encode(),
                     "t": pa.array(rng.choice(["u", "v"], n), pa.large_string()),
                     "b": pa.array(rng.random(n) < 0.5), "x": rng.normal(size=n)})


@pytest.mark.parametrize("rows", [0, 50])
def test_roundtrip_keeps_kinds_and_category_types(tmp_path, rows):
    # An empty profile used to read its categorical columns back as strings, which then refused
    # to merge with the integer categories of another worker's profile.
    p = Profile.from_data(_typed_table(rows), categorical=["i"])
    want = {"i": ("categorical", pa.int32()), "s": ("categorical", pa.string()),
            "t": ("categorical", pa.string()), "b": ("categorical", pa.bool_()),
            "x": ("numeric", None)}
    assert _kinds_and_types(p) == want
    p.save(tmp_path / "p.fe")
    q = Profile.load(tmp_path / "p.fe")
    assert _kinds_and_types(q) == want
    assert q.summary().equals(p.summary())
    other = Profile.from_data(_typed_table(80), categorical=["i"])
    q.merge(other)
    whole = Profile.from_data(pa.concat_tables([_typed_table(rows), _typed_table(80)])
                              .combine_chunks(), categorical=["i"])
    assert _kinds_and_types(q) == want
    for c in ("i", "s", "t", "b"):
        assert q.state(c).values.equals(whole.state(c).values)
        assert np.array_equal(q.state(c).counts, whole.state(c).counts)


def test_profile_without_rows_or_types_merges_either_way(tmp_path):
    # Profile(kinds) (as a worker without rows builds it) does not know the column types: its
    # saved categories are typed null, and merge adopts the other side's type in either order.
    kinds = Profile.from_data(_typed_table(0), categorical=["i"]).kinds
    Profile(kinds).save(tmp_path / "e.fe")
    empty = Profile.load(tmp_path / "e.fe")
    full = Profile.from_data(_typed_table(30), categorical=["i"])
    merged = Profile.load(tmp_path / "e.fe").merge(full)
    assert merged.summary().equals(full.summary())
    assert _kinds_and_types(merged) == _kinds_and_types(full)
    full.merge(empty)
    assert full.summary().equals(merged.summary())
    assert drift(empty, full).column("new_categories").to_pylist()[0] == ["0", "1", "2", "3"]


def _rewrite(path, member, data):
    buf = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w") as dst:
        for name in src.namelist():
            if name != member:
                dst.writestr(name, src.read(name))
        if data is not None:
            dst.writestr(member, data)
    return buf


def _npy(arr):
    b = io.BytesIO()
    np.save(b, arr, allow_pickle=False)
    return b.getvalue()


def _meta(path, edit):
    with zipfile.ZipFile(path) as z:
        meta = json.loads(z.read("meta.json"))
    edit(meta["meta"])
    return json.dumps(meta)


@pytest.fixture
def saved(tmp_path):
    p = Profile.from_data(_table(5), mode="sketch", sketch_size=64)
    path = tmp_path / "s.fe"
    p.save(path)
    e = Profile.from_data(_table(5), mode="exact")
    epath = tmp_path / "e.fe"
    e.save(epath)
    return path, epath


def _cases(path, epath):
    def set_col(key, value, j=0):
        def edit(m):
            m["columns"][j][key] = value
        return edit
    return [
        (epath, "c0_values.npy", _npy(np.array([3.0, 1.0] * 2000)), "c0_values"),
        (epath, "c0_values.npy", _npy(np.arange(5, dtype=np.int64)), "float64"),
        (epath, "c0_values.npy", _npy(np.full(4000, np.nan)), "NaN"),
        (epath, "c0_values.npy", None, "missing"),
        (epath, "c0_values.npy", _npy(np.sort(np.random.default_rng(0).normal(size=10))), "holds 10"),
        (path, "c0_level0.npy", _npy(np.zeros(1000)), "sketch size"),
        (path, "c0_level1.npy", _npy(np.array([5.0, 1.0])), "c0_level1"),
        (path, "meta.json", _meta(path, set_col("parities", [0, 2])), "parities"),
        (path, "meta.json", _meta(path, set_col("n", 17)), "total weight"),
        (path, "meta.json", _meta(path, set_col("n", -1)), "n must be"),
        (path, "meta.json", _meta(path, set_col("kind", "weird")), "unknown kind"),
        (path, "meta.json", _meta(path, set_col("mean", "x")), "mean"),
        (path, "meta.json", _meta(path, set_col("min", 1e9)), "inconsistent"),
        (path, "meta.json", _meta(path, lambda m: m.update(sketch_size=2)), "sketch_size"),
        (path, "meta.json", _meta(path, lambda m: m.update(columns=5)), "columns"),
        (path, "c2_categories.arrow", None, "missing"),
        (path, "meta.json", b"{not json", "meta.json"),
    ]


def test_malformed_members_raise_model_format_error(saved, tmp_path):
    path, epath = saved
    for i, (src, member, data, match) in enumerate(_cases(path, epath)):
        bad = tmp_path / f"bad{i}.fe"
        bad.write_bytes(_rewrite(src, member, data).getvalue())
        with pytest.raises(ModelFormatError, match=match):
            Profile.load(bad)


def test_bad_category_tables_raise(saved, tmp_path):
    path, _ = saved
    def arrow(table):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)
        return sink.getvalue().to_pybytes()
    cases = [(pa.table({"value": ["a", "a"], "count": pa.array([1, 2], pa.int64())}), "distinct"),
             (pa.table({"value": ["a"], "count": pa.array([-1], pa.int64())}), "positive"),
             (pa.table({"value": ["a"], "count": pa.array([1.0])}), "int64"),
             (pa.table({"v": ["a"], "count": pa.array([1], pa.int64())}), "columns")]
    for i, (table, match) in enumerate(cases):
        bad = tmp_path / f"cat{i}.fe"
        bad.write_bytes(_rewrite(path, "c2_categories.arrow", arrow(table)).getvalue())
        with pytest.raises(ModelFormatError, match=match):
            Profile.load(bad)
    (tmp_path / "junk.fe").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ModelFormatError):
        Profile.load(tmp_path / "junk.fe")


def test_merge_rejects_other_columns():
    a = Profile.from_data(_table(0), ["x"])
    with pytest.raises(InputError, match="differ"):
        a.merge(Profile.from_data(_table(0), ["k"]))
    with pytest.raises(InputError, match="itself"):
        a.merge(a)
    with pytest.raises(InputError, match="mode"):
        Profile.from_data(_table(0), mode="fast")


def test_category_table_with_a_field_name_that_is_not_utf8_is_a_format_error():
    # found by the fuzzer (tests/fuzz/targets_monitor.py): the bundle reader let the
    # UnicodeDecodeError of such a name escape
    buf = io.BytesIO()
    Profile.from_data(pa.table({"s": ["a", "b", "a"]})).save(buf)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".arrow"):
                data = data.replace(b"value", b"v\xf2lue")
            dst.writestr(info, data)
    with pytest.raises(ModelFormatError, match="c0_categories"):
        Profile.load(io.BytesIO(out.getvalue()))
