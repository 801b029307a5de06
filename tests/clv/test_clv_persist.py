"""Issue #10 (7): every malformed field of a saved CLV model raises ModelFormatError, and loads
are bounded (members and declared sizes are checked before anything is read)."""
import io
import json
import zipfile

import numpy as np
import pytest

from fastengage import clv
from fastengage.clv.datasets import load_cdnow_summary
from fastengage.errors import ModelFormatError


@pytest.fixture(scope="module")
def saved():
    s = load_cdnow_summary()
    x, tx, T = (s[c].to_numpy().astype(float) for c in ("x", "t_x", "T"))
    buf = io.BytesIO()
    clv.BetaGeo().fit(x, tx, T).save(buf)
    return buf.getvalue()


def _members(raw):
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _zip(members, compression=zipfile.ZIP_STORED):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def _with_meta(raw, edit):
    members = _members(raw)
    header = json.loads(members["meta.json"])
    edit(header)
    members["meta.json"] = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return _zip(members)


def _raw_meta(raw, text):
    members = _members(raw)
    members["meta.json"] = text.encode() if isinstance(text, str) else text
    return _zip(members)


def _set(path, value):
    def edit(h):
        d = h
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return edit


def _delete(path):
    def edit(h):
        d = h
        for k in path[:-1]:
            d = d[k]
        del d[path[-1]]
    return edit


def _npy(arr):
    b = io.BytesIO()
    np.save(b, arr)
    return b.getvalue()


def test_valid_file_loads(saved):
    m = clv.BetaGeo.load(io.BytesIO(saved))
    assert np.all(np.isfinite(m.probability_alive([1.0], [2.0], [3.0])))


META_CASES = {
    "param 10**400": _set(["meta", "params", "r"], 10 ** 400),
    "param negative": _set(["meta", "params", "alpha"], -1.0),
    "param zero": _set(["meta", "params", "a"], 0),
    "param string": _set(["meta", "params", "b"], "1.0"),
    "param bool": _set(["meta", "params", "b"], True),
    "param null": _set(["meta", "params", "b"], None),
    "params list": _set(["meta", "params"], [1.0, 2.0, 3.0, 4.0]),
    "params missing key": _delete(["meta", "params", "r"]),
    "params extra key": _set(["meta", "params", "zz"], 1.0),
    "params missing": _delete(["meta", "params"]),
    "param_names wrong": _set(["meta", "param_names"], ["r", "alpha", "s", "beta"]),
    "standard_errors list": _set(["meta", "standard_errors"], [0.1]),
    "standard_error negative": _set(["meta", "standard_errors", "r"], -0.1),
    "standard_error dict": _set(["meta", "standard_errors", "r"], {}),
    "log_likelihood list": _set(["meta", "log_likelihood"], [1]),
    "penalizer negative": _set(["meta", "penalizer"], -1),
    "penalizer huge int": _set(["meta", "penalizer"], 10 ** 400),
    "n string": _set(["meta", "n"], "many"),
    "meta list": _set(["meta"], [1, 2]),
    "version 2": _set(["version"], 2),
    "version 0": _set(["version"], 0),
    "version bool": _set(["version"], True),
    "version string": _set(["version"], "1"),
    "kind other": _set(["kind"], "clv.paretonbd"),
    "format other": _set(["format"], "pickle"),
}


@pytest.mark.parametrize("case", list(META_CASES))
def test_malformed_meta_field(saved, case):
    with pytest.raises(ModelFormatError):
        clv.BetaGeo.load(io.BytesIO(_with_meta(saved, META_CASES[case])))


@pytest.mark.parametrize("text", ["not json", "[" * 50_000 + "]" * 50_000, "[]", "null", "1e400",
                                  '{"format": "fastengage", "kind": "clv.betageo", "version": 1, '
                                  '"meta": {"params": {"r": NaN, "alpha": 1, "a": 1, "b": 1}, '
                                  '"param_names": ["r", "alpha", "a", "b"], "standard_errors": '
                                  '{"r": null, "alpha": null, "a": null, "b": null}}}',
                                  b"\xff\xfe{"])
def test_malformed_meta_json(saved, text):
    with pytest.raises(ModelFormatError):
        clv.BetaGeo.load(io.BytesIO(_raw_meta(saved, text)))


