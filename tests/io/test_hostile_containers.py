"""Findings of the coverage-guided fuzzer in the containers every loader opens (the ZIP of a
saved model, a Parquet file): each is now a clear error naming the problem, never an exception
from zipfile or pyarrow."""
import io
import zipfile

import numpy as np
import pytest

from bundle_edit import members, rezip
from fastengage.errors import InputError, ModelFormatError


def _saved_policy() -> bytes:
    from fastengage.bandits import GaussianTS

    policy = GaussianTS(arms=["a", "b"])
    policy.update_one(None, "a", 1.0)
    buf = io.BytesIO()
    policy.save(buf)
    return buf.getvalue()


def _with_compression_method(raw: bytes, method: int) -> bytes:
    """``raw`` with every member's compression method field set to ``method`` (in both the
    local headers and the central directory), as a mutated file would have it."""
    data = bytearray(raw)
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            data[start + offset:start + offset + 2] = method.to_bytes(2, "little")
            start += 4
    return bytes(data)


@pytest.mark.parametrize("method", [99, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_a_member_with_an_unread_compression_method_is_a_format_error(method):
    from fastengage.bandits import load_policy

    raw = _saved_policy()
    if method == 99:  # unknown to zipfile, which raised NotImplementedError
        hostile = _with_compression_method(raw, method)
    else:  # known to zipfile, but never written by fastengage: refused before decompressing
        hostile = rezip(members(raw), compression=method).getvalue()
    with pytest.raises(ModelFormatError, match="compression method"):
        load_policy(io.BytesIO(hostile))


def test_an_encrypted_member_is_a_format_error():
    from fastengage.bandits import load_policy

    data = bytearray(_saved_policy())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            data[start + offset] |= 0x1
            start += 4
    with pytest.raises(ModelFormatError, match="encrypted"):
        load_policy(io.BytesIO(bytes(data)))


def test_a_saved_noise_sd_whose_square_overflows_is_refused():
    # the fuzzer's file had noise_sd = 1e200: loading raised OverflowError from 1 / noise_sd**2
    import json

    from fastengage.bandits import GaussianTS, load_policy

    parts = members(_saved_policy())
    meta = json.loads(parts["meta.json"])
    params = meta["meta"]["params"]
    params["noise_sd"] = 1e200
    parts["meta.json"] = json.dumps(meta).encode()
    with pytest.raises(ModelFormatError, match="noise_sd"):
        load_policy(rezip(parts))
    with pytest.raises(InputError, match="noise_sd"):
        GaussianTS(arms=["a"], noise_sd=1e200)
    assert GaussianTS(arms=["a"], noise_sd=1e12).params["noise_sd"] == 1e12


#: The fuzzer's Parquet file (an RFM input whose integer column declares more than 64 bits).
_WIDE_INTEGER_PARQUET = bytes.fromhex(
"504152311504156015404c150c15001200003004040036010000010d0f00050d083c03000000000000000200"
    "00000000000015001528152c2c153c1510150615061c18080500000000000000180800000000000000001600"
    "280805000000000000001808000000000000000011110000000000000000e03f160028080000000000002340"
    "1808000000000000e03f11110000001c6c020000003c0105092088418a39882445166beec1b1a2302c20302e"
    "305d2c205b302e302c20305d2c205b332e352c202d393232333337323033363835343737353830395d5d2c20"
    "22696e749c84d06a19001504195c35001806736368656d611508001504250218046375737400150c25021803"
    "6f726425004c1c000000150425021802747325124c8c121c1c0000000000150a25021803616d7400163c191c"
    "194c26001c15041935000610191804637573741502163c16a202168602266426081c18080500000000000000"
    "1808000000000000000016002808050000000000000018080000000000000000111100192c15041500150200"
    "150015101502003c29061926003c00000026001c150c19350006101918036f72641502163c16860216ee0126"
    "8a03268e021c360028026f3918026f30111100192c15041500150200150015101502003c1684011906192600"
    "3c00000026001c1504193500061019180274731502163c16b60516880526ca0726fc031c1808509e56177501"
    "00001808b03c29887401000016002808509e5617750100001808b03c298874010000111100192c1504150015"
    "0200150015101502003c29061926003c00000026001c150a1935000610191803616d741502163c16c60416b0"
    "0326fa0a2684091c180800000000000023401808000000000000e03f16002808000000000000234018080000"
    "00000000e03f111100192c15041500150200150015101502003c29061926003c00000016a40e163c260816ac"
    "0c00191c180c4152524f573a736368656d6118ec022f2f2f2f2f77674241414151414141414141414b414177"
    "41426741464141674143674141414141424241414d4141414143414149414141414241414941414141424141"
    "414141514141414363414141415941414141446741414141454141414168502f2f2f77414141514d51414141"
    "4148414141414151414141414141414141417741414147467464414141414159414341414741415941414141"
    "414141494174502f2f2f77414141516f51414141414641414141415141414141414141414141674141414852"
    "7a414144632f2f2f2f32502f2f2f774141415155514141414147414141414151414141414141414141417741"
    "41414739795a41414541415141424141414142414146414149414159414277414d4141414145414151414141"
    "4141414142416841414141416741414141424141414141414141414145414141415933567a64414141414141"
    "49414177414341414841416741414141414141414230414141414141414141413d001820706172717565742d"
    "6370702d6172726f772076657273696f6e2032362e302e31194c1c00001c00001c00001c0000008d03000050"
    "415231")


def test_a_parquet_file_pyarrow_cannot_decode_is_an_input_error(tmp_path):
    import fastengage as fe

    path = tmp_path / "events.parquet"
    path.write_bytes(_WIDE_INTEGER_PARQUET)
    with pytest.raises(InputError, match="cannot read"):
        fe.rfm(str(path), customer="customer", time="time", amount="amount", as_of="2024-01-01")
