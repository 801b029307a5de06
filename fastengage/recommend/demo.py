"""The recommendation step of ``fastengage demo``: ALS on the bundled UCI Online Retail
(customer x StockCode), evaluated on a temporal split, top-10 per customer written to Parquet."""
from __future__ import annotations

import pathlib
import time
from importlib import resources

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .als import ALS
from .metrics import evaluate
from .split import temporal_split

__all__ = ["retail_purchases", "demo_step", "RETAIL_CUTOFF", "RETAIL_PARAMS"]

#: Train on invoices before this date, test on the ones after (the issue's protocol).
RETAIL_CUTOFF = "2011-10-01"
#: ALS settings used by the demo, the example and the quality benchmark (implicit's names).
RETAIL_PARAMS = dict(factors=64, regularization=0.05, alpha=2.0, iterations=15)


def retail_purchases() -> tuple[pa.Table, dict]:
    """Purchase lines of the bundled Online Retail, with every exclusion counted.

    Rules, applied in this order (each count is in the returned report):

    * ``null_customer``: CustomerID is null (guest checkouts) -> cannot be attributed;
    * ``not_a_purchase``: Quantity <= 0 or UnitPrice <= 0 (cancellations, returns,
      adjustments, free items).

    Returns
    -------
    (table, report)
        ``table`` has ``CustomerID`` (int64), ``StockCode`` (string), ``InvoiceDate``,
        ``Quantity`` and ``spend`` (= Quantity * UnitPrice); ``report`` the row counts.
    """
    path = resources.files("fastengage") / "data" / "online_retail.parquet"
    raw = pq.read_table(str(path), columns=["CustomerID", "StockCode", "InvoiceDate", "Quantity",
                                            "UnitPrice"])
    report = {"rows": raw.num_rows, "null_customer": raw["CustomerID"].null_count}
    t = raw.filter(pc.is_valid(raw["CustomerID"]))
    purchase = pc.and_(pc.greater(t["Quantity"], 0), pc.greater(t["UnitPrice"], 0.0))
    report["not_a_purchase"] = t.num_rows - pc.sum(purchase.cast(pa.int64())).as_py()
    t = t.filter(purchase)
    spend = pc.multiply(pc.cast(t["Quantity"], pa.float64()), t["UnitPrice"])
    t = pa.table({
        "CustomerID": pc.cast(t["CustomerID"], pa.int64()),
        "StockCode": t["StockCode"],
        "InvoiceDate": t["InvoiceDate"],
        "Quantity": t["Quantity"],
        "spend": spend,
    })
    report["purchases"] = t.num_rows
    return t, report


def demo_step(out_dir: pathlib.Path) -> str:
    """Fit ALS on Online Retail, write top-10 per customer, return a short summary."""
    t0 = time.perf_counter()
    purchases, report = retail_purchases()
    train, test = split = temporal_split(purchases, customer="CustomerID", item="StockCode",
                                         time="InvoiceDate", cutoff=RETAIL_CUTOFF)
    held_out = ALS(seed=0, **RETAIL_PARAMS).fit(train)
    m = evaluate(held_out, test, k=10)
    model = ALS(seed=0, **RETAIL_PARAMS).fit(purchases, customer="CustomerID", item="StockCode")
    recs = model.recommend(n=10)
    path = pathlib.Path(out_dir) / "recommendations.parquet"
    pq.write_table(recs, path)
    p = RETAIL_PARAMS
    lines = [
        f"ALS recommendations (factors={p['factors']}, regularization={p['regularization']}, "
        f"alpha={p['alpha']}, {p['iterations']} iterations) for {model.n_customers:,} customers "
        f"x {model.n_items:,} StockCodes -> {path} ({recs.num_rows:,} rows)",
        f"  rows read {report['rows']:,}; null CustomerID dropped {report['null_customer']:,}; "
        f"non-purchase lines (Quantity or UnitPrice <= 0) dropped {report['not_a_purchase']:,}",
        f"  temporal split at {RETAIL_CUTOFF}: {train.nnz:,} train pairs, {test.nnz:,} new test "
        f"pairs ({split.removed:,} repeat purchases not counted), {m['customers']:,} customers "
        f"evaluated",
        f"  precision@10 {m['precision']:.4f}  recall@10 {m['recall']:.4f}  MAP@10 {m['map']:.4f}"
        f"  NDCG@10 {m['ndcg']:.4f}  AUC {m['auc']:.4f}   ({time.perf_counter() - t0:.1f} s)",
    ]
    return "\n".join(lines)
