"""The contract every CLV model keeps, run over EVERY model (a new model without a case here
fails ``test_every_model_has_a_case``): fit, the Newton path where the spec declares it, output
shapes, save/load round trip (bit-identical predictions), finite predictions at extreme
histories, thread-count invariance."""
import dataclasses
import io

import numpy as np
import pytest

from fastengage import clv
from fastengage.clv._base import BaseModel
from fastengage.clv._spec import ModelSpec, TransactionKernels
from fastengage.clv.datasets import SBG_COHORTS, load_cdnow_summary, load_donations


@pytest.fixture(scope="module")
def cdnow():
    s = load_cdnow_summary()
    return tuple(s[c].to_numpy().astype(float) for c in ("x", "t_x", "T", "zbar"))


# -- one case per model: how to fit it, and its predictions for (broadcast) inputs -------------
def _rft_fit(cls, d, **kw):
    return cls(**kw).fit(d[0], d[1], d[2])


def _rft_predict(m, x, tx, T, **kw):
    return {"alive": m.probability_alive(x, tx, T, **kw),
            "alive_future": m.probability_alive(x, tx, T, future_t=10.0, **kw),
            "expected": m.expected_purchases(10.0, x, tx, T, **kw),
            "ll": m.individual_log_likelihood(x, tx, T, **kw)}


def _rft_extremes():
    x = np.array([0.0, 0.0, 1.0, 1e4, 1e4, 50.0, 3.0, 0.0, 2.0])
    tx = np.array([0.0, 0.0, 1e-9, 1e4, 1.0, 1e5, 1e6, 0.0, 2.0])
    T = np.array([0.0, 1e6, 1e-9, 1e4, 1e4, 1e5, 1e6, 1e-12, 2.0])
    return x, tx, T


def _rft_inputs(shape):
    rng = np.random.default_rng(0)
    T = rng.uniform(1, 40, shape)
    tx = T * rng.uniform(0, 1, shape)
    x = np.where(tx > 0, rng.integers(0, 10, shape), 0).astype(float)
    return x, tx, T


def _gg_fit(cls, d, **kw):
    return cls(**kw).fit(d[0], d[3])


def _gg_predict(m, x, mv, **kw):
    return {"spend": m.expected_spend(x, mv),
            "ll": m.individual_log_likelihood(np.ravel(x), np.ravel(mv), **kw)}


def _bgbb_fit(cls, _d, **kw):
    d = load_donations()
    return cls(**kw).fit(d, weights_col="weights")


def _bgbb_predict(m, x, tx, n, **kw):
    return {"alive": m.probability_alive(x, tx, n, **kw),
            "expected": m.expected_purchases(5, x, tx, n, **kw),
            "ll": m.individual_log_likelihood(x, tx, n, **kw)}


def _bgbb_inputs(shape):
    rng = np.random.default_rng(0)
    n = rng.integers(1, 12, shape).astype(float)
    tx = np.floor(n * rng.uniform(0, 1, shape))
    x = np.floor(tx * rng.uniform(0, 1, shape))
    return x, tx, n


def _sbg_fit(cls, _d, **kw):
    return cls(**kw).fit(SBG_COHORTS["regular"][:8])


def _sbg_predict(m, t, **kw):
    return {"survival": m.survival(t, **kw), "retention": m.retention(t),
            "derl": m.derl(0.1, t, **kw)}


CASES = {
    clv.BetaGeo: (_rft_fit, _rft_predict, _rft_inputs, _rft_extremes),
    clv.ModifiedBetaGeo: (_rft_fit, _rft_predict, _rft_inputs, _rft_extremes),
    clv.ParetoNBD: (_rft_fit, _rft_predict, _rft_inputs, _rft_extremes),
    clv.GammaGamma: (_gg_fit, _gg_predict,
                     lambda shape: (np.full(shape, 3.0), np.random.default_rng(0).uniform(1, 50, shape)),
                     lambda: (np.array([1.0, 1e6, 1.0, 1e6, 5.0]), np.array([1e-9, 1e-9, 1e9, 1e9, 3.0]))),
    clv.BetaGeoBetaBinom: (_bgbb_fit, _bgbb_predict, _bgbb_inputs,
                           lambda: (np.array([0.0, 0.0, 1000.0, 1.0]), np.array([0.0, 0.0, 1000.0, 1.0]),
                                    np.array([0.0, 1000.0, 1000.0, 1000.0]))),
    clv.ShiftedBetaGeo: (_sbg_fit, _sbg_predict, lambda shape: (np.arange(np.prod(shape), dtype=float)
                                                                .reshape(shape),),
                         lambda: (np.array([0.0, 1.0, 1e6, 1e9]),)),
}
MODELS = list(CASES)


def _all_models():
    seen, todo = set(), [BaseModel]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__dict__.get("spec") is not None and sub.__module__.startswith("fastengage."):
                seen.add(sub)
    return seen


@pytest.fixture(scope="module")
def fitted(cdnow):
    return {cls: CASES[cls][0](cls, cdnow) for cls in MODELS}


