"""RFM, scoring and recommendations inside Spark (local[2] here; a cluster works the same).

    pip install -e ".[spark]"          # pyspark 4.x; Java 17 must be installed
    python examples/scale_out_spark.py

Every result equals the single-machine call on the collected data; the script checks RFM.
"""
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import SparkSession

import fastengage as fe
import fastengage.spark as fes
from fastengage.datasets import load_online_retail
from fastengage.recommend import ALS

spark = (SparkSession.builder.master("local[2]").appName("fastengage-example")
         .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")

tx = load_online_retail()
tx = tx.filter(pc.is_valid(tx.column("CustomerID")))
df = spark.createDataFrame(tx)                       # in real use: spark.read.parquet(...)

# 1. RFM: whole customers folded per bucket on the executors, exact global scores.
features = fes.rfm(df, customer="CustomerID", time="InvoiceDate", amount="amount",
                   order="InvoiceNo")
features.groupBy("segment").count().orderBy("count", ascending=False).show(5)
local = fe.rfm(tx, customer="CustomerID", time="InvoiceDate", amount="amount", order="InvoiceNo")
assert features.toArrow().sort_by("CustomerID").equals(local.replace_schema_metadata(None))
print("Spark RFM == fastengage.rfm on the collected rows:", local.num_rows, "customers")
print("report:", fes.report(features))                # rfm()'s report, summed over buckets

# 1b. Profiles (windows, gaps, baskets): the same buckets, checked against the local call.
kw = dict(customer="CustomerID", time="InvoiceDate", amount="amount", order="InvoiceNo",
          item="StockCode", windows=(30, 90))
profiles = fes.profile(df, **kw)
assert profiles.toArrow().sort_by("CustomerID").equals(fe.features.profile(tx, **kw))
print("Spark profile == fastengage.features.profile:", len(profiles.columns), "columns")

# 2. Recommendations: fit on the driver, top-10 for every customer on the executors.
model = ALS(factors=32, iterations=10, seed=0).fit(tx, customer="CustomerID", item="StockCode")
recs = fes.recommend(model, spark=spark, n=10)
recs.show(5)

# 3. Scoring with a model file broadcast to the executors.
from fastengage.scoring import LinearModel  # noqa: E402
score_model = LinearModel([[0.01, 0.3, -0.02]], -1.0, link="logistic",
                          features=["monetary_total", "frequency", "recency_days"])
fes.score(features, score_model, id="CustomerID").show(5)
spark.stop()
