"""Kernels of ``fastengage.experiments``: per-group sufficient statistics of metric columns
(``aggregate``) and the always-valid sequential and Beta-Binomial computations (``sequential``,
``bayes``)."""