def test_every_model_has_a_case():
    assert _all_models() == set(MODELS)


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_declares_a_typed_contract(cls):
    assert isinstance(cls.spec, ModelSpec) and cls.param_names == cls.spec.param_names
    assert cls.spec.kind.startswith("clv.")
    if issubclass(cls, clv.BetaGeo) or cls is clv.ParetoNBD:
        assert isinstance(cls.kernels, TransactionKernels)
    # a model that is not a ModelSpec is refused when the class is created
    with pytest.raises(TypeError):
        type("Broken", (cls,), {"spec": ("r", "alpha")})


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_fit(cls, fitted):
    m = fitted[cls]
    k = len(cls.param_names)
    assert list(m.params_) == list(cls.param_names)
    assert all(np.isfinite(v) and v > 0 for v in m.params_.values())
    assert np.isfinite(m.log_likelihood_) and m.n_ > 0
    assert m.covariance_.shape == (k, k)
    assert set(m.standard_errors_) == set(cls.param_names)
    assert np.all(np.isfinite(list(m.standard_errors_.values())))
    ci = m.confidence_intervals()
    assert ci.num_rows == k and ci.column("lower").to_pylist() < ci.column("upper").to_pylist()


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_newton_path_runs_where_declared(cls, fitted, cdnow):
    """A model whose spec declares Newton steps must converge by them (a silent fallback to
    quasi-Newton fails here), with the declared number of passes per step."""
    m = fitted[cls]
    if cls.spec.newton is None:
        assert m.fit_info_["method"] == "quasi-newton"
        return
    assert m.fit_info_["method"] == "newton", m.fit_info_["attempts"]
    per_step = cls.spec.newton.passes_per_step(len(cls.param_names))
    assert per_step == (1 if cls.spec.newton.hessian is not None else 1 + len(cls.param_names))
    assert m.fit_info_["passes"] == m.fit_info_["evaluations"] * per_step
    # and the quasi-Newton fallback finds the same maximum
    slow = type("QN", (cls,), {"spec": dataclasses.replace(cls.spec, newton=None)})
    s = CASES[cls][0](slow, cdnow)
    assert s.fit_info_["method"] == "quasi-newton"
    for k in cls.param_names:
        assert s.params_[k] == pytest.approx(m.params_[k], rel=1e-4), k


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("shape", [(7,), (2, 3)])
def test_output_shapes(cls, fitted, shape):
    _, predict, inputs, _ = CASES[cls]
    for name, out in predict(fitted[cls], *inputs(shape)).items():
        expected = (int(np.prod(shape)),) if name == "ll" and cls is clv.GammaGamma else shape
        assert out.shape == expected and out.dtype == np.float64, name
        assert np.all(np.isfinite(out)), name


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_save_load_round_trip(cls, fitted, tmp_path):
    m = fitted[cls]
    _, predict, inputs, _ = CASES[cls]
    args = inputs((9,))
    buf = io.BytesIO()
    m.save(buf)
    m.save(tmp_path / "m.fe")
    for src in (io.BytesIO(buf.getvalue()), tmp_path / "m.fe", str(tmp_path / "m.fe")):
        back = cls.load(src)
        assert back.params_ == m.params_ and back.penalizer == m.penalizer
        assert back.log_likelihood_ == m.log_likelihood_ and back.n_ == m.n_
        np.testing.assert_array_equal(back.covariance_, m.covariance_)
        a, b = predict(m, *args), predict(back, *args)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    other = MODELS[(MODELS.index(cls) + 1) % len(MODELS)]
    from fastengage.errors import ModelFormatError
    with pytest.raises(ModelFormatError):
        other.load(io.BytesIO(buf.getvalue()))


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_finite_predictions_at_extreme_histories(cls, fitted):
    _, predict, _, extremes = CASES[cls]
    for name, out in predict(fitted[cls], *extremes()).items():
        assert np.all(np.isfinite(out)), (name, out)


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_thread_count_does_not_change_anything(cls, cdnow, fitted):
    a = _fit_threads(cls, cdnow, 1)
    b = _fit_threads(cls, cdnow, 2)
    assert a.params_ == b.params_ and a.log_likelihood_ == b.log_likelihood_
    assert a.params_ == fitted[cls].params_
    _, predict, inputs, _ = CASES[cls]
    args = inputs((20,))
    pa_, pb = predict(a, *args, n_threads=1), predict(a, *args, n_threads=2)
    for k in pa_:
        np.testing.assert_array_equal(pa_[k], pb[k])


def _fit_threads(cls, d, n):
    if cls is clv.GammaGamma:
        return cls().fit(d[0], d[3], n_threads=n)
    if cls is clv.BetaGeoBetaBinom:
        return cls().fit(load_donations(), weights_col="weights", n_threads=n)
    if cls is clv.ShiftedBetaGeo:
        return cls().fit(SBG_COHORTS["regular"][:8], n_threads=n)
    return cls().fit(d[0], d[1], d[2], n_threads=n)
