"""OpenDP's own clamp / bounded-sum / count cases, ported to ``dp_report``'s exact bounded
aggregates, and compared with OpenDP itself on the same data (diffprivlib is not installed).

Sources: OpenDP's ``python/test/integration/test_sum_int.py`` (``[1, 2, 4]`` in (0, 10) sums to
7), ``test_sum.py`` (clamp then bounded sum), and the R vignette "OpenDP Measurements"
(``make_clamp(bounds=c(0, 5))`` of ``c(1.3, 7.8, -2.5, 7.0)``, ``make_bounded_sum`` of
``c(1.3, 3.8, 0., 5.)`` = 10.1, the stability map at ``max_contributions``). The noise and the
privacy maps of the measurements are tested in test_dp.py; the pseudonyms' vectors in
test_pseudonymize.py / test_siphash.py / test_hmac_native.py (one check here on odd id types).
"""
import hashlib
import hmac
import json

import numpy as np
import pyarrow as pa
import pytest

import naive_privacy
from fastengage.errors import InputError
from fastengage.privacy import Budget, dp_report, pseudonymize
from fastengage.privacy.dp import _bounded_aggregates

dp = pytest.importorskip("opendp.prelude")
dp.enable_features("contrib")


def _aggregates(table, *, bounds, resolution=0.01, customer=None, max_rows=None, by=("s",)):
    """{segment: (count, sum in amount units)} of dp_report's bounding kernel (no noise)."""
    segments, counts, sums, _, dropped = _bounded_aggregates(
        table, list(by), customer, "a", bounds, max_rows, None, resolution, None)
    keys = segments.key_columns()[by[0]].to_pylist()
    return {k: (int(c), int(s) * resolution) for k, c, s in zip(keys, counts, sums)}, dropped


def _opendp_clamped_sum(values, bounds):
    T = int if all(isinstance(b, int) for b in bounds) else float
    space = dp.vector_domain(dp.atom_domain(T=T, nan=False) if T is float else dp.atom_domain(T=T)), \
        dp.symmetric_distance()
    return (space >> dp.t.then_clamp(bounds=bounds) >> dp.t.then_sum())(list(values))


@pytest.mark.parametrize("values, bounds, published", [
    ([1, 2, 4], (0, 10), 7),                       # test_sum_int.py::test_make_bounded_int_*_sum
    ([1.3, 7.8, -2.5, 7.0], (0.0, 5.0), 11.3),     # vignette: make_clamp c(0, 5), then summed
    ([1.3, 3.8, 0.0, 5.0], (0.0, 5.0), 10.1),      # vignette: make_bounded_sum -> 10.1
    ([-9, -1, 3, 12, 5], (-3, 10), 14),            # both signs clamped
    ([-9.5, -1.25, -0.5], (-5.0, -1.0), -7.25),    # both bounds negative
])
def test_clamped_sums_equal_opendp(values, bounds, published):
    peer = _opendp_clamped_sum(values, bounds)
    assert peer == pytest.approx(published)
    table = pa.table({"s": ["x"] * len(values), "a": pa.array(values, pa.float64())})
    got, dropped = _aggregates(table, bounds=bounds)
    assert got["x"][0] == len(values) and dropped == 0
    assert got["x"][1] == pytest.approx(peer, abs=1e-9)


