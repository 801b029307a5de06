"""The :class:`~fastengage.RFMState` file: what it holds, and every check a loaded file passes
before a kernel sees it (issue #10).

A state file comes from wherever a service keeps it (a shared bucket, another worker), so it is
read as hostile input: the metadata is type- and range-checked field by field, each array is read
only after its header matched the size the metadata implies (no decompression bombs), and every
value a kernel will use as an index or trust as an invariant is checked: customer codes of the
pair arrays below the number of customers, order codes below the number of orders, days inside
the customer's purchase range, per-customer pair counts equal to the record's distinct counts,
no duplicate pairs, counts non-negative and consistent, finite sums. Any failure is a
:class:`~fastengage.errors.ModelFormatError` naming the member and the problem.
"""
from __future__ import annotations

import numpy as np

from .._io.sources import TIME_MAX_US, TIME_MIN_US
from ..errors import ModelFormatError
from ..kernels.features import pairset as _pairset
from ..kernels.features import rfm as _k
from ._common import RETURNS_MODES, new_report

KIND = "RFMState"
#: Version written; versions 1..VERSION are read. Version 2 keeps exact fixed-point money
#: totals (see ``fastengage.kernels.features.rfm``); version 1 kept float sums, converted on load.
#: Version 3 adds the per-customer row tracking that ``RFMState.forget`` needs to be exact
#: (``other_last_us``, ``after_cut_rows``, meta ``rows_tracked``); older files load untracked.
VERSION = 3
#: ``other_last_us`` of a customer without returns or rows after the cut (below every valid time).
NO_TIME = np.int64(TIME_MIN_US - 1)
#: The record layout of version-1 files.
STATE_DTYPE_V1 = np.dtype([
    ("first_us", np.int64), ("last_us", np.int64), ("purchase_sum", np.float64),
    ("return_sum", np.float64), ("last_order", np.int64), ("purchase_rows", np.int32),
    ("return_rows", np.int32), ("frequency", np.int32), ("purchase_days", np.int32),
    ("last_day", np.int32), ("_pad", np.int32)], align=True)
#: Upper bound on the Arrow IPC bytes of one id (ids longer than this cannot be in a state file
#: whose id table is bounded by it; generous for any real id).
MAX_ID_BYTES = 4096
#: Fixed overhead of an Arrow IPC file (schema, footer, padding).
IPC_OVERHEAD = 1 << 16
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_US_PER_DAY = int(_k.US_PER_DAY)


def fail(member: str, problem: str):
    raise ModelFormatError(f"{KIND} file: {member}: {problem}")


def _int_or_none(value, name: str, lo: int = _INT64_MIN, hi: int = _INT64_MAX):
    if value is None:
        return None
    return _int(value, name, lo, hi)


