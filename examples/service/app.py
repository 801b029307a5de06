"""A reference ASGI service on fastengage (Starlette; run it with uvicorn).

    pip install 'fastengage[serve]'
    python examples/service/prepare.py models/          # or your own saved files
    fastengage warmup --capability rfm,recommend,scoring  # compile kernels before serving
    FASTENGAGE_SERVICE_DIR=models uvicorn --factory app:create_app --app-dir examples/service

Endpoints (every error is a JSON body ``{"error": "...", "detail": ...}`` with a 4xx status):

* ``POST /events`` -> 202: ``{"events": [{"customer", "time", "amount", "order"}, ...]}`` (or one
  event object). Events are validated, buffered, and folded into the live ``RFMState`` in
  batches by a background task every ``flush_interval`` seconds (``?wait=true`` flushes before
  answering, for read-your-writes). ``time`` is an ISO 8601 string (naive = UTC) or epoch
  seconds.
* ``GET /customers/{id}/features``: the customer's RFM features from the latest snapshot
  (refreshed after every flush); 404 for a customer with no purchase yet (there is no
  meaningful population fallback for one customer's own history).
* ``GET /customers/{id}/recommendations?n=10``: ALS ``recommend_one``. Fallback for a customer
  the model was not trained on: the most popular items (``"fallback": "popular"``).
* ``GET /customers/{id}/churn``: churn probability from the ONNX model on the customer's
  current features. Fallback for a customer without features: the mean predicted probability of
  all known customers (``"fallback": "population"``).
* ``POST /admin/reload``: loads the recommender, churn model and popular items again from the
  model folder, in a worker thread, then swaps them in one assignment: requests in flight finish
  on the old models, none is dropped. The RFM state is live and is not reloaded.
* ``GET /health``: counts and versions.

State is saved every ``save_interval`` seconds when it changed, and at shutdown after a last
flush, to a temporary file that is then renamed over the old one (a crash never leaves a
half-written state). Each response carries ``Server-Timing: fastengage;dur=<ms>``: the time
spent inside fastengage for that request (what bench/bench_service.py compares with latency).
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import os
import threading
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import fastengage as fe
from fastengage.errors import FastEngageError
from fastengage.recommend import ALS
from fastengage.scoring import load_model

log = logging.getLogger("fastengage.service")

STATE_FILE, MODEL_FILE, CHURN_FILE, POPULAR_FILE = ("rfm-state.fe", "als.fe", "churn.onnx",
                                                    "popular.parquet")
CHURN_FEATURES = ["recency_days", "tenure_days", "frequency", "purchase_days", "monetary_total",
                  "monetary_mean"]
MAX_EVENTS_PER_REQUEST = 10_000
MAX_N = 100


class BadRequest(Exception):
    """A client error: becomes a 4xx JSON response."""

    def __init__(self, message: str, status: int = 400, **detail):
        super().__init__(message)
        self.status, self.detail = status, detail


@dataclass(frozen=True)
class Models:
    """Everything ``/admin/reload`` replaces, swapped in one assignment."""
    recommender: ALS
    churn: object
    popular: np.ndarray
    version: int
    loaded_at: str


@dataclass(frozen=True)
class Snapshot:
    """Features of every customer as of the last flush: id -> row, NumPy columns."""
    index: dict
    columns: dict
    as_of: str
    churn_mean: float


class Engine:
    """Models, live state and the event buffer of one service process."""

    def __init__(self, model_dir: str, flush_interval: float = 0.2, save_interval: float = 30.0):
        self.model_dir = model_dir
        self.flush_interval, self.save_interval = flush_interval, save_interval
        self.state = fe.RFMState.load(os.path.join(model_dir, STATE_FILE))
        self.columns = self.state.columns
        self.int_ids = pa.types.is_integer(self.state.customers.input_type)
        self.models = self._load_models(version=1)
        self.snapshot = self._build_snapshot()
        self._pending: list[dict] = []
        self._pending_lock = threading.Lock()
        self._flush_lock = asyncio.Lock()
        self._reload_lock = asyncio.Lock()
        self._save_lock = threading.Lock()
        self.dirty = False
        self.counters = {"events": 0, "flushes": 0, "saves": 0, "reloads": 0}

    # -- loading ----------------------------------------------------------------------------
    def _load_models(self, version: int) -> Models:
        d = self.model_dir
        recommender = ALS.load(os.path.join(d, MODEL_FILE))
        churn = load_model(os.path.join(d, CHURN_FILE))
        popular = pq.read_table(os.path.join(d, POPULAR_FILE))["item"].to_numpy(
            zero_copy_only=False)
        for customer in recommender.customers_.ids().slice(0, 1).to_pylist():
            recommender.recommend_one(customer, n=10)  # serving state and kernels, before traffic
        churn.predict(np.zeros((1, len(CHURN_FEATURES))))
        return Models(recommender, churn, popular, version,
                      dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    async def reload(self) -> Models:
        async with self._reload_lock:
            models = await asyncio.to_thread(self._load_models, self.models.version + 1)
            self.models = models  # one assignment: requests read self.models once
            self.counters["reloads"] += 1
            return models

    # -- events -----------------------------------------------------------------------------
    def parse_event(self, event, i: int) -> dict:
        if not isinstance(event, dict):
            raise BadRequest(f"event {i} is not an object", index=i)
        unknown = set(event) - {"customer", "time", "amount", "order"}
        if unknown:
            raise BadRequest(f"event {i}: unknown field(s) {sorted(unknown)}", index=i)
        out = {"customer": self.parse_customer(event.get("customer"), f"event {i}: customer")}
        out["time"] = _parse_time(event.get("time"), i)
        amount = event.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) \
                or not math.isfinite(amount):
            raise BadRequest(f"event {i}: amount must be a finite number, got {amount!r}", index=i)
        out["amount"] = float(amount)
        if self.columns["order"] is not None:
            order = event.get("order")
            if isinstance(order, bool) or not isinstance(order, (str, int)) or order == "":
                raise BadRequest(f"event {i}: order (a string or integer) is required", index=i)
            out["order"] = order
        return out

    def add_events(self, events: list[dict]) -> int:
        with self._pending_lock:
            self._pending.extend(events)
            self.counters["events"] += len(events)
            return len(self._pending)

    async def flush(self) -> int:
        """Fold the buffered events into the state and refresh the snapshot."""
        async with self._flush_lock:
            with self._pending_lock:
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            table = self._events_table(batch)
            await asyncio.to_thread(self.state.update, table)
            self.dirty = True
            self.snapshot = await asyncio.to_thread(self._build_snapshot)
            self.counters["flushes"] += 1
            return len(batch)

    def _events_table(self, batch: list[dict]) -> pa.Table:
        c = self.columns
        id_type = self.state.customers.input_type
        data = {c["customer"]: pa.array([e["customer"] for e in batch], id_type),
                c["time"]: pa.array([e["time"] for e in batch], pa.timestamp("us", "UTC")),
                c["amount"]: pa.array([e["amount"] for e in batch], pa.float64())}
        if c["order"] is not None:
            order_type = self.state.orders.input_type
            cast = str if pa.types.is_string(order_type) or pa.types.is_large_string(order_type) \
                else int
            data[c["order"]] = pa.array([cast(e["order"]) for e in batch], order_type)
        return pa.table(data)

    # -- snapshot and persistence -------------------------------------------------------------
    def _build_snapshot(self) -> Snapshot:
        table = self.state.to_table()
        ids = table[self.columns["customer"]].to_pylist()
        columns = {name: table[name].to_numpy(zero_copy_only=False)
                   for name in table.column_names if name != self.columns["customer"]}
        X = np.column_stack([columns[f].astype(np.float64) for f in CHURN_FEATURES])
        churn_mean = float(self.models.churn.predict(X)[:, -1].mean()) if len(ids) else 0.5
        meta = table.schema.metadata or {}
        as_of = __import__("json").loads(meta.get(b"fastengage", b"{}")).get("as_of", "")
        return Snapshot({cid: i for i, cid in enumerate(ids)}, columns, as_of, churn_mean)

    def save_state(self) -> str:
        """Write the state to a temporary file, fsync, rename over the old file."""
        path = os.path.join(self.model_dir, STATE_FILE)
        with self._save_lock:
            tmp = f"{path}.{os.getpid()}.tmp"
            self.dirty = False
            try:
                self.state.save(tmp)
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                self.dirty = True
                with contextlib.suppress(OSError):
                    os.remove(tmp)
                raise
            self.counters["saves"] += 1
        return path

    async def run_background(self) -> None:
        """Flush every ``flush_interval`` s; save every ``save_interval`` s when changed."""
        last_save = time.monotonic()
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
                if self.dirty and time.monotonic() - last_save >= self.save_interval:
                    await asyncio.to_thread(self.save_state)
                    last_save = time.monotonic()
            except Exception:  # keep serving; the next round retries the save
                log.exception("background flush/save failed")

    # -- lookups ------------------------------------------------------------------------------
    def parse_customer(self, raw, what: str = "customer id"):
        """A path or JSON customer id, converted to the state's id kind (int or str)."""
        if self.int_ids:
            if isinstance(raw, bool):
                raise BadRequest(f"{what} must be an integer, got {raw!r}")
            if isinstance(raw, int):
                value = raw
            elif isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
                value = int(raw)
            else:
                raise BadRequest(f"{what} must be an integer, got {raw!r}")
            if not -2 ** 63 <= value < 2 ** 63:
                raise BadRequest(f"{what} is out of the int64 range")
            return value
        if not isinstance(raw, str) or not raw:
            raise BadRequest(f"{what} must be a non-empty string, got {raw!r}")
        return raw


