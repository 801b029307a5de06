"""Bundled reference data sets (CDNOW, donations), read from the installed package."""
from __future__ import annotations

from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = ["data_path", "load_cdnow_sample", "load_cdnow_summary", "load_donations",
           "SBG_COHORTS"]


def data_path(name: str):
    """Path of a bundled data file (``fastengage/data/<name>``)."""
    return resources.files("fastengage") / "data" / name


def load_cdnow_sample() -> pa.Table:
    """CDNOW 1/10 sample (Fader, Hardie & Lee 2005): customer_id, date, number_of_cds, dollar_value."""
    return pq.read_table(str(data_path("cdnow_sample.parquet")))


def load_cdnow_summary() -> pa.Table:
    """The paper's own summary of the CDNOW sample: ID, x, t_x, T (weeks), zbar."""
    return pacsv.read_csv(str(data_path("cdnow_customers_summary_with_transactions.csv")))


def load_donations() -> pa.Table:
    """Fader, Hardie & Shang (2010) donations: frequency, recency, periods, weights (22 patterns)."""
    return pacsv.read_csv(str(data_path("donations.csv")))


#: Fader & Hardie (2007) survivors of two cohorts of 1,000 customers, years 0..12.
SBG_COHORTS = {
    "regular": np.array([1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173], float),
    "highend": np.array([1000, 869, 743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 394], float),
}
