"""One customer across channels: resolve linked ids (web login, loyalty card, email hash, device)
into one key per person, by connected components over the id pairs.

Design: :func:`resolve` reads the link columns batch by batch, codes both through one
:class:`~fastengage._io.ids.IdEncoder` (one id space), and calls the union-find kernels in
``fastengage.kernels.features.unionfind``. ``rfm(..., identity=...)``-style roll-ups use the
returned table as a mapping (:func:`apply_identity`).
"""
from __future__ import annotations

import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._io.ids import IdEncoder, cast_ids, common_int_type, id_kind, string_buffers
from .._io.sources import open_source
from ..errors import InputError
from ..kernels.features import pairset as _pairset
from ..kernels.features import unionfind as _uf

__all__ = ["resolve", "apply_identity"]

_log = logging.getLogger("fastengage")


def resolve(links, *, left: str, right: str, max_degree: int | None = None,
            drop_null_links: bool = False) -> pa.Table:
    """Resolve id links into one ``customer_key`` per connected component.

    Parameters
    ----------
    links : Arrow table, batches, dataset, Parquet path or ``__arrow_c_stream__`` object
        One row per link between two ids known to belong to the same person.
    left, right : str
        The two id columns. Both must be integers, or both strings: they share one id space.
    max_degree : int, optional
        Guard against giant components: an id linked to more than ``max_degree`` distinct other
        ids (a store's default card, a shared device) is *cut*: its links are ignored, it becomes
        its own component, and it is reported (``cut`` column, ``ids_cut`` in the metadata).
    drop_null_links : bool
        Rows with a null id raise :class:`InputError` unless this is True; their count is
        reported either way.

    Returns
    -------
    pyarrow.Table
        One row per distinct id, in first-seen order (left column before right, row by row):
        ``id`` (the ids' type), ``customer_key`` (the smallest id of the component: numeric order
        for integers, byte order for strings, so the key does not depend on link order),
        ``component_size``, ``links`` (link rows touching the id), and with ``max_degree`` also
        ``degree`` (distinct neighbours) and ``cut``. Schema metadata ``fastengage`` holds the
        report: links read, null links dropped, self links, ids, components, largest component,
        ids cut.
    """
    if max_degree is not None and (isinstance(max_degree, bool)
                                   or not isinstance(max_degree, (int, np.integer)) or max_degree < 1):
        raise InputError(f"max_degree must be a positive integer or None, got {max_degree!r}")
    if isinstance(left, str) and left == right:
        raise InputError(f"left= and right= both name {left!r}: links need two id columns")
    source = open_source(links)
    cols = source.require({"left": left, "right": right})
    kinds = {role: id_kind(source.schema.field(name).type, name, role) for role, name in cols.items()}
    if kinds["left"] != kinds["right"]:
        raise InputError(f"link columns {left!r} ({source.schema.field(left).type}) and {right!r} "
                         f"({source.schema.field(right).type}) must both be integers or both strings")
    common = _common_int_type(source.schema.field(left).type, source.schema.field(right).type) \
        if kinds["left"] == "int" else None
    encoder = IdEncoder(f"{left}/{right}", "id")
    left_codes, right_codes = [], []
    report = {"links_read": 0, "null_links_dropped": 0}
    for batch in source.batches([left, right]):
        a, b = batch.column(0), batch.column(1)
        report["links_read"] += batch.num_rows
        nulls = pc.or_(pc.is_null(a), pc.is_null(b))
        n_null = pc.sum(nulls).as_py() or 0
        if n_null:
            if not drop_null_links:
                raise InputError(f"{n_null} link row(s) have a null id in {left!r} or {right!r}; "
                                 "pass drop_null_links=True to drop them (the count is reported)")
            a, b = _drop_rows(a, nulls), _drop_rows(b, nulls)
            report["null_links_dropped"] += n_null
        if common is not None:  # int32 beside int64, uint64 beside uint8...: one id type
            a, b = _as_int_type(a, common, left, right), _as_int_type(b, common, right, left)
        if a.type != encoder.type and encoder.type is not None and kinds["left"] == "str":
            a = a.cast(encoder.type)
        left_codes.append(encoder.encode(a))
        b = b.cast(encoder.type) if kinds["left"] == "str" and b.type != encoder.type else b
        right_codes.append(encoder.encode(b))
    if not left_codes or not len(encoder):
        raise InputError("no links to resolve: the input is empty")
    lc = np.ascontiguousarray(np.concatenate(left_codes))
    rc = np.ascontiguousarray(np.concatenate(right_codes))
    n = len(encoder)
    links_per_id, n_self = _uf.link_counts(lc, rc, n)
    keep = np.ones(n, dtype=np.bool_)
    extra = {}
    if max_degree is not None:
        degree = _uf.distinct_degrees(lc, rc, n, _pairset.capacity_for(len(lc)))
        keep = degree <= max_degree
        extra = {"degree": pa.array(degree), "cut": pa.array(~keep)}
        report["ids_cut"] = int(n - np.count_nonzero(keep))
        if report["ids_cut"]:
            _log.warning("identity.resolve: cut %d id(s) linked to more than %d others",
                         report["ids_cut"], max_degree)
    root, size = _uf.components(lc, rc, keep, n)
    ids = encoder.ids()
    if encoder.kind == "int":
        values = np.ascontiguousarray(pc.cast(ids, pa.int64()).to_numpy(zero_copy_only=False)
                                      if not pa.types.is_uint64(ids.type)
                                      else ids.view(pa.int64()).to_numpy())
        if pa.types.is_uint64(ids.type):
            values = values ^ np.int64(-2**63)  # order uint64 as signed: flip the top bit
            key = pa.array(_uf.smallest_int_per_root(root, values) ^ np.int64(-2**63)).view(pa.uint64())
        else:
            key = pa.array(_uf.smallest_int_per_root(root, values)).cast(ids.type)
    else:
        offsets, data = string_buffers(ids)
        key = ids.take(pa.array(_uf.smallest_string_per_root(root, np.ascontiguousarray(offsets), data)))
    sizes = size[root]
    roots = np.flatnonzero(size)
    report.update(self_links=int(n_self), ids=int(n), components=int(roots.size),
                  largest_component=int(size.max()))
    table = pa.table({"id": ids, "customer_key": key, "component_size": pa.array(sizes),
                      "links": pa.array(links_per_id), **extra})
    return table.replace_schema_metadata({"fastengage": json.dumps(report)})


