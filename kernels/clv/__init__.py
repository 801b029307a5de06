"""Kernels of fastengage.clv: every loop over rows of that capability."""
