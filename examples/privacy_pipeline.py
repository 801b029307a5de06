"""Privacy pipeline on the bundled UCI Online Retail data.

    python examples/privacy_pipeline.py

1. pseudonymise the customer ids with a secret key (HMAC-SHA256 tokens; the consent table is
   pseudonymised with the same key, so the two still join);
2. keep only the events of customers who had consent for "analytics" when they happened;
3. build an RFM state and an ALS recommender on the consented, pseudonymised events;
4. forget a customer (erasure request) everywhere: the event log, the RFM state and the
   model, with an audit log line per object; the saved state and model hold no trace of the
   token, and the state equals one built without the customer;
5. publish a differentially private report per country (counts, revenue, mean basket line).

The consent table is synthetic (the data set has none): generated from a fixed seed.
"""
from __future__ import annotations

import os
import secrets
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import fastengage
from fastengage import privacy
from fastengage.datasets import load_online_retail
from fastengage.recommend import ALS


def synthetic_consents(customers: pa.Array, seed: int = 0) -> pa.Table:
    """One 'analytics' record per customer: 90% granted from 2010-06-01, of whom 15% later
    withdraw at a random date in 2011; the remaining 10% have no record at all."""
    rng = np.random.default_rng(seed)
    customers = customers.to_numpy()
    has_record = rng.random(customers.size) < 0.9
    ids = customers[has_record]
    start = np.datetime64("2010-06-01", "us")
    withdraw_at = np.datetime64("2011-01-01", "us") + \
        rng.integers(0, 330, ids.size).astype("timedelta64[D]")
    withdraws = rng.random(ids.size) < 0.15
    granted = pa.table({"CustomerID": ids, "purpose": ["analytics"] * ids.size,
                        "status": ["granted"] * ids.size,
                        "valid_from": pa.array(np.full(ids.size, start), pa.timestamp("us")),
                        "valid_to": pa.array(np.where(withdraws, withdraw_at, np.datetime64("NaT")),
                                             pa.timestamp("us"))})
    withdrawn = pa.table({"CustomerID": ids[withdraws],
                          "purpose": ["analytics"] * int(withdraws.sum()),
                          "status": ["withdrawn"] * int(withdraws.sum()),
                          "valid_from": pa.array(withdraw_at[withdraws], pa.timestamp("us")),
                          "valid_to": pa.nulls(int(withdraws.sum()), pa.timestamp("us"))})
    return pa.concat_tables([granted, withdrawn])


def main() -> None:
    # The key lives in a secret store in production; never in code, logs or the output.
    key = secrets.token_bytes(32)
    retail = load_online_retail()
    retail = retail.filter(pc.is_valid(retail["CustomerID"]))  # rows without a customer
    consents = synthetic_consents(pc.unique(retail["CustomerID"]))

    # 1. Pseudonymise both tables with the same key: tokens are deterministic per key.
    events = privacy.pseudonymize(retail, ["CustomerID"], key=key)
    consents = privacy.pseudonymize(consents, ["CustomerID"], key=key)
    print(f"1. pseudonymised {events.num_rows:,} rows; key id {privacy.key_id(key)} "
          f"(in the schema metadata); e.g. {events['CustomerID'][0]}")

    # 2. Consent for the purpose, at each event's time.
    kept, report = privacy.consented(events, consents, customer="CustomerID",
                                     time="InvoiceDate", purpose="analytics")
    print("2. consent filter:")
    for row in report.to_pylist():
        print(f"   {row['reason']:<20} {row['rows']:>8,} rows  {row['customers']:>6,} customers")

    # 3. Features and a model on the consented data only: a streaming RFM state (what a
    #    service keeps alive) and an ALS recommender on the products bought.
    state = fastengage.RFMState(customer="CustomerID", time="InvoiceDate", amount="amount",
                                order="InvoiceNo").update(kept)
    als = ALS(factors=16, iterations=5, seed=0).fit(kept, customer="CustomerID",
                                                    item="StockCode")
    print(f"3. RFM state of {state.to_table().num_rows:,} customers; ALS on "
          f"{als.n_customers:,} customers x {als.n_items:,} products")

    # 4. An erasure request for one customer (we hold only their token): the event log, the
    #    RFM state and the model forget them; one audit record per object, appended to a log
    #    that holds counts, never the id.
    token = kept["CustomerID"][0].as_py()
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "erasures.jsonl")
        kept, record = privacy.forget_rows(kept, token, customer="CustomerID",
                                           request="ticket-1234")
        record.append_to(log)
        privacy.forget_everywhere([state, als], token, request="ticket-1234", log=log)
        records = privacy.read_log(log)
        print(f"4. forgot 1 customer, {len(records)} audit records:")
        for r in records:
            print(f"   {r.object:<9} rows removed {r.rows_removed:>4}  exact={r.exact}  "
                  f"request={r.request}  {r.time[:19]}  ({r.notes[:60]})")
        for obj in (state, als):
            path = os.path.join(tmp, type(obj).__name__ + ".fe")
            obj.save(path)
            print(f"   saved {type(obj).__name__}: traces of the token in the file: "
                  f"{len(privacy.find_traces(path, [token]))}")
        rebuilt = fastengage.RFMState(customer="CustomerID", time="InvoiceDate",
                                      amount="amount", order="InvoiceNo").update(kept)
        print("   RFM state equals one built without the customer: "
              f"{state.to_table().equals(rebuilt.to_table(), check_metadata=True)}")

    # 5. A DP report per country: each customer contributes at most 50 lines, line amounts
    #    clamped to [0, 500]; 1.0 epsilon in total (half for counts, half for sums).
    countries = {"Country": pc.unique(retail["Country"]).to_pylist()}  # public list of keys
    dp_result = privacy.dp_report(kept, by=["Country"], customer="CustomerID", amount="amount",
                                  epsilon=1.0, bounds=(0.0, 500.0), max_rows_per_customer=50,
                                  keys=countries)
    table = dp_result.table.sort_by([("count", "descending")]).slice(0, 5)
    print(f"5. DP report, epsilon spent {dp_result.budget['epsilon']:.3f} "
          "(count +- accuracy at 95%):")
    for row in table.to_pylist():
        print(f"   {row['Country']:<16} lines {row['count']:>8,} +- {row['count_accuracy']:.0f}"
              f"   revenue {row['sum']:>12,.0f} +- {row['sum_accuracy']:,.0f}"
              f"   mean line {row['mean']:.2f} [{row['mean_low']:.2f}, {row['mean_high']:.2f}]")


if __name__ == "__main__":
    main()
