"""Kernels of fastengage.recommend: every loop over rows of that capability."""
