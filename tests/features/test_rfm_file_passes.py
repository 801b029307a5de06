"""rfm() over a Parquet file picks the leanest exact pass (time-sorted, day bitmaps, or the
(customer, day) set); every pass must give the in-memory result exactly."""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastengage as fe
from fastengage.features import _file_passes as features

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
    """Every column is equal to the last bit (money sums are exact, issue #10.11)."""
    assert streamed.replace_schema_metadata(None).equals(expected.replace_schema_metadata(None))


def _passes(monkeypatch):
    """Record which passes rfm() ran ("sorted" with the order set is "sorted+set")."""
    seen = []
    real_update = features._FilePass.update

    def update(self, *args, **kwargs):
        label = self._days
        if self.orders is not None and self._days == "sorted" and self._orders_mode == "set":
            label += "+set"
        seen.append(label)
        return real_update(self, *args, **kwargs)

    monkeypatch.setattr(features._FilePass, "update", update)
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
    if with_order and sort:
        # These orders are shared by customers at random, so a customer's order codes come
        # back out of order: the order-change pass stops, time order with the order set is exact.
        passes = ["sorted", "sorted+set"]
    assert seen == passes
    _assert_same_exact_columns(streamed, expected)


def _order_log(n_customers=2_000, n_orders=12_000, seed=5, revisit=False):
    """A time-sorted log of orders: each order belongs to one customer, its lines contiguous
    (one to five lines at the same time); ``revisit`` adds a line of an old order later."""
    rng = np.random.default_rng(seed)
    owner = rng.integers(0, n_customers, n_orders)
    lines = rng.integers(1, 6, n_orders)
    start = np.sort(rng.integers(0, 300 * US_PER_DAY, n_orders)) + 1_600_000_000_000_000
    rows = np.repeat(np.arange(n_orders), lines)
    table = pa.table({"cust": owner[rows] * 31, "ts": pa.array(start[rows], pa.timestamp("us")),
                      "amt": np.round(rng.normal(20, 30, len(rows)), 2),
                      "ord": pa.array([f"inv-{o}" for o in rows])})
    if revisit:
        k = int(np.flatnonzero(owner == owner[0])[-1])  # customer 0's last order ...
        extra = pa.table({"cust": [int(owner[0]) * 31], "ts": pa.array([int(start[-1]) + 1], pa.timestamp("us")),
                          "amt": [5.0], "ord": [f"inv-{0 if k else 1}"]})  # ... then its first again
        table = pa.concat_tables([table, extra])
    return table


@pytest.mark.parametrize("revisit", [False, True])
def test_time_sorted_orders_are_counted_without_an_order_set(tmp_path, monkeypatch, revisit):
    """#10.16: in a time-sorted log each order's lines are contiguous per customer, so counting
    order changes is exact and no (customer, order) set is kept; an order that comes back makes
    the pass stop and the exact order-set pass take over."""
    table = _order_log(revisit=revisit)
    path = tmp_path / "orders.parquet"
    pq.write_table(table, path, row_group_size=5_000)
    kw = dict(KW, order="ord")
    expected = fe.rfm(table, **kw)
    seen = _passes(monkeypatch)
    streamed = fe.rfm(str(path), **kw, batch_size=3_000)
    assert seen == (["sorted", "sorted+set"] if revisit else ["sorted"])
    _assert_same_exact_columns(streamed, expected)


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


def test_public_state_has_no_file_pass_modes():
    """#9: RFMState is the public mergeable state only; rfm()'s passes live in a private class
    that refuses to be merged or saved (real errors, not asserts that python -O removes)."""
    state = fe.RFMState(**KW)
    for private in ("_sorted_only", "_day_words", "_day_bitmap", "_release_dedup_structures",
                    "_use_day_bitmaps"):
        assert not hasattr(state, private), private
    file_pass = features._FilePass(**KW)
    with pytest.raises(RuntimeError, match="cannot be merged"):
        file_pass.merge(state)
    with pytest.raises(RuntimeError, match="cannot be saved"):
        file_pass.save("x.fe")


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "2"])
def test_n_threads_is_checked(bad):
    t = pa.table({"cust": [1], "ts": pa.array([1], pa.timestamp("s")), "amt": [1.0]})
    with pytest.raises(fe.InputError, match="n_threads"):
        fe.rfm(t, **KW, n_threads=bad)
    with pytest.raises(fe.InputError, match="n_threads"):
        fe.RFMState(**KW).update(t, n_threads=bad)


def test_one_and_two_threads_give_identical_bits():
    table = _log(400, sort=False, n=300_000)  # above HASHED_MIN_ROWS: every parallel kernel runs
    kw = dict(KW, order="ord")
    one = fe.rfm(table, **kw, n_threads=1)
    assert one.equals(fe.rfm(table, **kw, n_threads=2))
    strings = table.set_column(0, "cust", table["cust"].cast(pa.string()))
    assert fe.rfm(strings, **kw, n_threads=1).equals(fe.rfm(strings, **kw, n_threads=2))