@pytest.mark.parametrize("bounds", [(0, 10), (-3, 10), (-7, -2), (0.0, 5.0), (-0.5, 2.25)])
@pytest.mark.parametrize("max_rows", [1, 3])
def test_sensitivities_equal_opendp_stability_maps(bounds, max_rows):
    # a customer with max_rows rows is a symmetric distance of max_rows: OpenDP's count and
    # clamp >> sum stability maps at that distance are the L1 sensitivities dp_report uses
    table = pa.table({"s": ["x", "y"], "c": [1, 2], "a": [1.0, 2.0]})
    resolution = 1 if isinstance(bounds[0], int) else 0.25
    report = dp_report(table, by=["s"], customer="c", amount="a", bounds=bounds, epsilon=1.0,
                       max_rows_per_customer=max_rows, resolution=resolution)
    parts = report.budget["parts"]
    count = dp.vector_domain(dp.atom_domain(T=int)), dp.symmetric_distance()
    assert parts["count"]["l1_sensitivity"] == (count >> dp.t.then_count()).map(max_rows)
    T = int if resolution == 1 else float
    space = dp.vector_domain(dp.atom_domain(T=T, nan=False) if T is float else dp.atom_domain(T=T)), \
        dp.symmetric_distance()
    peer = (space >> dp.t.then_clamp(bounds=bounds) >> dp.t.then_sum()).map(max_rows)
    if T is int:
        assert parts["sum"]["l1_sensitivity"] == peer
    else:
        # kept difference: OpenDP's float sum is more conservative (it bounds floating-point
        # rounding: (U - L) per row for mixed signs, plus slack); ours sums integer units
        # exactly, so k * max(|L|, |U|) holds exactly, never above OpenDP's
        assert parts["sum"]["l1_sensitivity"] == max_rows * max(abs(b) for b in bounds)
        assert parts["sum"]["l1_sensitivity"] <= peer <= max_rows * (bounds[1] - bounds[0]) * (1 + 1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_contribution_bounding_then_opendp_clamped_sums(seed):
    # each customer's first max_rows rows (plain Python), then OpenDP's clamp >> sum per segment
    # on what is kept: the same counts and sums as the kernel that does both in one pass
    rng = np.random.default_rng(seed)
    n = 300
    segs = rng.choice(["a", "b", "c"], n).tolist()
    custs = rng.integers(0, 40, n).tolist()
    amounts = rng.integers(-20, 60, n).tolist()
    max_rows, bounds = 3, (-5, 40)
    kept, seen = {}, {}
    for s, c, a in zip(segs, custs, amounts):
        seen[c] = seen.get(c, 0) + 1
        if seen[c] <= max_rows:
            kept.setdefault(s, []).append(a)
    table = pa.table({"s": segs, "c": custs, "a": pa.array(amounts, pa.int64())})
    got, dropped = _aggregates(table, bounds=bounds, resolution=1, customer="c", max_rows=max_rows)
    want = {s: (len(v), _opendp_clamped_sum(v, bounds)) for s, v in kept.items()}
    assert got == want
    assert dropped == n - sum(len(v) for v in kept.values())


def test_amounts_at_the_bounds_and_odd_arrow_inputs():
    bounds = (0.0, 100.0)
    base = {"s": ["x", "y", "x", "y", "x"], "c": [7, 7, 8, 9, 7],
            "a": [0.0, 100.0, -0.004, 100.004, 50.005]}
    want, dropped = _aggregates(pa.table(base), bounds=bounds, customer="c", max_rows=2)
    # at the bounds kept, a hair outside clamped, and the third row of customer 7 dropped
    assert want == {"x": (2, 0.0), "y": (2, 200.0)} and dropped == 1
    variants = {
        "string ids": {"c": pa.array(["7", "7", "8", "9", "7"])},
        "large_string ids": {"c": pa.array(["7", "7", "8", "9", "7"], pa.large_string())},
        "string_view ids": {"c": pa.array(["7", "7", "8", "9", "7"], pa.string_view())},
        "dictionary ids": {"c": pa.array(["7", "7", "8", "9", "7"]).dictionary_encode()},
        "uint64 ids at the ends": {"c": pa.array([2**64 - 1, 2**64 - 1, 0, 2**63, 2**64 - 1], pa.uint64())},
        "int64 ids at the ends": {"c": pa.array([-2**63, -2**63, 2**63 - 1, 0, -2**63])},
        "dictionary segments": {"s": pa.array(base["s"]).dictionary_encode()},
        "float32 amounts": {"a": pa.array(base["a"], pa.float32())},
        "decimal amounts": {"a": pa.array([0, 100, -0.004, 100.004, 50.005]).cast(pa.decimal128(9, 3))},
    }
    for name, change in variants.items():
        table = pa.table({**base, **change})
        for data in (table, pa.Table.from_batches(table.to_batches(max_chunksize=2))):
            assert _aggregates(data, bounds=bounds, customer="c", max_rows=2) == (want, 1), name
    # one row
    assert _aggregates(pa.table({"s": ["x"], "a": [3.0]}), bounds=bounds) == ({"x": (1, 3.0)}, 0)
    # nulls are errors naming the column, never dropped
    for column, values in (("a", [1.0, None]), ("c", [None, 1]), ("s", ["x", None])):
        table = pa.table({**{"s": ["x", "y"], "c": [1, 2], "a": [1.0, 2.0]}, column: values})
        with pytest.raises(InputError, match=f"'{column}' has 1 null"):
            dp_report(table, by=["s"], customer="c", amount="a", bounds=bounds, epsilon=1.0,
                      max_rows_per_customer=1)


@pytest.mark.parametrize("typ", [pa.string(), pa.int32(), pa.uint64(), pa.large_string(),
                                 pa.dictionary(pa.int32(), pa.string())])
def test_zero_rows_report_keeps_the_segment_type(typ):
    # regression (12339a5): an empty input without keys= gave the segment column int64
    value = "x" if (typ == pa.dictionary(pa.int32(), pa.string()) or pa.types.is_string(typ)
                    or pa.types.is_large_string(typ)) else 1
    one = pa.table({"s": pa.array([value]).cast(typ), "a": [1.0]})
    empty = one.slice(0, 0)
    full = dp_report(one, by=["s"], amount="a", bounds=(0, 1), epsilon=1.0).table
    none = dp_report(empty, by=["s"], amount="a", bounds=(0, 1), epsilon=1.0).table
    assert none.num_rows == 0 and none.schema.equals(full.schema)
    keyed = dp_report(empty, by=["s"], amount="a", bounds=(0, 1), epsilon=1.0,
                      keys={"s": pa.array([value]).cast(typ)}).table
    assert keyed.num_rows == 1  # a public key absent from the data is reported, with noise


def test_bad_bounds_and_overflowing_sums_are_clear_errors():
    table = pa.table({"s": ["x"], "c": [1], "a": [1.0]})
    with pytest.raises(InputError, match="two numbers"):
        dp_report(table, by=["s"], amount="a", bounds=("a", "b"), epsilon=1.0)
    for bounds, resolution in (((0, 1e300), 0.01), ((0, 1e6), 1e-15)):
        with pytest.raises(InputError, match="2\\*\\*52 units"):
            dp_report(table, by=["s"], amount="a", bounds=bounds, resolution=resolution, epsilon=1.0)
    budget = Budget(1.0)
    with pytest.raises(InputError, match="sums could overflow"):  # 2**30 rows x 2**40 units
        dp_report(table, by=["s"], customer="c", amount="a", bounds=(0, 2**40), resolution=1,
                  max_rows_per_customer=2**30, epsilon=1.0, budget=budget)
    assert budget.spent == 0  # refused before any budget is spent
    # keys= of another kind than the data's column: was a raw "invalid literal for int()"
    with pytest.raises(InputError, match="keys= column 's' .* holds integers but the data's 's'"):
        dp_report(table, by=["s"], metrics=["count"], epsilon=1.0, keys={"s": [1, 2]})
    with pytest.raises(InputError, match="holds strings but the data's 's' .* holds integers"):
        dp_report(pa.table({"s": [1]}), by=["s"], metrics=["count"], epsilon=1.0, keys={"s": ["1"]})
    for bad in ({"epsilon": True}, {"epsilon": 1.0, "alpha": True}, {"epsilon": 1.0, "resolution": True}):
        with pytest.raises(InputError):
            dp_report(table, by=["s"], amount="a", bounds=(0, 1), **bad)


def test_pseudonyms_of_odd_id_types_equal_hmac_and_blake2b():
    # integers of every width hash as their decimal text (README "Privacy"); odd Arrow shapes
    key = bytes(range(32))
    columns = {
        "uint64": pa.array([2**64 - 1, 0, None], pa.uint64()),
        "int64 dictionary": pa.array([-2**63, 5, None]).dictionary_encode(),
        "string_view": pa.array(["é", "", None], pa.string_view()),
    }
    for name, column in columns.items():
        table = pa.table({"id": column})
        texts = [None if v is None else str(v) for v in column.to_pylist()]
        want = {"hmac-sha256": lambda m: hmac.new(key, m, hashlib.sha256).hexdigest()[:32],
                "blake2b": lambda m: hashlib.blake2b(m, key=key, digest_size=16).hexdigest()}
        for method, reference in want.items():
            out = pseudonymize(table, ["id"], key=key, method=method)["id"]
            expected = [None if t is None else reference(t.encode()) for t in texts]
            assert out.to_pylist() == expected, (name, method)
            meta = json.loads(pseudonymize(table, ["id"], key=key, method=method).schema
                              .metadata[b"fastengage.privacy"])["pseudonymized"]["id"]
            assert meta["method"] == method and key.hex() not in json.dumps(meta)
        empty = pseudonymize(table.slice(0, 0), ["id"], key=key)
        assert empty.num_rows == 0


def test_reference_agrees_with_the_kernel_on_the_ported_data():
    # the plain-Python reference of tests/naive_privacy.py on the same rows (keeps both honest)
    segs, custs, amounts = ["x", "y", "x", "y", "x"], [7, 7, 8, 9, 7], [0.0, 100.0, -0.004, 100.004, 50.005]
    ref = naive_privacy.bounded_aggregates(segs, custs, amounts, 2, 0.0, 100.0, 0.01)
    got, _ = _aggregates(pa.table({"s": segs, "c": custs, "a": amounts}), bounds=(0.0, 100.0),
                         customer="c", max_rows=2)
    want = {k: (c, s * 0.01) for k, (c, s) in ref.items()}
    assert want.keys() == got.keys()
    for segment, value in want.items():  # pytest >= 9.2 compares no nested containers
        assert value == pytest.approx(got[segment]), segment


def test_consent_with_odd_id_types():
    # edge cases beyond the peers (consent has no peer suite): tables whose customer ids are of
    # two integer types, string_view/binary_view columns, strings beside integers
    import datetime as dt

    from fastengage.privacy import consented

    when = dt.datetime(2021, 1, 1)
    consents = pa.table({"c": pa.array([1, 2], pa.int8()), "purpose": ["analytics"] * 2,
                         "status": ["granted", "withdrawn"], "valid_from": [dt.datetime(2020, 1, 1)] * 2,
                         "valid_to": pa.array([None, None], pa.timestamp("us"))})

    def run(events, table=consents):
        return consented(events, table, customer="c", time="t", purpose="analytics")

    # int8 consent ids beside int64 event ids past int8: raised "does not fit int8, the type of
    # its first batch"; the unknown id is simply not consented
    got = run(pa.table({"c": [1, 2, 2**40], "t": [when] * 3}))
    assert got.data.column("c").to_pylist() == [1]
    assert got.report.column("rows").to_pylist() == [1, 1, 1, 0]
    small = run(pa.table({"c": pa.array([1, 3], pa.uint64()), "t": [when] * 2}))
    assert small.data.column("c").type == pa.uint64() and small.data.column("c").to_pylist() == [1]
    with pytest.raises(InputError, match="'c' \\(uint64\\) holds ids that do not fit int64"):
        run(pa.table({"c": pa.array([1, 2**64 - 1], pa.uint64()), "t": [when] * 2}))
    # strings beside integers: was "changed type from int64 to string between batches"
    with pytest.raises(InputError, match="holds integers but the data's 'c' \\(string\\) holds strings"):
        run(pa.table({"c": ["1", "2"], "t": [when] * 2}))
    # string_view / binary_view columns are kept with their types (was Arrow's raw
    # "array_take has no kernel for string_view")
    text = consents.set_column(0, "c", pa.array(["1", "2"]))
    events = pa.table({"c": pa.array(["1", "2", "1"], pa.string_view()), "t": [when] * 3,
                       "blob": pa.array([b"a", b"b", b"c"], pa.binary_view())})
    got = run(events, text)
    assert got.data.schema == events.schema
    assert got.data.column("blob").to_pylist() == [b"a", b"c"]



def test_forget_rows_with_odd_id_types():
    # string_view ids (plain and in a dictionary): Arrow has no is_in/filter kernel for them (was
    # a raw ArrowNotImplementedError); uint64 ids past int64 given as Python ints (was a raw
    # OverflowError from pyarrow's type inference)
    from fastengage.privacy import forget_rows

    for column in (pa.array(["a", "b", "a"], pa.string_view()),
                   pa.array(["a", "b", "a"], pa.string_view()).dictionary_encode()):
        table = pa.table({"c": column, "x": pa.array([b"1", b"2", b"3"], pa.binary_view())})
        kept, record = forget_rows(table, ["a"], customer="c")
        assert kept.schema == table.schema and kept.column("x").to_pylist() == [b"2"]
        assert (record.customers_found, record.rows_removed) == (1, 2)
    table = pa.table({"c": pa.array([2**64 - 1, 2, 2**63], pa.uint64())})
    kept, record = forget_rows(table, [2**64 - 1, 2**63], customer="c")
    assert kept.column("c").to_pylist() == [2] and record.customers_found == 2
    # -1 cannot be a uint64 customer: requested, not found (no error that would stop
    # forget_everywhere midway; tests/privacy/test_forget_id_ranges.py)
    kept, record = forget_rows(table, [2**64 - 1, -1], customer="c")
    assert kept.column("c").to_pylist() == [2, 2**63]
    assert (record.customers_requested, record.customers_found) == (2, 1)
