"""The performance gate: instruction counts of a fixed small workload per capability, measured
with ``valgrind --tool=callgrind``, compared with a committed baseline at a stated tolerance.

Why instruction counts: on a shared 2-core machine, timings of the same code move by 2-5x with
the load; the number of instructions a single-threaded workload executes does not move at all
(it is the same program on the same data), so a tolerance of a few percent catches a real
slow-down (a kernel doing twice the work) and never fires on noise.

How it measures: one child interpreter runs under callgrind with instrumentation off
(``--instr-atstart=no``: imports, data generation and loading the kernels from the Numba cache
run at near-native speed). Around each capability's workload it switches instrumentation on
and dumps the counters through Valgrind client requests, issued from a 30-byte machine-code
stub (a no-op outside Valgrind). Everything runs on one thread (``FASTENGAGE_NUM_THREADS=1``,
``NUMBA_NUM_THREADS=1``). Numba's cache is keyed by CPU name and features, and Valgrind
reports a different CPU; the child therefore pins ``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES`` to
the host's values (less AVX-512, which Valgrind cannot run), so it reuses the kernels compiled
natively (by a native pre-run of the same workloads, usually a cache hit after the test suite)
instead of compiling under Valgrind.
Counts depend on the CPU model's code generation, so baseline keys carry the CPU name.

    python -m fastengage.tools.gate run    [--capability ...] [--json OUT]
    python -m fastengage.tools.gate check  --baseline bench/baseline.json [--tolerance 0.05] [--repeat 10]
    python -m fastengage.tools.gate update --baseline bench/baseline.json

Baseline entries (``bench/baseline.json``, the layout of bench/regress.py):
``"gate.<capability>@callgrind-<cpu>": {"normalized": <instructions>, "ratios": {}}``.
``FASTENGAGE_GATE_SLOWDOWN=<capability>:<k>`` runs that workload ``k`` times inside the measured
region: the injected slow-down the gate's own test uses.
"""
from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

__all__ = ["GATE_CAPABILITIES", "measure", "compare", "main"]

GATE_CAPABILITIES = ("rfm", "profile", "clv", "recommend", "scoring", "bandits", "monitor",
                     "privacy", "experiments")
DEFAULT_TOLERANCE = 0.05
#: Unmeasured runs of each workload first. CPython 3.11 specialises a function's bytecode after
#: a few calls, which makes later runs cheaper: rfm counted 18.99M, 18.93M, 18.99M instructions
#: in its 2nd-4th runs and 18.72-18.76M from the 5th on (twelve runs in one session).
WARM_RUNS = 5

# amd64 Valgrind client request: rax = &args, rdx = default; the magic rotate sequence then
# xchg rbx,rbx; result in rdx. As a C function uint64 f(uint64 *args).
_STUB = bytes.fromhex("4889f8" "31d2" "48c1c703" "48c1c70d" "48c1c73d" "48c1c733" "4887db"
                      "4889d0" "c3")
_CG_BASE = (ord("C") << 24) | (ord("T") << 16)
DUMP_STATS, ZERO_STATS, START_INSTRUMENTATION, STOP_INSTRUMENTATION = (
    _CG_BASE, _CG_BASE + 1, _CG_BASE + 4, _CG_BASE + 5)


class _ClientRequests:
    def __init__(self):
        import ctypes
        import mmap

        self._mem = mmap.mmap(-1, mmap.PAGESIZE,
                              prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self._mem.write(_STUB)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(self._mem))
        self._fn = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint64))(addr)
        self._args = (ctypes.c_uint64 * 6)()

    def __call__(self, request: int) -> int:
        self._args[0] = request
        return self._fn(self._args)


