"""RFMState.forget (issue #14 part 3), against the protocol of fastengage.privacy.forget: after
forget the state equals one fed the same events without the customers' rows (bit-identical
table, report metadata included), before and after save/load, merge and further updates; the
saved bytes hold no trace of the ids or of orders only they bought; honest audit records; files
older than version 3 say what stays approximate; hostile tracking arrays are refused."""
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastengage as fe
from fastengage.errors import ModelFormatError
from fastengage.privacy import find_traces

from bundle_edit import members as _members, npy as _npy, rezip as _zip

COLS = dict(customer="c", time="ts", amount="a")
T0 = 1_600_000_000
AS_OF = "2020-10-20"  # inside the 60 days of events: some rows fall after it


def _pool(str_ids: bool, n: int = 25, seed: int = 1) -> list:
    rng = np.random.default_rng(seed)
    if str_ids:
        return [f"kunde-{v:012x}-ü" for v in rng.integers(1 << 40, 1 << 47, n)]
    # distinctive integers: their 8-byte forms do not occur in the arrays by chance
    return [(1 << 52) + int(v) * 7919 + 4321 for v in rng.choice(10**9, n, replace=False)]


def _events(str_ids: bool, n: int = 400, seed: int = 0, n_customers: int = 25) -> pa.Table:
    rng = np.random.default_rng(seed)
    pool = _pool(str_ids, n_customers)
    orders = [f"INV-{v:09d}" for v in rng.integers(10**8, 10**9, max(1, n // 3))]
    return pa.table({
        "c": pa.array([pool[i] for i in rng.integers(0, n_customers, n)]),
        # each customer's orders mostly its own, a few shared (the same invoice id)
        "o": pa.array([orders[i] for i in rng.integers(0, len(orders), n)]),
        "ts": pa.array(rng.integers(T0, T0 + 60 * 86_400, n), pa.timestamp("s")),
        "a": rng.integers(-8, 60, n) / 4,
    })


def _without(table: pa.Table, gone: list) -> pa.Table:
    return table.filter(pc.invert(pc.is_in(table["c"], pa.array(gone, table["c"].type))))


def _state(table, order, as_of, returns, splits=(0.5,)) -> fe.RFMState:
    """A state fed in pieces, the last piece through a merge (so merged states are covered)."""
    kw = dict(COLS, order="o" if order else None, as_of=as_of, returns=returns)
    cuts = [0, *(int(f * table.num_rows) for f in splits), table.num_rows]
    state = fe.RFMState(**kw).update(table.slice(0, cuts[1]))
    for lo, hi in zip(cuts[1:-1], cuts[2:]):
        state.merge(fe.RFMState(**kw).update(table.slice(lo, hi - lo)))
    return state


def _saved(state) -> bytes:
    buf = io.BytesIO()
    state.save(buf)
    return buf.getvalue()


def _same(a: pa.Table, b: pa.Table) -> None:
    assert a.equals(b, check_metadata=True), (a.schema.metadata, b.schema.metadata)


@pytest.mark.parametrize("str_ids", [True, False])
@pytest.mark.parametrize("order", [True, False])
@pytest.mark.parametrize("as_of", [None, AS_OF])
@pytest.mark.parametrize("returns", ["net", "exclude"])
def test_forget_equals_a_rebuild_without_them(str_ids, order, as_of, returns):
    table = _events(str_ids)
    pool = _pool(str_ids)
    gone = [pool[2], pool[11], pool[19]]
    state = _state(table, order, as_of, returns, splits=(0.3, 0.7))
    assert find_traces(_saved(state), gone)  # the ids are there before
    rows = _without(table, gone)
    record = state.forget(gone + (["nobody-here"] if str_ids else [12_345_678_901]),
                          request="erasure-7")
    assert (record.customers_requested, record.customers_found) == (4, 3)
    assert record.rows_removed == table.num_rows - rows.num_rows
    assert record.exact and record.request == "erasure-7" and record.object == "RFMState"
    rebuilt = _state(rows, order, as_of, returns, splits=(0.6,))
    _same(state.to_table(), rebuilt.to_table())
    saved = _saved(state)
    assert find_traces(saved, gone) == []
    gone_orders = set(table.filter(pc.is_in(table["c"], pa.array(gone)))["o"].to_pylist()) \
        - set(rows["o"].to_pylist())
    assert gone_orders and find_traces(saved, sorted(gone_orders)) == []
    loaded = fe.RFMState.load(io.BytesIO(saved))
    _same(loaded.to_table(), rebuilt.to_table())
    # it goes on like the rebuilt state: more events, a merge, another save
    more = _events(str_ids, n=120, seed=9)
    for s in (state, loaded, rebuilt):
        s.update(more.slice(0, 60)).merge(_state(more.slice(60), order, as_of, returns))
    _same(state.to_table(), rebuilt.to_table())
    _same(loaded.to_table(), rebuilt.to_table())
    _same(fe.RFMState.load(io.BytesIO(_saved(state))).to_table(), rebuilt.to_table())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 120),
       n_gone=st.integers(0, 6), split=st.floats(0.0, 1.0), str_ids=st.booleans(),
       as_of=st.sampled_from([None, AS_OF]))
def test_forget_property(seed, n, n_gone, split, str_ids, as_of):
    table = _events(str_ids, n=n, seed=seed % 1000, n_customers=8)
    pool = _pool(str_ids, 8)
    gone = pool[:n_gone]
    state = _state(table, True, as_of, "net", splits=(split,))
    state.forget(gone)
    rows = _without(table, gone)
    rebuilt = _state(rows, True, as_of, "net", splits=())
    assert state.report == rebuilt.report
    if rows.num_rows == 0:
        return  # no events left: tested in test_forget_everyone_and_nobody
    _same(state.to_table(), rebuilt.to_table())
    _same(fe.RFMState.load(io.BytesIO(_saved(state))).to_table(), rebuilt.to_table())


def test_forget_everyone_and_nobody():
    table = _events(True)
    state = _state(table, True, None, "net")
    before = _saved(state)
    record = state.forget(["not-a-customer"])
    assert (record.customers_found, record.rows_removed) == (0, 0) and record.exact
    assert state.to_table().equals(fe.RFMState.load(io.BytesIO(before)).to_table())
    everyone = pc.unique(table["c"])
    record = state.forget(everyone)
    assert record.rows_removed == table.num_rows and record.details["customers_left"] == 0
    assert record.details["orders_left"] == 0
    with pytest.raises(fe.errors.InputError, match="no events"):
        state.to_table()
    loaded = fe.RFMState.load(io.BytesIO(_saved(state)))
    assert find_traces(_saved(loaded), everyone.to_pylist()) == []
    loaded.update(table)
    _same(loaded.to_table(), _state(table, True, None, "net").to_table())


def test_forget_keeps_dictionary_and_view_id_types():
    table = _events(True)
    pool = _pool(True)
    for typ in (pa.dictionary(pa.int32(), pa.string()), pa.string_view()):
        def typed(t):
            return t.set_column(0, "c", t["c"].cast(typ))

        state = fe.RFMState(**COLS, order="o").update(typed(table))
        state.forget([pool[0]])
        rebuilt = fe.RFMState(**COLS, order="o").update(typed(_without(table, [pool[0]])))
        _same(state.to_table(), rebuilt.to_table())


def test_latest_event_time_without_them():
    """The default as_of is the latest event; a forgotten customer's late return must not
    stay in it (recency of everyone else would change)."""
    table = pa.table({"c": ["a", "b", "b"], "ts": pa.array([T0, T0 + 86_400, T0 + 9 * 86_400],
                                                           pa.timestamp("s")),
                      "a": [5.0, 3.0, -1.0]})
    state = fe.RFMState(**COLS).update(table)
    state.forget("b")
    _same(state.to_table(), fe.RFMState(**COLS).update(table.slice(0, 1)).to_table())
    assert state.to_table()["recency_days"].to_pylist() == [0.0]


def test_audit_log_holds_counts_not_ids(tmp_path):
    state = _state(_events(True), True, None, "net")
    pool = _pool(True)
    log = tmp_path / "erasures.jsonl"
    records = fe.privacy.forget_everywhere([state], [pool[4]], request="T-1", log=log)
    text = log.read_text()
    assert pool[4] not in text and json.loads(text)["rows_removed"] == records[0].rows_removed


# -- files ---------------------------------------------------------------------------------

def _as_version_2(raw: bytes) -> io.BytesIO:
    members = _members(raw)
    del members["other_last_us.npy"], members["after_cut_rows.npy"]
    header = json.loads(members["meta.json"])
    header["version"] = 2
    del header["meta"]["rows_tracked"]
    members["meta.json"] = json.dumps(header)
    return _zip(members)


def test_version_2_files_forget_and_say_what_stays_approximate():
    table = pa.table({"c": ["a", "b", "b", "c"],
                      "ts": pa.array([T0, T0 + 86_400, T0 + 9 * 86_400, T0 + 2 * 86_400],
                                     pa.timestamp("s")),
                      "a": [5.0, 3.0, -1.0, 2.0]})
    late_buy = pa.concat_tables([table, pa.table({
        "c": ["a"], "ts": pa.array([T0 + 10 * 86_400], pa.timestamp("s")), "a": [1.0]})])
    old = fe.RFMState.load(_as_version_2(_saved(fe.RFMState(**COLS).update(late_buy))))
    assert old.forget("b").exact  # the latest event is a's purchase, which the records hold
    _same(old.to_table(), fe.RFMState(**COLS).update(_without(late_buy, ["b"])).to_table())
    old = fe.RFMState.load(_as_version_2(_saved(fe.RFMState(**COLS).update(table))))
    record = old.forget("b")  # the latest event is b's return: a v2 file cannot tell
    assert not record.exact and "latest event time" in record.notes
    cut = fe.RFMState(**COLS, as_of="2020-09-14").update(table)
    record = fe.RFMState.load(_as_version_2(_saved(cut))).forget("a")
    assert not record.exact and "rows_after_as_of" in record.notes
    # saved again, the file says it is untracked, and loads
    again = fe.RFMState.load(io.BytesIO(_saved(old)))
    assert json.loads(_members(_saved(again))["meta.json"])["meta"]["rows_tracked"] is False


def _with_array(raw, name, fn):
    members = _members(raw)
    members[f"{name}.npy"] = _npy(fn(np.load(io.BytesIO(members[f"{name}.npy"])).copy()))
    return _zip(members)


def _poke(value, index=0):
    def fn(array):
        array[index] = value
        return array
    return fn


@pytest.mark.parametrize("name,fn,message", [
    ("other_last_us", _poke(2**62), "out of range"),
    ("other_last_us", _poke(-2**62), "out of range"),
    ("other_last_us", lambda a: a[:-1], "shape"),
    ("other_last_us", lambda a: a.astype(np.int32), "dtype"),
    ("other_last_us", lambda a: np.full_like(a, -62_135_596_800_000_001),
     "no customer's|without a time"),
    ("after_cut_rows", _poke(-1), "negative"),
    ("after_cut_rows", lambda a: a + 1, "rows_after_as_of|without a time"),
    ("after_cut_rows", lambda a: a.astype(np.int64), "dtype"),
])
def test_hostile_tracking_arrays_are_refused(name, fn, message):
    saved = _saved(_state(_events(True), True, AS_OF, "net"))
    fe.RFMState.load(io.BytesIO(saved))  # the file itself is fine
    with pytest.raises(ModelFormatError, match=f"(_rows|_us).npy.*({message})"):
        fe.RFMState.load(_with_array(saved, name, fn))


def test_hostile_tracking_metadata_is_refused():
    members = _members(_saved(_state(_events(True), True, None, "net")))
    header = json.loads(members["meta.json"])
    header["meta"]["rows_tracked"] = "yes"
    members["meta.json"] = json.dumps(header)
    with pytest.raises(ModelFormatError, match="rows_tracked"):
        fe.RFMState.load(_zip(members))
    header["meta"]["rows_tracked"] = True
    header["meta"]["report"]["rows_read"] += 1
    members["meta.json"] = json.dumps(header)
    with pytest.raises(ModelFormatError, match="rows_read"):
        fe.RFMState.load(_zip(members))
