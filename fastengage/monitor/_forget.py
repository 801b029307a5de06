"""``Profile.forget``: erase customers' ids from a drift profile (fastengage.privacy.forget).

What a profile holds about a customer: a numeric column keeps its values pooled and sorted,
with no link to the row or customer they came from; a categorical column keeps one count per
category. So the only ids a profile can hold are those of a column that *is* an id column (a
``customer`` column profiled by ``Profile.from_data(table)`` with every column, or named in
``columns=``). ``forget`` removes the ids from such columns:

* categorical columns (strings or integers): by default every one of them; a category equal to
  a forgotten id is that customer's id, and it is dropped with its count;
* numeric columns: only those named in ``id_columns=`` (an amount that happens to equal an id
  is not one); exact columns drop every value equal to a forgotten id and recompute count,
  min, max and moments from the values left, as a profile built without those rows would hold
  them; sketched columns cannot give a value back exactly and are refused.

The other columns' values are pooled without ids and still count the forgotten customers'
rows: the record says so (``exact=False`` whenever such a column holds values); a profile
equal to one built without them takes a rebuild from the filtered data.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..kernels.monitor.profile import sorted_row_stats
from ..privacy.forget import as_id_array, audit, count_requested
from ._columns import CATEGORICAL, NUMERIC, CategoricalState, NumericState


def forget_ids(profile, customers, request, id_columns):
    kinds = profile.kinds
    if id_columns is None:
        targets = [c for c, k in kinds.items() if k == CATEGORICAL]
    else:
        targets = [id_columns] if isinstance(id_columns, str) else list(id_columns)
        unknown = [c for c in targets if c not in kinds]
        if unknown:
            raise InputError(f"id_columns {unknown} are not in this profile; it has "
                             f"{list(kinds)}")
    requested = count_requested(customers)
    removed, found = {}, set()
    with profile._lock:
        new_states = {}
        for name in targets:
            state = profile.states[name]
            if state is None:
                continue
            if kinds[name] == CATEGORICAL:
                if pa.types.is_boolean(state.values.type) or not _same_kind(customers,
                                                                            state.values.type):
                    continue
                ids = as_id_array(customers, state.values.type)
                new_states[name], count, hit = _drop_categories(state, ids)
            else:
                new_states[name], count, hit = _drop_values(name, state, customers)
            removed[name] = count
            found.update(hit)
        profile.states.update(new_states)
        pooled = [c for c, k in kinds.items() if c not in new_states and
                  profile.states[c] is not None and profile.states[c].n > 0]
    notes = ("ids removed from " + (", ".join(new_states) or "no column"))
    if pooled:
        notes += ("; columns " + ", ".join(pooled) + " keep values pooled without ids, which "
                  "still count the forgotten customers' rows (rebuild the profile from the "
                  "filtered data to drop them)")
    return audit("monitor.Profile", requested=requested, found=len(found),
                 rows_removed=max(removed.values(), default=0), exact=not pooled, notes=notes,
                 request=request, columns=removed)


def _same_kind(customers, typ) -> bool:
    try:
        as_id_array(customers, typ)
    except InputError:
        return False
    return True


def _drop_categories(state: CategoricalState, ids: pa.Array):
    hit = pc.is_in(state.values, value_set=ids).to_numpy(zero_copy_only=False)
    keep = pa.array(~hit)
    found = state.values.filter(pa.array(hit)).to_pylist()
    counts = state.counts[~hit]
    return (CategoricalState(state.values.filter(keep), np.ascontiguousarray(counts),
                             state.n_null), int(state.counts[hit].sum()), found)


def _drop_values(name: str, state: NumericState, customers):
    if not state.exact:
        raise InputError(f"column {name!r} is sketched: its values are merged into weighted "
                         "points and cannot be removed exactly; rebuild the profile from the "
                         "data without these customers")
    ids = as_id_array(customers)
    if not (pa.types.is_integer(ids.type) or pa.types.is_floating(ids.type)):
        raise InputError(f"column {name!r} is numeric but the customers to forget are {ids.type}")
    if pa.types.is_integer(ids.type) and len(ids):
        # a numeric column holds float64: past 2**53 several ids share one value, so removing
        # one id's value could remove another customer's rows too (or miss the id's own)
        big = pc.max(pc.abs_checked(ids.cast(pa.float64(), safe=False))).as_py() or 0.0
        if big > 2.0 ** 53:
            raise InputError(f"column {name!r} is numeric (float64) and an id to forget exceeds "
                             "2**53 in magnitude, where float64 cannot tell ids apart; profile "
                             f"it with categorical=[{name!r}] to forget such ids exactly")
    targets = np.unique(ids.cast(pa.float64()).to_numpy(zero_copy_only=False))
    values = state.values
    hit = np.isin(values, targets)
    kept = np.ascontiguousarray(values[~hit])
    found = np.unique(values[hit]).tolist()
    n = kept.shape[0]
    mean, m2 = np.zeros(1), np.zeros(1)
    sorted_row_stats(kept.reshape(1, n), np.array([n], dtype=np.int64), mean, m2)
    new = NumericState(n=n, n_null=state.n_null, minimum=float(kept[0]) if n else np.inf,
                       maximum=float(kept[-1]) if n else -np.inf, mean=float(mean[0]),
                       m2=float(m2[0]), values=kept)
    return new, int(hit.sum()), found
