"""RFMState files as hostile input (issue #10, findings 2, 6, 7): every array is checked against
the metadata and every index it will be used with before a kernel sees it; sizes are checked
before anything is decompressed."""
import io
import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

import fastengage as fe
from fastengage.errors import ModelFormatError
import bundle_edit
from bundle_edit import npy, rezip

KW = dict(customer="cust", time="ts", amount="amt", order="ord")


def _table(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pa.table({
        "cust": rng.integers(0, 8, n), "ord": rng.integers(0, 15, n),
        "ts": pa.array(rng.integers(1_600_000_000, 1_600_000_000 + 40 * 86_400, n), pa.timestamp("s")),
        "amt": rng.integers(-3, 50, n) / 4,
    })


def _saved(order=True) -> bytes:
    kw = KW if order else dict(KW, order=None)
    buf = io.BytesIO()
    fe.RFMState(**kw).update(_table()).save(buf)
    return buf.getvalue()


def _with_array(raw, name, fn):
    members = bundle_edit.members(raw)
    arr = np.load(io.BytesIO(members[f"{name}.npy"]))
    members[f"{name}.npy"] = npy(fn(arr.copy()))
    return rezip(members)


def _with_meta(raw, fn):
    members = bundle_edit.members(raw)
    header = json.loads(members["meta.json"])
    fn(header["meta"])
    members["meta.json"] = json.dumps(header)
    return rezip(members)


def test_round_trip_still_loads_and_merges():
    a = fe.RFMState.load(io.BytesIO(_saved()))
    b = fe.RFMState(**KW).update(_table(seed=1))
    assert a.merge(b).to_table().num_rows > 0


def _set_key(keys, code):
    keys[0] = (np.int64(code) << 32) | (keys[0] & 0xFFFFFFFF)
    return keys


@pytest.mark.parametrize("name,fn,message", [
    ("day_pairs", lambda k: _set_key(k, 2**30), "customer codes"),
    ("day_pairs", lambda k: _set_key(k, -5), "customer codes"),
    ("order_pairs", lambda k: _set_key(k, 2**30), "customer codes"),
    ("order_pairs", lambda k: k | 0xFFFF0000, "order codes"),
    ("day_pairs", lambda k: np.concatenate([k, k[:1]]), "shape"),
    ("day_pairs", lambda k: np.concatenate([k[:1], k[:-1]]), "duplicate|per customer"),
    ("day_pairs", lambda k: k.astype(np.int32), "dtype"),
    ("day_pairs", lambda k: k.reshape(-1, 1), "shape"),
])
def test_out_of_range_pair_codes_are_refused_before_merge(name, fn, message):
    """Finding 2: these made merge write out of bounds (exit 139)."""
    bad = _with_array(_saved(), name, fn)
    with pytest.raises(ModelFormatError, match=f"{name}.npy.*({message})"):
        fe.RFMState.load(bad)


def _poke(field, value, index=0):
    def fn(state):
        state[field][index] = value
        return state
    return fn


@pytest.mark.parametrize("fn", [
    _poke("purchase_rows", -1), _poke("purchase_days", 10**6), _poke("frequency", -2),
    _poke("money_hi", 2**40), _poke("money_hi", -2**62),
    _poke("first_us", -2**62), _poke("last_us", 2**62), _poke("last_order", 10**9),
    _poke("last_day", 2**30), lambda s: s[:-1], lambda s: np.zeros(len(s), [("x", "<i8")]),
])
def test_bad_records_are_refused(fn):
    with pytest.raises(ModelFormatError, match="state.npy"):
        fe.RFMState.load(_with_array(_saved(), "state", fn))


@pytest.mark.parametrize("edit", [
    lambda m: m.update(limit_us=1e30), lambda m: m.update(limit_us=2**70),
    lambda m: m.update(columns=["cust"]), lambda m: m.update(columns=None),
    lambda m: m["columns"].update(customer=5), lambda m: m.update(report=[1, 2]),
    lambda m: m["report"].update(rows_read=-1), lambda m: m["report"].update(rows_read="x"),
    lambda m: m.update(returns="maybe"), lambda m: m.update(drop_null_customers=[]),
    lambda m: m.update(n_customers=10**12), lambda m: m.update(n_customers=3),
    lambda m: m.update(max_time_us=0), lambda m: m.pop("report"),
])
def test_malformed_metadata_is_a_model_format_error(edit):
    """Finding 7: never TypeError / OverflowError / KeyError later."""
    with pytest.raises(ModelFormatError):
        fe.RFMState.load(_with_meta(_saved(), edit))


def _as_version_1(raw: bytes, money_by_code) -> io.BytesIO:
    """The same state in the version-1 layout (float sums), as the previous release wrote it."""
    from fastengage.features import _state_file

    members = bundle_edit.members(raw)
    new = np.load(io.BytesIO(members["state.npy"]))
    old = np.zeros(len(new), _state_file.STATE_DTYPE_V1)
    for name in ("first_us", "last_us", "last_order", "purchase_rows", "return_rows", "frequency",
                 "purchase_days", "last_day"):
        old[name] = new[name]
    old["purchase_sum"] = np.maximum(money_by_code, 0)
    old["return_sum"] = np.minimum(money_by_code, 0)
    members["state.npy"] = npy(old)
    header = json.loads(members["meta.json"])
    header["version"] = 1
    for key in ("n_customers", "n_orders"):
        header["meta"].pop(key)
    members["meta.json"] = json.dumps(header)
    return rezip(members)


def test_version_1_files_still_load():
    state = fe.RFMState(**KW).update(_table())
    buf = io.BytesIO()
    state.save(buf)
    table = state.to_table()
    money = dict(zip(table["cust"].to_pylist(), table["monetary_total"].to_pylist()))
    by_code = np.array([money.get(c, 0.0) for c in state.customers.ids().to_pylist()])
    loaded = fe.RFMState.load(_as_version_1(buf.getvalue(), by_code))
    assert loaded.to_table().equals(table)


def test_meta_that_is_not_an_object():
    members = bundle_edit.members(_saved())
    members["meta.json"] = json.dumps({"format": "fastengage", "kind": "RFMState", "version": 1,
                                       "meta": [1, 2]})
    with pytest.raises(ModelFormatError, match="meta"):
        fe.RFMState.load(rezip(members))


def test_duplicate_ids_and_wrong_id_tables():
    members = bundle_edit.members(_saved())
    members["customers.arrow"] = _ipc(pa.table({"id": [1] * 8}))
    with pytest.raises(ModelFormatError, match="customers.arrow"):
        fe.RFMState.load(rezip(members))
    members["customers.arrow"] = _ipc(pa.table({"id": [1.5] * 8}))
    with pytest.raises(ModelFormatError, match="customers.arrow"):
        fe.RFMState.load(rezip(members))


def _ipc(table):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


BOMB = r"""
import io, resource, sys, zipfile
import numpy as np
import fastengage as fe
raw = open(sys.argv[1], "rb").read()
what = sys.argv[2]
members = {}
with zipfile.ZipFile(io.BytesIO(raw)) as zf:
    for name in zf.namelist():
        members[name] = zf.read(name)
out = io.BytesIO()
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
    for name, data in members.items():
        if what == "meta" and name == "meta.json":
            data = data[:-2] + b" " * (1 << 28) + data[-2:]
        zf.writestr(name, data)
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1 << 25))
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    if what == "extra":
        zf.writestr("junk.npy", buf.getvalue() + bytes(1 << 28))
    if what == "state":
        hdr = io.BytesIO()
        np.lib.format.write_array_header_1_0(hdr, np.lib.format.header_data_from_array_1_0(
            np.zeros(1 << 22, fe.features.state._k.STATE_DTYPE)))
        zf.writestr("state.npy", hdr.getvalue() + bytes(1 << 28))
open(sys.argv[3], "wb").write(out.getvalue())
"""

LOAD = r"""
import resource, sys
import fastengage as fe
import numpy as np
fe.RFMState.load(sys.argv[2])  # warm: imports, compiled kernels
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    fe.RFMState.load(sys.argv[1])
    print("result loaded")
except fe.ModelFormatError as exc:
    print("result refused", exc)
print("extra_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
"""


@pytest.mark.parametrize("what", ["meta", "extra", "state"])
def test_zip_bombs_cost_a_clear_error_not_gigabytes(tmp_path, what):
    """Finding 6: a ~1 MB file with a 1 GiB member or meta.json peaked at 2.2 GB (256 MiB here)."""
    path = tmp_path / "state.fe"
    path.write_bytes(_saved())
    bomb = tmp_path / "bomb.fe"
    (tmp_path / "build.py").write_text(BOMB)
    (tmp_path / "load.py").write_text(LOAD)
    subprocess.run([sys.executable, str(tmp_path / "build.py"), str(path), what, str(bomb)],
                   check=True, timeout=600)
    assert bomb.stat().st_size < 4 << 20
    proc = subprocess.run([sys.executable, str(tmp_path / "load.py"), str(bomb), str(path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    # An unneeded member is never read; a needed one larger than the metadata says is refused.
    assert lines["result"].startswith("loaded" if what == "extra" else "refused"), proc.stdout
    assert int(lines["extra_kib"]) < 64 << 10, proc.stdout  # well under 64 MiB
