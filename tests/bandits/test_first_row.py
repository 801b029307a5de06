"""``decide(..., first_row=k)``: deciding slices apart gives the whole table's decisions (the
engine adapters decide partitions this way)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fastengage.bandits import BetaTS, EpsilonGreedy, GaussianTS, LinEpsilonGreedy, LinTS
from fastengage.errors import InputError


def _table(n=700, d=3, K=4, seed=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    arms = rng.integers(0, K, n)
    names = [f"f{j}" for j in range(d)]
    ids = [f"a{k}" for k in range(K)]
    table = pa.table({"id": np.arange(n), **{f: X[:, j] for j, f in enumerate(names)},
                      "arm": pa.array(np.asarray(ids)[arms]),
                      "r": (rng.random(n) < 0.3).astype(float)})
    mask = rng.random((n, K)) < 0.7
    return table, names, ids, mask


@pytest.mark.parametrize("cls", [LinTS, LinEpsilonGreedy, EpsilonGreedy, GaussianTS, BetaTS])
def test_slices_with_first_row_equal_the_whole_table(cls):
    table, names, ids, mask = _table()
    policy = cls(ids, features=names).update(table, arm="arm", reward="r")
    whole = policy.decide(table, id="id", seed=3, eligible=mask, expected=True)
    cuts = [0, 1, 250, 251, 600, len(table)]
    parts = [policy.decide(table.slice(lo, hi - lo), id="id", seed=3, eligible=mask[lo:hi],
                           expected=True, first_row=lo) for lo, hi in zip(cuts, cuts[1:])]
    joined = pa.concat_tables(parts)
    for name in ("id", "arm", "propensity"):
        assert joined[name].equals(whole[name]), name
    np.testing.assert_array_equal(  # NaN (arms not eligible) equal to NaN
        np.asarray(joined["expected_reward"].to_pylist(), float),
        np.asarray(whole["expected_reward"].to_pylist(), float))
    # the argument matters: the same slices from row 0 draw other random numbers
    unshifted = policy.decide(table.slice(250, 350), id="id", seed=3, eligible=mask[250:600])
    assert not unshifted["arm"].equals(whole.slice(250, 350)["arm"])

    dist = policy.action_distribution(table, seed=3, eligible=mask)
    tail = policy.action_distribution(table.slice(300), seed=3, eligible=mask[300:],
                                      first_row=300)
    np.testing.assert_array_equal(tail, dist[300:])


def test_first_row_on_a_stream_of_batches():
    table, names, ids, _ = _table(n=2000)
    policy = LinTS(ids, features=names).update(table, arm="arm", reward="r")
    whole = policy.decide(table, seed=9)
    tail = table.slice(1200)
    reader = pa.RecordBatchReader.from_batches(tail.schema, tail.to_batches(max_chunksize=97))
    assert policy.decide(reader, seed=9, first_row=1200).equals(whole.slice(1200))


@pytest.mark.parametrize("bad", [-1, 1.0, True, "3", 2 ** 62])
def test_bad_first_row(bad):
    table, names, ids, _ = _table(n=10)
    policy = LinTS(ids, features=names)
    with pytest.raises(InputError, match="first_row"):
        policy.decide(table, first_row=bad)
