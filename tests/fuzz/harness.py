"""Coverage-guided fuzzing (atheris / libFuzzer) of every loader, model parser and input path.

Design: each ``targets_<capability>.py`` beside this file declares ``TARGETS``, a list of
:class:`Target`: a function that takes the bytes of a file (or stream) and must either work or
raise one of the errors a user is promised (``ModelFormatError``, ``InputError`` and the target's
own ``allowed``). Anything else is a finding: another exception, a crash, a hang (libFuzzer's
``-timeout``), or an out-of-bounds access (run with ``NUMBA_BOUNDSCHECK=1``, which turns a Numba
kernel's stray index into an ``IndexError`` instead of silent memory corruption). ``seeds`` builds
a corpus of valid files, so the fuzzer starts from real models, not noise.

All targets run in one libFuzzer process: the first byte of an input picks the target. Files in
the safe bundle format (ZIP) are mutated member by member and re-zipped (``kind="zip"``), and JSON
numbers are swapped for hostile values (-1, 2**40, 1e400, NaN), so mutations reach the validation
of arrays and metadata instead of dying at the ZIP checksum.

Smoke run (what the default tests do, ~30 s)::

    NUMBA_BOUNDSCHECK=1 python tests/fuzz/harness.py --seconds 30

Release run (per target, longer, keeping the corpus)::

    NUMBA_BOUNDSCHECK=1 python tests/fuzz/harness.py --targets rfm_state --seconds 3600 --corpus fuzz-corpus/
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import io
import json
import os
import pathlib
import random
import re
import sys
import tempfile
import zipfile
from typing import Callable

HERE = pathlib.Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # tests/ (naive references, conftest helpers)
    sys.path.insert(0, str(HERE.parent))


@dataclasses.dataclass
class Target:
    name: str
    run: Callable[[bytes], object]
    seeds: Callable[[], list]
    kind: str = "bytes"  # "zip": a safe bundle; "text": a text model; "bytes": anything else
    allowed: tuple = ()


def discover(names=None) -> list[Target]:
    targets = []
    for path in sorted(HERE.glob("targets_*.py")):
        module = _load(path)
        targets.extend(module.TARGETS)
    if names:
        wanted = set(names)
        targets = [t for t in targets if t.name in wanted]
        missing = wanted - {t.name for t in targets}
        if missing:
            raise SystemExit(f"unknown fuzz targets: {sorted(missing)}")
    return targets


def _load(path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(f"fastengage_fuzz_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- structured mutation ------------------------------------------------------------------------
HOSTILE_NUMBERS = ["-1", "0", "1", "2147483648", "1099511627776", "9223372036854775807",
                   "-9223372036854775809", "1e400", "-1e400", "NaN", "1e308", "3.5", "[]", "{}",
                   "null", "\"x\""]
_NUMBER = re.compile(rb"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def mutate_json(raw: bytes, rnd: random.Random) -> bytes:
    spans = [m.span() for m in _NUMBER.finditer(raw)]
    if not spans:
        return raw
    a, b = rnd.choice(spans)
    return raw[:a] + rnd.choice(HOSTILE_NUMBERS).encode() + raw[b:]


def mutate_npy(raw: bytes, rnd: random.Random, mutate_bytes) -> bytes:
    """Mutate a ``.npy`` member: its header (shape/dtype) or its data, or plant hostile integers."""
    if not raw.startswith(b"\x93NUMPY") or len(raw) < 12:
        return mutate_bytes(raw)
    header_len = int.from_bytes(raw[8:10], "little") + 10
    header, data = raw[:header_len], raw[header_len:]
    choice = rnd.random()
    if choice < 0.25:
        return mutate_json(header, rnd) + data  # shape / dtype
    if choice < 0.6 and len(data) >= 8:
        i = rnd.randrange(0, len(data) - 7) & ~7 if len(data) >= 8 else 0
        value = rnd.choice([-1, -2**31, 2**31, 2**40, 2**62, -2**63, 0x7FF0000000000000])
        return header + data[:i] + int(value & (2**64 - 1)).to_bytes(8, "little") + data[i + 8:]
    return header + mutate_bytes(data)


def mutate_zip(raw: bytes, rnd: random.Random, mutate_bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            members = [(info.filename, zf.read(info)) for info in zf.infolist()]
    except Exception:
        return mutate_bytes(raw)
    if not members:
        return mutate_bytes(raw)
    k = rnd.randrange(len(members))
    name, data = members[k]
    action = rnd.random()
    if action < 0.05:
        del members[k]
    elif name.endswith(".json"):
        members[k] = (name, mutate_json(data, rnd) if action < 0.8 else mutate_bytes(data))
    elif name.endswith(".npy"):
        members[k] = (name, mutate_npy(data, rnd, mutate_bytes))
    else:
        members[k] = (name, mutate_bytes(data))
    out = io.BytesIO()
    # deflated, so that a mutated bundle stays near the seed's size (libFuzzer's -max_len)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for member_name, member_data in members:
            zf.writestr(member_name, member_data)
    return out.getvalue()


def mutate_text(raw: bytes, rnd: random.Random, mutate_bytes) -> bytes:
    return mutate_json(raw, rnd) if rnd.random() < 0.7 else mutate_bytes(raw)


# -- the fuzz loop -------------------------------------------------------------------------------
def make_entry_points(targets: list[Target]):
    from fastengage.errors import InputError, ModelFormatError

    promised = (ModelFormatError, InputError)

    def test_one(data: bytes) -> None:
        if not data:
            return
        target = targets[data[0] % len(targets)]
        try:
            target.run(bytes(data[1:]))
        except promised:
            pass
        except target.allowed:
            pass

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        import atheris

        rnd = random.Random(seed)
        if not data:
            data = bytes([0])
        head, payload = data[:1], data[1:]
        if rnd.random() < 0.02:
            head = bytes([rnd.randrange(256)])
        target = targets[head[0] % len(targets)]

        def mutate_bytes(raw: bytes) -> bytes:
            return atheris.Mutate(raw, max(len(raw) + 64, 64))

        if target.kind == "zip":
            payload = mutate_zip(payload, rnd, mutate_bytes)
        elif target.kind == "text":
            payload = mutate_text(payload, rnd, mutate_bytes)
        else:
            payload = mutate_bytes(payload)
        return (head + payload)[:max_size]

    return test_one, custom_mutator


#: Python code whose branches feed libFuzzer's coverage: the API layer (every loader and
#: validator) and the standard parsers it relies on. Never Numba kernels: Numba compiles from a
#: function's bytecode, and instrumented bytecode calls into atheris, which it cannot type.
INSTRUMENTED_PREFIXES = ("fastengage.", "zipfile", "json.", "numpy.lib.format")


def instrument_python_code() -> int:
    """Add atheris' coverage instrumentation to the already imported functions of
    :data:`INSTRUMENTED_PREFIXES` (not ``fastengage.kernels``); returns how many."""
    import gc
    import types

    import atheris

    count = 0
    for obj in gc.get_objects():
        if not isinstance(obj, types.FunctionType):
            continue
        module = getattr(obj, "__module__", None) or ""
        if module.startswith("fastengage.kernels") or not module.startswith(INSTRUMENTED_PREFIXES):
            continue
        try:
            atheris.instrument_func(obj)
            count += 1
        except Exception:  # a function atheris cannot patch keeps running uninstrumented
            pass
    return count


def write_corpus(targets: list[Target], folder: pathlib.Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    n = longest = 0
    for i, target in enumerate(targets):
        for j, seed in enumerate(target.seeds()):
            (folder / f"{target.name}-{j}").write_bytes(bytes([i]) + seed)
            n += 1
            longest = max(longest, len(seed) + 1)
    return n, longest


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", nargs="*", help="target names (default: all)")
    parser.add_argument("--seconds", type=int, default=30, help="total fuzzing time")
    parser.add_argument("--runs", type=int, default=-1, help="stop after this many inputs")
    parser.add_argument("--corpus", help="corpus folder to keep (default: a temporary one)")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--no-coverage", action="store_true",
                        help="do not instrument Python code (mutation without coverage feedback)")
    args, libfuzzer_args = parser.parse_known_args(argv)
    targets = discover(args.targets)
    if not targets:
        raise SystemExit("no fuzz targets found (tests/fuzz/targets_*.py)")
    if args.list:
        for t in targets:
            print(f"{t.name:24s} {t.kind}")
        return
    import atheris

    corpus = pathlib.Path(args.corpus) if args.corpus else pathlib.Path(tempfile.mkdtemp(prefix="fe-fuzz-"))
    n, longest = write_corpus(targets, corpus)
    print(f"fuzzing {len(targets)} targets from {n} seed files for {args.seconds} s", flush=True)
    test_one, custom_mutator = make_entry_points(targets)
    for f in sorted(corpus.iterdir()):  # every seed must pass before we mutate it
        test_one(f.read_bytes())
    if not args.no_coverage:  # after the seeds ran: every module they need is imported
        print(f"coverage feedback from {instrument_python_code()} Python functions", flush=True)
    argv = [sys.argv[0], str(corpus), f"-max_total_time={args.seconds}", f"-runs={args.runs}",
            "-timeout=20", "-rss_limit_mb=4096", "-malloc_limit_mb=2048", "-print_final_stats=1",
            # inputs as long as the largest seed allows (libFuzzer's default is 4096 bytes, which
            # would cut bundles into broken ZIPs), and keep every seed in the corpus even when
            # it adds no new coverage (each is a different model kind worth mutating)
            f"-max_len={max(4096, 2 * longest)}", "-keep_seed=1",
            *libfuzzer_args]
    atheris.Setup(argv, test_one, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
