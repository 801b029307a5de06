"""The safe bundle reader (fastengage/_io/persist.py) itself: an Arrow member whose field name is
not UTF-8 is a ModelFormatError naming the member, for every loader (it was a
UnicodeDecodeError escaping from whichever caller first read the schema's names)."""
import io
import zipfile

import numpy as np
import pyarrow as pa
import pytest

from fastengage._io.persist import load_bundle, save_bundle
from fastengage.errors import ModelFormatError


def _saved(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    save_bundle(buf, "Probe", 1, {"n": 3}, {"x": np.arange(3)}, {"ids": table})
    return buf.getvalue()


def _edit_arrow(raw: bytes, old: bytes, new: bytes) -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".arrow"):
                assert old in data
                data = data.replace(old, new)
            dst.writestr(info, data)
    out.seek(0)
    return out


def test_valid_table_member_round_trips():
    table = pa.table({"value": ["a", "b", "c"]})
    with load_bundle(io.BytesIO(_saved(table)), "Probe", 1) as bundle:
        assert bundle.table("ids").equals(table)


def test_field_name_that_is_not_utf8_is_a_format_error():
    raw = _saved(pa.table({"value": ["a", "b", "c"]}))
    with load_bundle(_edit_arrow(raw, b"value", b"v\xf2lue"), "Probe", 1) as bundle:
        with pytest.raises(ModelFormatError, match="ids.arrow"):
            bundle.table("ids")
