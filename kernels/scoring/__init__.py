"""Kernels of fastengage.scoring: every loop over rows of that capability."""
