"""Customer profiles beyond RFM (issue #15.1): being written."""
from __future__ import annotations

__all__ = ["profile"]


def profile(data, **kwargs):
    """Customer profile features (not implemented yet)."""
    raise NotImplementedError("fastengage.profile is being written")
