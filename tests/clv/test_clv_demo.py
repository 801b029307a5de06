"""The CLV demo step and the Arrow prediction table."""
import pathlib

import numpy as np
import pyarrow.parquet as pq

from fastengage import clv
from fastengage.clv.datasets import load_cdnow_sample
from fastengage.clv.demo import demo_step


def test_demo_step_writes_predictions(tmp_path: pathlib.Path):
    text = demo_step(tmp_path)
    assert "BG/NBD" in text and "CLV" in text and len(text.splitlines()) <= 6
    t = pq.read_table(tmp_path / "clv.parquet")
    assert t.num_rows == 2357
    for col in ("customer_id", "probability_alive", "expected_purchases_52w", "expected_spend", "clv_12m"):
        assert col in t.column_names
    assert np.all(np.isfinite(t["clv_12m"].to_numpy()))


def test_predict_table_keeps_customer_ids():
    s = clv.summary(load_cdnow_sample(), customer="customer_id", time="date", as_of="1997-09-30",
                    freq="D", freq_multiplier=7)
    m = clv.BetaGeo().fit(s)
    out = m.predict(s, t=39.0, customer="customer_id")
    assert out.column_names == ["customer_id", "probability_alive", "expected_purchases"]
    assert out["customer_id"].equals(s["customer_id"])
    np.testing.assert_allclose(out["expected_purchases"].to_numpy(),
                               m.expected_purchases(39.0, s["frequency"].to_numpy(),
                                                    s["recency"].to_numpy(), s["T"].to_numpy()))