def _parse_time(value, i: int) -> int:
    """Microseconds since the epoch (UTC) from an ISO string or epoch seconds."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return int(round(value * 1_000_000))
    if isinstance(value, str):
        try:
            t = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if t.tzinfo is None:
                t = t.replace(tzinfo=dt.timezone.utc)
            delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
            return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    raise BadRequest(f"event {i}: time must be an ISO 8601 string or epoch seconds, got {value!r}",
                     index=i)


def _json(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.datetime64):
        return np.datetime_as_string(value, unit="s") + "Z"
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def _timed(body: dict, status: int, spent: float) -> JSONResponse:
    return JSONResponse(body, status_code=status,
                        headers={"Server-Timing": f"fastengage;dur={spent * 1e3:.4f}"})


# -- endpoints ---------------------------------------------------------------------------------
async def post_events(request: Request) -> JSONResponse:
    engine: Engine = request.app.state.engine
    try:
        payload = await request.json()
    except Exception:
        raise BadRequest("body must be JSON") from None
    events = payload.get("events", payload) if isinstance(payload, dict) else payload
    if isinstance(events, dict):
        events = [events]
    if not isinstance(events, list) or not events:
        raise BadRequest('body must be an event object or {"events": [...]} with at least one')
    if len(events) > MAX_EVENTS_PER_REQUEST:
        raise BadRequest(f"at most {MAX_EVENTS_PER_REQUEST} events per request", status=413)
    parsed = [engine.parse_event(e, i) for i, e in enumerate(events)]  # all or nothing
    pending = engine.add_events(parsed)
    t0 = time.perf_counter()
    if request.query_params.get("wait", "false").lower() in ("1", "true", "yes"):
        await engine.flush()
        pending = 0
    return _timed({"accepted": len(parsed), "pending": pending}, 202, time.perf_counter() - t0)


async def get_features(request: Request) -> JSONResponse:
    engine: Engine = request.app.state.engine
    customer = engine.parse_customer(request.path_params["customer"])
    t0 = time.perf_counter()
    snap = engine.snapshot
    row = snap.index.get(customer)
    if row is None:
        raise BadRequest("unknown customer: no purchase recorded", status=404, customer=customer)
    features = {name: _json(col[row]) for name, col in snap.columns.items()}
    return _timed({"customer": customer, "as_of": snap.as_of, "features": features}, 200,
                  time.perf_counter() - t0)


async def get_recommendations(request: Request) -> JSONResponse:
    engine: Engine = request.app.state.engine
    customer = engine.parse_customer(request.path_params["customer"])
    raw_n = request.query_params.get("n", "10")
    if not raw_n.isdigit() or not 1 <= int(raw_n) <= MAX_N:
        raise BadRequest(f"n must be an integer in 1..{MAX_N}, got {raw_n!r}")
    n = int(raw_n)
    models = engine.models  # read once: a reload cannot change it under this request
    t0 = time.perf_counter()
    try:
        items, scores = models.recommender.recommend_one(customer, n=n)
        body = {"customer": customer, "items": [_json(x) for x in items],
                "scores": [float(s) for s in scores], "fallback": None}
    except FastEngageError:  # not in the model: the documented fallback
        body = {"customer": customer, "items": [_json(x) for x in models.popular[:n]],
                "scores": None, "fallback": "popular"}
    body["model_version"] = models.version
    return _timed(body, 200, time.perf_counter() - t0)


async def get_churn(request: Request) -> JSONResponse:
    engine: Engine = request.app.state.engine
    customer = engine.parse_customer(request.path_params["customer"])
    models, snap = engine.models, engine.snapshot
    t0 = time.perf_counter()
    row = snap.index.get(customer)
    if row is None:
        body = {"customer": customer, "probability": snap.churn_mean, "fallback": "population"}
    else:
        x = np.array([[snap.columns[f][row] for f in CHURN_FEATURES]], dtype=np.float64)
        body = {"customer": customer, "probability": float(models.churn.predict(x)[0, -1]),
                "fallback": None}
    body["model_version"] = models.version
    return _timed(body, 200, time.perf_counter() - t0)


async def post_reload(request: Request) -> JSONResponse:
    engine: Engine = request.app.state.engine
    t0 = time.perf_counter()
    try:
        models = await engine.reload()
    except (FastEngageError, OSError) as exc:  # a bad file: keep serving the old models
        raise BadRequest(f"reload failed, previous models kept: {exc}", status=409) from None
    return _timed({"model_version": models.version, "loaded_at": models.loaded_at}, 200,
                  time.perf_counter() - t0)


async def get_health(request: Request) -> JSONResponse:
    engine: Engine = request.app.state.engine
    return JSONResponse({"status": "ok", "customers": len(engine.snapshot.index),
                         "as_of": engine.snapshot.as_of, "model_version": engine.models.version,
                         **engine.counters})


async def _bad_request(request: Request, exc: BadRequest) -> JSONResponse:
    return JSONResponse({"error": str(exc), "detail": exc.detail or None}, status_code=exc.status)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse({"error": exc.detail, "detail": None}, status_code=exc.status_code)


async def _input_error(request: Request, exc: FastEngageError) -> JSONResponse:
    return JSONResponse({"error": str(exc), "detail": None}, status_code=400)


def create_app(model_dir: str | None = None, *, flush_interval: float = 0.2,
               save_interval: float = 30.0) -> Starlette:
    """The application; ``model_dir`` defaults to ``$FASTENGAGE_SERVICE_DIR``."""
    model_dir = model_dir or os.environ.get("FASTENGAGE_SERVICE_DIR", "models")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        engine = await asyncio.to_thread(Engine, model_dir, flush_interval, save_interval)
        app.state.engine = engine
        task = asyncio.create_task(engine.run_background())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await engine.flush()  # nothing accepted is lost
            await asyncio.to_thread(engine.save_state)

    routes = [Route("/events", post_events, methods=["POST"]),
              Route("/customers/{customer}/features", get_features),
              Route("/customers/{customer}/recommendations", get_recommendations),
              Route("/customers/{customer}/churn", get_churn),
              Route("/admin/reload", post_reload, methods=["POST"]),
              Route("/health", get_health)]
    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={BadRequest: _bad_request, HTTPException: _http_error,
                                         FastEngageError: _input_error})
