"""Arm ids -> codes (``_columns.arm_codes`` over ``kernels/bandits/arms_native.pyx``) against a
Python dict (``naive_bandits.arm_codes``): strings short and long (alike in their first 16
bytes), empty, non-ASCII; integers of any size; sliced, chunked and dictionary columns; several
threads; and the errors: unknown ids named, nulls, a corrupt column."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naive_bandits as nb
from fastengage.bandits import LinUCB
from fastengage.bandits._columns import arm_array, arm_codes
from fastengage.errors import InputError

_ids = st.one_of(
    st.text(max_size=40),
    st.builds(lambda k, tail: f"campaign-2026-offer-{k:06d}{tail}", st.integers(0, 999_999),
              st.text(max_size=3)),
    st.text(alphabet="ab", max_size=18),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_ids, min_size=1, max_size=60, unique=True), st.data())
def test_string_codes_equal_a_dict(arms, data):
    pool = arms + data.draw(st.lists(_ids, max_size=5))  # some ids the policy does not know
    values = data.draw(st.lists(st.sampled_from(pool), max_size=300))
    want = nb.arm_codes(values, arms)
    column = pa.array(values, type=pa.string())
    table = arm_array(arms)
    if min(want, default=0) < 0:
        with pytest.raises(InputError, match="does not know"):
            arm_codes(column, table, "arm")
        return
    for dtype in (np.int64, np.int32):
        got = arm_codes(column, table, "arm", dtype=dtype)
        assert got.dtype == dtype and got.tolist() == want
    assert arm_codes(column.dictionary_encode(), table, "arm").tolist() == want
    assert arm_codes(pa.array(values, type=pa.large_string()), table, "arm").tolist() == want
    if len(values) > 2:  # an array slice (offsets start past 0) and chunks
        assert arm_codes(column.slice(1), table, "arm").tolist() == want[1:]
        chunked = pa.chunked_array([column.slice(0, 2), column.slice(2)])
        assert arm_codes(chunked, table, "arm").tolist() == want


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-2**63, 2**63 - 1), min_size=1, max_size=60, unique=True),
       st.data())
def test_integer_codes_equal_a_dict(arms, data):
    values = data.draw(st.lists(st.sampled_from(arms), max_size=300))
    got = arm_codes(pa.array(values, type=pa.int64()), arm_array(arms), "arm")
    assert got.tolist() == nb.arm_codes(values, arms)
    small = [v for v in values if -2**31 <= v < 2**31]
    got32 = arm_codes(pa.array(small, type=pa.int32()), arm_array(arms), "arm")
    assert got32.tolist() == nb.arm_codes(small, arms)


def test_long_column_on_several_threads_equals_a_dict():
    rng = np.random.default_rng(3)
    arms = [f"segment-{k:05d}-{'x' * (k % 23)}" for k in range(3000)]
    values = [arms[i] for i in rng.integers(0, len(arms), 400_000)]
    got = arm_codes(pa.array(values), arm_array(arms), "arm", dtype=np.int32)
    assert got.tolist() == nb.arm_codes(values, arms)


def test_unknown_ids_are_named_and_nulls_refused():
    arms = arm_array(["a", "b"])
    with pytest.raises(InputError, match=r"holds 1 arm id\(s\).*'zz'"):
        arm_codes(pa.array(["a", "zz", "b", "zz"]), arms, "offer")
    with pytest.raises(InputError, match="null"):
        arm_codes(pa.array(["a", None]), arms, "offer")
    with pytest.raises(InputError, match="null"):
        arm_codes(pa.array(["a", None]).dictionary_encode(), arms, "offer")
    with pytest.raises(InputError, match="does not know"):  # an unused dictionary entry is fine
        arm_codes(pa.DictionaryArray.from_arrays(pa.array([0, 2], pa.int32()),
                                                 pa.array(["a", "b", "c"])), arms, "offer")
    ok = pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int32()), pa.array(["a", "b", "c"]))
    assert arm_codes(ok, arms, "offer").tolist() == [0, 1]
    with pytest.raises(InputError, match="type int64, but .* strings"):
        arm_codes(pa.array([1, 2]), arms, "offer")


def test_corrupt_string_column_is_an_error_not_a_crash():
    """Offsets pointing outside the value bytes (an array built from raw buffers): the fit
    skips Arrow's full validation of the arm column, so the kernel's own checks must hold."""
    arms = arm_array(["a", "b"])
    data = pa.py_buffer(b"ab")
    for offsets in ([0, 1_000_000, 1, 2], [0, 2, 1, 2], [0, 1, -5, 2]):
        bad = pa.Array.from_buffers(pa.string(), 3, [None, pa.py_buffer(
            np.array(offsets, dtype=np.int32).tobytes()), data])
        with pytest.raises(InputError, match="corrupt"):
            arm_codes(bad, arms, "offer")
        batch = pa.record_batch({"f": pa.array([0.0, 1.0, 2.0]), "offer": bad,
                                 "r": pa.array([1.0, 0.0, 1.0])})
        with pytest.raises(InputError, match="corrupt"):
            LinUCB(["a", "b"], features=["f"]).update(batch, arm="offer", reward="r")


def test_invalid_utf8_arm_ids_are_reported_as_corrupt():
    arms = arm_array(["a", "b"])
    bad = pa.Array.from_buffers(pa.string(), 2, [None, pa.py_buffer(
        np.array([0, 1, 3], dtype=np.int32).tobytes()), pa.py_buffer(b"a\xff\xfe")])
    with pytest.raises(InputError, match="corrupt"):
        arm_codes(bad, arms, "offer")


def test_fit_from_string_or_dictionary_arms_is_the_same():
    rng = np.random.default_rng(0)
    n, arms = 5000, ["x", "y", "z"]
    X = rng.normal(size=(n, 3))
    picked = np.asarray(arms)[rng.integers(0, 3, n)]
    cols = {f"f{j}": X[:, j] for j in range(3)}
    r = X[:, 0] + rng.normal(size=n)
    a = LinUCB(arms, features=list(cols)).update(
        pa.table({**cols, "arm": pa.array(picked), "r": r}), arm="arm", reward="r")
    b = LinUCB(arms, features=list(cols)).update(
        pa.table({**cols, "arm": pa.array(picked).dictionary_encode(), "r": r}), arm="arm",
        reward="r")
    np.testing.assert_array_equal(a._snapshot.theta, b._snapshot.theta)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=1, max_size=30, unique=True), st.data())
def test_arm_ids_equal_arrow_take(arms, data):
    """``arm_ids`` (what decide() returns as the arm column) against ``pyarrow``'s take."""
    from fastengage.bandits._columns import arm_ids

    table = arm_array(arms)
    codes = np.array(data.draw(st.lists(st.integers(-1, len(arms) - 1), max_size=200)),
                     dtype=np.int64)
    got = arm_ids(codes, table)
    got.validate(full=True)
    assert got.equals(table.take(pa.array(codes, mask=codes < 0)))
    ints = arm_array(list(range(-5, len(arms) * 7, 7)))
    assert arm_ids(codes, ints).equals(ints.take(pa.array(codes, mask=codes < 0)))
    with pytest.raises(IndexError):
        arm_ids(np.array([len(arms)]), table)
