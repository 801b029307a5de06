"""Build the files the reference service loads at start-up, from the bundled Online Retail data.

    python examples/service/prepare.py MODEL_DIR [--rows N]

Writes, all in fastengage's safe formats (no pickle):

* ``rfm-state.fe``: an ``RFMState`` fed with the purchase log (the service keeps feeding it);
* ``als.fe``: an ALS recommender (customer x StockCode);
* ``churn.onnx``: the churn model shipped with fastengage (HistGradientBoosting, ONNX);
* ``popular.parquet``: the most bought items, the fallback for customers the recommender has
  never seen.

Each file is written to a temporary name and renamed, so a service reading the folder never
sees a half-written file.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import fastengage as fe
from fastengage.datasets import data_path, load_online_retail
from fastengage.recommend import ALS
from fastengage.recommend.demo import retail_purchases

STATE_FILE, MODEL_FILE, CHURN_FILE, POPULAR_FILE = ("rfm-state.fe", "als.fe", "churn.onnx",
                                                    "popular.parquet")


def _replace(write, path: str) -> None:
    tmp = f"{path}.tmp"
    write(tmp)
    os.replace(tmp, path)


def prepare(model_dir: str, rows: int | None = None, factors: int = 32,
            iterations: int = 10) -> dict:
    """Write the four files into ``model_dir`` (created if needed); return their paths."""
    os.makedirs(model_dir, exist_ok=True)
    retail = load_online_retail()
    retail = retail.filter(pc.is_valid(retail["CustomerID"]))
    purchases, _ = retail_purchases()
    if rows is not None:
        retail, purchases = retail.slice(0, rows), purchases.slice(0, rows)
    paths = {name: os.path.join(model_dir, f) for name, f in
             (("state", STATE_FILE), ("model", MODEL_FILE), ("churn", CHURN_FILE),
              ("popular", POPULAR_FILE))}
    state = fe.RFMState(customer="CustomerID", time="InvoiceDate", amount="amount",
                        order="InvoiceNo").update(retail)
    _replace(state.save, paths["state"])
    model = ALS(factors=factors, iterations=iterations, regularization=0.05, alpha=2.0,
                seed=0).fit(purchases, customer="CustomerID", item="StockCode")
    _replace(model.save, paths["model"])
    _replace(lambda tmp: shutil.copyfile(data_path("churn_hgb.onnx"), tmp), paths["churn"])
    counts = purchases.group_by("StockCode").aggregate([("CustomerID", "count_distinct")])
    popular = counts.sort_by([("CustomerID_count_distinct", "descending"),
                              ("StockCode", "ascending")]).slice(0, 100)
    popular = pa.table({"item": popular["StockCode"],
                        "customers": popular["CustomerID_count_distinct"]})
    _replace(lambda tmp: pq.write_table(popular, tmp), paths["popular"])
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--rows", type=int, default=None, help="use only the first N rows")
    args = parser.parse_args()
    t0 = time.perf_counter()
    out = prepare(args.model_dir, args.rows)
    print(f"wrote {', '.join(out.values())} in {time.perf_counter() - t0:.1f} s")
