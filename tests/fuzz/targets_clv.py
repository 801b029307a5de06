"""Fuzz targets of the saved CLV models (see harness.py): each loads a model of one type from the
mutated bytes and runs its predictions, so a value that passes the loader but breaks a kernel
(a crash, an out-of-bounds access under NUMBA_BOUNDSCHECK=1, an exception other than
ModelFormatError/InputError) is a finding. Seeds: a fitted, saved model of each type."""
from __future__ import annotations

import functools
import io

import numpy as np

from harness import Target

# a few ordinary histories and some extreme ones (no purchase, T = 0, huge x and T)
_X = np.array([0.0, 1.0, 3.0, 0.0, 40.0, 1e4])
_TX = np.array([0.0, 2.0, 10.0, 0.0, 39.0, 1e4])
_T = np.array([5.0, 30.0, 38.0, 0.0, 39.0, 1e4])


def _rft(m):
    m.probability_alive(_X, _TX, _T)
    m.probability_alive(_X, _TX, _T, future_t=10.0)
    m.expected_purchases(10.0, _X, _TX, _T)
    m.individual_log_likelihood(_X, _TX, _T)
    m.population_expected_purchases(np.array([0.0, 5.0, 52.0]))
    m.probability_of_n_purchases(np.array([1.0, 39.0]), np.array([0.0, 3.0]))


def _bgbb(m):
    x, tx, n = np.array([0.0, 1.0, 3.0, 6.0]), np.array([0.0, 2.0, 5.0, 6.0]), np.full(4, 6.0)
    m.probability_alive(x, tx, n)
    m.expected_purchases(5, x, tx, n)
    m.individual_log_likelihood(x, tx, n)


def _gg(m):
    x, v = np.array([1.0, 2.0, 10.0]), np.array([5.0, 30.0, 1e4])
    m.expected_spend(x, v)
    m.individual_log_likelihood(x, v)


def _sbg(m):
    t = np.array([0.0, 1.0, 5.0, 12.0])
    m.survival(t)
    m.retention(t)
    m.derl(0.1, t)


@functools.lru_cache(maxsize=None)
def _fitted():
    from fastengage import clv
    from fastengage.clv.datasets import SBG_COHORTS, load_cdnow_summary, load_donations

    s = load_cdnow_summary()
    x, tx, T, z = (s[c].to_numpy().astype(float) for c in ("x", "t_x", "T", "zbar"))
    return {
        "betageo": (clv.BetaGeo().fit(x, tx, T), _rft),
        "modifiedbetageo": (clv.ModifiedBetaGeo().fit(x, tx, T), _rft),
        "paretonbd": (clv.ParetoNBD().fit(x, tx, T), _rft),
        "bgbb": (clv.BetaGeoBetaBinom().fit(load_donations(), weights_col="weights"), _bgbb),
        "gammagamma": (clv.GammaGamma().fit(x, z), _gg),
        "sbg": (clv.ShiftedBetaGeo().fit(SBG_COHORTS["regular"][:8]), _sbg),
    }


def _target(name: str) -> Target:
    def run(data: bytes):
        model, predict = _fitted()[name]
        predict(type(model).load(io.BytesIO(data)))

    def seeds():
        model, _ = _fitted()[name]
        buf = io.BytesIO()
        model.save(buf)
        return [buf.getvalue()]

    return Target(f"clv_{name}", run, seeds, kind="zip")


TARGETS = [_target(n) for n in ("betageo", "modifiedbetageo", "paretonbd", "bgbb", "gammagamma",
                                "sbg")]
