"""IdEncoder.lookup keeps the sign of integer ids: the map holds uint64 ids as their int64 bits,
so without the check -6 found the uint64 id 2**64 - 6 (a recommend_new event for item -6 was
folded in as that item), and a uint64 id above 2**63 found a negative int64 one."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from fastengage._io.ids import IdEncoder

U64 = np.uint64


def _encoder(ids: pa.Array) -> IdEncoder:
    enc = IdEncoder("customer", "customer")
    enc.encode(ids)
    return enc


def _naive_lookup(known: list[int], queries: list[int]) -> list[int]:
    position = {v: i for i, v in enumerate(dict.fromkeys(known))}
    return [position.get(q, -1) for q in queries]


def test_negative_ids_do_not_find_uint64_ids_with_the_same_bits():
    enc = _encoder(pa.array(np.array([2**64 - 6, 5, 2**63], U64)))
    np.testing.assert_array_equal(enc.lookup(pa.array([-6, 5, -2**63, 7], pa.int64())),
                                  [-1, 1, -1, -1])
    np.testing.assert_array_equal(
        enc.lookup(pa.array([-6, 5], pa.int64()).dictionary_encode()), [-1, 1])
    np.testing.assert_array_equal(
        enc.lookup(pa.chunked_array([pa.array([-6], pa.int64()), pa.array([], pa.int64()),
                                     pa.array([5, -1], pa.int64())])), [-1, 1, -1])


def test_uint64_ids_above_int64_do_not_find_negative_ids():
    enc = _encoder(pa.array([-6, 5], pa.int64()))
    np.testing.assert_array_equal(enc.lookup(pa.array(np.array([2**64 - 6, 5], U64))), [-1, 1])
    np.testing.assert_array_equal(enc.lookup(pa.array(np.array([5], np.uint32))), [1])


@settings(max_examples=60, deadline=None)
@given(unsigned=st.booleans(), data=st.data())
def test_lookup_equals_a_plain_dictionary(unsigned, data):
    if unsigned:
        universe = st.sampled_from([0, 1, 5, 2**63 - 1, 2**63, 2**64 - 6, 2**64 - 1])
        known = data.draw(st.lists(universe, min_size=1, max_size=8))
        enc = _encoder(pa.array(np.array(known, U64)))
        queries = data.draw(st.lists(st.sampled_from([-6, -1, 0, 5, 2**63 - 1]),
                                     max_size=10))
        arr = pa.array(queries, pa.int64())
    else:
        universe = st.sampled_from([-2**63, -6, -1, 0, 5, 2**63 - 1])
        known = data.draw(st.lists(universe, min_size=1, max_size=8))
        enc = _encoder(pa.array(known, pa.int64()))
        queries = data.draw(st.lists(st.sampled_from([0, 5, 2**63 - 1, 2**63, 2**64 - 6]),
                                     max_size=10))
        arr = pa.array(queries, pa.uint64())
    np.testing.assert_array_equal(enc.lookup(arr), _naive_lookup(known, queries))


def test_recommend_new_event_with_a_negative_item_id_is_unknown():
    from fastengage.errors import InputError
    from fastengage.recommend import ItemKNN

    events = pa.table({"c": pa.array(np.array([1, 1, 2, 2, 3], U64)),
                       "i": pa.array(np.array([2**64 - 6, 7, 2**64 - 6, 8, 7], U64))})
    model = ItemKNN("cosine").fit(events, customer="c", item="i")
    known = model.recommend_new(pa.table({"s": pa.array([9], pa.uint64()),
                                          "i": pa.array([2**64 - 6], pa.uint64())}),
                                customer="s", item="i", n=2)
    assert known.num_rows == 2 and 2**64 - 6 not in known.column("item").to_pylist()
    negative = pa.table({"s": pa.array([9], pa.uint64()), "i": pa.array([-6], pa.int64())})
    with pytest.raises(InputError, match="items the model does not know"):
        model.recommend_new(negative, customer="s", item="i", n=2)