# -- the workloads (fixed data, one thread) ----------------------------------------------------
def _workloads() -> dict:
    import numpy as np

    from .gendata import transactions

    def rfm():
        from .. import rfm as run

        ints = transactions(20_000, time_sorted=False)
        strings = transactions(20_000, string_ids=True, time_sorted=False)
        return lambda: (run(ints, customer="customer", time="time", amount="amount",
                            order="order", n_threads=1),
                        run(strings, customer="customer", time="time", amount="amount",
                            n_threads=1))

    def clv():
        from .. import clv as c

        t = transactions(20_000)
        s = c.summary(t, customer="customer", time="time", amount="amount", freq="D")
        x, tx, T = (s[k].to_numpy() for k in ("frequency", "recency", "T"))
        return lambda: (c.summary(t, customer="customer", time="time", amount="amount", freq="D"),
                        c.BetaGeo().fit(x, tx, T).probability_alive(x, tx, T))

    def recommend():
        from ..recommend import ALS, Interactions

        inter = Interactions.from_data(transactions(20_000), customer="customer", item="item")
        first = inter.customers.ids()[0].as_py()

        def run():
            model = ALS(factors=16, iterations=3, seed=0, n_threads=1).fit(inter)
            model.recommend(n=10)
            model.recommend_one(first, n=10)

        return run

    def scoring():
        import pyarrow as pa

        from ..datasets import data_path
        from ..scoring import load_model

        rng = np.random.default_rng(0)
        names = ["recency_days", "tenure_days", "frequency", "purchase_days", "monetary_total",
                 "monetary_mean"]
        X = rng.gamma(2.0, 50.0, (20_000, 6))
        table = pa.table({n: X[:, j] for j, n in enumerate(names)})
        model = load_model(data_path("churn_hgb.onnx"))
        return lambda: (model.score(table, n_threads=1), [model.predict(X[i:i + 1])
                                                          for i in range(200)])

    def profile():
        from .. import profile as run

        ints = transactions(20_000, time_sorted=False)
        strings = transactions(20_000, string_ids=True, time_sorted=False)
        return lambda: (run(ints, customer="customer", time="time", amount="amount",
                            order="order", item="item", n_threads=1),
                        run(strings, customer="customer", time="time", amount="amount",
                            n_threads=1))

    def bandits():
        import pyarrow as pa

        from ..bandits import LinUCB, evaluate

        rng = np.random.default_rng(0)
        n, d, arms = 20_000, 8, [f"offer-{a}" for a in range(5)]
        X = rng.normal(size=(n, d))
        arm = rng.integers(0, len(arms), n)
        logs = pa.table({**{f"x{j}": X[:, j] for j in range(d)},
                         "arm": pa.array(np.asarray(arms)[arm]),
                         "reward": (X[:, 0] * arm + rng.normal(size=n) > 1).astype(np.float64),
                         "propensity": np.full(n, 1 / len(arms))})
        features = [f"x{j}" for j in range(d)]
        rows = [np.ascontiguousarray(x) for x in X[:200]]

        def run():
            policy = LinUCB(arms, features=features).update(logs, arm="arm", reward="reward",
                                                           n_threads=1)
            policy.decide(logs, seed=1, n_threads=1)
            [policy.decide_one(x, seed=i) for i, x in enumerate(rows)]
            evaluate(logs, action="arm", reward="reward", propensity="propensity",
                     target=policy, estimators=["ipw", "snipw"], n_bootstrap=200, seed=0,
                     n_threads=1)

        return run

    def monitor():
        import pyarrow as pa

        from ..monitor import drift, quality

        rng = np.random.default_rng(0)
        n = 20_000
        colors = np.array(["red", "green", "blue", "grey", "black"])
        reference = pa.table({"a": rng.normal(size=n), "b": rng.gamma(2.0, 3.0, n),
                              "c": pa.array(colors[rng.integers(0, 5, n)])})
        current = pa.table({"a": rng.normal(0.1, size=n), "b": rng.gamma(2.1, 3.0, n),
                            "c": pa.array(colors[rng.integers(0, 4, n)])})
        scored = pa.table({"score": rng.random(n), "label": rng.integers(0, 2, n)})
        return lambda: (drift(reference, current, categorical=["c"], n_threads=1),
                        quality(scored, score="score", label="label", n_threads=1))

    def privacy():
        from ..privacy import pseudonymize

        strings = transactions(20_000, string_ids=True)
        ints = transactions(20_000)
        return lambda: (pseudonymize(strings, ["customer", "item"], key=b"k" * 32, n_threads=1),
                        pseudonymize(ints, ["customer"], key=b"k" * 32, method="siphash-2-4",
                                     n_threads=1))

    def experiments():
        import pyarrow as pa

        from ..experiments import readout

        rng = np.random.default_rng(0)
        n = 20_000
        users = pa.table({"variant": pa.array(np.where(rng.random(n) < 0.5, "A", "B")),
                          "converted": rng.integers(0, 2, n).astype(np.float64),
                          "revenue": rng.gamma(2.0, 10.0, n)})
        return lambda: readout(users, variant="variant", control="A",
                               metrics=["converted", "revenue"], n_threads=1)

    return {"rfm": rfm, "profile": profile, "clv": clv, "recommend": recommend,
            "scoring": scoring, "bandits": bandits, "monitor": monitor, "privacy": privacy,
            "experiments": experiments}


