"""Identity resolution: fastengage.identity.resolve against scipy.sparse.csgraph and networkx.

The same links (pairs of ids of one person: web login, loyalty card, device) go to every tool;
scipy's time includes building the sparse matrix from the same dense codes (what a user must do
to call it), networkx runs at smoke size only. The components must be the same partition.

Full size: ``FASTENGAGE_BENCH=full python -m pytest bench/bench_identity.py -s`` (10M links over
~12M ids of 4M people).
"""
import numpy as np
import pyarrow as pa

from bench._compare import bench_size, compare
from fastengage.identity import resolve

FULL = bench_size() == "full"
N_PEOPLE = 4_000_000 if FULL else 20_000
N_LINKS = 10_000_000 if FULL else 50_000


def _links():
    rng = np.random.default_rng(11)
    person = rng.integers(0, N_PEOPLE, N_LINKS)
    # each person has up to three ids (login, card, device); ids are sparse 63-bit integers
    slot_l = rng.integers(0, 3, N_LINKS)
    slot_r = rng.integers(0, 3, N_LINKS)
    pool = rng.choice(2**62, 3 * N_PEOPLE, replace=False)
    return pool[person * 3 + slot_l], pool[person * 3 + slot_r]


def _same_partition(ids, keys, other_ids, other_labels):
    order = np.argsort(ids)
    other_order = np.argsort(other_ids)
    assert np.array_equal(ids[order], other_ids[other_order])
    a = keys[order]
    b = other_labels[other_order]
    # a bijection between the two labelings <=> same partition
    _, a_codes = np.unique(a, return_inverse=True)
    _, b_codes = np.unique(b, return_inverse=True)
    pairs = np.unique(np.stack([a_codes, b_codes]), axis=1)
    assert pairs.shape[1] == a_codes.max() + 1 == b_codes.max() + 1


def test_resolve_vs_scipy_connected_components(benchmark):
    import pyarrow.compute as pc
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    left, right = _links()
    table = pa.table({"login": left, "card": right})

    def ours():
        out = resolve(table, left="login", right="card")
        return out.column("id").to_numpy(), out.column("customer_key").to_numpy()

    def scipy_cc():
        # what a user would write: dictionary-encode both columns into one id space, then csgraph
        both = pa.chunked_array([table.column("login"), table.column("card")])
        encoded = pc.dictionary_encode(both).combine_chunks()
        codes = encoded.indices.to_numpy()
        n = len(encoded.dictionary)
        m = len(left)
        graph = coo_matrix((np.ones(m, np.int8), (codes[:m], codes[m:])), shape=(n, n)).tocsr()
        _, labels = connected_components(graph, directed=False)
        return encoded.dictionary.to_numpy(), labels

    peers = {"scipy": scipy_cc}
    if not FULL:
        import networkx as nx

        def networkx_cc():
            g = nx.Graph()
            g.add_edges_from(zip(left.tolist(), right.tolist()))
            ids, labels = [], []
            for k, comp in enumerate(nx.connected_components(g)):
                ids.extend(comp)
                labels.extend([k] * len(comp))
            return np.array(ids, np.int64), np.array(labels)
        peers["networkx"] = networkx_cc

    def check(got, theirs, peer):
        _same_partition(got[0], got[1], theirs[0], theirs[1])

    compare(benchmark, "identity_resolve", ours, peers, check, rounds=3, size=bench_size())
