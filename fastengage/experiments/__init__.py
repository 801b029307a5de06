"""Experiment readouts: A/B tests, sequential and Bayesian readouts, power, uplift and campaign
ROI.

* :func:`readout` — many metrics x segments from Arrow columns: two-proportion z-test, Welch,
  delta method for ratio metrics, CUPED, a sample-ratio-mismatch check on every readout and
  multiple-testing correction.
* :func:`sequential` / :func:`msprt` — always-valid (mixture SPRT) daily readouts.
* :func:`bayesian` — Beta-Binomial probability to beat control and expected loss.
* :mod:`.stats` — the formulas on summary numbers (``proportions_ztest``, ``welch``, ``srm``,
  ``power``, ``sample_size``, ``adjust_pvalues``...).
* :mod:`.uplift` — two-model and transformed-outcome uplift, Qini/uplift curves, campaign ROI.
"""
from .readout import readout
from .sequential import bayesian, msprt, sequential
from . import uplift
from .stats import (adjust_pvalues, conversion, power, proportions_ztest, sample_size, srm,
                    welch)

__all__ = ["readout", "sequential", "msprt", "bayesian", "proportions_ztest", "conversion",
           "welch", "srm", "power", "sample_size", "adjust_pvalues", "uplift"]