def _child(capabilities: list[str]) -> None:
    """Inside (or outside) Valgrind: set up, warm, then measure each workload in its own dump.

    A token ``cap*N`` measures ``cap``'s workload run N times in one dump (an injected N-x
    slow-down; ``FASTENGAGE_GATE_SLOWDOWN=cap:N`` does the same to every ``cap`` token), and a
    capability may appear several times (repeat measurements in one Valgrind session)."""
    slow_cap, _, factor = os.environ.get("FASTENGAGE_GATE_SLOWDOWN", "").partition(":")
    makers = _workloads()
    runs = {}
    for token in capabilities:
        cap = token.partition("*")[0]
        if cap not in runs:
            runs[cap] = makers[cap]()
            for _ in range(WARM_RUNS):  # kernels loaded, lazy imports done, bytecode specialised
                runs[cap]()
    request = _ClientRequests()
    for token in capabilities:
        cap, _, times = token.partition("*")
        repeats = int(times) if times else (int(factor) if cap == slow_cap and factor else 1)
        # Python's cyclic collector runs when allocations since the last collection pass a
        # threshold, so whether a collection (~250k instructions) lands inside a region depends
        # on everything allocated before it: 1.4% between two identical rfm runs. Collect
        # outside the region and keep the collector off inside it.
        gc.collect()
        gc.disable()
        request(START_INSTRUMENTATION)
        request(ZERO_STATS)
        for _ in range(repeats):
            runs[cap]()
        request(DUMP_STATS)
        request(STOP_INSTRUMENTATION)
        gc.enable()
    print("@@GATE-DONE@@", flush=True)


def host_cpu() -> tuple[str, str]:
    import llvmlite.binding as ll

    return ll.get_host_cpu_name(), ll.get_host_cpu_features().flatten()


def valgrind_features(features: str) -> str:
    """The host's LLVM feature string with AVX-512 (and the other EVEX encodings) turned off:
    Valgrind cannot execute them ("unhandled instruction bytes: ... 0x62" on a Zen 4 host), so
    the gate's kernels are compiled for the host's AVX2 level instead. Counts stay comparable
    between runs on one CPU model, which is all the gate compares."""
    def off(flag: str) -> bool:
        name = flag[1:]
        return flag.startswith("+") and name.startswith(("avx512", "evex512", "avx10", "amx"))
    return ",".join("-" + f[1:] if off(f) else f for f in features.split(",") if f)


def measure(capabilities=GATE_CAPABILITIES, *, env: dict | None = None,
            valgrind: str = "valgrind") -> dict:
    """Instructions executed by each capability's workload: ``{capability: count}``."""
    return dict(zip(capabilities, measure_sequence(capabilities, env=env, valgrind=valgrind)))


def measure_sequence(tokens, *, env: dict | None = None, valgrind: str = "valgrind") -> list:
    """Instruction counts of a sequence of workload tokens (see :func:`_child`: a capability,
    possibly repeated, or ``cap*N``) measured in one native pre-run and one Valgrind session:
    the interpreter start-up and imports under Valgrind (~30 s of CPU) are paid once."""
    if shutil.which(valgrind) is None:
        raise RuntimeError("valgrind not found (Debian/Ubuntu: apt-get install -y valgrind)")
    tokens = list(tokens)
    cpu_name, cpu_features = host_cpu()
    child_env = dict(os.environ, FASTENGAGE_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
                     NUMBA_CPU_NAME=cpu_name, NUMBA_CPU_FEATURES=valgrind_features(cpu_features),
                     PYTHONHASHSEED="0", **(env or {}))
    cmd = [sys.executable, "-m", "fastengage.tools.gate", "_child",
           "--capability", ",".join(tokens)]
    native = subprocess.run(cmd, env=child_env, capture_output=True, text=True)
    if native.returncode != 0:  # fills the Numba cache natively; its failure is a real failure
        raise RuntimeError(f"gate workloads failed natively:\n{native.stderr[-3000:]}")
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "callgrind.out")
        proc = subprocess.run([valgrind, "--tool=callgrind", "--instr-atstart=no",
                               f"--callgrind-out-file={out}", *cmd],
                              env=child_env, capture_output=True, text=True)
        if proc.returncode != 0 or "@@GATE-DONE@@" not in proc.stdout:
            raise RuntimeError(f"gate workloads failed under valgrind:\n{proc.stderr[-3000:]}")
        dumps = sorted(glob.glob(out + ".*"), key=lambda p: int(p.rsplit(".", 1)[1]))
        if len(dumps) != len(tokens):
            raise RuntimeError(f"expected {len(tokens)} callgrind dumps, got {len(dumps)}")
        return [_total(path) for path in dumps]


