"""Holdout validation tables and plots on CDNOW (calibration 39 weeks, holdout 39 weeks)."""
import numpy as np
import pyarrow as pa
import pytest

from fastengage import clv
from fastengage.clv import plots, validation
from fastengage.clv.datasets import load_cdnow_sample


@pytest.fixture(scope="module")
def split():
    return clv.summary(load_cdnow_sample(), customer="customer_id", time="date",
                       amount="dollar_value", as_of="1998-06-30", calibration_end="1997-09-30",
                       freq="D", freq_multiplier=7)


@pytest.fixture(scope="module")
def model(split):
    return clv.BetaGeo().fit(split)


def test_holdout_table(model, split):
    tab = validation.holdout_table(model, split, max_frequency=7).to_pydict()
    assert sum(tab["customers"]) == split.num_rows == 2357
    # FHL 2005 fig. 4: predictions track the holdout means; the paper's are within ~0.5 purchase
    act, prd = np.array(tab["actual"]), np.array(tab["predicted"])
    assert np.all(np.abs(act - prd)[:7] < 0.8)
    assert np.all(np.diff(prd) > 0)
    err = validation.holdout_errors(model, split)
    assert err["customers"] == 2357
    assert abs(err["relative_bias"]) < 0.2  # BG/NBD under-forecasts CDNOW weeks 40-78 by ~12%
    assert err["mae"] > 0 and err["rmse"] >= err["mae"]


def test_period_transactions(model, split):
    tab = validation.period_transactions(model, split, max_frequency=7).to_pydict()
    assert sum(tab["actual"]) == split.num_rows
    assert sum(tab["model"]) == pytest.approx(split.num_rows)
    assert tab["actual"][0] == 1411  # FHL 2005: 1,411 of 2,357 made no repeat purchase
    assert tab["model"][0] == pytest.approx(1411, rel=0.03)


def test_plots_save_png(model, split, tmp_path):
    figs = {
        "fr": plots.plot_frequency_recency_matrix(model, T=39.0, max_frequency=30),
        "pa": plots.plot_probability_alive_matrix(model, T=39.0, max_frequency=30),
        "hold": plots.plot_calibration_purchases_vs_holdout_purchases(model, split),
        "period": plots.plot_period_transactions(model, split),
    }
    for name, fig in figs.items():
        path = tmp_path / f"{name}.png"
        fig.savefig(path)
        assert path.stat().st_size > 5000


def test_matrix_memory_is_bounded_by_grid(model):
    # the matrix never depends on the number of customers; an absurd grid is refused
    with pytest.raises(Exception, match="grid"):
        plots.plot_probability_alive_matrix(model, T=1e6, max_frequency=100_000, resolution=1000)
