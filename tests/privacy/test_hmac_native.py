"""The SHA-NI HMAC-SHA256 kernel (kernels/privacy/hmac_native.pyx, sha256_ni.h): tokens equal
Python's hmac on every id, the portable path's (OpenSSL, forced with FASTENGAGE_NO_SHA_NI)
bit for bit, and identical across thread counts; the header builds without SHA support."""
import hashlib
import hmac
import os
import shutil
import subprocess

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastengage.kernels.privacy import hmac_native
from fastengage.privacy import pseudonymize
from fastengage.privacy.pseudonyms import sha_ni_enabled

KEY = bytes(range(40, 72))
HEADER_DIR = os.path.join(os.path.dirname(hmac_native.__file__))
needs_sha_ni = pytest.mark.skipif(not hmac_native.supported(),
                                  reason="this CPU (or build) has no SHA-NI kernel")

#: lengths around the padding boundaries: 55 is the longest one-block id, 56..63 need a second
#: padding block, 64/119/120/128 cross whole blocks
BOUNDARIES = [0, 1, 54, 55, 56, 57, 63, 64, 65, 118, 119, 120, 127, 128, 129]


def reference(values, key, length, output):
    out = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        mac = hmac.digest(key, v.encode() if isinstance(v, str) else v, "sha256")[:length]
        out.append(mac.hex() if output == "hex" else mac)
    return out


def run(column, key=KEY, **kw):
    return pseudonymize(pa.table({"id": column}), ["id"], key=key, **kw)["id"]


def test_sha_ni_is_used_where_the_cpu_has_it():
    has = "sha_ni" in open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else None
    if has is not None and os.uname().machine == "x86_64":
        assert hmac_native.supported() == has
    assert sha_ni_enabled() == hmac_native.supported()


@needs_sha_ni
@settings(max_examples=80, deadline=None)
@given(values=st.lists(st.one_of(
           st.binary(max_size=140),
           st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=70),
           st.sampled_from(BOUNDARIES).map(lambda n: bytes((7 * j + n) % 256 for j in range(n))),
           st.none()), max_size=60),
       typ=st.sampled_from([pa.binary(), pa.large_binary()]),
       length=st.integers(8, 32), output=st.sampled_from(["hex", "binary"]),
       key_size=st.sampled_from([16, 32, 64, 65, 200]), cut=st.integers(0, 60))
def test_equal_to_hmac_and_to_the_portable_path(values, typ, length, output, key_size, cut):
    key = bytes((11 * j + key_size) % 256 for j in range(key_size))
    raw = [v.encode() if isinstance(v, str) else v for v in values]
    column = pa.chunked_array([pa.array(raw[:cut], typ), pa.array(raw[cut:], typ)])
    fast = run(column, key, length=length, output=output)
    assert fast.to_pylist() == reference(raw, key, length, output)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FASTENGAGE_NO_SHA_NI", "1")
        assert not sha_ni_enabled()
        assert run(column, key, length=length, output=output).equals(fast)


@needs_sha_ni
@pytest.mark.parametrize("typ", [pa.string(), pa.large_string()])
def test_every_length_0_to_300_and_sliced_arrays(typ):
    values = ["".join(chr(0x41 + (5 * i + 3 * j) % 60) for j in range(n))
              for i, n in enumerate(list(range(301)) * 3)]
    array = pa.array(values, typ)
    assert run(array, length=32).to_pylist() == reference(values, KEY, 32, "hex")
    sliced = array.slice(301, 450)  # offsets into the buffer do not start at 0
    assert run(sliced, length=20, output="binary").to_pylist() == \
        reference(values[301:751], KEY, 20, "binary")


@needs_sha_ni
def test_one_and_two_threads_and_portable_give_identical_bits(monkeypatch):
    rng = np.random.default_rng(3)
    sizes = rng.choice([0, 5, 17, 55, 56, 64, 120, 300], 50_000)
    values = [bytes(rng.integers(0, 256, s, dtype=np.uint8)) for s in sizes]
    values[7] = None
    table = pa.table({"id": pa.array(values, pa.binary())})
    one = pseudonymize(table, ["id"], key=KEY, n_threads=1)
    two = pseudonymize(table, ["id"], key=KEY, n_threads=2)
    assert one.equals(two)
    monkeypatch.setenv("FASTENGAGE_NO_SHA_NI", "1")
    portable = pseudonymize(table, ["id"], key=KEY, n_threads=2)
    assert portable.equals(one)
    sample = list(range(0, 50_000, 997)) + [7]
    want = reference([values[i] for i in sample], KEY, 16, "hex")
    assert [one["id"][i].as_py() for i in sample] == want


