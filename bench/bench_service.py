"""The reference service (examples/service) under a bounded loopback load.

    python -m pytest bench/bench_service.py -s                    # smoke: a few seconds
    FASTENGAGE_BENCH=full python -m pytest bench/bench_service.py -s

The service runs in its own process (uvicorn, one worker, 127.0.0.1, a free port) so that the
load generator (an asyncio httpx client) does not share its GIL. For each endpoint and for 1, 8
and 32 concurrent clients, a fixed number of requests is sent (and a time cap stops a cell
early): p50 and p99 latency as the client sees it, throughput, and the share of the request
time spent inside fastengage (the ``Server-Timing: fastengage;dur=`` header the service sets
around its fastengage calls, summed, over the summed client latencies). Every response must be a
2xx: the run fails otherwise. Records go to bench/out/results.jsonl (``service.<endpoint>@c<k>``).
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from fastengage.tools import benchrun
from bench._compare import OUT_DIR, RESULTS, bench_size, reference_seconds

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

SERVICE = Path(__file__).resolve().parent.parent / "examples" / "service"
FULL = bench_size() == "full"
REQUESTS = 2000 if FULL else 40          # per endpoint and concurrency level
TIME_CAP_S = 20.0 if FULL else 3.0       # per cell: the run always stops by itself
CONCURRENCY = (1, 8, 32)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(model_dir: str) -> None:
    code = (f"import sys; sys.path.insert(0, {str(SERVICE)!r}); from prepare import prepare; "
            f"prepare({model_dir!r}" + ("" if FULL else ", rows=20000, factors=16, iterations=3")
            + ")")
    subprocess.run([sys.executable, "-c", code], check=True)


class Service:
    """uvicorn serving examples/service/app.py in a child process."""

    def __init__(self, model_dir: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, FASTENGAGE_SERVICE_DIR=model_dir)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "app:create_app", "--app-dir",
             str(SERVICE), "--host", "127.0.0.1", "--port", str(self.port), "--log-level",
             "warning", "--no-access-log"], env=env)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the service exited during start-up")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the service did not start within 300 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _fastengage_ms(response) -> float:
    header = response.headers.get("server-timing", "")
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if name == "fastengage":
            return float(dur)
    return 0.0


async def _cell(url: str, make_request, concurrency: int) -> dict:
    latencies, fe_ms, statuses = [], [], []
    counter = iter(range(REQUESTS))
    stop_at = time.monotonic() + TIME_CAP_S
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as client:
        async def worker():
            for i in counter:
                if time.monotonic() > stop_at:
                    return
                method, path, body = make_request(i)
                t0 = time.perf_counter()
                r = await client.request(method, path, json=body)
                latencies.append(time.perf_counter() - t0)
                fe_ms.append(_fastengage_ms(r))
                statuses.append(r.status_code)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    lat = sorted(latencies)
    return {"requests": len(lat), "p50_s": statistics.median(lat),
            "p99_s": lat[min(len(lat) - 1, int(0.99 * len(lat)))],
            "throughput_rps": len(lat) / wall,
            "fastengage_share": sum(fe_ms) / 1e3 / sum(lat),
            "fastengage_p50_ms": statistics.median(fe_ms),
            "non_2xx": sum(1 for s in statuses if not 200 <= s < 300)}


def _endpoints(customers: list[int]):
    def features(i):
        return "GET", f"/customers/{customers[i % len(customers)]}/features", None

    def recommendations(i):
        return "GET", f"/customers/{customers[i % len(customers)]}/recommendations?n=10", None

    def churn(i):
        return "GET", f"/customers/{customers[i % len(customers)]}/churn", None

    def events(i):
        c = customers[i % len(customers)]
        return "POST", "/events", {"events": [
            {"customer": c, "time": "2011-12-10T12:00:00", "amount": 1.0 + k,
             "order": f"B{i}-{k}"} for k in range(10)]}

    return {"features": features, "recommendations": recommendations, "churn": churn,
            "events": events}


def test_service_under_load():
    with tempfile.TemporaryDirectory() as model_dir:
        _prepare(model_dir)
        import fastengage as fe

        state = fe.RFMState.load(os.path.join(model_dir, "rfm-state.fe")).to_table()
        customers = state["CustomerID"].to_pylist()[:500]
        service = Service(model_dir)
        try:
            results = {}
            for name, make in _endpoints(customers).items():
                for c in CONCURRENCY:
                    results[(name, c)] = asyncio.run(_cell(service.url, make, c))
        finally:
            service.stop()
    ref = reference_seconds()
    OUT_DIR.mkdir(exist_ok=True)
    size = "full" if FULL else "smoke"
    print(f"\n{'endpoint':<16}{'clients':>8}{'requests':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'req/s':>9}{'fastengage':>12}")
    with open(RESULTS, "a") as fh:
        for (name, c), r in results.items():
            print(f"{name:<16}{c:>8}{r['requests']:>10}{r['p50_s'] * 1e3:>9.2f}"
                  f"{r['p99_s'] * 1e3:>9.2f}{r['throughput_rps']:>9.0f}"
                  f"{r['fastengage_share']:>11.1%}")
            fh.write(json.dumps({"name": f"service.{name}@c{c}", "size": size,
                                 "median_s": r["p50_s"], "reference_s": ref, "ratios": {},
                                 "reference": benchrun.REFERENCE,
                                 "machine": benchrun.machine(),
                                 **r}) + "\n")
    for (name, c), r in results.items():
        assert r["non_2xx"] == 0, f"{name} at {c} clients: {r['non_2xx']} non-2xx responses"
        assert r["requests"] > 0 and r["p50_s"] > 0
        if name != "events":  # events are buffered: fastengage runs later, in the flush task
            assert r["fastengage_p50_ms"] > 0, f"{name}: no Server-Timing from fastengage"
