"""Bandits side by side: LinUCB against MABWiser, off-policy evaluation against obp's estimators.

    python -m pytest bench/bench_bandits.py -s                          # smoke sizes (CI)
    FASTENGAGE_BENCH=full python -m pytest bench/bench_bandits.py -s    # the issue's sizes

Full sizes: 1M logged rows x 20 features x 10 arms. LinUCB (alpha 1, l2 1) is fitted from the
logs and decides every row; MABWiser's LinUCB (alpha 1, l2_lambda 1, the same 10 arms, its
default scale=False) gets the same rows as NumPy arrays made before timing (fastengage starts
from the Arrow table), its fastest input: from a pandas DataFrame (pandas 3 string arms) its
fit takes ~3x longer (printed once in full runs). It learns the same statistics (A = X^T X +
I, X^T y, theta per arm: theta asserted equal) and must choose the same arms. Off-policy evaluation (IPW, SNIPW,
DR) on 1M rounds is compared with obp 0.5.7's estimator code transcribed in NumPy
(tests/naive_bandits.py; obp itself pins torch 1.12 and cannot be installed next to numpy 2),
same values asserted to 1e-9. ``decide_one`` latency is measured call by call (p50/p99).
"""
from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np
import pyarrow as pa
import pytest

from bench._compare import bench_size, compare, settle
from fastengage.bandits import LinUCB, evaluate

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tests"))
import naive_bandits as nb

FULL = bench_size() == "full"
FREE_THREADED = not getattr(sys, "_is_gil_enabled", lambda: True)()
ROUNDS = 3 if FULL else 1
N = 1_000_000 if FULL else 20_000
D, K = 20, 10
NAMES = [f"f{j:02d}" for j in range(D)]
ARMS = [f"offer{k}" for k in range(K)]


@pytest.fixture(scope="module")
def logs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D))
    arms = rng.integers(0, K, N)
    beta = rng.normal(size=(K, D)) / np.sqrt(D)
    r = np.einsum("nd,nd->n", X, beta[arms]) + 0.5 * rng.normal(size=N)
    decisions = np.asarray(ARMS)[arms]
    table = pa.table({"id": np.arange(N), **{f: X[:, j] for j, f in enumerate(NAMES)},
                      "arm": pa.array(decisions), "reward": r})
    return table, X, decisions, r


def _side_by_side(name, ours, peer, rounds):
    """Rounds alternating ours / peer (so load drifts hit both alike): median wall and CPU time
    (``time.process_time``) of each side. Pass single-threaded callables for a CPU-time
    comparison: MABWiser runs on one thread, and idle worker threads that spin-wait would bill
    CPU time to fastengage; pass 2-thread ones for a wall-time comparison."""
    ours(), peer()  # warm-up
    spent = {"ours": ([], []), "peer": ([], [])}
    for _ in range(rounds):
        for side, fn in (("ours", ours), ("peer", peer)):
            settle()  # the other side's worker threads idle first
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            spent[side][0].append(time.perf_counter() - t0)
            spent[side][1].append(time.process_time() - c0)
    med = {side: (statistics.median(w), statistics.median(c)) for side, (w, c) in spent.items()}
    out = {"wall_s": med["ours"][0], "cpu_s": med["ours"][1], "peer_wall_s": med["peer"][0],
           "peer_cpu_s": med["peer"][1], "wall_ratio": med["peer"][0] / med["ours"][0],
           "cpu_ratio": med["peer"][1] / med["ours"][1], "load": os.getloadavg()[0],
           "rows_per_s_wall": N / med["ours"][0], "rows_per_s_cpu": N / med["ours"][1]}
    print(f"[{name}] interleaved x{rounds}: wall {out['wall_s']:.3f} s vs {out['peer_wall_s']:.3f}"
          f" s ({out['wall_ratio']:.1f}x), CPU {out['cpu_s']:.3f} s vs {out['peer_cpu_s']:.3f} s "
          f"({out['cpu_ratio']:.1f}x); {out['rows_per_s_wall'] / 1e6:.2f}M rows/s wall, "
          f"{out['rows_per_s_cpu'] / 1e6:.2f}M rows/s per CPU second; load {out['load']:.1f}")
    return out


