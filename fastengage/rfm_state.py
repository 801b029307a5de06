"""Old import path of :class:`fastengage.features.state.RFMState` (kept working)."""
from .features.state import RFMState  # noqa: F401

__all__ = ["RFMState"]
