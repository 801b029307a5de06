"""TransactionModel.predict reads any source of customers: a table, a reader (also one with no
batches at all), a 0-row table; predictions come back in the input's row order."""
import numpy as np
import pyarrow as pa
import pytest

from fastengage import clv
from fastengage.clv.datasets import load_cdnow_sample


@pytest.fixture(scope="module")
def fitted():
    s = clv.summary(load_cdnow_sample(), customer="customer_id", time="date",
                    as_of="1997-09-30", freq="W")
    return clv.BetaGeo().fit(s), s


def test_a_reader_gives_the_tables_predictions(fitted):
    model, s = fitted
    want = model.predict(s, 10.0, customer="customer_id")
    reader = pa.RecordBatchReader.from_batches(s.schema, s.to_batches(max_chunksize=500))
    got = model.predict(reader, 10.0, customer="customer_id")
    assert got.equals(want)


@pytest.mark.parametrize("make", [
    lambda s: s.slice(0, 0),
    lambda s: pa.RecordBatchReader.from_batches(s.schema, []),
], ids=["empty table", "reader of no batches"])
def test_no_customers_is_zero_rows(fitted, make):
    model, s = fitted
    out = model.predict(make(s), 10.0, customer="customer_id")
    assert out.num_rows == 0
    assert out.column_names == ["customer_id", "probability_alive", "expected_purchases"]
    assert out.schema.field("customer_id").type == s.schema.field("customer_id").type
    assert np.asarray(out["probability_alive"]).dtype == np.float64
