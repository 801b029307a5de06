"""Kernels of fastengage.bandits: decisions, sufficient statistics, ridge solves and off-policy
evaluation. Every loop over rows of that capability lives here."""
