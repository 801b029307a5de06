"""RFM (Online Retail) and CLV (CDNOW sample) inside Dask (threaded scheduler here; a distributed Client works the same).

    pip install -e ".[dask]"
    python examples/scale_out_dask.py

Results equal the single-machine calls on the computed data; the script checks both.
"""
import dask
import dask.dataframe as dd
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import fastengage as fe
import fastengage.dask as fed
from fastengage.clv import BetaGeo
from fastengage.clv.datasets import load_cdnow_sample
from fastengage.datasets import load_online_retail

tx = load_online_retail()
tx = tx.filter(pc.is_valid(tx.column("CustomerID")))
columns = ["CustomerID", "InvoiceDate", "amount", "InvoiceNo", "StockCode"]
ddf = dd.from_pandas(tx.select(columns).to_pandas(), npartitions=8)  # in real use: dd.read_parquet


with dask.config.set(scheduler="threads"):
    # RFM: shuffle on the customer, fold each partition, exact global scores.
    features = fed.rfm(ddf, customer="CustomerID", time="InvoiceDate", amount="amount",
                       order="InvoiceNo").compute()
    print(features.groupby("segment").size().sort_values(ascending=False).head())
    local = fe.rfm(tx, customer="CustomerID", time="InvoiceDate", amount="amount",
                   order="InvoiceNo").to_pandas()
    got = features.sort_values("CustomerID").reset_index(drop=True)
    assert (got.drop(columns="segment").values == local.drop(columns="segment").values).all()
    assert (got["segment"].astype(str) == local["segment"].astype(str)).all()
    print("Dask RFM == fastengage.rfm:", len(got), "customers; report:", fed.report(features))

    # Profiles (windows, gaps, baskets) the same way, and a drift baseline of three of their
    # columns: one monitor.Profile per partition, merged on the client.
    kw = dict(customer="CustomerID", time="InvoiceDate", amount="amount", order="InvoiceNo",
              item="StockCode", windows=(30, 90))
    profiles = fed.profile(ddf, **kw).persist()
    local = fe.features.profile(tx.select(columns), **kw)
    got = pa.Table.from_pandas(profiles.compute(), preserve_index=False).sort_by("CustomerID")
    assert got.replace_schema_metadata(None).equals(local.replace_schema_metadata(None))
    print("Dask profile == fastengage.features.profile:", got.num_columns, "columns")
    baseline = fed.monitor_profile(profiles, ["recency_days", "frequency", "monetary_total"])
    print(baseline.summary().select(["column", "count", "mean", "max"]))

    # CLV on the CDNOW sample: summaries per partition after a shuffle on the customer, the
    # distinct (frequency, recency, T) patterns counted by Dask and fitted on the client,
    # predictions per partition.
    cdnow = load_cdnow_sample()
    cdnow = cdnow.set_column(1, "date", cdnow.column("date").cast(pa.timestamp("us")))
    kw = dict(customer="customer_id", time="date", amount="dollar_value", freq="W")
    summary = fed.clv_summary(dd.from_pandas(cdnow.to_pandas(), npartitions=4), **kw).persist()
    model = fed.clv_fit(BetaGeo(), summary)
    print(model)
    pred = fed.clv_predict(model, summary, 12.0, customer="customer_id").compute()
    print(pred.sort_values("expected_purchases", ascending=False).head())
    local_model = BetaGeo().fit(fe.clv.summary(cdnow, **kw))
    for k, v in local_model.params_.items():
        assert np.isclose(model.params_[k], v, rtol=1e-9, atol=0), k
    print("Dask BG/NBD fit == local fit:", local_model)
