"""Kernels of fastengage.features: every loop over rows of that capability."""
