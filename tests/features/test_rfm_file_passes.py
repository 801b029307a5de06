"""rfm() over a Parquet file picks the leanest exact pass (time-sorted, day bitmaps, or the
(customer, day) set); every pass must give the in-memory result exactly."""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastengage as fe
from fastengage.features import _rfm as features

US_PER_DAY = 86_400_000_000
KW = dict(customer="cust", time="ts", amount="amt")


def _log(days_span, sort, seed=3, n=30_000, with_pre_epoch=False):
    rng = np.random.default_rng(seed)
    start = -5 * US_PER_DAY if with_pre_epoch else 1_600_000_000_000_000
    times = start + rng.integers(0, days_span * US_PER_DAY, n)
    if sort:
        times = np.sort(times)
    return pa.table({"cust": rng.integers(0, 3_000, n) * 7919,
                     "ts": pa.array(times, pa.timestamp("us", tz="UTC")),
                     "amt": np.round(rng.normal(20, 30, n), 2),
                     "ord": rng.integers(0, 9_000, n)})


def _assert_same_exact_columns(streamed, expected):
    """Every column but the float sums (and the score that hinges on their ties) is equal."""
    sums = ["monetary_total", "monetary_mean", "m_score"]
    assert streamed.drop_columns(sums).equals(expected.drop_columns(sums))


def _passes(monkeypatch):
    """Record which passes rfm() ran."""
    seen = []
    real_update = fe.RFMState.update

    def update(self, *args, **kwargs):
        seen.append("sorted" if self._sorted_only else "bitmap" if self._day_words else "set")
        return real_update(self, *args, **kwargs)

    monkeypatch.setattr(fe.RFMState, "update", update)
    return seen


@pytest.mark.parametrize("days_span, sort, passes", [
    (400, True, ["sorted"]),
    (400, False, ["sorted", "bitmap"]),
    (64 * features.MAX_DAY_WORDS + 200, False, ["sorted", "set"]),
])
@pytest.mark.parametrize("with_order", [False, True])
def test_each_file_pass_equals_the_in_memory_result(tmp_path, monkeypatch, days_span, sort,
                                                    passes, with_order):
    table = _log(days_span, sort, with_pre_epoch=not sort)
    path = tmp_path / "log.parquet"
    pq.write_table(table, path, row_group_size=4_000)
    kw = dict(KW, order="ord" if with_order else None)
    expected = fe.rfm(table, **kw)
    seen = _passes(monkeypatch)
    streamed = fe.rfm(str(path), **kw, batch_size=5_000)
    assert seen == passes
    _assert_same_exact_columns(streamed, expected)
    np.testing.assert_allclose(streamed["monetary_total"], expected["monetary_total"], rtol=1e-12)


def test_a_day_outside_the_bitmap_range_falls_back_to_the_set(tmp_path, monkeypatch):
    """If the range pass were wrong, the bitmap pass stops and the set pass gives the answer."""
    table = _log(300, sort=False)
    path = tmp_path / "log.parquet"
    pq.write_table(table, path)
    first_day = int(table["ts"].cast(pa.int64()).to_numpy().min()) // US_PER_DAY
    real = features._encode_ids_and_day_range
    monkeypatch.setattr(features, "_encode_ids_and_day_range",
                        lambda *a: (real(*a), (first_day + 100, 1))[1])
    seen = _passes(monkeypatch)
    streamed = fe.rfm(str(path), **KW)
    assert seen == ["sorted", "bitmap", "set"]
    assert streamed["purchase_days"].equals(fe.rfm(table, **KW)["purchase_days"])


def test_bitmap_pass_with_as_of_nulls_and_customers_seen_only_later(tmp_path, monkeypatch):
    """The id pre-pass codes every customer, also those whose only rows are null-dropped or after
    as_of: they must not appear in the output or in the counts."""
    table = _log(400, sort=False)
    cust = table["cust"].to_numpy().copy()
    late = table["ts"].cast(pa.int64()).to_numpy() > np.quantile(table["ts"].cast(pa.int64()), 0.9)
    cust[late] += 10**9  # customers that exist only after the cut
    mask = np.zeros(len(cust), bool)
    mask[::97] = True  # null ids, dropped and counted
    table = table.set_column(0, "cust", pa.array(cust, mask=mask))
    path = tmp_path / "log.parquet"
    pq.write_table(table, path, row_group_size=3_000)
    as_of = table["ts"].cast(pa.int64()).to_numpy()[late].min() - 1
    kw = dict(KW, as_of=np.datetime64(int(as_of), "us"), drop_null_customers=True)
    expected = fe.rfm(table, **kw)
    seen = _passes(monkeypatch)
    streamed = fe.rfm(str(path), **kw, batch_size=4_000)
    assert seen == ["sorted", "bitmap"]
    _assert_same_exact_columns(streamed, expected)
    assert streamed.schema.metadata == expected.schema.metadata


def test_unsorted_dataset_folder_takes_the_bitmap_pass(tmp_path, monkeypatch):
    """A folder of Parquet files (a dataset): files in any order, rows unsorted within them."""
    table = _log(500, sort=False, seed=9)
    folder = tmp_path / "events"
    folder.mkdir()
    half = table.num_rows // 2
    pq.write_table(table.slice(half), folder / "part-0.parquet")  # later rows first
    pq.write_table(table.slice(0, half), folder / "part-1.parquet")
    kw = dict(KW, order="ord")
    expected = fe.rfm(table, **kw)
    seen = _passes(monkeypatch)
    streamed = fe.rfm(str(folder), **kw, batch_size=2_500)
    assert seen == ["sorted", "bitmap"]
    _assert_same_exact_columns(streamed, expected)
