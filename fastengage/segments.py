"""Old import path of :mod:`fastengage.features.segments` (kept working)."""
from .features.segments import DEFAULT_SEGMENTS, SegmentMap, compile_segments, default_segment  # noqa: F401

__all__ = ["default_segment", "DEFAULT_SEGMENTS", "compile_segments", "SegmentMap"]
