"""Kernels of ``fastengage.monitor``: sorted-sample and sketch maintenance for drift profiles
(``profile``), the merged ECDF walk that yields every drift statistic (``drift``) and the grouped
model-quality metrics (``quality``)."""