def _total(path: str) -> int:
    with open(path) as fh:
        for line in fh:
            m = re.match(r"(?:totals|summary):\s+(\d+)", line)
            if m:
                return int(m.group(1))
    raise RuntimeError(f"no totals in {path}")


def _key(cap: str, cpu: str) -> str:
    return f"gate.{cap}@callgrind-{cpu}"


def compare(counts: dict, baseline: dict, cpu: str, tolerance: float) -> tuple[list, list]:
    """``(regressions, missing)`` as printable lines."""
    regressions, missing = [], []
    for cap, n in counts.items():
        base = baseline.get(_key(cap, cpu))
        if base is None:
            missing.append(_key(cap, cpu))
            continue
        ref = base["normalized"]
        if n > ref * (1 + tolerance):
            regressions.append(f"{_key(cap, cpu)}: {n:,} instructions vs baseline {ref:,.0f} "
                               f"(+{n / ref - 1:.1%}, tolerance {tolerance:.0%})")
    return regressions, missing


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "check", "update", "_child"])
    parser.add_argument("--capability", default=",".join(GATE_CAPABILITIES))
    parser.add_argument("--baseline", default=os.path.join("bench", "baseline.json"))
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    parser.add_argument("--json", help="also write the counts (JSON) to this file")
    parser.add_argument("--results", help="append bench/regress.py records to this JSON-lines file")
    parser.add_argument("--repeat", type=int, default=1,
                        help="check: run the whole check this many times (the repeatability "
                             "record: every run must pass with the same counts)")
    args = parser.parse_args(argv)
    caps = [c.strip() for c in args.capability.split(",") if c.strip()]
    if args.command == "_child":
        _child(caps)
        return 0
    if args.command == "check" and args.repeat > 1:
        return _repeat(argv, args.repeat)
    t0 = time.perf_counter()
    counts = measure(caps)
    cpu = host_cpu()[0]
    for cap, n in counts.items():
        print(f"{_key(cap, cpu)}: {n:,} instructions")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"cpu": cpu, "instructions": counts}, fh, indent=1)
    if args.results:
        with open(args.results, "a") as fh:
            for cap, n in counts.items():
                fh.write(json.dumps({"name": f"gate.{cap}", "size": f"callgrind-{cpu}",
                                     "median_s": n, "reference_s": 1.0, "ratios": {},
                                     "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
    baseline = {}
    if os.path.exists(args.baseline):
        with open(args.baseline) as fh:
            baseline = json.load(fh)
    if args.command == "update":
        baseline.update({_key(cap, cpu): {"normalized": n, "ratios": {}} for cap, n in counts.items()})
        with open(args.baseline, "w") as fh:
            json.dump(baseline, fh, indent=1, sort_keys=True)
        print(f"gate baseline for {cpu} written to {args.baseline}")
        return 0
    if args.command == "run":
        return 0
    regressions, missing = compare(counts, baseline, cpu, args.tolerance)
    for key in missing:
        print(f"no baseline for {key} (another CPU model? run: python -m fastengage.tools.gate "
              f"update): not checked")
    for line in regressions:
        print(f"REGRESSION {line}")
    print(f"performance gate: {len(counts) - len(missing)} workloads checked, {len(regressions)} "
          f"regressions ({time.perf_counter() - t0:.0f} s)")
    return 1 if regressions else 0


def _repeat(argv, times: int) -> int:
    """``check`` run ``times`` times in a row; prints one line per run (status, seconds, whether
    the counts equal the first run's) and exits 1 if any run failed."""
    argv = [a for i, a in enumerate(argv)
            if not a.startswith("--repeat") and not (i and argv[i - 1] == "--repeat")]
    first, failed = None, 0
    for i in range(times):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "counts.json")
            t0 = time.perf_counter()
            status = main([*argv, "--json", path])
            seconds = time.perf_counter() - t0
            with open(path) as fh:
                counts = json.load(fh)["instructions"]
        first = first or counts
        failed += status != 0
        print(f"gate run {i + 1}/{times}: {'pass' if status == 0 else 'FAIL'} in {seconds:.0f} s, "
              f"counts {'identical to run 1' if counts == first else 'differ from run 1'}: "
              f"{counts}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
