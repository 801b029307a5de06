"""Data and comparisons shared by the Spark/Dask/Ray adapter tests (tests/distributed) and
bench/bench_distributed.py."""
import json
import os

import numpy as np
import pyarrow as pa

CHURN_MODEL = os.path.join(os.path.dirname(__file__), os.pardir, "fastengage", "data",
                           "churn_hgb.onnx")

DAY_US = 86_400_000_000


def transactions(n: int = 20_000, customers: int = 400, heavy_rows: int = 3_000, seed: int = 0,
                 string_ids: bool = False) -> pa.Table:
    """A log with returns, repeated orders, one heavy customer (``heavy_rows`` rows, so it
    spans many Arrow batches) and ties in every metric."""
    rng = np.random.default_rng(seed)
    cust = np.concatenate([rng.integers(1, customers, n), np.zeros(heavy_rows, np.int64)])
    rng.shuffle(cust)
    rows = len(cust)
    ts = (rng.integers(0, 500, rows) * DAY_US + rng.integers(0, DAY_US, rows)).astype("datetime64[us]")
    amount = np.round(rng.gamma(2.0, 15.0, rows), 2)
    amount[rng.random(rows) < 0.05] *= -1  # returns
    order = rng.integers(0, rows // 3, rows)
    ids = pa.array([f"c{c:05d}" for c in cust]) if string_ids else pa.array(cust)
    return pa.table({"customer": ids, "ts": pa.array(ts).cast(pa.timestamp("us", tz="UTC")),
                     "amount": amount, "invoice": order})


def assert_same_rows(got: pa.Table, want: pa.Table, keys, rounding=(), report=None) -> None:
    """Equal as sets of rows (engines return rows unordered): same columns, values and bits;
    columns in ``rounding`` are float sums in row order, which a shuffle changes: equal to
    1e-12 relative. When ``want`` carries a fastengage report (schema metadata), ``got`` must
    carry the same one, as its metadata or as ``report`` (the engine's ``report(result)``)."""
    expected = (want.schema.metadata or {}).get(b"fastengage")
    if expected is not None:
        carried = report if report is not None else (got.schema.metadata or {}).get(b"fastengage")
        assert carried is not None, "the fastengage report is missing"
        if isinstance(carried, bytes):
            carried = json.loads(carried)
        assert json.dumps(carried) == expected.decode()  # same counts, same key order
        got, want = got.replace_schema_metadata(None), want.replace_schema_metadata(None)
    assert got.column_names == want.column_names
    assert got.num_rows == want.num_rows
    got = got.sort_by([(k, "ascending") for k in keys])
    want = want.sort_by([(k, "ascending") for k in keys])
    for name in want.column_names:
        a, b = got.column(name).combine_chunks(), want.column(name).combine_chunks()
        if pa.types.is_dictionary(b.type):
            b = b.dictionary_decode()
        assert a.type == b.type or a.type in (pa.large_string(), pa.string()), (name, a.type, b.type)
        if name in rounding:
            np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-12, err_msg=name)
        else:
            assert a.cast(b.type).equals(b), name


def check_clv_equals_local(engine, summ, tab, kw, to_arrow) -> None:
    """An engine's ``clv_summary`` (``summ``, already computed from ``tab`` with ``kw``), then
    ``clv_fit`` and ``clv_predict``, equal the single-machine summary, BG/NBD fit and
    predictions (fit to 1e-9 relative: the engine aggregates the same pattern counts)."""
    import pytest

    import fastengage as fe
    from fastengage.clv import BetaGeo

    want = fe.clv.summary(tab, **kw).replace_schema_metadata(None)
    assert_same_rows(to_arrow(summ), want, [kw["customer"]], rounding=["monetary_value"])
    local = BetaGeo().fit(want)
    dist = engine.clv_fit(BetaGeo(), summ)
    for k, v in local.params_.items():
        assert dist.params_[k] == pytest.approx(v, rel=1e-9, abs=0), k
    got = engine.clv_predict(local, summ, 30.0, customer=kw["customer"])
    assert_same_rows(to_arrow(got), local.predict(want, 30.0, customer=kw["customer"]),
                     [kw["customer"]])


def with_null_ids(tab: pa.Table, every: int = 50) -> pa.Table:
    """``tab`` (string customer ids in column 0) with every ``every``-th customer id null."""
    ids = tab.column("customer").to_pylist()
    ids[::every] = [None] * len(ids[::every])
    return tab.set_column(0, "customer", pa.array(ids, pa.string()))
