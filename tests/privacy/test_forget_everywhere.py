"""forget_everywhere across the stateful objects of a pipeline (issue #14 part 3): the event log,
an RFMState, an Interactions matrix, an ALS and an ItemKNN model, one call, one audit log; each
object afterwards holds no trace of the customers in its saved bytes, and the exact ones equal
the same objects built without the customers' rows."""
import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import fastengage as fe
from fastengage.privacy import find_traces, forget_everywhere, forget_rows, read_log
from fastengage.recommend import ALS, ItemKNN, Interactions

COLS = dict(customer="customer", time="time", amount="amount", order="invoice")


def _events(n=3000, n_customers=150, n_items=60, seed=4) -> pa.Table:
    rng = np.random.default_rng(seed)
    pool = [f"client-{v:010x}@example.org" for v in rng.integers(1 << 36, 1 << 39, n_customers)]
    c = rng.integers(0, n_customers, n)
    return pa.table({
        "customer": pa.array([pool[k] for k in c]),
        "item": pa.array(rng.integers(0, n_items, n)),
        "invoice": pa.array(c * 1000 + rng.integers(0, 4, n)),
        "time": pa.array(rng.integers(1_600_000_000, 1_610_000_000, n), pa.timestamp("s")),
        "amount": rng.integers(-5, 80, n) / 4,
    })


def _pipeline(events):
    state = fe.RFMState(**COLS).update(events)
    inter = Interactions.from_data(events, customer="customer", item="item")
    als = ALS(factors=6, iterations=3, seed=2).fit(events, customer="customer", item="item")
    knn = ItemKNN("cosine", K=10).fit(events, customer="customer", item="item")
    return state, inter, als, knn


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    obj.save(buf)
    return buf.getvalue()


def test_forget_everywhere_rfm_state_recommenders_and_interactions(tmp_path):
    events = _events()
    ids = pc.unique(events["customer"]).to_pylist()
    gone = [ids[5], ids[40], ids[77]]
    objects = _pipeline(events)
    state, inter, als, knn = objects
    for obj in (state, als, knn):
        assert find_traces(_saved(obj), gone)
    log = tmp_path / "erasures.jsonl"

    rows, row_record = forget_rows(events, gone, customer="customer", request="DSR-9")
    records = forget_everywhere(objects, gone, request="DSR-9", log=log)

    assert [r.object for r in records] == ["RFMState", "Interactions", "ALS", "ItemKNN"]
    assert all(r.customers_found == 3 and r.request == "DSR-9" for r in records)
    assert records[0].rows_removed == row_record.rows_removed == events.num_rows - rows.num_rows
    assert [r.exact for r in records] == [True, True, True, True]
    assert [r.record_id for r in read_log(log)] == [r.record_id for r in records]
    assert not any(c in log.read_text() for c in gone)
    for obj in (state, als, knn):
        assert find_traces(_saved(obj), gone) == []

    # the exact ones equal a rebuild on the remaining rows
    state2, inter2, _, knn2 = _pipeline(rows)
    assert state.to_table().equals(state2.to_table(), check_metadata=True)
    assert inter.customers.ids().equals(inter2.customers.ids())
    # same (customer, item, value) triples; items stay in the catalogue even if only the
    # forgotten customers had them, so compare the pairs, not the column numbering
    order = [("customer", "ascending"), ("item", "ascending")]
    assert inter.to_arrow().sort_by(order).equals(inter2.to_arrow().sort_by(order))
    keep = [c for c in ids if c not in gone][:20]
    mine = knn.recommend(keep, n=5)
    theirs = knn2.recommend(keep, n=5)
    assert mine.column("customer").equals(theirs.column("customer"))
    assert mine.column("item").equals(theirs.column("item"))
