"""pseudonymize: tokens equal Python's hmac/hashlib on every id type, RFC 4231 vectors, inputs,
metadata, key handling."""
import hashlib
import hmac
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastengage.errors import ColumnNotFoundError, InputError
from fastengage.privacy import METADATA_KEY, key_id, pseudonymize
from fastengage.privacy.pseudonyms import _Hasher

KEY = bytes(range(32))


def expected(value, key, method="hmac-sha256", length=16, output="hex"):
    if value is None:
        return None
    message = value if isinstance(value, bytes) else (
        value.encode() if isinstance(value, str) else str(int(value)).encode())
    if method == "hmac-sha256":
        mac = hmac.new(key, message, hashlib.sha256).digest()[:length]
    else:
        mac = hashlib.blake2b(message, key=key, digest_size=length).digest()
    return mac.hex() if output == "hex" else mac


def tokens(values, typ, **kw):
    table = pa.table({"id": pa.array(values, type=typ)})
    return pseudonymize(table, ["id"], **kw).column("id").to_pylist()


# RFC 4231 section 4: HMAC-SHA256 test cases 1-7 (case 5 truncated to 128 bits).
RFC4231 = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than "
     b"block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


@pytest.mark.parametrize("key, message, mac", RFC4231)
def test_rfc4231_vectors(key, message, mac):
    length = len(mac) // 2
    array = pa.array([message], pa.binary())
    # The kernel path itself (the public API refuses keys under 16 bytes, e.g. case 2's "Jefe").
    hasher = _Hasher(key, "hmac-sha256", length, True, None)
    try:
        assert hasher.digest(array, "id").to_pylist() == [mac]
    finally:
        hasher.close()
    if len(key) >= 16:
        assert tokens([message], pa.binary(), key=key, length=length) == [mac]


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(text, st.none()), max_size=40),
       method=st.sampled_from(["hmac-sha256", "blake2b"]), length=st.integers(8, 32),
       output=st.sampled_from(["hex", "binary"]),
       typ=st.sampled_from([pa.string(), pa.large_string(), pa.string_view()]))
def test_strings_equal_python(values, method, length, output, typ):
    got = tokens(values, typ, key=KEY, method=method, length=length, output=output)
    assert got == [expected(v, KEY, method, length, output) for v in values]


INT_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(),
             pa.uint64()]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), typ=st.sampled_from(INT_TYPES),
       method=st.sampled_from(["hmac-sha256", "blake2b"]))
def test_integers_equal_python_on_decimal_text(data, typ, method):
    info = np.iinfo(typ.to_pandas_dtype())
    values = data.draw(st.lists(st.one_of(st.integers(int(info.min), int(info.max)), st.none()),
                                max_size=30))
    values += [int(info.min), int(info.max), 0]
    got = tokens(values, typ, key=KEY, method=method)
    assert got == [expected(v, KEY, method) for v in values]
    # the decimal text as a string column gives the same tokens: joins across id types work
    as_text = [None if v is None else str(v) for v in values]
    assert tokens(as_text, pa.string(), key=KEY, method=method) == got


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.binary(max_size=200), max_size=20),
       typ=st.sampled_from([pa.binary(), pa.large_binary()]))
def test_binary_equal_python(values, typ):
    assert tokens(values, typ, key=KEY) == [expected(v, KEY) for v in values]


def test_long_empty_and_non_ascii_ids_and_long_keys():
    values = ["", "é" * 100_000, "x" * 55, "x" * 56, "x" * 64, "日本語のID", "\U0001f600" * 17]
    for key in (KEY, b"k" * 64, b"k" * 65, b"k" * 500):
        assert tokens(values, pa.string(), key=key) == [expected(v, key) for v in values]
    assert tokens(values, pa.string(), key=b"k" * 64, method="blake2b", length=64) == \
        [expected(v, b"k" * 64, "blake2b", 64) for v in values]


def test_fixed_size_binary_sliced_chunked_and_dictionary_inputs():
    fixed = pa.array([b"0123456789abcdef", b"fedcba9876543210"] * 3, pa.binary(16))
    assert tokens(fixed.to_pylist(), pa.binary(16), key=KEY) == \
        [expected(v, KEY) for v in fixed.to_pylist()]
    values = [f"c{i}" for i in range(1000)]
    sliced = pa.array(values).slice(17, 500)
    out = pseudonymize(pa.table({"id": sliced}), ["id"], key=KEY)
    assert out["id"].to_pylist() == [expected(v, KEY) for v in values[17:517]]
    chunked = pa.chunked_array([values[:10], values[10:], []])
    out = pseudonymize(pa.table({"id": chunked}), ["id"], key=KEY)["id"]
    assert out.to_pylist() == [expected(v, KEY) for v in values]
    dictionary = pa.array(["b", "a", None, "b"]).dictionary_encode()
    out = pseudonymize(pa.table({"id": dictionary}), ["id"], key=KEY)["id"]
    assert pa.types.is_dictionary(out.type)
    assert out.to_pylist() == [expected(v, KEY) for v in ["b", "a", None, "b"]]


def test_one_and_two_threads_give_identical_tokens():
    values = pa.array([f"customer-{i}" * (i % 7) for i in range(20_000)])
    table = pa.table({"id": values})
    one = pseudonymize(table, ["id"], key=KEY, n_threads=1)
    two = pseudonymize(table, ["id"], key=KEY, n_threads=2)
    assert one.equals(two)