@pytest.mark.parametrize("cov", [np.eye(3), np.eye(4, dtype=np.float32), np.eye(4).astype(np.int64),
                                 np.full((4, 4), np.inf), np.zeros(16), np.eye(4)[None]])
def test_malformed_covariance(saved, cov):
    members = _members(saved)
    members["covariance.npy"] = _npy(cov)
    with pytest.raises(ModelFormatError):
        clv.BetaGeo.load(io.BytesIO(_zip(members)))


def test_covariance_header_is_checked_before_numpy_allocates(saved):
    # a 120-byte member whose header declares 8 TB of float64: refused from the header
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (2 ** 40,)})
    members = _members(saved)
    members["covariance.npy"] = b"\x93NUMPY\x01\x00" + header.getvalue()[8:]
    with pytest.raises(ModelFormatError, match="covariance"):
        clv.BetaGeo.load(io.BytesIO(_zip(members)))
    members["covariance.npy"] = b"\x93NUMPY\x07\x00garbage"
    with pytest.raises(ModelFormatError, match="covariance"):
        clv.BetaGeo.load(io.BytesIO(_zip(members)))


def test_members_and_declared_sizes_are_checked_first(saved):
    members = _members(saved)
    for drop in ("meta.json", "covariance.npy"):
        with pytest.raises(ModelFormatError, match="missing"):
            clv.BetaGeo.load(io.BytesIO(_zip({k: v for k, v in members.items() if k != drop})))
    with pytest.raises(ModelFormatError, match="not part of"):
        clv.BetaGeo.load(io.BytesIO(_zip(dict(members, **{"extra.npy": _npy(np.zeros(3))}))))
    # a zip bomb: 64 MB of spaces after the JSON compress to ~64 KB; the declared size is refused
    # before anything is decompressed
    bomb = dict(members, **{"meta.json": members["meta.json"] + b" " * (64 << 20)})
    raw = _zip(bomb, zipfile.ZIP_DEFLATED)
    assert len(raw) < 1 << 20
    with pytest.raises(ModelFormatError, match="declares"):
        clv.BetaGeo.load(io.BytesIO(raw))


@pytest.mark.parametrize("mangle", [lambda b: b[:len(b) // 2], lambda b: b"PK" + b[2:40],
                                    lambda b: b"", lambda b: b.replace(b"meta.json", b"meta.jsoX")])
def test_truncated_or_corrupt_file(saved, mangle):
    with pytest.raises(ModelFormatError):
        clv.BetaGeo.load(io.BytesIO(mangle(saved)))


def test_corrupt_compressed_member(saved):
    members = _members(saved)
    raw = bytearray(_zip(members, zipfile.ZIP_DEFLATED))
    i = raw.index(b"meta.json") + 20   # inside the first member's compressed data
    raw[i:i + 8] = b"\xff" * 8
    with pytest.raises(ModelFormatError):
        clv.BetaGeo.load(io.BytesIO(bytes(raw)))


def test_structured_mutations_of_every_model_raise_only_promised_errors():
    """The fuzz targets' seeds mutated by the harness's structured mutator (hostile JSON numbers,
    .npy headers and data, dropped members), deterministically: every mutant either loads and
    predicts, or raises ModelFormatError / InputError (a bounded, coverage-free stand-in for
    the libFuzzer run of tests/fuzz/targets_clv.py)."""
    import pathlib
    import random
    import sys

    from fastengage.errors import InputError
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fuzz"))
    import harness
    import targets_clv

    rnd = random.Random(7)

    def flip(raw):
        b = bytearray(raw)
        for _ in range(rnd.randint(1, 4)):
            if b:
                b[rnd.randrange(len(b))] = rnd.randrange(256)
        return bytes(b)

    loaded = 0
    for target in targets_clv.TARGETS:
        seed = target.seeds()[0]
        target.run(seed)
        for _ in range(150):
            mutant = harness.mutate_zip(seed, rnd, flip)
            try:
                target.run(mutant)
                loaded += 1
            except (ModelFormatError, InputError):
                pass
    assert loaded > 0   # some mutants are valid models (e.g. another finite positive parameter)
