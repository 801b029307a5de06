"""Recommend products to Online Retail customers with implicit-feedback ALS.

Run:  python examples/recommend_retail.py

1. read the bundled UCI Online Retail purchases (null customers and returns excluded, counted);
2. hold out the last two months (temporal split) and measure precision/NDCG@10;
3. fit on everything, recommend 5 new products per customer, find similar products;
4. fold in a brand-new customer from their basket, without refitting;
5. save the model and load it back (ZIP of JSON + NumPy + Arrow; no pickle).
"""
import pathlib
import tempfile

import pyarrow as pa

from fastengage.recommend import ALS, evaluate, temporal_split
from fastengage.recommend.demo import RETAIL_CUTOFF, RETAIL_PARAMS, retail_purchases

purchases, report = retail_purchases()
print(f"{report['purchases']:,} purchase lines "
      f"({report['null_customer']:,} without customer and {report['not_a_purchase']:,} "
      "returns/adjustments left out)")

# 1. quality on a temporal split
train, test = temporal_split(purchases, customer="CustomerID", item="StockCode",
                             time="InvoiceDate", cutoff=RETAIL_CUTOFF)
scores = evaluate(ALS(seed=0, **RETAIL_PARAMS).fit(train), test, k=10)
print(f"held-out after {RETAIL_CUTOFF}: precision@10 {scores['precision']:.3f}, "
      f"NDCG@10 {scores['ndcg']:.3f} over {scores['customers']:,} customers")

# 2. fit on all purchases; confidences from purchase counts (implicit's alpha convention)
model = ALS(seed=0, **RETAIL_PARAMS).fit(purchases, customer="CustomerID", item="StockCode")
recs = model.recommend([12347, 12348], n=5)
print(recs.to_pandas())

# 3. products similar to a best seller (85123A: white hanging heart T-light holder)
print(model.similar_items(["85123A"], n=5).to_pandas())

# 4. a new customer, not in the model: recommend from the basket (ALS fold-in)
basket = pa.table({"customer": ["new-1"] * 3, "item": ["85123A", "22423", "47566"]})
print(model.recommend_new(basket, customer="customer", item="item", n=5).to_pandas())

# 5. save / load
with tempfile.TemporaryDirectory() as tmp:
    path = pathlib.Path(tmp) / "als.fe"
    model.save(path)
    again = ALS.load(path)
    assert again.recommend([12347], n=5).equals(model.recommend([12347], n=5))
    print(f"saved and reloaded {path.name}: {path.stat().st_size / 1e6:.1f} MB")
