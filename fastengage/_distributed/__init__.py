"""Engine-neutral core of the Spark, Dask and Ray adapters (``fastengage.spark`` / ``.dask`` /
``.ray``).

Every function here maps Arrow tables or record batches to Arrow tables, so an adapter only has
to move them: partial states per partition (:func:`rfm.scan`), per-bucket folds of whole
customers (:func:`rfm.rfm_bucket`, :func:`models.summary_bucket`), the small driver-side merges
(:func:`rfm.combine_scans`, :func:`rfm.score_cuts`, :func:`models.fit_patterns`), and per-batch
maps with a model shipped as its safe bytes (:mod:`.models`). No engine is imported here.
"""
