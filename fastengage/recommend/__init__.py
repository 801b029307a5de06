"""Recommendations from implicit feedback (``fastengage.recommend``).

Build a customer x item :class:`Interactions` from transactions, fit :class:`ALS`,
:class:`BPR` or :class:`ItemKNN`, get batch top-N as an Arrow table with
``recommend(customers=None, n=10, exclude_seen=True, items=None, exclude_items=None)``, fold in
new customers with ``recommend_new``, and evaluate with :func:`evaluate` on a
:func:`temporal_split`, :func:`random_split` or :func:`leave_k_out_split`. Ids in and out are
the user's own.
"""
from .als import ALS
from .bpr import BPR
from .interactions import WEIGHTINGS, Interactions
from .itemknn import ItemKNN
from .metrics import evaluate, ranking_metrics
from .split import Split, leave_k_out_split, random_split, temporal_split

__all__ = ["ALS", "BPR", "ItemKNN", "Interactions", "WEIGHTINGS", "Split", "random_split",
           "leave_k_out_split", "temporal_split", "evaluate", "ranking_metrics"]
