"""Customer features: RFM (one-shot and streamed), the mergeable :class:`RFMState`, and named
segments. Loops live in ``fastengage.kernels.features``."""
from ._rfm import RFM_COLUMNS, rfm
from .segments import DEFAULT_SEGMENTS, SegmentMap
from .state import RFMState
from .profile import profile
from .training import training_set

__all__ = ["rfm", "RFMState", "RFM_COLUMNS", "DEFAULT_SEGMENTS", "SegmentMap",
           "profile", "training_set"]