def _mabwiser(n_jobs=1):
    from mabwiser.mab import MAB, LearningPolicy

    return MAB(arms=ARMS, learning_policy=LearningPolicy.LinUCB(alpha=1.0, l2_lambda=1.0),
               n_jobs=n_jobs)


def test_linucb_fit(benchmark, logs):
    pytest.importorskip("mabwiser")
    table, X, decisions, r = logs

    def ours():
        return LinUCB(ARMS, features=NAMES).update(table, arm="arm", reward="reward")

    def mab():
        return _mabwiser().fit(decisions, r, X)

    def check(mine, _, name):
        theirs = _mabwiser()
        theirs.fit(decisions, r, X)
        for k, arm in enumerate(ARMS):
            model = theirs._imp.arm_to_model[arm]
            np.testing.assert_allclose(mine._snapshot.theta[k], model.beta, rtol=1e-7, atol=1e-9)

    compare(benchmark, "bandits.linucb_fit", ours, {"mabwiser": mab}, check, rounds=ROUNDS,
            size=f"{N} rows x {D} features x {K} arms")
    if FULL:  # the same fit from what a user holding a DataFrame passes (one round each)
        df = table.to_pandas()
        spent = {}
        for side, fn in (("ours", ours), ("mabwiser_from_pandas", lambda: _mabwiser().fit(
                df["arm"], df["reward"], df[NAMES]))):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            spent[side] = (time.perf_counter() - t0, time.process_time() - c0)
        benchmark.extra_info["mabwiser_from_pandas"] = spent
        print(f"[bandits.linucb_fit] MABWiser from a pandas DataFrame: wall "
              f"{spent['mabwiser_from_pandas'][0]:.2f} s, CPU {spent['mabwiser_from_pandas'][1]:.2f}"
              f" s; ours from Arrow {spent['ours'][0]:.3f} s, CPU {spent['ours'][1]:.3f} s "
              f"(load {os.getloadavg()[0]:.1f})")
    for threads in (1, 2):
        benchmark.extra_info[f"interleaved_{threads}_threads"] = _side_by_side(
            f"bandits.linucb_fit, {threads} thread(s) vs MABWiser n_jobs={threads}",
            lambda: LinUCB(ARMS, features=NAMES).update(table, arm="arm", reward="reward",
                                                        n_threads=threads),
            lambda: _mabwiser(threads).fit(decisions, r, X), ROUNDS)


def test_linucb_decide(benchmark, logs):
    pytest.importorskip("mabwiser")
    table, X, decisions, r = logs
    policy = LinUCB(ARMS, features=NAMES).update(table, arm="arm", reward="reward")
    theirs = _mabwiser()
    theirs.fit(decisions, r, X)

    def ours():
        return policy.decide(table, id="id", seed=0)

    def check(mine, their_arms, name):
        assert mine["arm"].to_pylist() == list(their_arms)  # same arm for every row
        assert (mine["propensity"].to_numpy() == 1.0).all()

    rec = compare(benchmark, "bandits.linucb_decide", ours, {"mabwiser": lambda: theirs.predict(X)},
                  check, rounds=ROUNDS, size=f"{N} rows x {D} features x {K} arms")
    print(f"[bandits.linucb_decide] {N / rec['median_s'] / 1e6:.2f}M decisions/s")
    for threads in (1, 2):
        benchmark.extra_info[f"interleaved_{threads}_threads"] = _side_by_side(
            f"bandits.linucb_decide, {threads} thread(s)",
            lambda: policy.decide(table, id="id", seed=0, n_threads=threads),
            lambda: theirs.predict(X), ROUNDS)
    # Every width computed (an all-true eligibility mask turns off the skipping of widths that
    # cannot change a decision): the same arms, what a decision costs without the bounds.
    everyone = np.ones((N, K), bool)
    full = policy.decide(table, id="id", seed=0, eligible=everyone)
    assert full.equals(ours())
    benchmark.extra_info["every_width_1_thread"] = _side_by_side(
        "bandits.linucb_decide, every width computed, 1 thread",
        lambda: policy.decide(table, id="id", seed=0, eligible=everyone, n_threads=1),
        lambda: theirs.predict(X), ROUNDS)


