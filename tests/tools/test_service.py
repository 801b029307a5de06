"""The reference service (examples/service/app.py), in process: every endpoint, every error path,
reload without dropped requests, state saved periodically and at shutdown."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import threading
import time
import warnings

import numpy as np
import pyarrow.compute as pc
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
with warnings.catch_warnings():  # starlette >= 1.0 suggests httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

import fastengage as fe  # noqa: E402
from fastengage.datasets import load_online_retail  # noqa: E402

SERVICE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "service")
ROWS = 20_000


def _load(name):
    spec = importlib.util.spec_from_file_location(f"fe_service_{name}",
                                                  os.path.join(SERVICE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


app_module = _load("app")
prepare_module = _load("prepare")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    d = tmp_path_factory.mktemp("service-models")
    prepare_module.prepare(str(d), rows=ROWS, factors=8, iterations=2)
    return str(d)


@pytest.fixture()
def model_dir(prepared, tmp_path):
    d = tmp_path / "models"
    shutil.copytree(prepared, d)
    return str(d)


def _retail():
    t = load_online_retail()
    return t.filter(pc.is_valid(t["CustomerID"])).slice(0, ROWS)


def _json_error(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body["error"], str) and body["error"]
    return body


def test_reads_and_fallbacks(model_dir):
    retail = _retail()
    expected = fe.rfm(retail, customer="CustomerID", time="InvoiceDate", amount="amount",
                      order="InvoiceNo")
    known = expected["CustomerID"][0].as_py()
    with TestClient(app_module.create_app(model_dir)) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["customers"] == expected.num_rows

        r = client.get(f"/customers/{known}/features")
        assert r.status_code == 200 and "fastengage;dur=" in r.headers["server-timing"]
        got = r.json()["features"]
        row = expected.slice(0, 1).to_pylist()[0]
        for name in ("recency_days", "tenure_days", "frequency", "purchase_days", "segment"):
            assert got[name] == row[name], name
        assert got["monetary_total"] == pytest.approx(row["monetary_total"], rel=1e-12)

        r = client.get(f"/customers/{known}/recommendations?n=7").json()
        model = fe.recommend.ALS.load(os.path.join(model_dir, "als.fe"))
        items, scores = model.recommend_one(known, n=7)
        assert r["fallback"] is None and r["items"] == items.tolist()
        assert r["scores"] == pytest.approx(scores.tolist(), rel=1e-6)
        assert len(client.get(f"/customers/{known}/recommendations").json()["items"]) == 10

        r = client.get(f"/customers/{known}/churn").json()
        churn = fe.scoring.load_model(os.path.join(model_dir, "churn.onnx"))
        x = np.array([[row[f] for f in app_module.CHURN_FEATURES]], dtype=np.float64)
        assert r["fallback"] is None and r["probability"] == pytest.approx(
            float(churn.predict(x)[0, -1]), rel=1e-6)

        # unknown customers: documented fallbacks, never a 500
        _json_error(client.get("/customers/999999999/features"), 404)
        r = client.get("/customers/999999999/recommendations?n=3").json()
        assert r["fallback"] == "popular" and len(r["items"]) == 3 and r["scores"] is None
        r = client.get("/customers/999999999/churn").json()
        all_x = np.column_stack([expected[f].to_numpy().astype(np.float64)
                                 for f in app_module.CHURN_FEATURES])
        assert r["fallback"] == "population"
        assert r["probability"] == pytest.approx(float(churn.predict(all_x)[:, -1].mean()))

        # bad requests: 4xx with a JSON body
        for url in ("/customers/abc/features", "/customers/1.5/churn",
                    "/customers/99999999999999999999/recommendations",
                    f"/customers/{known}/recommendations?n=0",
                    f"/customers/{known}/recommendations?n=abc",
                    f"/customers/{known}/recommendations?n=1000"):
            _json_error(client.get(url), 400)
        _json_error(client.get("/nowhere"), 404)
        _json_error(client.post(f"/customers/{known}/churn"), 405)
        _json_error(client.get("/events"), 405)


def _event(customer, amount=10.0, order="S1", when="2011-12-31T10:00:00"):
    return {"customer": customer, "time": when, "amount": amount, "order": order}


def test_events_feed_the_state_and_bad_events_are_rejected(model_dir):
    new = 99_999_001
    with TestClient(app_module.create_app(model_dir)) as client:
        before = client.get("/health").json()["customers"]
        r = client.post("/events?wait=true", json={"events": [
            _event(new, 10.0, "S1"), _event(new, 5.5, "S2", "2011-12-30T09:00:00"),
            _event(new, 2.0, "S2", 1325322000.0)]})
        assert r.status_code == 202 and r.json() == {"accepted": 3, "pending": 0}
        f = client.get(f"/customers/{new}/features").json()["features"]
        assert f["frequency"] == 2 and f["monetary_total"] == pytest.approx(17.5)
        assert client.get("/health").json()["customers"] == before + 1
        assert client.get(f"/customers/{new}/churn").json()["fallback"] is None
        # a single event object is accepted too
        assert client.post("/events?wait=1", json=_event(new, 1.0, "S3")).status_code == 202
        assert client.get(f"/customers/{new}/features").json()["features"]["frequency"] == 3

        bad = [
            b"not json",
            json.dumps({"events": []}).encode(),
            json.dumps({"events": [_event(True)]}).encode(),
            json.dumps({"events": [_event("abc")]}).encode(),
            json.dumps({"events": [_event(new, "ten")]}).encode(),
            b'{"events": [{"customer": 1, "time": "2011-12-01", "amount": NaN, "order": "x"}]}',
            json.dumps({"events": [_event(new, when="yesterday")]}).encode(),
            json.dumps({"events": [{"customer": new, "time": "2011-12-01", "amount": 1.0}]}).encode(),
            json.dumps({"events": [dict(_event(new), colour="red")]}).encode(),
            json.dumps({"events": [_event(new), 7]}).encode(),
            json.dumps([1, 2]).encode(),
        ]
        for body in bad:
            _json_error(client.post("/events?wait=true", content=body,
                                    headers={"content-type": "application/json"}), 400)
        too_many = {"events": [_event(new)] * (app_module.MAX_EVENTS_PER_REQUEST + 1)}
        _json_error(client.post("/events", json=too_many), 413)
        # all-or-nothing: the valid first event of a rejected request was not taken
        assert client.get(f"/customers/{new}/features").json()["features"]["frequency"] == 3


def test_reload_drops_no_request(model_dir):
    customers = [int(c) for c in _retail()["CustomerID"].unique().to_pylist()[:20]]
    with TestClient(app_module.create_app(model_dir)) as client:
        statuses, stop = [], threading.Event()

        def hammer():
            i = 0
            while not stop.is_set():
                c = customers[i % len(customers)]
                statuses.append(client.get(f"/customers/{c}/recommendations?n=5").status_code)
                statuses.append(client.get(f"/customers/{c}/churn").status_code)
                i += 1

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        versions = [client.post("/admin/reload").json()["model_version"] for _ in range(3)]
        time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join()
        assert versions == [2, 3, 4]
        assert len(statuses) > 20 and set(statuses) == {200}

        # a corrupt model file: 409, the previous models keep serving
        path = os.path.join(model_dir, "als.fe")
        good = open(path, "rb").read()
        with open(path, "wb") as fh:
            fh.write(good[: len(good) // 2])
        _json_error(client.post("/admin/reload"), 409)
        r = client.get(f"/customers/{customers[0]}/recommendations").json()
        assert r["model_version"] == 4 and r["fallback"] is None


def test_state_saved_periodically_and_at_shutdown(model_dir):
    path = os.path.join(model_dir, "rfm-state.fe")
    a, b = 99_999_101, 99_999_102
    app = app_module.create_app(model_dir, flush_interval=0.02, save_interval=0.05)
    with TestClient(app) as client:
        assert client.post("/events", json=_event(a)).json()["accepted"] == 1  # no wait
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            saved = fe.RFMState.load(path).to_table()
            if a in saved["CustomerID"].to_pylist():
                break
            time.sleep(0.05)
        else:
            pytest.fail("the periodic save never wrote the new event")
        assert not [f for f in os.listdir(model_dir) if f.endswith(".tmp")]
        # the shutdown path: an event accepted but not yet flushed when the service stops
        app.state.engine.flush_interval = 3600
        time.sleep(0.1)  # let the background loop enter its (now hour-long) sleep
        client.post("/events", json=_event(b))
        assert client.get("/health").json()["events"] == 2
    saved = fe.RFMState.load(path).to_table()["CustomerID"].to_pylist()
    assert a in saved and b in saved
