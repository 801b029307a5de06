"""The forget protocol's helpers, on a small stateful object that follows it end to end."""
import io
import json

import numpy as np
import pyarrow as pa
import pytest

from fastengage._io.ids import IdEncoder
from fastengage._io.persist import load_bundle, save_bundle
from fastengage.errors import InputError
from fastengage.privacy import forget as fg


class TotalsPerCustomer:
    """A minimal stateful object: per-customer totals, saved as a bundle, with forget()."""

    def __init__(self):
        self.ids = IdEncoder("customer", "customer")
        self.totals = np.zeros(0)

    def update(self, customers, amounts):
        codes = self.ids.encode(pa.array(customers))
        self.totals = np.concatenate([self.totals, np.zeros(len(self.ids) - self.totals.size)])
        np.add.at(self.totals, codes, amounts)
        return self

    def forget(self, customers, *, request=None):
        codes, requested = fg.codes_of(self.ids, customers)
        self.ids, remap = fg.drop_ids(self.ids, codes)
        self.totals = self.totals[remap >= 0]
        return fg.audit("TotalsPerCustomer", requested=requested, found=len(codes),
                        exact=True, request=request)

    def save(self):
        buf = io.BytesIO()
        save_bundle(buf, "totals", 1, {}, arrays={"totals": self.totals},
                    tables={"ids": self.ids.to_arrow()})
        return buf.getvalue()

    @classmethod
    def load(cls, raw):
        bundle = load_bundle(io.BytesIO(raw), "totals", 1)
        obj = cls()
        obj.ids = IdEncoder.from_arrow(bundle.table("ids").column(0).combine_chunks(),
                                       "customer", "customer")
        obj.totals = bundle.array("totals")
        return obj


@pytest.mark.parametrize("kind", ["str", "int"])
def test_protocol_end_to_end(kind, tmp_path):
    rng = np.random.default_rng(0)
    if kind == "str":
        pool = [f"person-{i:04d}-{'x' * 8}" for i in range(50)]
    else:
        pool = [int(v) for v in rng.integers(2**40, 2**62, 50)]
    customers = [pool[i] for i in rng.integers(0, 50, 400)]
    amounts = rng.random(400)
    gone = [pool[3], pool[17], "nobody-at-all" if kind == "str" else 987_654_321_012_345]
    obj = TotalsPerCustomer().update(customers, amounts)
    assert fg.find_traces(obj.save(), gone[:2])  # the ids are there before
    record = obj.forget(gone, request="ticket-42")
    assert (record.customers_requested, record.customers_found) == (3, 2)
    saved = obj.save()
    assert fg.find_traces(saved, gone) == []
    # equal to the object built without them
    keep = [i for i, c in enumerate(customers) if c not in gone]
    rebuilt = TotalsPerCustomer().update([customers[i] for i in keep], amounts[keep])
    loaded = TotalsPerCustomer.load(saved)
    order = np.argsort(np.asarray(loaded.ids.ids().to_pylist()))
    order_rebuilt = np.argsort(np.asarray(rebuilt.ids.ids().to_pylist()))
    np.testing.assert_allclose(loaded.totals[order], rebuilt.totals[order_rebuilt])
    # the audit log holds the counts, never the ids
    log = tmp_path / "erasures.jsonl"
    record.append_to(log)
    fg.forget_everywhere([obj], gone[:1], request="ticket-43", log=log)
    records = fg.read_log(log)
    assert [r.request for r in records] == ["ticket-42", "ticket-43"]
    assert records[0] == record and records[1].customers_found == 0
    text = log.read_text()
    assert all(str(c) not in text for c in gone[:2])
    assert json.loads(text.splitlines()[0])["object"] == "TotalsPerCustomer"


def test_drop_ids_remap_and_empty_results():
    enc = IdEncoder("c", "customer")
    enc.encode(pa.array(["a", "b", "c", "d"]))
    new, remap = fg.drop_ids(enc, np.array([1, 3]))
    assert remap.tolist() == [0, -1, 1, -1]
    assert new.ids().to_pylist() == ["a", "c"] and new.lookup(pa.array(["b"])).tolist() == [-1]
    none, remap = fg.drop_ids(new, np.array([0, 1]))
    assert len(none) == 0 and remap.tolist() == [-1, -1]
    assert none.type == pa.string()


def test_as_id_array_normalises_and_refuses():
    assert fg.as_id_array(5, pa.int32()).to_pylist() == [5]
    assert fg.as_id_array(np.array([3, 3, 9]), pa.int64()).to_pylist() == [3, 9]
    assert fg.as_id_array(["x", "x"], pa.large_string()).type == pa.large_string()
    with pytest.raises(InputError, match="object's ids are int64"):
        fg.as_id_array(["x"], pa.int64())
    with pytest.raises(InputError, match="null"):
        fg.as_id_array(pa.array([None, "a"]), pa.string())


def test_forget_rows_on_tables_and_streams():
    table = pa.table({"customer": [1, 2, 1, 3], "amount": [1.0, 2.0, 3.0, 4.0]})
    out, record = fg.forget_rows(table, [1, 99], customer="customer", request="r")
    assert out.column("customer").to_pylist() == [2, 3]
    assert record.rows_removed == 2
    assert (record.customers_found, record.customers_requested) == (1, 2)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=1))
    out2, _ = fg.forget_rows(reader, 1, customer="customer")
    assert out2.equals(out)
    with pytest.raises(TypeError, match="cannot forget"):
        fg.forget_everywhere([object()], [1])