def test_ope_vs_obp_formulas(benchmark):
    rng = np.random.default_rng(1)
    n = N
    pi_b = rng.dirichlet(np.ones(K), size=n)
    cum = pi_b.cumsum(axis=1)
    action = np.minimum((rng.random(n)[:, None] > cum).sum(axis=1), K - 1)
    pscore = pi_b[np.arange(n), action]
    reward = (rng.random(n) < 0.1).astype(float)
    pi_e = rng.dirichlet(np.ones(K), size=n)[:, :, None].copy()
    q_hat = rng.random((n, K, 1)) * 0.2
    table = pa.table({"a": action, "r": reward, "p": pscore})
    names = ["ipw", "snipw", "dr"]

    def ours():
        res = evaluate(table, action="a", reward="r", propensity="p", target=pi_e,
                       reward_model=q_hat, estimators=names, n_bootstrap=0)
        return dict(zip(names, res["value"].to_pylist()))

    def obp_numpy():
        return {e: nb.obp_round_rewards(e, reward, action, pscore, pi_e, q_hat).mean()
                for e in names}

    def check(mine, theirs, _):
        for e in names:
            assert abs(mine[e] - theirs[e]) <= 1e-9, (e, mine[e], theirs[e])

    # Ours takes ~30 ms: 3 rounds gave medians 28 or 38-40 ms from one process to the next,
    # so the median here is over 5x more rounds (the peer, ~10x slower, keeps ROUNDS).
    compare(benchmark, "bandits.ope_ipw_snipw_dr", ours, {"obp_numpy": obp_numpy}, check,
            rounds=5 * ROUNDS, peer_rounds=ROUNDS, size=f"{n} rounds x {K} arms")


