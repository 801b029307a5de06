"""Kernels of fastengage.scoring: every loop over rows of that capability (``native.pyx``,
compiled at build time: a first ``score``/``predict`` compiles nothing)."""
