"""Fuzz targets of the saved recommenders (see harness.py): each loads a model of one type from
the mutated bytes and runs every serving path that indexes with the loaded arrays — batch
``recommend`` (with and without seen items, with an item filter), ``recommend_one``,
``recommend_new`` (fold-in) and ``similar_items`` — so a neighbour id, seen index or factor shape
that passes the loader but is out of range for a kernel surfaces as an IndexError under
``NUMBA_BOUNDSCHECK=1`` (or a crash). Seeds: small fitted models, saved.

The seeds are ~3.7 KB deflated but ~7-10 KB once the harness re-zips a mutation uncompressed,
which libFuzzer's default ``-max_len`` (4096, from the seed sizes) truncates into a broken ZIP.
Pass ``-max_len=65536`` (and ``-keep_seed=1``: without coverage instrumentation libFuzzer drops
seeds that add no features)::

    NUMBA_BOUNDSCHECK=1 python tests/fuzz/harness.py --targets recommend_als recommend_bpr \
        recommend_itemknn recommend_itemknn_bm25 --seconds 120 -max_len=65536 -keep_seed=1

With the loader's array checks removed, that run fails within a few dozen inputs.
"""
from __future__ import annotations

import functools
import io

import numpy as np
import pyarrow as pa

from harness import Target


@functools.lru_cache(maxsize=None)
def _events() -> pa.Table:
    rng = np.random.default_rng(0)
    n = 400
    pi = 1.0 / np.arange(1, 31)
    return pa.table({"cust": pa.array([f"c{c}" for c in rng.integers(0, 25, n)]),
                     "sku": rng.choice(30, n, p=pi / pi.sum()).astype(np.int64)})


@functools.lru_cache(maxsize=None)
def _models() -> dict:
    from fastengage.recommend import ALS, BPR, ItemKNN

    ev = _events()
    fit = {"customer": "cust", "item": "sku"}
    return {
        "als": ALS(factors=4, iterations=2, seed=0, n_threads=1).fit(ev, **fit),
        "bpr": BPR(factors=4, iterations=3, seed=0, n_threads=1).fit(ev, **fit),
        "itemknn": ItemKNN("cosine", K=6, n_threads=1).fit(ev, **fit),
        "itemknn_bm25": ItemKNN("bm25", K=3, n_threads=1).fit(ev, **fit),
    }


def _exercise(model) -> None:
    customers = model._customer_ids
    items = model._item_ids
    if len(customers) == 0 or len(items) == 0:
        model.recommend(n=2)
        return
    first = customers[0].as_py()
    model.recommend(n=3)
    model.recommend(customers[:3], n=len(items) + 1, exclude_seen=False)
    model.recommend(customers[:2], n=2, items=items[: max(1, len(items) // 2)])
    model.recommend_one(first, n=4)
    model.similar_items(items[:3], n=3)
    if model.kind != "recommend.bpr":  # fold-in of a small history
        history = pa.table({"cust": pa.array(["new", "new"]),
                            "sku": pa.array([items[0].as_py()] * 2, type=items.type)})
        model.recommend_new(history, customer="cust", item="sku", n=3)


def _target(name: str) -> Target:
    def run(data: bytes):
        cls = type(_models()[name])
        _exercise(cls.load(io.BytesIO(data)))

    def seeds():
        buf = io.BytesIO()
        _models()[name].save(buf)
        return [buf.getvalue()]

    return Target(f"recommend_{name}", run, seeds, kind="zip")


TARGETS = [_target(n) for n in ("als", "bpr", "itemknn", "itemknn_bm25")]