def test_decide_one_latency(benchmark, logs):
    table, X, _, _ = logs
    policy = LinUCB(ARMS, features=NAMES).update(table.slice(0, 50_000), arm="arm",
                                                 reward="reward")
    rows = [np.ascontiguousarray(X[i]) for i in range(2000)]
    for x in rows[:100]:
        policy.decide_one(x)
    times = []
    for x in rows:
        t0 = time.perf_counter()
        policy.decide_one(x)
        times.append(time.perf_counter() - t0)
    p50, p99 = statistics.median(times), float(np.percentile(times, 99))
    benchmark.extra_info.update({"p50_us": p50 * 1e6, "p99_us": p99 * 1e6})
    benchmark.pedantic(lambda: policy.decide_one(rows[0]), rounds=200, iterations=1)
    print(f"\n[bandits.decide_one] {K} arms x {D} features: p50 {p50 * 1e6:.1f} us, "
          f"p99 {p99 * 1e6:.1f} us")

    one, two = _thread_rates(policy, rows)
    releases = policy._snapshot.server.releases_gil
    benchmark.extra_info.update({"decisions_per_s_1_thread": one, "decisions_per_s_2_threads": two,
                                 "throughput_2_over_1_threads": two / one,
                                 "releases_gil": releases})
    benchmark.extra_info["free_threaded"] = FREE_THREADED
    print(f"[bandits.decide_one] decisions/s: 1 thread {one:,.0f}, 2 threads {two:,.0f} "
          f"({two / one:.2f}x, {_gil_state(releases)}; load {os.getloadavg()[0]:.1f})")
    # A service that decides a few rows per call (decide_rows: one call per micro-batch, the GIL
    # released from ~128 rows of this model on) scales with threads where single decisions of a
    # small model cannot (see bench/gil_handoff.py).
    for rows_per_call in (16, 64, 256):
        one, two = _thread_rates_rows(policy, X[:8192], rows_per_call)
        benchmark.extra_info[f"decide_rows_{rows_per_call}"] = {
            "decisions_per_s_1_thread": one, "decisions_per_s_2_threads": two}
        print(f"[bandits.decide_rows] {rows_per_call} rows a call: decisions/s 1 thread "
              f"{one:,.0f}, 2 threads {two:,.0f} ({two / one:.2f}x; load "
              f"{os.getloadavg()[0]:.1f})")
    if not FULL:
        return
    # At which model size do two threads beat one? Decisions of at least
    # BANDIT_SERVE_NOGIL_WORK multiply-adds (~1 us) run without the GIL; shorter ones keep it,
    # since handing it over would cost more than the decision.
    for k, d in ((10, 50), (20, 50), (50, 50), (100, 100)):
        rng = np.random.default_rng(k * d)
        Xs = rng.normal(size=(20_000, d))
        names, ids = [f"f{j}" for j in range(d)], [f"a{a}" for a in range(k)]
        codes = rng.integers(0, k, len(Xs))
        big = LinUCB(ids, features=names).update(pa.table({
            **{f: Xs[:, j] for j, f in enumerate(names)}, "arm": pa.array(np.asarray(ids)[codes]),
            "r": Xs[:, 0] * codes + rng.normal(size=len(Xs))}), arm="arm", reward="r")
        some = [np.ascontiguousarray(x) for x in Xs[:1000]]
        lat = []
        for x in some:
            t0 = time.perf_counter()
            big.decide_one(x)
            lat.append(time.perf_counter() - t0)
        one, two = _thread_rates(big, some)
        releases = big._snapshot.server.releases_gil
        benchmark.extra_info[f"scaling_{k}x{d}"] = {
            "p50_us": statistics.median(lat) * 1e6, "p99_us": float(np.percentile(lat, 99)) * 1e6,
            "decisions_per_s_1_thread": one, "decisions_per_s_2_threads": two,
            "releases_gil": releases}
        print(f"[bandits.decide_one] {k} arms x {d} features: p50 "
              f"{statistics.median(lat) * 1e6:.1f} us, p99 {np.percentile(lat, 99) * 1e6:.1f} us;"
              f" decisions/s 1 thread {one:,.0f}, 2 threads {two:,.0f} ({two / one:.2f}x, "
              f"{_gil_state(releases)}; load {os.getloadavg()[0]:.1f})")


def _gil_state(releases: bool) -> str:
    if FREE_THREADED:
        return "free-threaded CPython, no GIL"
    return f"GIL {'released' if releases else 'held'}"


def _thread_rates(policy, rows):
    """Decisions per second from 1 and 2 threads calling decide_one at once (the kernel releases
    the GIL for large models), rounds alternating so load drifts hit both alike; seeded calls,
    so the threaded answers must equal the serial ones. Medians of 5 rounds."""
    # x and the policy bound as arguments: a call then shares no object with the other thread
    # but the policy (on a free-threaded CPython, loading a shared list or cell on each call
    # would be measured, not decide_one)
    calls = [lambda i=i, x=rows[i], p=policy: p.decide_one(x, seed=i) for i in range(len(rows))]
    return _rates(calls, len(rows))


def _thread_rates_rows(policy, X, rows_per_call):
    """As :func:`_thread_rates`, for ``decide_rows`` on blocks of ``rows_per_call`` rows."""
    calls = [lambda i=i: list(policy.decide_rows(np.ascontiguousarray(X[i:i + rows_per_call]),
                                                 seed=0, first_row=i)[0])
             for i in range(0, len(X), rows_per_call)]
    return _rates(calls, len(X))


