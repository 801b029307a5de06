"""Shared kernel infrastructure: the one parallel-launch rule, every tunable (``config``), id maps
(Cython), hashing, scheduling and sortedness scans. Imported by every capability's kernels; it
imports none of them."""
