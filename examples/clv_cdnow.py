"""Lifetime value on CDNOW: summary -> BG/NBD + Gamma-Gamma -> predictions, CLV, holdout check.

    python examples/clv_cdnow.py [out_dir]
"""
import pathlib
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from fastengage import clv
from fastengage.clv import plots, validation
from fastengage.clv.datasets import load_cdnow_sample

out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "clv_out")
out.mkdir(exist_ok=True)

# 1. Per-customer statistics, time in weeks (day resolution): 39-week calibration, 39-week holdout
tx = load_cdnow_sample()   # customer_id, date, number_of_cds, dollar_value
s = clv.summary(tx, customer="customer_id", time="date", amount="dollar_value",
                calibration_end="1997-09-30", as_of="1998-06-30", freq="D", freq_multiplier=7)

# 2. Fit the purchase model and the spend model
bg = clv.BetaGeo().fit(s)                       # reads frequency / recency / T
print(bg)
print(bg.confidence_intervals().to_pandas())
gg = clv.GammaGamma().fit(s)                    # frequency / monetary_value, repeat buyers only
print(gg)

# 3. Per-customer predictions as NumPy arrays (or bg.predict(s, t=52, customer="customer_id"))
x, rec, T, m = (s[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
table = pa.table({
    "customer_id": s["customer_id"],
    "p_alive": bg.probability_alive(x, rec, T),
    "p_alive_in_26w": bg.probability_alive(x, rec, T, future_t=26),
    "purchases_52w": bg.expected_purchases(52, x, rec, T),
    "expected_spend": gg.expected_spend(x, m),
    # 12 months, 1% per month, 4.345 weeks per month: lifetimes' convention
    "clv_12m": gg.customer_lifetime_value(bg, x, rec, T, m, months=12, discount_rate=0.01, freq="W"),
})
pq.write_table(table, out / "clv_predictions.parquet")
print(table.sort_by([("clv_12m", "descending")]).slice(0, 5).to_pandas())

# 4. How good was it? Calibration vs holdout, and plots
print(validation.holdout_table(bg, s).to_pandas())
print(validation.holdout_errors(bg, s))
plots.plot_calibration_purchases_vs_holdout_purchases(bg, s).savefig(out / "holdout.png")
plots.plot_probability_alive_matrix(bg, T=39).savefig(out / "p_alive.png")

# 5. Save / load: a ZIP of JSON + .npy, never a pickle
bg.save(out / "bgnbd.fe")
assert clv.BetaGeo.load(out / "bgnbd.fe").params_ == bg.params_
