"""rfm() and scoring from many threads at once equal serial results, whatever Numba's threading
layer. Since these paths became compiled C with their own worker threads (no Numba parallel
kernel starts), the layer may never be initialised: the scripts then print "layer none"."""
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import threading, numpy as np, pyarrow as pa, numba
    import fastengage as fe
    rng = np.random.default_rng(0)
    # 140k rows: above RFM_SERIAL_MAX_ROWS, so rfm() launches its parallel kernels
    tables = [pa.table({"c": rng.integers(0, 90_000, 140_000),
                        "t": pa.array(rng.integers(0, 10**9, 140_000) * 10**6, pa.timestamp("us")),
                        "a": rng.random(140_000)}) for _ in range(8)]
    serial = [fe.rfm(t, customer="c", time="t", amount="a") for t in tables]
    out = [None] * 8
    def work(i):
        for _ in range(3):
            out[i] = fe.rfm(tables[i], customer="c", time="t", amount="a")
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    [t.start() for t in threads]; [t.join() for t in threads]
    assert all(o.equals(s) for o, s in zip(out, serial))
    try:
        print("layer", numba.threading_layer())
    except ValueError:  # no Numba parallel kernel ran in this process
        print("layer none")
""")


@pytest.mark.parametrize("layer", ["default", "workqueue"])
def test_rfm_from_eight_threads_equals_serial(layer):
    env = None
    if layer != "default":
        import os

        env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if layer != "default":
        assert f"layer {layer}" in proc.stdout or "layer none" in proc.stdout


SCORING_SCRIPT = textwrap.dedent("""
    import threading, pyarrow as pa, numba
    import fastengage as fe
    from fastengage.datasets import data_path, load_online_retail
    from fastengage.scoring import load_model
    retail = load_online_retail()
    feats = fe.churn_dataset(retail, customer="CustomerID", time="InvoiceDate", amount="amount",
                             order="InvoiceNo", cutoff="2011-09-01", horizon=90,
                             drop_null_customers=True)
    feats = pa.concat_tables([feats] * 30)  # ~100k rows: the parallel tree kernel runs
    model = load_model(data_path("churn_hgb.onnx"))
    serial = model.score(feats, id="CustomerID")
    out = [None] * 8
    def work(i):
        for _ in range(3):
            out[i] = model.score(feats, id="CustomerID")
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    [t.start() for t in threads]; [t.join() for t in threads]
    assert all(o.equals(serial) for o in out)
    try:
        print("layer", numba.threading_layer())
    except ValueError:  # no Numba parallel kernel ran in this process
        print("layer none")
""")


def test_scoring_from_eight_threads_under_workqueue():
    import os

    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    proc = subprocess.run([sys.executable, "-c", SCORING_SCRIPT], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "layer workqueue" in proc.stdout or "layer none" in proc.stdout