def _rates(calls, n_decisions, seconds=0.3):
    """Decisions per second of ``calls`` served by one thread, then split over two (odd and
    even calls), rounds alternating so load drifts hit both alike; each timing repeats the calls
    for about ``seconds`` (a GIL held through a 5 ms switch interval needs many intervals).
    Medians of 5 rounds; the threaded answers must equal the serial ones."""
    from concurrent.futures import ThreadPoolExecutor

    def serve(part):
        return [calls[i]() for i in part]

    idx = list(range(len(calls)))
    t0 = time.perf_counter()
    serial = serve(idx)
    repeat = max(1, round(seconds / (time.perf_counter() - t0)))

    def serve_repeated(part):
        for _ in range(repeat - 1):
            serve(part)
        return serve(part)

    rates = {1: [], 2: []}
    with ThreadPoolExecutor(2) as pool:
        for _ in range(5):
            t0 = time.perf_counter()
            serve_repeated(idx)
            rates[1].append(repeat * n_decisions / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            halves = list(pool.map(serve_repeated, [idx[0::2], idx[1::2]]))
            rates[2].append(repeat * n_decisions / (time.perf_counter() - t0))
    threaded = [None] * len(idx)
    threaded[0::2], threaded[1::2] = halves
    assert threaded == serial
    return statistics.median(rates[1]), statistics.median(rates[2])


def test_regret_vs_mabwiser(benchmark):
    """LinUCB (alpha 1) of fastengage and of MABWiser on the same seeded stream (same contexts;
    rewards drawn for the arm each one picks), both warm-started on the same random batch and
    updated every 20 rows. Full runs write docs/bandits_regret.png for the README."""
    pytest.importorskip("mabwiser")
    from fastengage.bandits.simulate import LinearEnvironment

    T, batch = (10_000, 20) if FULL else (400, 20)

    def run(kind):
        env = LinearEnvironment(10, 20, reward="linear", noise_sd=0.5, seed=11)
        X0 = env.contexts(batch)
        a0 = np.arange(batch) % env.n_arms
        r0 = env.outcomes(X0, a0)
        ids = np.asarray(env.arms)
        if kind == "fastengage":
            policy = LinUCB(env.arms, features=env.features)
            policy.update(env.table(X0, arm=ids[a0], reward=r0), arm="arm", reward="reward")
        else:
            policy = _mab_for(env.arms)
            policy.fit(ids[a0], r0, X0)
        regret = []
        for b in range(T // batch):
            X = env.contexts(batch)
            if kind == "fastengage":
                arms = policy.decide(env.table(X), seed=b)["arm"].to_pylist()
            else:
                arms = policy.predict(X)
            codes = np.array([env.arms.index(a) for a in arms])
            expected = env.expected(X)
            r = env.outcomes(X, codes)
            regret.append(expected.max(axis=1) - expected[np.arange(batch), codes])
            if kind == "fastengage":
                policy.update(env.table(X, arm=ids[codes], reward=r), arm="arm", reward="reward")
            else:
                policy.partial_fit(ids[codes], r, X)
        return np.cumsum(np.concatenate(regret))

    def _mab_for(arms):
        from mabwiser.mab import MAB, LearningPolicy

        return MAB(arms=list(arms), learning_policy=LearningPolicy.LinUCB(alpha=1.0, l2_lambda=1.0))

    ours = run("fastengage")
    theirs = run("mabwiser")
    benchmark.extra_info.update({"rounds": T, "regret_fastengage": float(ours[-1]),
                                 "regret_mabwiser": float(theirs[-1])})
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    print(f"\n[bandits.regret] {T} rounds: cumulative regret fastengage {ours[-1]:.1f}, "
          f"MABWiser {theirs[-1]:.1f}")
    # Same algorithm, same stream: the curves must agree closely (ties and float rounding are
    # the only differences) and both must flatten (sublinear).
    assert abs(ours[-1] - theirs[-1]) <= 0.1 * max(ours[-1], theirs[-1]) + 1.0
    if FULL:  # 400 smoke rounds are too few to see the curve flatten
        half = len(ours) // 2
        assert ours[-1] - ours[half - 1] < 0.5 * ours[half - 1]
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.6))
        ax.plot(ours, label="fastengage LinUCB")
        ax.plot(theirs, "--", label="MABWiser LinUCB")
        ax.set_xlabel("round")
        ax.set_ylabel("cumulative regret")
        ax.set_title("LinUCB, 10 arms x 20 features, linear rewards (seeded)")
        ax.legend()
        fig.tight_layout()
        out = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "bandits_regret.png")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        fig.savefig(out, dpi=110)
