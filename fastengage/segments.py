"""Named RFM segments (:mod:`fastengage.features.segments`) and data-driven ones
(:func:`cluster`, :mod:`fastengage.features.cluster`)."""
from .features.cluster import Segments, cluster  # noqa: F401
from .features.segments import DEFAULT_SEGMENTS, SegmentMap, compile_segments, default_segment  # noqa: F401

__all__ = ["default_segment", "DEFAULT_SEGMENTS", "compile_segments", "SegmentMap", "cluster",
           "Segments"]
