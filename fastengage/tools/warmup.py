"""``fastengage warmup``: compile every kernel a capability uses into the Numba cache.

Run it once when building a Docker image or filling a CI cache; every later process then loads
machine code from the cache instead of compiling (first call ~1 s instead of tens of seconds).
Where the cache lives: next to the installed kernels (``__pycache__``) by default, or in
``NUMBA_CACHE_DIR`` when set (needed when the installation is read-only). A cache entry is keyed
by the kernel's source file (path + modification time), the argument types and the CPU: after
an upgrade of fastengage or Numba, or on a different CPU model, Numba simply compiles again
(transparently, at the first call) and stores the new entry.
"""
from __future__ import annotations

import os
import sys
import time

from .workloads import CAPABILITIES, DEFAULT_CAPABILITIES, parse_capabilities, variants

__all__ = ["warmup", "add_warmup_command", "cache_location"]


def cache_location() -> str:
    """Where Numba writes its cache in this process."""
    import numba

    return numba.config.CACHE_DIR or "next to each kernel module (__pycache__)"


def warmup(capabilities=None, *, log=None) -> list[dict]:
    """Run every type variant of each capability once (see :mod:`fastengage.tools.workloads`).

    Returns one dict per variant: ``capability``, ``variant``, ``seconds``, ``compiled`` (kernel
    specialisations compiled, 0 when all came from the cache) and ``error`` (None, or the
    exception text: a failing variant does not stop the others).
    """
    from .coldstart import CompileProfiler

    caps = list(DEFAULT_CAPABILITIES if not capabilities else capabilities)
    for cap in caps:
        if cap not in CAPABILITIES:
            raise ValueError(f"unknown capability {cap!r}; choose from {', '.join(CAPABILITIES)}")
    out = []
    for cap in caps:
        try:
            cases = variants(cap)
        except Exception as exc:  # e.g. an optional dependency of that capability is missing
            out.append({"capability": cap, "variant": "(import)", "seconds": 0.0, "compiled": 0,
                        "error": f"{type(exc).__name__}: {exc}"})
            if log:
                log(out[-1])
            continue
        for label, fn in cases:
            t0 = time.perf_counter()
            error = None
            with CompileProfiler() as prof:
                try:
                    fn()
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
            out.append({"capability": cap, "variant": label,
                        "seconds": time.perf_counter() - t0, "compiled": len(prof.records),
                        "error": error})
            if log:
                log(out[-1])
    return out


def add_warmup_command(subparsers) -> None:
    """Register ``fastengage warmup`` on an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "warmup", help="compile every kernel into the Numba cache (Docker builds, CI caches)",
        description="Run each capability once on small generated data covering the input types "
                    "real data has, so that every kernel specialisation is compiled and cached. "
                    "Set NUMBA_CACHE_DIR to choose the cache folder (required for read-only "
                    "installations).")
    p.add_argument("--capability", default=",".join(DEFAULT_CAPABILITIES),
                   help=f"comma-separated subset of {','.join(CAPABILITIES)} (default: all)")
    p.add_argument("-q", "--quiet", action="store_true", help="only the summary line")
    p.set_defaults(run=_run_warmup)


def _run_warmup(args) -> int:
    from .._io.output import say

    caps = parse_capabilities(args.capability, CAPABILITIES)
    if caps is None:
        return 2

    def log(rec):
        if not args.quiet or rec["error"]:
            status = f"FAILED: {rec['error']}" if rec["error"] else f"{rec['compiled']} compiled"
            say(f"  {rec['capability']:<12}{rec['variant']:<50}{rec['seconds']:7.1f} s  {status}")

    say(f"warming the Numba cache ({cache_location()}) for {', '.join(caps)}")
    t0 = time.perf_counter()
    results = warmup(caps, log=log)
    failed = [r for r in results if r["error"]]
    say(f"warmup: {len(results) - len(failed)} of {len(results)} variants in "
        f"{time.perf_counter() - t0:.1f} s, {sum(r['compiled'] for r in results)} kernel "
        f"specialisations compiled" + (f", {len(failed)} FAILED" if failed else ""))
    return 1 if failed else 0
