"""The bundled Open Bandit Dataset sample (Saito, Aihara, Matsutani & Narita, NeurIPS Datasets
and Benchmarks 2021; ZOZOTOWN; CC BY 4.0; attribution in fastengage/data/open_bandit_README.md).

Campaign "all": 10,000 rounds logged by the uniform random policy and 10,000 by Bernoulli
Thompson sampling; 80 items (``item_id`` 0..79), 3 positions (``position`` 1..3), ``click``
rewards and the logging policy's ``propensity_score``, as Open Bandit Pipeline ships them.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from ..datasets import data_path
from ..errors import InputError

__all__ = ["load_open_bandit", "load_open_bandit_items"]


def load_open_bandit(policy: str = "random") -> pa.Table:
    """Logged rounds of ``policy`` (``"random"`` or ``"bts"``)."""
    if policy not in ("random", "bts"):
        raise InputError("policy must be 'random' or 'bts'")
    return pq.read_table(data_path(f"open_bandit_{policy}_all.parquet"))


def load_open_bandit_items() -> pa.Table:
    """The 80 items and their features (``item_feature_0`` numeric, 1-3 hashed categories)."""
    return pq.read_table(data_path("open_bandit_item_context_all.parquet"))