@needs_sha_ni
def test_the_worker_claims_every_block_once():
    n = 3 * hmac_native.HMAC_BLOCK + 5
    values = [f"id-{i}".encode() for i in range(n)]
    offsets = np.zeros(n + 1, np.int64)
    offsets[1:] = np.cumsum([len(v) for v in values])
    data = np.frombuffer(b"".join(values), np.uint8)
    block = np.frombuffer(KEY.ljust(64, b"\0"), np.uint8)
    inner, outer = np.zeros(8, np.uint32), np.zeros(8, np.uint32)
    hmac_native.key_state(block ^ np.uint8(0x36), inner)
    hmac_native.key_state(block ^ np.uint8(0x5C), outer)
    out = np.zeros(n * 32, np.uint8)
    counter = np.zeros(1, np.int64)
    hmac_native.hmac_worker(offsets, data, inner, outer, 32, False, out, counter)
    assert counter[0] == 4 + 1  # 4 blocks claimed, then the claim that found none left
    got = out.reshape(n, 32)
    for i in (0, 1, hmac_native.HMAC_BLOCK - 1, hmac_native.HMAC_BLOCK, n - 1):
        assert got[i].tobytes() == hmac.digest(KEY, values[i], "sha256")


def _compile(tmp_path, *flags):
    """Builds a small C program around sha256_ni.h with ``flags``; returns its path."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    source = tmp_path / "driver.c"
    source.write_text(r'''
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#ifdef SIMULATE_OTHER_ARCH  /* the system headers above saw the real target */
#undef __x86_64__
#undef __amd64__
#endif
#if defined(SIMULATE_OLD_COMPILER) && defined(__clang__)  /* a clang before the "sha" target */
#undef __clang_major__
#define __clang_major__ 3
#elif defined(SIMULATE_OLD_COMPILER)                       /* a GCC before the "sha" target */
#undef __GNUC__
#undef __GNUC_MINOR__
#define __GNUC__ 4
#define __GNUC_MINOR__ 8
#endif
#include "sha256_ni.h"
int main(void) {
    uint8_t key[64] = {0}, block[64], out[64 * 3];
    uint32_t inner[8], outer[8];
    const char *data = "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789";
    int64_t offsets[4] = {0, 0, 55, 72};
    for (int j = 0; j < 32; j++) key[j] = (uint8_t)(40 + j);
    printf("%d %d\n", FE_HAVE_SHA_NI, fe_sha_ni_supported());
    if (!fe_sha_ni_supported()) return 0;
    for (int j = 0; j < 64; j++) block[j] = key[j] ^ 0x36;
    fe_sha256_key_state(block, inner);
    for (int j = 0; j < 64; j++) block[j] = key[j] ^ 0x5c;
    fe_sha256_key_state(block, outer);
    fe_hmac_range64(offsets, (const uint8_t *)data, 0, 3, inner, outer, 32, 1, out);
    printf("%.*s\n", 64 * 3, (const char *)out);
    return 0;
}
''')
    binary = tmp_path / "driver"
    result = subprocess.run([cc, "-O2", "-Wall", "-Werror", *flags, f"-I{HEADER_DIR}",
                             str(source), "-o", str(binary)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(not os.path.exists(os.path.join(HEADER_DIR, "sha256_ni.h")),
                    reason="sha256_ni.h not installed beside the module (run from the source tree)")
def test_the_header_builds_with_and_without_sha_support(tmp_path):
    # as on another architecture or with a compiler that lacks the "sha" target: no SHA-NI
    # code, every entry point a stub, the run-time check says 0
    for flags in (["-DSIMULATE_OTHER_ARCH"], ["-DSIMULATE_OLD_COMPILER"], ["-DFE_NO_SHA_NI"]):
        assert _compile(tmp_path, *flags).split() == ["0", "0"]
    lines = _compile(tmp_path).split()
    if os.uname().machine not in ("x86_64", "amd64"):
        assert lines == ["0", "0"]
        return
    assert lines[0] == "1"
    if lines[1] == "1":
        data = b"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789"
        want = "".join(hmac.digest(KEY, m, hashlib.sha256).hex()
                       for m in (b"", data[:55], data[55:]))
        assert lines[2] == want
