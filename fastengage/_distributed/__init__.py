"""Engine-neutral core of the Spark, Dask and Ray adapters (``fastengage.spark`` / ``.dask`` /
``.ray``).

Every function here maps Arrow tables or record batches to Arrow tables, so an adapter only has
to move them: partial states per partition (:func:`rfm.scan`, with a sample row and the channel
values for profiles), per-bucket folds of whole customers with their reports (:mod:`.folds`:
:func:`rfm.rfm_bucket`, :func:`profile.profile_bucket`, :func:`models.summary_bucket`), the small
driver-side merges (:func:`rfm.combine_scans`, :func:`folds.merge_reports`, :func:`rfm.score_cuts`,
:func:`models.fit_patterns`, :func:`monitoring.merge_profiles`), and per-batch maps with a model
or policy shipped as its safe bytes (:mod:`.models`, :mod:`.decisions`). No engine is imported
here.
"""
