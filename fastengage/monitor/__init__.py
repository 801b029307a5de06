"""Monitoring that closes the feedback loop: feature and score drift from mergeable profiles,
model quality over time and per segment, and a self-contained HTML report.

* :class:`Profile` — per-column summaries (exact sorted values or a quantile sketch with a
  tracked rank-error bound; exact counts for categories), updated batch by batch, merged across
  workers, saved in the safe bundle format.
* :func:`drift` — PSI, Kolmogorov-Smirnov, Wasserstein, Jensen-Shannon, chi-square and null-rate
  change per column, with a drift flag.
"""
from .drift import drift
from .profile import Profile

__all__ = ["Profile", "drift"]
