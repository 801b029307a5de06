"""Forgetting ids that an object's integer id type cannot hold: they are no customer of that
object (requested, not found), never an error that stops ``forget_everywhere`` midway."""
import numpy as np
import pyarrow as pa
import pytest

import fastengage as fe
from fastengage.errors import InputError
from fastengage.privacy import forget_everywhere, forget_rows
from fastengage.privacy.forget import as_id_array, count_requested


def _events(ids: pa.Array) -> pa.Table:
    n = len(ids)
    return pa.table({"c": ids, "t": pa.array(np.arange(n) * 86_400_000_000, pa.timestamp("us", "UTC")),
                     "a": np.ones(n)})


def _state(ids: pa.Array) -> fe.RFMState:
    return fe.RFMState(customer="c", time="t", amount="a").update(_events(ids))


@pytest.mark.parametrize("ids, forget, found", [
    (pa.array([1, 2, 3], pa.int8()), [2, 300, -1000], 1),
    (pa.array([1, 2, 3], pa.int32()), [2**40, 3], 1),
    (pa.array(np.array([2**63, 5], np.uint64)), [2**63, -1], 1),
    (pa.array(np.array([2**63, 5], np.uint64)), [-1, -2], 0),
    (pa.array([-5, 7], pa.int64()), [2**64 - 5, 7], 1),
])
def test_rfm_state_forgets_what_its_type_can_hold(ids, forget, found):
    record = _state(ids).forget(forget)
    assert record.customers_requested == len(set(forget))
    assert record.customers_found == found


def test_forget_everywhere_goes_on_past_an_id_another_system_cannot_hold():
    small = _state(pa.array([1, 2, 3], pa.int16()))
    wide = _state(pa.array([1, 2, 70_000], pa.int64()))
    records = forget_everywhere([small, wide], [70_000, 2])
    assert [(r.customers_requested, r.customers_found) for r in records] == [(2, 1), (2, 2)]
    assert wide.to_table().column("c").to_pylist() == [1]
    assert small.to_table().column("c").to_pylist() == [1, 3]


def test_forget_rows_counts_ids_outside_the_column_type_as_not_found():
    table = pa.table({"c": pa.array([1, 2, 2, 3], pa.int32()), "x": [1.0, 2.0, 3.0, 4.0]})
    kept, record = forget_rows(table, [2, 2**40, 2**40], customer="c")
    assert kept.column("c").to_pylist() == [1, 3]
    assert (record.customers_requested, record.customers_found, record.rows_removed) == (2, 1, 2)


def test_kind_mismatch_is_still_an_error():
    with pytest.raises(InputError, match="customers to forget are"):
        as_id_array(["a"], pa.int64())
    with pytest.raises(InputError, match="customers to forget are"):
        as_id_array(pa.array([1]), pa.string())


@pytest.mark.parametrize("customers, n", [
    (5, 1), ("a", 1), ([1, 1, 2], 2), (np.array([3, 3]), 1), ([2**63, -1], 2),
    (pa.array([1, 2, 2]), 2), (pa.chunked_array([[1], [1, 4]]), 2),
    (pa.array(["x", "y", "x"]).dictionary_encode(), 2),
])
def test_count_requested_counts_distinct_ids(customers, n):
    assert count_requested(customers) == n
