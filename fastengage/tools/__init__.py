"""Tools for running fastengage in services and CI (issue #11).

* :mod:`.warmup`: ``fastengage warmup``, compile every kernel into the Numba cache;
* :mod:`.benchrun`: ``fastengage bench``, throughput on generated data, pytest-benchmark JSON,
  comparison with a baseline (exit 1 on a regression);
* :mod:`.coldstart`: per-kernel compile times and first calls in fresh processes;
* :mod:`.gate`: the instruction-count (callgrind) performance gate used by CI;
* :mod:`.workloads` / :mod:`.gendata`: the shared per-capability workloads and generated data.
"""
