"""Issue #16 prerequisite: fitted CLV models pickle through the safe model file (the pickle
carries the bundle bytes, rebuilt by the validating loader; ``load()`` never unpickles).
Issue #14.3: ``forget`` on CLV models, which hold population parameters only (a documented
no-op with an audit record), and the per-customer summary table through ``forget_rows``."""
import concurrent.futures as cf
import io
import multiprocessing
import pickle

import numpy as np
import pytest

from fastengage import clv
from fastengage.errors import ModelFormatError
from fastengage.privacy.forget import AuditRecord, find_traces, forget_everywhere, forget_rows
from test_contract import CASES, MODELS


@pytest.fixture(scope="module")
def cdnow():
    s = clv.datasets.load_cdnow_summary()
    return tuple(s[c].to_numpy().astype(float) for c in ("x", "t_x", "T", "zbar"))


@pytest.fixture(scope="module")
def fitted(cdnow):
    return {cls: CASES[cls][0](cls, cdnow) for cls in MODELS}


def _predict(model, shape=(7,)):
    _, predict, inputs, _ = CASES[type(model)]
    return predict(model, *inputs(shape))


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_pickle_round_trip_is_the_saved_model(cls, fitted):
    m = fitted[cls]
    raw = pickle.dumps(m)
    buf = io.BytesIO()
    m.save(buf)
    assert buf.getvalue() in raw   # the pickle carries the model file, nothing else of weight
    back = pickle.loads(raw)
    assert type(back) is cls and back.params_ == m.params_ and back.n_ == m.n_
    assert back.log_likelihood_ == m.log_likelihood_ and back.penalizer == m.penalizer
    np.testing.assert_array_equal(back.covariance_, m.covariance_)
    a, b = _predict(m), _predict(back)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_unfitted_pickles_as_its_penalizer():
    back = pickle.loads(pickle.dumps(clv.ParetoNBD(penalizer=0.25)))
    assert type(back) is clv.ParetoNBD and back.penalizer == 0.25 and back.params_ is None


def test_a_tampered_pickle_goes_through_the_loader(fitted):
    m = fitted[clv.BetaGeo]
    raw = pickle.dumps(m)
    buf = io.BytesIO()
    m.save(buf)
    good = buf.getvalue()
    # the model file inside the pickle, made unreadable (same length, so the pickle stays valid)
    bad = raw.replace(good, b"\0" * len(good))
    with pytest.raises(ModelFormatError):
        pickle.loads(bad)
    # and the class is checked: the bytes of a BG/NBD file are no Pareto/NBD
    from fastengage.clv._base import _model_from_bytes
    with pytest.raises(ModelFormatError):
        _model_from_bytes(clv.ParetoNBD, good)
    with pytest.raises(ModelFormatError):
        _model_from_bytes(dict, good)


def _alive_chunk(model, x, tx, T):
    return model.probability_alive(x, tx, T)


def test_joblib_processes(fitted, cdnow):
    joblib = pytest.importorskip("joblib")
    m = fitted[clv.ParetoNBD]
    x, tx, T, _ = cdnow
    chunks = [(x[i::2], tx[i::2], T[i::2]) for i in range(2)]
    out = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(_alive_chunk)(m, *c) for c in chunks)
    for got, c in zip(out, chunks):
        np.testing.assert_array_equal(got, _alive_chunk(m, *c))


def test_multiprocessing_spawn(fitted, cdnow):
    m = fitted[clv.BetaGeo]
    x, tx, T, _ = (a[:200] for a in cdnow)
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        got = pool.submit(_alive_chunk, m, x, tx, T).result(timeout=600)
    np.testing.assert_array_equal(got, _alive_chunk(m, x, tx, T))


# -- forget ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_forget_is_an_audited_no_op(cls, fitted):
    m = fitted[cls]
    before = io.BytesIO()
    m.save(before)
    params = dict(m.params_)
    rec = m.forget(["cust-9f2c7e", "cust-41aa03"], request="ticket-7")
    assert isinstance(rec, AuditRecord)
    assert rec.object == cls.__name__ and rec.request == "ticket-7"
    assert rec.customers_requested == 2 and rec.customers_found == 0 and rec.rows_removed == 0
    # the parameters were fitted on every customer: not exact, and the notes say how to fix it
    assert rec.exact is False and "refit" in rec.notes
    assert "cust-9f2c7e" not in rec.to_json()
    after = io.BytesIO()
    m.save(after)
    assert m.params_ == params and after.getvalue() == before.getvalue()


def test_summary_rows_forgotten_and_model_refit_holds_no_trace():
    """The per-customer data of CLV is the summary table (plain Arrow): ``forget_rows`` removes
    the customer's row, and a model refit on it equals one fitted without that customer; no
    saved or pickled byte of the model names the customer."""
    import pyarrow as pa
    log = clv.datasets.load_cdnow_sample()
    ids = log.column("customer_id").to_numpy()
    big = 7_310_000_000_000_000_123
    log = log.set_column(log.schema.get_field_index("customer_id"), "customer_id",
                         pa.array(ids.astype(np.int64) + big - int(ids[0])))
    target = int(log.column("customer_id")[0].as_py())
    s = clv.summary(log, customer="customer_id", time="date", as_of="1997-09-30",
                    freq="D", freq_multiplier=7)
    kept, rec = forget_rows(s, [target], customer="customer_id")
    assert rec.customers_found == 1 and rec.rows_removed == 1 and kept.num_rows == s.num_rows - 1
    cols = lambda t: [t[c].to_numpy() for c in ("frequency", "recency", "T")]   # noqa: E731
    refit = clv.ParetoNBD().fit(*cols(kept))
    mask = s["customer_id"].to_numpy() != target
    direct = clv.ParetoNBD().fit(*(c[mask] for c in cols(s)))
    assert refit.params_ == direct.params_
    records = forget_everywhere([refit], [target], request="r1")
    assert records[0].customers_found == 0
    buf = io.BytesIO()
    refit.save(buf)
    assert find_traces(buf.getvalue(), [target]) == []
    assert find_traces(pickle.dumps(refit), [target]) == []
    assert find_traces(pickle.dumps(kept), [target]) == []