def _drop_rows(array, drop):
    """``array`` without the rows where ``drop`` is true; string_view (no filter or take kernel
    in Arrow) becomes large_string, the type the id map gives string_view ids anyway."""
    if pa.types.is_string_view(array.type):
        array = array.cast(pa.large_string())
    return pc.filter(array, pc.invert(drop))


def _common_int_type(left_type, right_type):
    """The one integer type both link columns are coded in when their types differ (None when
    they are the same): see :func:`fastengage._io.ids.common_int_type`."""
    if left_type == right_type and not pa.types.is_dictionary(left_type):
        return None
    return common_int_type(left_type, right_type)


def _as_int_type(array, typ, column, other):
    return cast_ids(array, typ, f"link column {column!r}", repr(other),
                    "; cast both columns to one integer type")


def apply_identity(data, identity: pa.Table, *, customer: str) -> pa.Table:
    """``data`` with its ``customer`` column replaced by the resolved ``customer_key`` (ids not in
    ``identity`` keep their own id), so that ``rfm()``/``profile()`` roll events up per person."""
    source = open_source(data)
    source.require({"customer": customer})
    table = pa.Table.from_batches(list(source.batches(source.schema.names)), schema=source.schema)
    col = table.column(customer)
    ids = identity.column("id")
    if col.type != ids.type:
        try:
            col = col.cast(ids.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(f"customer column {customer!r} ({table.schema.field(customer).type}) "
                             f"cannot be matched with the resolved ids ({ids.type}): {exc}") from None
    pos = pc.index_in(col, value_set=ids)
    mapped = pc.take(identity.column("customer_key"), pc.fill_null(pos, 0))
    resolved = pc.if_else(pc.is_null(pos), col, mapped)
    return table.set_column(table.schema.get_field_index(customer), customer, resolved)