def test_python_fallback_gives_the_same_tokens(monkeypatch):
    import fastengage.privacy.pseudonyms as module

    table = pa.table({"id": ["a", "", "é", None], "n": pa.array([1, -2, 3, 4], pa.int16())})
    fast = {m: pseudonymize(table, ["id", "n"], key=KEY, method=m) for m in ("hmac-sha256",
                                                                            "blake2b")}
    monkeypatch.setattr(module, "libcrypto", lambda: None)
    monkeypatch.setenv("FASTENGAGE_NO_SHA_NI", "1")  # past the SHA-NI kernel too
    for method, result in fast.items():
        assert pseudonymize(table, ["id", "n"], key=KEY, method=method).equals(result)


def test_other_columns_pass_through_and_metadata_names_the_key_id_not_the_key():
    table = pa.table({"id": ["a", "b"], "amount": [1.5, 2.5]},
                     metadata={b"owner": b"crm"})
    out = pseudonymize(table, ["id"], key=KEY, length=12)
    assert out["amount"].equals(table["amount"])
    assert out.schema.metadata[b"owner"] == b"crm"
    meta = json.loads(out.schema.metadata[METADATA_KEY])["pseudonymized"]["id"]
    assert meta == {"method": "hmac-sha256", "length_bytes": 12, "output": "hex",
                    "key_id": key_id(KEY), "integers": "decimal-ascii", "version": 1}
    assert key_id(KEY) == hmac.new(KEY, b"fastengage.privacy.key-id/v1",
                                   hashlib.sha256).hexdigest()[:16]
    assert key_id(KEY) != key_id(KEY[::-1])
    sink = pa.BufferOutputStream()
    pq.write_table(out, sink)
    raw = sink.getvalue().to_pybytes()
    assert KEY not in raw and KEY.hex().encode() not in raw


def test_streamed_inputs_give_readers_and_the_same_tokens(tmp_path):
    values = [f"id{i}" for i in range(5000)]
    table = pa.table({"id": values, "n": list(range(5000))})
    path = tmp_path / "ids.parquet"
    pq.write_table(table, path, row_group_size=1000)
    want = pseudonymize(table, ["id", "n"], key=KEY)
    reader = pseudonymize(str(path), ["id", "n"], key=KEY, batch_size=700)
    assert isinstance(reader, pa.RecordBatchReader)
    got = reader.read_all()
    assert got.equals(want) and got.schema.metadata == want.schema.metadata
    batch = pseudonymize(table.to_batches()[0], ["id"], key=KEY)
    assert isinstance(batch, pa.RecordBatch)
    assert batch.column(0).to_pylist() == want["id"].to_pylist()
    polars = pytest.importorskip("polars")
    frame = polars.DataFrame({"id": values})
    assert pseudonymize(frame, ["id"], key=KEY).read_all()["id"].to_pylist() == \
        want["id"].to_pylist()


def test_key_checks_and_bad_arguments():
    table = pa.table({"id": ["a"], "t": [1.5]})
    secret = b"short-secret-15"
    with pytest.raises(InputError, match="at least 16 bytes") as err:
        pseudonymize(table, ["id"], key=secret)
    assert secret.decode() not in str(err.value)
    with pytest.raises(InputError, match="not str"):
        pseudonymize(table, ["id"], key="a passphrase of many chars")
    with pytest.raises(InputError, match="at most 64"):
        pseudonymize(table, ["id"], key=b"k" * 65, method="blake2b")
    with pytest.raises(InputError, match="method"):
        pseudonymize(table, ["id"], key=KEY, method="md5")
    with pytest.raises(InputError, match="length"):
        pseudonymize(table, ["id"], key=KEY, length=4)
    with pytest.raises(InputError, match="length"):
        pseudonymize(table, ["id"], key=KEY, length=33)
    with pytest.raises(InputError, match="'t' has type double"):
        pseudonymize(table, ["t"], key=KEY)
    with pytest.raises(ColumnNotFoundError, match="'nope'"):
        pseudonymize(table, ["nope"], key=KEY)


def test_deterministic_per_key_and_different_across_keys():
    values = [f"c{i}" for i in range(100)]
    a = tokens(values, pa.string(), key=KEY)
    assert a == tokens(values, pa.string(), key=KEY)
    b = tokens(values, pa.string(), key=KEY[::-1])
    assert not set(a) & set(b)
    assert len(set(a)) == 100


@pytest.mark.parametrize("one_block", [True, False])
def test_every_length_on_both_hmac_paths(one_block, monkeypatch):
    """Ids of 0..300 bytes (every byte value), on the portable path's one-block
    SHA256_Transform path (ids up to 55 bytes) and its SHA256_Update/Final path, equal Python's
    hmac (the SHA-NI kernel: tests/privacy/test_hmac_native.py)."""
    import dataclasses

    from fastengage.privacy import _libcrypto, pseudonyms

    monkeypatch.setenv("FASTENGAGE_NO_SHA_NI", "1")
    lib = _libcrypto.libcrypto()
    if lib is None:
        pytest.skip("no libcrypto: the Python fallback is tested elsewhere")
    if not one_block:
        monkeypatch.setattr(pseudonyms, "libcrypto",
                            lambda: dataclasses.replace(lib, sha256_transform=0))
    else:
        assert lib.sha256_transform, "SHA256_Transform is exported by OpenSSL 1.1 and 3"
    key = bytes(range(7, 7 + 48))
    values = [bytes((31 * i + 7 * j) % 256 for j in range(n)) for i, n in
              enumerate(list(range(301)) * 2)]
    tokens = pseudonymize(pa.table({"id": pa.array(values, pa.binary())}), ["id"], key=key,
                          length=32)["id"].to_pylist()
    assert tokens == [hmac.digest(key, v, "sha256").hex() for v in values]
