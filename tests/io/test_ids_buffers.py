"""Id encoding reads Arrow string buffers as they come: an offsets buffer longer than needed and
not a multiple of the offset width is valid Arrow (found by the fuzzer through a dictionary of
an IPC stream), and must encode like the same strings built normally."""
import numpy as np
import pyarrow as pa

from fastengage._io.ids import IdEncoder, string_buffers


def _odd_sized(values, typ=pa.string()):
    width = 8 if typ == pa.large_string() else 4
    data = "".join(values).encode()
    ends = np.cumsum([0] + [len(v.encode()) for v in values])
    offsets = ends.astype(np.int64 if width == 8 else np.int32).tobytes() + b"\x00\x00\x00"
    return pa.Array.from_buffers(typ, len(values), [None, pa.py_buffer(offsets),
                                                     pa.py_buffer(data)])


def test_offsets_buffer_with_trailing_bytes_encodes_like_a_normal_array():
    for typ in (pa.string(), pa.large_string()):
        odd = _odd_sized(["b", "a", "bb", "a", ""], typ)
        odd.validate(full=True)
        offsets, _ = string_buffers(odd)
        assert offsets.tolist() == [0, 1, 2, 4, 5, 5]
        normal = pa.array(["b", "a", "bb", "a", ""], typ)
        assert IdEncoder("c").encode(odd).tolist() == IdEncoder("c").encode(normal).tolist()
        sliced = odd.slice(1, 3)
        assert IdEncoder("c").encode(sliced).tolist() == [0, 1, 0]


def test_dictionary_whose_dictionary_has_such_a_buffer():
    dictionary = _odd_sized(["x", "y"])
    arr = pa.DictionaryArray.from_arrays(pa.array([1, 0, 1], pa.int32()), dictionary)
    encoder = IdEncoder("c")
    codes = encoder.encode(arr)
    assert encoder.ids().take(pa.array(codes)).to_pylist() == ["y", "x", "y"]
