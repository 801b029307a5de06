"""Monitoring that closes the feedback loop: feature and score drift from mergeable profiles,
model quality over time and per segment, and a self-contained HTML report.

* :class:`Profile` — per-column summaries (exact sorted values or a quantile sketch with a
  tracked rank-error bound; exact counts for categories), updated batch by batch, merged across
  workers, saved in the safe bundle format.
* :func:`drift` — PSI, Kolmogorov-Smirnov, Wasserstein, Jensen-Shannon, chi-square and null-rate
  change per column, with a drift flag.
* :func:`quality`, :func:`reliability`, :func:`lift` — AUC, log loss, Brier, calibration, lift
  and precision/recall at k per time window and segment (equal to scikit-learn's metrics).
* :func:`report` — one self-contained HTML page with the tables and plots.
"""
from .drift import drift
from .profile import Profile
from .quality import lift, quality, reliability

__all__ = ["Profile", "drift", "quality", "reliability", "lift", "report"]


def __getattr__(name):
    if name == "report":  # matplotlib loads only when a report is written
        from ._report import report

        return report
    raise AttributeError(f"module 'fastengage.monitor' has no attribute {name!r}")
