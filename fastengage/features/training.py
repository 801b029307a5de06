"""Point-in-time training sets (issue #15.2): being written."""
from __future__ import annotations

__all__ = ["training_set"]


def training_set(data, **kwargs):
    """Point-in-time training sets (not implemented yet)."""
    raise NotImplementedError("fastengage.training_set is being written")
