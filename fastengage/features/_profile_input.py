"""Reading the rows of :func:`fastengage.profile` (and :func:`fastengage.training_set`): every
column converted once, batch by batch, into the contiguous NumPy arrays the kernels take.

Memory: the Arrow batches are dropped as soon as they are converted; what stays is 8 bytes per
row for each of customer code, time, amount and every optional column given (order, item,
category, channel), plus the id maps. A Parquet file or dataset is therefore read in batches
but its rows are held as these arrays (about 40 bytes a row with an order column), not streamed
through a fixed-size state as :func:`fastengage.rfm` does.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.ids import IdEncoder, id_kind
from .._io.sources import Source
from ..errors import InputError
from ..kernels.common.config import PROFILE_MAX_CHANNELS
from ._common import check_types, dense_id_codes, new_report, prepare_batch

#: Optional id-like columns: role -> meaning (for messages).
OPTIONAL_ROLES = ("order", "item", "category", "channel")
_EMPTY = np.empty(0, np.int64)


@dataclass
class Rows:
    """The converted rows: ``codes`` index ``ids`` (customer ids in the user's type)."""

    codes: np.ndarray
    times: np.ndarray
    amounts: np.ndarray
    n_codes: int
    ids: pa.Array                 # customer id of every code
    ids_sorted: bool              # codes ascend with the ids
    output_type: pa.DataType      # type of the customer column in the output
    optional: dict = field(default_factory=dict)   # role -> int64 codes
    encoders: dict = field(default_factory=dict)   # role -> IdEncoder
    report: dict = field(default_factory=new_report)

    def codes_of(self, role: str) -> np.ndarray:
        return self.optional.get(role, _EMPTY)


def read_rows(source: Source, roles: dict, returns: str, drop_null_customers: bool,
              limit_us: int | None) -> Rows:
    """Validate and convert every batch of ``source`` (the columns named in ``roles``)."""
    check_types(source.schema, roles)
    for role in OPTIONAL_ROLES[1:]:
        if role in roles:
            id_kind(source.schema.field(roles[role]).type, roles[role], role)
    limit = limit_us if limit_us is not None else np.iinfo(np.int64).max
    columns = dict(customer=roles["customer"], time=roles["time"], amount=roles["amount"])
    report = new_report()
    customers = IdEncoder(roles["customer"], "customer")
    encoders = {role: IdEncoder(roles[role], role) for role in OPTIONAL_ROLES if role in roles}
    parts = {key: [] for key in ("codes", "times", "amounts", *encoders)}
    dense = None
    batches = source.batches(list(dict.fromkeys(roles.values())))
    for batch in batches:
        if batch.num_rows == 0:
            continue
        rows_before = report["rows_read"]
        report["rows_read"] += batch.num_rows
        batch, n_null, times, amounts = prepare_batch(batch, columns, drop_null_customers,
                                                      rows_before, returns, limit)
        report["null_customer_rows_dropped"] += n_null
        if batch.num_rows == 0:
            continue
        ids = batch.column(roles["customer"])
        if source.is_in_memory and not len(customers):
            dense = dense_id_codes(ids, roles["customer"])
        parts["codes"].append(dense[0] if dense is not None else customers.encode(ids))
        parts["times"].append(times)
        parts["amounts"].append(amounts)
        for role, encoder in encoders.items():
            parts[role].append(encoder.encode(batch.column(roles[role])))
        if "channel" in encoders and len(encoders["channel"]) > PROFILE_MAX_CHANNELS:
            raise InputError(
                f"channel column {roles['channel']!r} has more than {PROFILE_MAX_CHANNELS} "
                "distinct values (two output columns each); pass a column of channels such as "
                "'web', 'store', 'app'")
        del batch, ids
    if report["rows_read"] == 0:
        raise InputError("the input is empty: no rows to compute features from")
    if not parts["codes"]:
        raise InputError("no rows left after dropping null customer ids")
    arrays = {key: (values[0] if len(values) == 1 else np.concatenate(values))
              for key, values in parts.items()}
    if dense is not None:
        _, n_codes, ids = dense
        ids_sorted, output_type = True, ids.type
    else:
        n_codes, ids, ids_sorted = len(customers), customers.ids(), False
        output_type = customers.input_type
        declared = source.schema.field(roles["customer"]).type
        if pa.types.is_dictionary(declared):  # chunks may have been widened to be combined
            output_type = declared
    rows = Rows(arrays.pop("codes"), arrays.pop("times"), arrays.pop("amounts"), n_codes, ids,
                ids_sorted, output_type, arrays, encoders, report)
    return rows


def sorted_codes(encoder: IdEncoder) -> tuple:
    """(values sorted, rank of each code): an encoder's ids in ascending order."""
    ids = encoder.ids()
    order = pc.sort_indices(ids).to_numpy()
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return ids.take(pa.array(order)), rank
