"""Lifetime value and churn (``fastengage.clv``).

* :func:`summary` — per-customer frequency / recency / T / monetary value (and holdout columns)
  from a transaction log, in lifetimes' convention.
* Models, fitted by maximum likelihood over distinct patterns with analytic gradients:
  :class:`BetaGeo` (BG/NBD), :class:`ModifiedBetaGeo` (MBG/NBD), :class:`ParetoNBD`,
  :class:`BetaGeoBetaBinom` (BG/BB), :class:`GammaGamma` (spend), :class:`ShiftedBetaGeo` (sBG).
* :func:`customer_lifetime_value` — discounted CLV (lifetimes' convention).
"""
from .bgbb import BetaGeoBetaBinom
from .betageo import BetaGeo, ModifiedBetaGeo
from .gammagamma import GammaGamma
from .pareto import ParetoNBD
from .sbg import ShiftedBetaGeo
from .summary import summary
from .value import customer_lifetime_value

__all__ = ["summary", "BetaGeo", "ModifiedBetaGeo", "ParetoNBD", "BetaGeoBetaBinom", "GammaGamma",
           "ShiftedBetaGeo", "customer_lifetime_value"]
