"""Identity resolution (fastengage.identity.resolve) against a breadth-first-search reference."""
import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastengage as fe
from fastengage.errors import InputError
from fastengage.identity import apply_identity, resolve
from naive_identity import resolve_reference

int_ids = st.integers(-2**63, 2**63 - 1) | st.integers(0, 12)
str_ids = st.text(max_size=6) | st.sampled_from(["a", "b", "c", "é", ""])


def _table(pairs, typ, chunks):
    left = [a for a, _ in pairs]
    right = [b for _, b in pairs]
    table = pa.table({"l": pa.array(left, typ), "r": pa.array(right, typ)})
    if chunks > 1 and len(pairs) > chunks:
        step = len(pairs) // chunks
        batches = table.to_batches(max_chunksize=step)
        table = pa.Table.from_batches(batches)
    return table


def _check(pairs, typ, chunks, max_degree):
    got = resolve(_table(pairs, typ, chunks), left="l", right="r", max_degree=max_degree)
    key = (lambda s: s.encode()) if typ == pa.string() else (lambda x: x)
    expected, degree = resolve_reference(pairs, max_degree, key)
    ids = got.column("id").to_pylist()
    assert sorted(ids, key=key) == sorted(expected, key=key)
    assert len(set(ids)) == len(ids)
    for i, k, size in zip(ids, got.column("customer_key").to_pylist(),
                          got.column("component_size").to_pylist()):
        assert (k, size) == expected[i]
    if max_degree is not None:
        for i, d, c in zip(ids, got.column("degree").to_pylist(), got.column("cut").to_pylist()):
            assert d == degree[i] and c == (d > max_degree)
    report = json.loads(got.schema.metadata[b"fastengage"])
    assert report["links_read"] == len(pairs) and report["ids"] == len(ids)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(int_ids, int_ids), min_size=1, max_size=60), st.integers(1, 3),
       st.none() | st.integers(1, 4))
def test_integer_ids_match_the_reference(pairs, chunks, max_degree):
    _check(pairs, pa.int64(), chunks, max_degree)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(str_ids, str_ids), min_size=1, max_size=60), st.integers(1, 3),
       st.none() | st.integers(1, 4))
def test_string_ids_match_the_reference(pairs, chunks, max_degree):
    _check(pairs, pa.string(), chunks, max_degree)


def test_key_does_not_depend_on_link_order():
    rng = np.random.default_rng(1)
    left = rng.integers(0, 500, 2000)
    right = rng.integers(0, 500, 2000)
    a = resolve(pa.table({"l": left, "r": right}), left="l", right="r")
    order = rng.permutation(2000)
    b = resolve(pa.table({"l": right[order], "r": left[order]}), left="l", right="r")
    ka = dict(zip(a.column("id").to_pylist(), a.column("customer_key").to_pylist()))
    kb = dict(zip(b.column("id").to_pylist(), b.column("customer_key").to_pylist()))
    assert ka == kb


def test_same_partition_as_scipy_connected_components():
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(2)
    n, m = 5000, 4000
    left, right = rng.integers(0, n, m), rng.integers(0, n, m)
    got = resolve(pa.table({"l": left, "r": right}), left="l", right="r")
    _, labels = connected_components(coo_matrix((np.ones(m), (left, right)), shape=(n, n)),
                                     directed=False)
    ids = got.column("id").to_numpy()
    keys = got.column("customer_key").to_numpy()
    # same partition: equal keys exactly where scipy's labels are equal
    pairs = rng.integers(0, len(ids), (20000, 2))
    same_ours = keys[pairs[:, 0]] == keys[pairs[:, 1]]
    same_scipy = labels[ids[pairs[:, 0]]] == labels[ids[pairs[:, 1]]]
    np.testing.assert_array_equal(same_ours, same_scipy)


def test_uint64_ids_past_int64_keep_their_order():
    big = 2**64 - 5
    got = resolve(pa.table({"l": pa.array([big, 7], pa.uint64()), "r": pa.array([3, big], pa.uint64())}),
                  left="l", right="r")
    assert set(got.column("customer_key").to_pylist()) == {3}


def test_bad_input_is_a_clear_error():
    with pytest.raises(InputError, match="null id"):
        resolve(pa.table({"l": [1, None], "r": [2, 3]}), left="l", right="r")
    with pytest.raises(InputError, match="both be integers or both strings"):
        resolve(pa.table({"l": [1], "r": ["a"]}), left="l", right="r")
    with pytest.raises(InputError, match="max_degree"):
        resolve(pa.table({"l": [1], "r": [2]}), left="l", right="r", max_degree=0)
    with pytest.raises(fe.ColumnNotFoundError):
        resolve(pa.table({"l": [1], "r": [2]}), left="l", right="nope")
    got = resolve(pa.table({"l": [1, None], "r": [2, 3]}), left="l", right="r", drop_null_links=True)
    assert json.loads(got.schema.metadata[b"fastengage"])["null_links_dropped"] == 1


def test_rfm_rolls_up_to_the_resolved_customer(retail_table):
    import pyarrow.compute as pc

    tx = retail_table.filter(pc.is_valid(retail_table.column("CustomerID")))
    ids = pc.unique(tx.column("CustomerID")).to_numpy()[:200]
    links = pa.table({"l": ids[0::2], "r": ids[1::2]})  # pretend pairs of accounts are one person
    identity = resolve(links, left="l", right="r")
    rolled = apply_identity(tx, identity, customer="CustomerID")
    per_person = fe.rfm(rolled, customer="CustomerID", time="InvoiceDate", amount="amount")
    mapping = {int(a): int(min(a, b)) for a, b in zip(ids[0::2], ids[1::2])}
    mapping.update({int(b): int(min(a, b)) for a, b in zip(ids[0::2], ids[1::2])})
    by_hand = tx.set_column(tx.schema.get_field_index("CustomerID"), "CustomerID", pa.array(
        [mapping.get(c, c) for c in tx.column("CustomerID").to_pylist()], pa.int64()))
    expected = fe.rfm(by_hand, customer="CustomerID", time="InvoiceDate", amount="amount")
    assert per_person.column("CustomerID").equals(expected.column("CustomerID"))
    for name in ("frequency", "purchase_days", "recency_days", "tenure_days", "segment"):
        assert per_person.column(name).equals(expected.column(name)), name
