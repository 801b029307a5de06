"""Always-valid sequential readouts (mixture SPRT) and the Bayesian Beta-Binomial readout."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from .._io.sources import time_to_us
from ..errors import InputError
from ..kernels.experiments.native import expected_loss, prob_b_beats_a
from . import stats as st
from ._aggregate import codes, combine, load, moments, value_matrix

#: default mixing standard deviation of the mSPRT prior, in units of the metric's pooled std
DEFAULT_TAU_SD = 0.1
_US_PER_DAY = 86_400_000_000


def msprt(diff, var, tau, alpha=0.05):
    """Normal-mixture SPRT (Johari, Pekelis & Walsh) at one look, vectorised.

    ``diff`` is the estimated treatment - control difference, ``var`` its variance
    (var_c/n_c + var_t/n_t), ``tau`` the std of the N(0, tau^2) mixing prior on the effect.
    Returns (likelihood ratio, p-value at this look = min(1, 1/ratio), interval half-width at
    level alpha). The always-valid p-value is the running minimum of the per-look p-values and
    the always-valid interval the running intersection of the intervals."""
    diff, var = np.asarray(diff, dtype=np.float64), np.asarray(var, dtype=np.float64)
    t2 = np.asarray(tau, dtype=np.float64) ** 2
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        log_lr = 0.5 * np.log(var / (var + t2)) + diff ** 2 * t2 / (2 * var * (var + t2))
        half = np.sqrt(2 * var * (var + t2) / t2 * (np.log(1 / alpha) + 0.5 * np.log((var + t2) / var)))
    ratio = np.exp(log_lr)
    return ratio, np.minimum(1.0, np.exp(-log_lr)), half


def sequential(data, *, variant: str, control, treatment=None, metric: str, time: str,
               tau: float | None = None, alpha: float = 0.05, n_threads: int | None = None
               ) -> pa.Table:
    """Daily cumulative always-valid readout of one metric, treatment - control.

    One row per day (UTC) with data: cumulative ``n_control``/``n_treatment``, ``diff``, the
    always-valid ``p_value`` (running minimum of the mSPRT p-values: peeking every day keeps the
    false-positive rate at most ``alpha``), the always-valid interval ``ci_low``/``ci_high``
    and ``decision`` (``"reject"`` once the p-value is below alpha). ``tau`` is the mixing
    std of the effect (default 0.1 x the metric's pooled std: effects of about a tenth of a
    standard deviation are detected soonest)."""
    table = load(data, {"variant": variant, "time": time}, [metric])
    var_code, var_values = codes(table.column(variant), variant, "variant")
    names = [str(v) for v in var_values.to_pylist()]
    if str(control) not in names:
        raise InputError(f"control {control!r} is not a value of column {variant!r}: {names}")
    others = [n for n in names if n != str(control)]
    if not others:
        raise InputError(f"column {variant!r} holds one variant only ({names[0]!r})")
    if treatment is None:
        if len(others) != 1:
            raise InputError(f"several treatments {others}: pass treatment=")
        treatment = others[0]
    if str(treatment) not in names:
        raise InputError(f"treatment {treatment!r} is not a value of column {variant!r}")
    c, t = names.index(str(control)), names.index(str(treatment))
    day = np.floor_divide(time_to_us(table.column(time), time), _US_PER_DAY)
    first = day.min()
    n_days = int(day.max() - first) + 1
    n_var = len(names)
    groups = (day - first) * n_var + var_code
    mom = moments(groups, n_days * n_var, value_matrix(table, [metric]), [], n_threads,
                  names=[metric])
    pooled = combine(mom, [d * n_var + v for d in range(n_days) for v in (c, t)])
    tau = DEFAULT_TAU_SD * float(np.sqrt(pooled.var[0])) if tau is None else float(tau)
    if not tau > 0:
        raise InputError(f"tau must be positive (got {tau}); the metric may be constant")
    rows = {k: [] for k in ("day", "n_control", "n_treatment", "diff", "p_value", "ci_low",
                            "ci_high", "decision")}
    p_run, lo_run, hi_run = 1.0, -np.inf, np.inf
    for d in range(n_days):
        if mom.n[d * n_var + c] == 0 and mom.n[d * n_var + t] == 0:
            continue
        arm = [combine(mom, [e * n_var + v for e in range(d + 1)]) for v in (c, t)]
        if arm[0].n < 2 or arm[1].n < 2:
            continue
        diff = float(arm[1].mean[0] - arm[0].mean[0])
        var = float(arm[0].var[0] / arm[0].n + arm[1].var[0] / arm[1].n)
        _, p, half = msprt(diff, var, tau, alpha)
        p_run = min(p_run, float(p))
        lo_run, hi_run = max(lo_run, diff - float(half)), min(hi_run, diff + float(half))
        rows["day"].append(int((first + d) * _US_PER_DAY))
        rows["n_control"].append(int(arm[0].n))
        rows["n_treatment"].append(int(arm[1].n))
        rows["diff"].append(diff)
        rows["p_value"].append(p_run)
        rows["ci_low"].append(lo_run)
        rows["ci_high"].append(hi_run)
        rows["decision"].append("reject" if p_run < alpha else "continue")
    out = pa.table(rows)
    return out.set_column(0, "day", pa.array(rows["day"], pa.timestamp("us", tz="UTC")))


def bayesian(conversions_control, n_control, conversions_treatment, n_treatment, *,
             prior=(1.0, 1.0)) -> dict:
    """Beta-Binomial readout of a conversion rate with a Beta(prior) prior on each arm:
    ``prob_to_beat_control`` = P(p_treatment > p_control) (exact sum, not sampling),
    ``expected_loss`` of shipping treatment (E[max(p_c - p_t, 0)]) and of keeping control."""
    a, b = prior
    if a <= 0 or b <= 0 or float(a).is_integer() is False:
        raise InputError("prior must be (a, b) with a positive integer a and b > 0")
    for c, n in ((conversions_control, n_control), (conversions_treatment, n_treatment)):
        if not 0 <= c <= n or int(c) != c:
            raise InputError(f"conversions must be integers in [0, n]; got {c} of {n}")
    a_c, b_c = a + conversions_control, b + n_control - conversions_control
    a_t, b_t = a + conversions_treatment, b + n_treatment - conversions_treatment
    return {"prob_to_beat_control": prob_b_beats_a(a_c, b_c, a_t, b_t),
            "expected_loss": expected_loss(a_c, b_c, a_t, b_t),
            "expected_loss_control": expected_loss(a_t, b_t, a_c, b_c),
            "control_mean": a_c / (a_c + b_c), "treatment_mean": a_t / (a_t + b_t)}