def _int(value, name: str, lo: int = _INT64_MIN, hi: int = _INT64_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        fail("meta.json", f"{name} must be an integer in [{lo}, {hi}], got {value!r:.80}")
    return value


def read_settings(meta) -> dict:
    """The constructor settings and counters of a state, every field checked."""
    cols = meta.get("columns")
    if not isinstance(cols, dict) or set(cols) != {"customer", "time", "amount", "order"}:
        fail("meta.json", "columns must be an object with keys customer, time, amount, order")
    for role, name in cols.items():
        if not (isinstance(name, str) or (role == "order" and name is None)):
            fail("meta.json", f"columns.{role} must be a column name, got {name!r:.80}")
    if meta.get("returns") not in RETURNS_MODES:
        fail("meta.json", f"returns must be one of {RETURNS_MODES}, got {meta.get('returns')!r:.80}")
    if not isinstance(meta.get("drop_null_customers"), bool):
        fail("meta.json", "drop_null_customers must be true or false")
    report = meta.get("report")
    expected = set(new_report())
    if not isinstance(report, dict) or set(report) != expected:
        fail("meta.json", f"report must be an object with keys {sorted(expected)}")
    return {
        "columns": cols, "returns": meta["returns"],
        "drop_null_customers": meta["drop_null_customers"],
        "limit_us": _int_or_none(meta.get("limit_us"), "limit_us", TIME_MIN_US, TIME_MAX_US),
        "max_time_us": _int_or_none(meta.get("max_time_us"), "max_time_us", TIME_MIN_US,
                                    TIME_MAX_US),
        "report": {k: _int(v, f"report.{k}", 0) for k, v in report.items()},
        "n_customers": _int_or_none(meta.get("n_customers"), "n_customers", 0, _pairset.MAX_CODE),
        "n_orders": _int_or_none(meta.get("n_orders"), "n_orders", 0, _pairset.MAX_VALUE),
        "rows_tracked": _bool(meta.get("rows_tracked", False), "rows_tracked"),
    }


def _bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        fail("meta.json", f"{name} must be true or false, got {value!r:.80}")
    return value


def ids_max_bytes(n_ids: int) -> int:
    return IPC_OVERHEAD + n_ids * MAX_ID_BYTES


def read_records(bundle, settings) -> np.ndarray:
    """The record array, its size checked against the metadata before it is read, then
    every record checked (see :func:`check_records`)."""
    n = settings["n_customers"]
    rows_read = settings["report"]["rows_read"]
    v1 = bundle.version == 1
    dtype = STATE_DTYPE_V1 if v1 else _k.STATE_DTYPE
    # Version-1 files have no n_customers: every customer came with at least one row read.
    state = bundle.array("state", dtype=dtype, shape=(n,),
                         max_bytes=None if n is not None else
                         min(rows_read, _pairset.MAX_CODE) * dtype.itemsize)
    if v1:
        state = _from_v1(state, settings)
    check_records(state, settings)
    return state


def _from_v1(old: np.ndarray, settings) -> np.ndarray:
    """Version-1 records (float sums) as version-2 records (the sum, on the 2**-64 grid)."""
    member = "state.npy"
    money = old["purchase_sum"] + old["return_sum"]
    if not np.isfinite(money).all() or (np.abs(money) >= _k.MAX_ABS_AMOUNT).any():
        fail(member, "non-finite or out-of-range monetary sums")
    if (old["last_order"] < -1).any() or (old["last_order"] > _pairset.MAX_CODE).any():
        fail(member, "last_order out of range")
    if (old["purchase_sum"] < 0).any() or (old["return_sum"] > 0).any():
        fail(member, "purchase sums must be >= 0 and return sums <= 0")
    state = _k.new_state(len(old))
    for name in ("first_us", "last_us", "last_order", "purchase_rows", "return_rows", "frequency",
                 "purchase_days", "last_day"):
        state[name] = old[name]
    _k.set_money(state, money)
    return state


def check_records(state: np.ndarray, settings) -> None:
    member = "state.npy"
    has_order = settings["columns"]["order"] is not None
    buy = state["purchase_rows"] > 0
    for name in ("purchase_rows", "return_rows", "frequency", "purchase_days"):
        if (state[name] < 0).any():
            fail(member, f"negative {name} in record {int(np.argmax(state[name] < 0))}")
    # Each row adds less than 2**63 to a total, so |money_hi| <= rows / 2 + 1.
    rows = state["purchase_rows"].astype(np.int64) + state["return_rows"]
    if (np.abs(state["money_hi"]) > rows).any():
        fail(member, "a monetary total larger than its rows can hold")
    hi, lo, frac = state["money_hi"], state["money_lo"], state["money_frac"]
    if (((hi != 0) | (lo != 0) | (frac != 0)) & (rows == 0)).any():
        fail(member, "a monetary total without rows")
    if (buy & (state["return_rows"] == 0) & (hi < 0)).any():
        fail(member, "a negative total without returns")
    if settings["returns"] == "exclude" and ((hi < 0) | (~buy & ((lo != 0) | (frac != 0)))).any():
        fail(member, "returns counted in a state built with returns='exclude'")
    empty = state[~buy]
    if ((empty["first_us"] != _k.INT64_MAX).any() or (empty["last_us"] != _k.INT64_MIN).any()
            or (empty["frequency"] != 0).any()
            or (empty["purchase_days"] != 0).any() or (empty["last_day"] != _k.NO_DAY).any()
            or (empty["last_order"] != -1).any()):
        fail(member, "a customer without purchases has purchase fields set")
    rec = state[buy]
    first, last = rec["first_us"], rec["last_us"]
    lo, hi = TIME_MIN_US, TIME_MAX_US
    if ((first < lo) | (last > hi) | (first > last)).any():
        fail(member, "purchase times out of order or out of range")
    held = settings["limit_us"] if settings["limit_us"] is not None else settings["max_time_us"]
    if len(rec) and (held is None or int(last.max()) > held):
        fail(member, "purchases later than the state's as_of / latest event time")
    rows = rec["purchase_rows"]
    if ((rec["purchase_days"] < 1) | (rec["purchase_days"] > rows) | (rec["frequency"] > rows)).any():
        fail(member, "distinct counts must lie in 1..purchase_rows")
    if has_order and (rec["frequency"] < 1).any():
        fail(member, "a customer with purchases has no order")
    days = rec["last_day"].astype(np.int64)
    if ((days < first // _US_PER_DAY) | (days > last // _US_PER_DAY)).any():
        fail(member, "last_day outside the customer's purchase days")
    if not has_order and (rec["last_order"] != -1).any():
        fail(member, "order codes in a state without an order column")


def check_order_hints(state: np.ndarray, n_orders: int) -> None:
    last_order = state["last_order"]
    if ((last_order < -1) | (last_order >= n_orders)).any():
        fail("state.npy", f"last_order outside -1..{n_orders - 1}")


def read_pairs(bundle, state: np.ndarray, name: str, n_values: int | None) -> np.ndarray:
    """The pair set of ``name``, every key ``customer << 32 | value`` checked against the records.

    ``n_values`` is None for day pairs (the value is a day inside the customer's purchase range)
    and the number of order ids for order pairs (the value is an order code).
    """
    member = f"{name}.npy"
    counts_field = "purchase_days" if n_values is None else "frequency"
    expected = int(state[counts_field].sum(dtype=np.int64))
    keys = bundle.array(name, dtype=np.int64, shape=(expected,))
    codes = keys >> 32
    if len(keys) and (codes.min() < 0 or codes.max() >= len(state)):
        fail(member, f"customer codes outside 0..{len(state) - 1}")
    low = keys & 0xFFFFFFFF
    if n_values is None:
        day = low.astype(np.uint32).view(np.int32).astype(np.int64)
        rec = state[codes]
        if ((day < rec["first_us"] // _US_PER_DAY) | (day > rec["last_us"] // _US_PER_DAY)).any():
            fail(member, "a purchase day outside the customer's first..last purchase")
    elif len(keys) and int(low.max()) >= n_values:
        fail(member, f"order codes outside 0..{n_values - 1}")
    if not np.array_equal(np.bincount(codes, minlength=len(state)), state[counts_field]):
        fail(member, f"pairs per customer disagree with the records' {counts_field}")
    table, n_distinct = _pairset.rebuilt(keys, _pairset.capacity_for(len(keys)))
    if n_distinct != len(keys):
        fail(member, "duplicate pairs")
    return table


def read_no_pairs(bundle, name: str) -> np.ndarray:
    """A pair array that must be empty (order pairs of a state without an order column)."""
    bundle.array(name, dtype=np.int64, shape=(0,))
    return np.full(16, _pairset.EMPTY, dtype=np.int64)


def read_row_tracking(bundle, state: np.ndarray, settings) -> tuple:
    """(other_last_us, after_cut_rows, rows_tracked) of a state, checked against the records
    and the report. Files older than version 3 hold none: every customer gets "no such rows"
    and the state is untracked (``forget`` then says what it cannot know)."""
    n = len(state)
    cut = settings["limit_us"] is not None
    if bundle.version < 3:
        return np.full(n, NO_TIME, np.int64), np.zeros(n if cut else 0, np.int32), False
    other = bundle.array("other_last_us", dtype=np.int64, shape=(n,))
    after = bundle.array("after_cut_rows", dtype=np.int32, shape=(n if cut else 0,))
    if ((other != NO_TIME) & ((other < TIME_MIN_US) | (other > TIME_MAX_US))).any():
        fail("other_last_us.npy", "times out of range")
    if (after < 0).any():
        fail("after_cut_rows.npy", "negative row counts")
    if cut and ((after > 0) & (other <= settings["limit_us"])).any():
        fail("after_cut_rows.npy", "rows after the cut without a time after it")
    report = settings["report"]
    buy = state["purchase_rows"] > 0
    latest = max(int(state["last_us"][buy].max()) if buy.any() else NO_TIME,
                 int(other.max()) if n else NO_TIME)
    held = settings["max_time_us"]
    if latest != NO_TIME and (held is None or latest > held):
        fail("other_last_us.npy", "times later than the state's latest event time")
    if settings["rows_tracked"]:
        folded = int(state["purchase_rows"].sum(dtype=np.int64)
                     + state["return_rows"].sum(dtype=np.int64))
        if int(after.sum(dtype=np.int64)) != report["rows_after_as_of"]:
            fail("after_cut_rows.npy", "rows per customer disagree with report.rows_after_as_of")
        if folded + report["rows_after_as_of"] + report["null_customer_rows_dropped"] \
                != report["rows_read"]:
            fail("state.npy", "rows per customer disagree with report.rows_read")
        if latest != (NO_TIME if held is None else held):
            fail("other_last_us.npy", "the latest event time is no customer's")
    return other, after, settings["rows_tracked"]
