"""Policies save and load through the safe bundle format; every malformed member is refused."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pyarrow as pa
import pytest

from fastengage.bandits import UCB1, BetaTS, GaussianTS, LinTS, LinUCB, load_policy
from fastengage.errors import ModelFormatError


def _trained(cls, arm_ids, d=3, seed=0, **params):
    rng = np.random.default_rng(seed)
    n = 500
    X = rng.normal(size=(n, d))
    arms = rng.integers(0, len(arm_ids), n)
    r = (rng.random(n) < 0.4).astype(float)
    names = [f"f{j}" for j in range(d)]
    table = pa.table({**{f: X[:, j] for j, f in enumerate(names)},
                      "arm": pa.array(np.asarray(arm_ids)[arms]), "r": r})
    policy = cls(arm_ids, features=names, **params).update(table, arm="arm", reward="r")
    return policy, table


@pytest.mark.parametrize("cls,arm_ids,params", [
    (LinUCB, ["x", "y", "z"], {"alpha": 0.7, "l2": 2.0}),
    (LinTS, [10, 20], {"v": 0.3}),
    (BetaTS, ["a", "b"], {"prior_alpha": 2.0}),
    (GaussianTS, [1, 2, 3], {"noise_sd": 0.5}),
    (UCB1, ["only"], {}),
])
def test_round_trip_gives_the_same_decisions(tmp_path, cls, arm_ids, params):
    policy, table = _trained(cls, arm_ids, **params)
    path = tmp_path / "policy.fe"
    policy.save(path)
    loaded = load_policy(path)
    assert type(loaded) is cls and loaded.params == policy.params
    assert loaded.arms.equals(policy.arms) and loaded.features == policy.features
    a = policy.decide(table, seed=5, expected=True)
    b = loaded.decide(table, seed=5, expected=True)
    assert a.equals(b)


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _write(members, path):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _arrow(table):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _meta(members, **changes):
    header = json.loads(members["meta.json"])
    header["meta"].update(changes)
    return json.dumps(header).encode()


def _load(members, name):
    header = json.loads(members["meta.json"])
    return np.load(io.BytesIO(members[name]), allow_pickle=False), header


CORRUPTIONS = {
    "unknown class": lambda m: {"meta.json": _meta(m, **{"class": "os.system"})},
    "missing param": lambda m: {"meta.json": _meta(m, params={"alpha": 1.0})},
    "bad param": lambda m: {"meta.json": _meta(m, params={"alpha": -1.0, "l2": 1.0})},
    "string param": lambda m: {"meta.json": _meta(m, params={"alpha": "1", "l2": 1.0})},
    "n_arms": lambda m: {"meta.json": _meta(m, n_arms=7)},
    "n_features": lambda m: {"meta.json": _meta(m, n_features=-1)},
    "features": lambda m: {"meta.json": _meta(m, features=["a"])},
    "missing G": lambda m: {"G.npy": None},
    "G shape": lambda m: {"G.npy": _npy(np.zeros((3, 2, 2)))},
    "G dtype": lambda m: {"G.npy": _npy(np.zeros((3, 3, 3), dtype=np.float32))},
    "G nan": lambda m: {"G.npy": _npy(np.full((3, 3, 3), np.nan))},
    "G asymmetric": lambda m: {"G.npy": _npy(np.triu(np.ones((3, 3, 3))))},
    "G not positive": lambda m: {"G.npy": _npy(np.stack([np.eye(3) * -5] * 3))},
    "G indefinite": lambda m: {"G.npy": _npy(np.stack([np.array([[1.0, 9, 0], [9, 1, 0],
                                                                 [0, 0, 1]])] * 3))},
    "counts negative": lambda m: {"counts.npy": _npy(np.array([-1.0, 2.0, 3.0]))},
    "counts fractional": lambda m: {"counts.npy": _npy(np.array([1.5, 2.0, 3.0]))},
    "sums2 inconsistent": lambda m: {"sums2.npy": _npy(np.zeros(3))},
    "g object": lambda m: {"g.npy": b"\x93NUMPY garbage"},
    "arms missing": lambda m: {"arms.arrow": None},
    "arms duplicate": lambda m: {"arms.arrow": _arrow(pa.table({"arm": ["x", "x", "y"]}))},
    "arms float": lambda m: {"arms.arrow": _arrow(pa.table({"arm": [1.0, 2.0, 3.0]}))},
    "arms null": lambda m: {"arms.arrow": _arrow(pa.table({"arm": ["x", None, "y"]}))},
    "arms garbage": lambda m: {"arms.arrow": b"not arrow"},
    "meta garbage": lambda m: {"meta.json": b"{"},
    "other kind": lambda m: {"meta.json": json.dumps({**json.loads(m["meta.json"]),
                                                      "kind": "als"}).encode()},
    "newer version": lambda m: {"meta.json": json.dumps({**json.loads(m["meta.json"]),
                                                         "version": 99}).encode()},
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_malformed_files_raise_model_format_error(tmp_path, name):
    policy, _ = _trained(LinUCB, ["x", "y", "z"])
    good = tmp_path / "good.fe"
    policy.save(good)
    members = _members(good)
    for member, data in CORRUPTIONS[name](members).items():
        if data is None:
            members.pop(member)
        else:
            members[member] = data
    bad = tmp_path / "bad.fe"
    _write(members, bad)
    with pytest.raises(ModelFormatError):
        load_policy(bad)


def test_beta_successes_beyond_counts_are_refused(tmp_path):
    policy, _ = _trained(BetaTS, ["a", "b"])
    good = tmp_path / "good.fe"
    policy.save(good)
    members = _members(good)
    counts, _ = _load(members, "counts.npy")
    members["sums.npy"] = _npy(counts + 1.0)
    members["sums2.npy"] = _npy((counts + 1.0) ** 2)
    _write(members, tmp_path / "bad.fe")
    with pytest.raises(ModelFormatError, match="sums"):
        load_policy(tmp_path / "bad.fe")


def test_not_a_zip_file(tmp_path):
    path = tmp_path / "x.fe"
    path.write_bytes(b"hello")
    with pytest.raises(ModelFormatError):
        load_policy(path)
