"""One vocabulary (issue #9): keyword-only ``customer=``/``item=``/``time=`` (positional still
works for one release with a DeprecationWarning), ``n_threads=`` (``num_threads=`` deprecated),
and cutoffs read by the one time parser (YYYYMMDD is a date)."""
import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from fastengage.errors import InputError
from fastengage.recommend import ALS, ItemKNN, Interactions, evaluate, temporal_split


@pytest.fixture(scope="module")
def events():
    days = np.array([0, 10, 20, 30, 31, 32, 40, 45, 50, 60])
    start = np.datetime64("2015-01-01", "us")
    return pa.table({"c": [1, 1, 2, 2, 3, 3, 1, 2, 3, 1], "i": [1, 2, 1, 3, 2, 4, 3, 4, 1, 4],
                     "t": pa.array(start + days * np.timedelta64(86_400_000_000, "us"))})


def test_yyyymmdd_cutoff_splits_at_that_date(events):
    """"20150201" is 1 February 2015, not the year 20,150,201 (which put every event in train)."""
    split = temporal_split(events, customer="c", item="i", time="t", cutoff="20150201",
                           exclude_train_pairs=False)
    t = events.column("t").to_numpy()
    n_before = int((t < np.datetime64("2015-02-01")).sum())  # days 0..30: 4 events
    assert n_before == 4
    assert split.train.matrix.sum() == n_before
    assert split.test.matrix.sum() == events.num_rows - n_before
    iso = temporal_split(events, customer="c", item="i", time="t", cutoff=dt.date(2015, 2, 1),
                         exclude_train_pairs=False)
    assert (iso.train.matrix != split.train.matrix).nnz == 0
    with pytest.raises(InputError, match="cutoff"):
        temporal_split(events, customer="c", item="i", time="t", cutoff="201502")


def test_positional_columns_are_deprecated_but_work(events):
    with pytest.warns(DeprecationWarning, match="customer="):
        old = Interactions.from_data(events, "c", "i")
    new = Interactions.from_data(events, customer="c", item="i")
    assert (old.matrix != new.matrix).nnz == 0
    with pytest.warns(DeprecationWarning, match="time="):
        old_split = temporal_split(events, "c", "i", "t", "2015-02-01")
    new_split = temporal_split(events, customer="c", item="i", time="t", cutoff="2015-02-01")
    assert (old_split.test.matrix != new_split.test.matrix).nnz == 0
    with pytest.warns(DeprecationWarning, match="item="):
        a = ItemKNN(K=3).fit(events, "c", "i").recommend(n=2)
    assert ItemKNN(K=3).fit(events, customer="c", item="i").recommend(n=2).equals(a)
    with pytest.raises(TypeError, match="both"):
        Interactions.from_data(events, "c", customer="c", item="i")
    with pytest.raises(InputError, match="customer="):
        temporal_split(events, customer="c", item="i", cutoff="2015-02-01")


def test_n_threads_vocabulary(events):
    with pytest.warns(DeprecationWarning, match="n_threads"):
        model = ALS(factors=3, iterations=2, seed=1, num_threads=1)
    assert model.n_threads == 1 and model.num_threads == 1
    model.fit(events, customer="c", item="i", n_threads=2)
    a = model.recommend(n=3, n_threads=1)
    with pytest.warns(DeprecationWarning):
        b = model.recommend(n=3, num_threads=2)
    assert a.equals(b)
    inter = Interactions.from_data(events, customer="c", item="i")
    assert evaluate(model, inter, k=2, n_threads=1) == evaluate(model, inter, k=2, n_threads=2)
    with pytest.raises(InputError, match="n_threads"):
        model.recommend(n=3, n_threads=0)
    with pytest.raises(InputError, match="n_threads"):
        ALS(n_threads=-2)
