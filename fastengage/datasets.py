"""Bundled real data sets (copies shipped in ``fastengage/data``; attribution in the README).

* UCI Online Retail (Chen, Sain & Guo 2012; CC BY 4.0): 541,909 invoice lines, 2010-12-01 to
  2011-12-09.
* CDNOW (Fader, Hardie & Lee 2005): the 1/10 sample (2,357 customers) and the master file.
"""
from __future__ import annotations

from importlib import resources

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["data_path", "load_online_retail", "load_cdnow"]


def data_path(name: str) -> str:
    """Filesystem path of a bundled data file, e.g. ``data_path("online_retail.parquet")``."""
    return str(resources.files("fastengage") / "data" / name)


def load_online_retail() -> pa.Table:
    """UCI Online Retail with two derived columns.

    ``CustomerID`` is cast from float64 to int64 (its 135,080 nulls stay null), and
    ``amount = Quantity * UnitPrice`` (float64; negative on cancellations).
    """
    table = pq.read_table(data_path("online_retail.parquet"))
    customer = pc.cast(table["CustomerID"], pa.int64())
    table = table.set_column(table.schema.get_field_index("CustomerID"), "CustomerID", customer)
    amount = pc.multiply(pc.cast(table["Quantity"], pa.float64()), table["UnitPrice"])
    return table.append_column("amount", amount)


def load_cdnow(sample: bool = True) -> pa.Table:
    """CDNOW purchases: ``customer_id``, ``date`` (date32), ``number_of_cds``, ``dollar_value``."""
    return pq.read_table(data_path("cdnow_sample.parquet" if sample else "cdnow_master.parquet"))
