"""Id encoding, the hashing step of every module: Cython map vs Arrow.

The Cython ``Int64IdMap``/``BytesIdMap`` (software prefetch, C memory) is what fastengage uses;
``pyarrow.compute.dictionary_encode`` is what a user would otherwise call. Both must give codes
that decode to the same ids.

Both sides are bound by memory latency (a probe per row into a table far larger than the
caches; perf puts ~90% of the string encode on the stall behind its prefetch, and 15-25% of a
call on the kernel zeroing the fresh table's pages), so another process's memory traffic moves
either side's time: one side's three rounds, then the other's, gave 1.04x-1.71x between quiet
runs. ``compare`` now interleaves the two sides round by round, and ROUNDS medians of more
rounds damp what is left; the int64 map still moved 0.79-1.31 s between quiet processes.
"""
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench._compare import bench_size, compare
from fastengage.kernels.common.idmap import BytesIdMap, Int64IdMap

FULL = bench_size() == "full"
N = 20_000_000 if FULL else 200_000
N_DISTINCT = N // 20
ROUNDS = 7


def _ids(kind):
    rng = np.random.default_rng(5)
    pool = rng.choice(np.iinfo(np.int64).max, N_DISTINCT, replace=False)
    values = pool[rng.integers(0, N_DISTINCT, N)]
    if kind == "int64":
        return values
    return pa.array([f"C-{x:012x}" for x in pool]).take(pa.array(rng.integers(0, N_DISTINCT, N)))


def _decoded_int(codes, keys):
    return np.asarray(keys)[codes]


def test_int64_encoding_cython_vs_arrow(benchmark):
    values = _ids("int64")
    arrow_values = pa.array(values)

    def cython():
        m = Int64IdMap()
        out = np.empty(len(values), np.int64)
        m.encode(values, out)
        return out, m.keys()

    def check(ours, theirs, peer):
        np.testing.assert_array_equal(_decoded_int(*ours), theirs.dictionary.to_numpy()[theirs.indices.to_numpy()])

    compare(benchmark, "idmap_int64", cython,
            {"arrow": lambda: pc.dictionary_encode(arrow_values)},
            check, rounds=ROUNDS, size=bench_size())


def test_string_encoding_cython_vs_arrow(benchmark):
    strings = _ids("string")
    _, offsets_buf, data_buf = strings.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32)[strings.offset:strings.offset + len(strings) + 1]
    data = np.frombuffer(data_buf, np.uint8)

    def cython():
        m = BytesIdMap()
        out = np.empty(len(strings), np.int64)
        m.encode(offsets, data, out)
        return out, m

    def check(ours, theirs, peer):
        codes, m = ours
        offs, raw = m.buffers()
        ids = pa.Array.from_buffers(pa.large_string(), len(offs) - 1, [None, pa.py_buffer(offs), pa.py_buffer(raw)])
        assert ids.take(pa.array(codes)).cast(pa.string()).equals(theirs.dictionary.take(theirs.indices))

    compare(benchmark, "idmap_string", cython, {"arrow": lambda: pc.dictionary_encode(strings)},
            check, rounds=ROUNDS, size=bench_size())
