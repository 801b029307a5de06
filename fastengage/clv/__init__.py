"""Lifetime value and churn: BTYD summaries, BG/NBD, MBG/NBD, Pareto/NBD, BG/BB, Gamma-Gamma, sBG."""
from .betageo import BetaGeo, ModifiedBetaGeo
from .summary import summary

__all__ = ["summary", "BetaGeo", "ModifiedBetaGeo"]
