"""Drift statistics of two raw (unsorted) numeric columns without sorting them.

Every statistic of a numeric column is a function of the gap between the two ECDFs,
``G(x) = Wa(x) tb - Wb(x) ta`` (Wa, Wb: counts of values <= x; ta, tb: totals; integers, exact):
KS = max |G| / (ta tb) over the points after the last of equal values, Wasserstein-1 = integral
of |G| dx / (ta tb), and the PSI bins need a few reference order statistics. Sorting both sides
gets all of that, but the two sorts and the merged walk were most of the time.

Here each value goes instead into one of ``B`` buckets of a monotone map (``_plan``): equal
steps over [min, max], each owning buckets in proportion to its share of a sample's CDF, equal
widths inside a step: a value's bucket is one lookup and one multiply. Per bucket only the count
and the sum of the values' offsets from their step's left edge are kept. G at every bucket
boundary is then exact (prefix counts), and inside a bucket holding ``ca`` reference and ``cb``
current values G stays within ``[G0 - cb ta, G0 + ca tb]``. Where that range does not contain
0, |G| has one sign ``s`` throughout and its integral over the bucket ``[lo, hi)`` needs no
order: ``s (G0 (hi - lo) + tb sum_a (hi - a) - ta sum_b (hi - b))``, the sums from the offset
sums. The KS maximum is at least the largest |G| at a boundary, and only a bucket holding both
sides whose range reaches beyond it can exceed it. The buckets that may change sign or exceed
it (and those holding a PSI quantile of the reference) are the only ones whose values are
gathered and sorted: a few percent of the values. Results equal the sorted walk's up to
floating-point rounding (KS exactly; Wasserstein to ~1e-13 relative).

A column whose gathered share would pass ``gather_limit`` (ties: few distinct values) is not
computed here (``STATUS`` 1): the caller sorts it instead.

Columns run in parallel, each on one thread (columns j, j + T, j + 2T.. on the same one, which
reuses its scratch): results never depend on the thread count. They
arrive as the addresses of their buffers (``column_view``): the columns of an Arrow table are
separate buffers, and gathering them into one matrix cost a copy of every value (and its page
faults) before any work.
"""
import numpy as np
from numba import njit, prange

from ..common.columns import column_view
from ..common.config import MONITOR_BUCKET_CELLS as CELLS
from ..common.config import MONITOR_GATHER_BLOCK as GATHER_BLOCK
from ..common.config import MONITOR_GRID_CELL_FILL as GRID_CELL_FILL
from ..common.config import MONITOR_GRID_CELLS_PER_BUCKET as GRID_CELLS_PER_BUCKET
from ..common.config import NJIT
from ..common.launch import parallel_kernel
from .drift import js_distance, psi


#: ``stats`` slots filled by :func:`column_drift`.
KS, WASS, PSI, JS, N_REF, N_CUR, MEAN_REF, M2_REF, STATUS, BINS = range(10)
N_STATS = 10


@njit(**NJIT)
def _sample_cdf(q, c, x):
    """(cell, CDF at ``x``) of the sample, piecewise linear through the quantiles ``q``;
    ``c``: the cell of an earlier, smaller ``x`` (the walk only moves up)."""
    while c < CELLS - 1 and q[c + 1] <= x:
        c += 1
    w = q[c + 1] - q[c]
    return c, (c + (min((x - q[c]) / w, 1.0) if w > 0.0 else 1.0)) / CELLS


@njit(**NJIT)
def _grid_fits(q, n_cells, n, most):
    """Whether ``n_cells`` equal cells over [q[0], q[CELLS]] put at most ``most`` of ``n``
    values into any cell, as the sample's densest quantile cell estimates it."""
    width = (q[CELLS] - q[0]) / n_cells
    for c in range(CELLS):
        if (q[c + 1] - q[c]) * most * CELLS < width * n:  # also a zero-width cell (ties)
            return False
    return width > 0.0


@njit(**NJIT)
def _grid_plan(q, n_buckets, n_cells):
    """The bucket map of a column without crowded regions (:func:`_grid_fits`): ``n_cells``
    equal cells over [q[0], q[CELLS]], cell ``g`` in bucket ``grid[g]`` = the sample CDF at
    its left edge times ``n_buckets`` (non-decreasing: buckets are runs of whole cells, some
    empty). A value's bucket is one multiply and one lookup in a table that stays in cache
    (2 bytes a cell). Returns ``grid`` and per bucket ``[lower, upper)`` and its left edge
    (= lower) as :func:`_plan`, no bucket shared."""
    lo = q[0]
    width = (q[CELLS] - lo) / n_cells
    grid = np.empty(n_cells, dtype=np.uint16)
    lower = np.empty(n_buckets + 1)
    upper = np.empty(n_buckets + 1)
    c = 0
    done = 0  # buckets whose lower edge is set
    for g in range(n_cells):
        x = lo + g * width
        c, cdf = _sample_cdf(q, c, x)
        k = max(min(int(cdf * n_buckets), n_buckets - 1), done - 1)
        while done <= k:
            lower[done] = x
            done += 1
        grid[g] = k
    lower[done:] = q[CELLS]
    upper[:n_buckets] = lower[1:]
    upper[n_buckets] = q[CELLS]
    return grid, lower, upper, lower.copy(), np.zeros(n_buckets + 1, dtype=np.uint8)


@njit(**NJIT)
def _plan(q, n_buckets, n_entries):
    """The bucket map: ``n_entries`` equal steps over [q[0], q[CELLS]], step ``e`` owning
    buckets ``base[e] ..`` in proportion to its share of the sample CDF (piecewise linear
    through the quantiles ``q``), equal widths inside. Per step its left edge, its buckets per
    unit of value and ``base << 16 | (buckets - 1)`` (three small arrays, not one table: the id
    pass reads them at random, and they stay in L1/L2 cache; ``base`` < 2^15 as ids are
    uint16); per bucket its ``[lower, upper)`` and owning step's left edge, and ``shared``:
    buckets that also take the values of steps owning none (they are always walked exactly:
    their offsets mix origins)."""
    lo = q[0]
    step = (q[CELLS] - lo) / n_entries
    left_edge = np.zeros(n_entries)
    rate = np.zeros(n_entries)
    packed = np.zeros(n_entries, dtype=np.int32)
    lower = np.empty(n_buckets + 1)
    upper = np.empty(n_buckets + 1)
    origin = np.zeros(n_buckets + 1)
    shared = np.zeros(n_buckets + 1, dtype=np.uint8)
    base = np.empty(n_entries + 1, dtype=np.int64)
    c = 0
    for e in range(n_entries + 1):
        x = lo + e * step if e < n_entries else q[CELLS]
        c, cdf = _sample_cdf(q, c, x)
        base[e] = min(int(cdf * n_buckets + 0.5), n_buckets - 1) if e < n_entries else n_buckets
    run_start = -1  # first step of the current run of steps owning no bucket
    for e in range(n_entries):
        left = lo + e * step
        right = lo + (e + 1) * step if e < n_entries - 1 else q[CELLS]
        own = base[e + 1] - base[e]
        left_edge[e] = left
        packed[e] = base[e] << 16
        if own <= 0:
            if run_start < 0:
                run_start = e
            shared[base[e]] = 1
            continue
        rate[e] = own / (right - left) if right > left else 0.0
        packed[e] |= own - 1
        for j in range(own):
            k = base[e] + j
            lower[k] = left + j * (right - left) / own if j > 0 else left
            upper[k] = left + (j + 1) * (right - left) / own if j < own - 1 else right
            origin[k] = left
        if run_start >= 0:
            lower[base[e]] = lo + run_start * step
            run_start = -1
    lower[n_buckets] = upper[n_buckets] = q[CELLS]
    return left_edge, rate, packed, lower, upper, origin, shared


@njit(**NJIT)
def _moments(x, out):
    """Valid count, min, max and sum of ``x`` (NaN is missing)."""
    cnt = 0
    mn = np.inf
    mx = -np.inf
    total = 0.0
    for i in range(x.shape[0]):  # from 0: no negative-index wraparound per access
        v = x[i]
        if v == v:
            cnt += 1
            mn = min(mn, v)
            mx = max(mx, v)
            total += v
    out[0] = cnt
    out[1] = mn
    out[2] = mx
    out[3] = total


@njit(**NJIT)
def _bucket_ids(x, lo, scale, left_edge, rate, packed, ids, nan_id):
    """Bucket of each value of ``x`` into ``ids`` (NaN: ``nan_id``). No branch, no store to a
    bucket and no running sum here (counts and squared deviations are :func:`_tally`'s): LLVM
    vectorises this loop, lookups included; one loop doing all of it ran scalar (per 1M values
    8.4 ms before, 4.7 + 2.5 ms split; a squared-deviation sum here made this pass alone 15 ms).
    A NaN takes ``lo``'s path: no float to int conversion of a NaN."""
    last = packed.shape[0] - 1
    for i in range(x.shape[0]):  # from 0 (a range from a variable start costs ~2x here)
        v = x[i]
        valid = v == v
        w = v if valid else lo
        e = min(int((w - lo) * scale), last)
        p = packed[e]
        k = (p >> 16) + max(min(int((w - left_edge[e]) * rate[e]), p & 0xFFFF), 0)
        ids[i] = k if valid else nan_id


@njit(**NJIT)
def _grid_ids(x, lo, scale, grid, ids, nan_id):
    """:func:`_bucket_ids` for :func:`_grid_plan`'s map (per 1M values ~2 vs ~4.7 ms)."""
    last = grid.shape[0] - 1
    for i in range(x.shape[0]):
        v = x[i]
        valid = v == v
        k = grid[min(int(((v if valid else lo) - lo) * scale), last)]
        ids[i] = k if valid else nan_id


@njit(**NJIT)
def _tally(x, ids, origin, mean, counts, offsets):
    """Count of each bucket into ``counts`` and the sum of its values' offsets from their
    step's left edge (``origin``) into ``offsets``; returns the sum of squared deviations of
    the valid values from ``mean``. The NaN id's slot takes NaN's, never read. (Offsets of
    ``shared`` buckets mix steps: those buckets are always walked exactly.)"""
    dev = 0.0
    for i in range(x.shape[0]):
        k = ids[i]
        v = x[i]
        counts[k] += 1
        offsets[k] += v - origin[k]
        if v == v:
            d = v - mean
            dev += d * d
    return dev


@njit(**NJIT)
def _splitters(a, b, lo, hi, sample):
    """``CELLS + 1`` non-decreasing cell bounds: ``lo``, quantiles of a strided sample of both
    sides, ``hi``."""
    picks = np.empty(2 * sample, dtype=np.float64)
    m = 0
    for side in range(2):
        x = a if side == 0 else b
        step = max(1, x.shape[0] // sample)
        taken = 0
        for i in range(0, x.shape[0], step):
            v = x[i]
            if v == v and taken < sample:
                picks[m] = v
                m += 1
                taken += 1
    s = np.sort(picks[:m])
    q = np.empty(CELLS + 1, dtype=np.float64)
    q[0] = lo
    q[CELLS] = hi
    for c in range(1, CELLS):
        v = s[(c * m) // CELLS] if m > 0 else hi
        q[c] = max(min(max(v, lo), hi), q[c - 1])
    return q


@njit(**NJIT)
def _gather(x, ids, flag, start, run):
    """The values of flagged buckets into ``run`` (bucket k's from ``start[k]``), each bucket's
    values sorted. A block's flagged positions are listed first without a branch (a few
    percent of the values are flagged, at random positions: a branch per value mispredicts),
    then only those are read."""
    fill = start.copy()
    picked = np.empty(GATHER_BLOCK, dtype=np.int64)
    n = x.shape[0]
    for begin in range(0, n, GATHER_BLOCK):
        # not a Python int: under NUMBA_DISABLE_JIT NumPy adds uint8 flags to it in uint8
        m = np.int64(0)
        for i in range(begin, min(n, begin + GATHER_BLOCK)):
            picked[m] = i
            m += flag[ids[i]]
        for t in range(m):
            i = picked[t]
            k = ids[i]
            run[fill[k]] = x[i]
            fill[k] += 1
    for k in range(flag.shape[0]):
        if flag[k] and fill[k] - start[k] > 1:
            run[start[k]:fill[k]].sort()


@njit(**NJIT)
def _exact_bucket(sa, sb, g0, ta, tb, lo, hi):
    """(integral of |G| over [lo, hi), largest |G| after a run of equal values) in a bucket whose
    sorted values are ``sa`` (reference) and ``sb`` (current), G starting at ``g0``."""
    i = 0
    k = 0
    g = g0
    pos = lo
    area = 0.0
    top = 0
    while i < sa.shape[0] or k < sb.shape[0]:
        if k >= sb.shape[0] or (i < sa.shape[0] and sa[i] <= sb[k]):
            x = sa[i]
        else:
            x = sb[k]
        at = min(max(x, pos), hi)  # rounding of the bucket map may put x a hair outside
        area += abs(float(g)) * (at - pos)
        pos = at
        while i < sa.shape[0] and sa[i] == x:
            g += tb
            i += 1
        while k < sb.shape[0] and sb[k] == x:
            g -= ta
            k += 1
        top = max(top, abs(g))
    area += abs(float(g)) * (hi - pos)
    return area, top


@njit(**NJIT)
def _starts(counts, flag):
    """Start of each flagged bucket's run in the gathered array, and the total."""
    start = np.zeros(flag.shape[0], dtype=np.int64)
    total = 0
    for k in range(flag.shape[0]):
        start[k] = total
        if flag[k]:
            total += counts[k]
    return start, total


@parallel_kernel
def drift_columns(ref_at, cur_at, rows_a, rows_b, n_bins, eps, bucket_rows, max_buckets,
                  sample, n_entries, gather_limit, stats, ref_p, cur_p, slots):
    """Every drift statistic of each reference column vs the current one (float64, NaN
    missing) into ``stats[j]`` (slots KS, WASS, PSI, JS, N_REF, N_CUR, MEAN_REF, M2_REF,
    STATUS, BINS) and the PSI bin proportions into ``ref_p[j]`` / ``cur_p[j]``. Column j's
    values are the ``rows_a`` float64 at address ``ref_at[j]`` and the ``rows_b`` at
    ``cur_at[j]`` (C-contiguous buffers the caller keeps alive; only read).
    ``STATUS`` 1: not computed (too many values would have to be sorted; the caller sorts the
    column instead). Columns ``s, s + slots, ..`` are one task (``slots``: the thread count;
    ``numba.get_num_threads()`` here would make the kernel uncacheable); each column's result
    depends on nothing else, so not on the thread count."""
    m = ref_at.shape[0]
    tasks = min(max(slots, 1), m)
    for task in prange(tasks):
        # the bucket ids, reused by every column of the task: fresh ones cost a page fault per
        # 4 KiB (~1,200 faults, 5-10% of a column's time)
        ids_a = np.empty(rows_a, dtype=np.uint16)
        ids_b = np.empty(rows_b, dtype=np.uint16)
        for j in range(task, m, tasks):
            column_drift(column_view(ref_at[j], rows_a), column_view(cur_at[j], rows_b), n_bins,
                         eps, bucket_rows, max_buckets, sample, n_entries, gather_limit,
                         stats[j], ref_p[j], cur_p[j], ids_a, ids_b)


@njit(**NJIT)
def column_drift(a, b, n_bins, eps, bucket_rows, max_buckets, sample, n_entries, gather_limit,
                 stats, ref_p, cur_p, ids_a, ids_b):
    """:func:`drift_columns` of one column, on the calling thread; ``ids_a`` / ``ids_b``:
    scratch (uint16) of ``a``'s and ``b``'s length."""
    mom = np.empty((2, 4))
    _moments(a, mom[0])
    _moments(b, mom[1])
    na = int(mom[0, 0])
    nb = int(mom[1, 0])
    total_a = mom[0, 3]
    lo_v = min(mom[0, 1], mom[1, 1])
    hi_v = max(mom[0, 2], mom[1, 2])
    stats[N_REF] = na
    stats[N_CUR] = nb
    stats[STATUS] = 0
    stats[BINS] = 0
    if na == 0 or nb == 0:
        for slot in (KS, WASS, PSI, JS, MEAN_REF, M2_REF):
            stats[slot] = np.nan
        return
    if not (np.isfinite(lo_v) and np.isfinite(hi_v)):
        # an infinite value: the map has no finite range (and the sorted walk gives scipy's
        # answers there: KS as usual, Wasserstein inf)
        stats[STATUS] = 1
        return
    mean_a = total_a / na
    # --- the bucket map -----------------------------------------------------------------------
    # In a bucket of r values per side G moves by ~2 r / n, against the ECDF gap's own spread of
    # ~1 / sqrt(n) with no drift: r ~ sqrt(n) / 16 keeps the buckets near its zeros few.
    rows = max(4, min(bucket_rows, int(np.sqrt(max(na, nb)) / 16)))
    n_buckets = CELLS
    while 2 * n_buckets <= max_buckets and n_buckets * rows < max(na, nb):
        n_buckets *= 2
    q = _splitters(a, b, lo_v, hi_v, sample)
    n_cells = GRID_CELLS_PER_BUCKET * n_buckets
    on_grid = _grid_fits(q, n_cells, max(na, nb), GRID_CELL_FILL * rows)
    if on_grid:
        grid, lower, upper, origin, shared = _grid_plan(q, n_buckets, n_cells)
        scale = n_cells / (q[CELLS] - q[0])
    else:
        n_entries = min(n_entries, n_buckets)  # more steps than buckets leave steps owning none
        left_edge, rate, packed, lower, upper, origin, shared = _plan(q, n_buckets, n_entries)
        scale = n_entries / (q[CELLS] - q[0]) if q[CELLS] > q[0] else 0.0
    # --- counts and offset sums per bucket ------------------------------------------------------
    cnt_a = np.zeros(n_buckets + 1, dtype=np.int64)  # slot n_buckets: the NaN sentinel
    cnt_b = np.zeros(n_buckets + 1, dtype=np.int64)
    off_a = np.zeros(n_buckets + 1)
    off_b = np.zeros(n_buckets + 1)
    stats[MEAN_REF] = mean_a
    for x, ids in ((a, ids_a), (b, ids_b)):
        if on_grid:
            _grid_ids(x, q[0], scale, grid, ids, n_buckets)
        else:
            _bucket_ids(x, q[0], scale, left_edge, rate, packed, ids, n_buckets)
    stats[M2_REF] = _tally(a, ids_a, origin, mean_a, cnt_a, off_a)
    _tally(b, ids_b, origin, mean_a, cnt_b, off_b)  # its deviations are not needed
    # --- which buckets need their values in order ----------------------------------------------
    ta = np.int64(na)
    tb = np.int64(nb)
    g = np.int64(0)
    bound = np.int64(0)  # the largest |G| at a bucket boundary: KS is at least this
    for k in range(n_buckets):
        g += cnt_a[k] * tb - cnt_b[k] * ta
        bound = max(bound, abs(g))
    flag = np.zeros(n_buckets + 1, dtype=np.uint8)
    cum_a = np.zeros(n_buckets + 1, dtype=np.int64)  # values of a in the buckets before k
    for k in range(n_buckets):
        cum_a[k + 1] = cum_a[k] + cnt_a[k]
    edge_bucket = np.empty(n_bins - 1, dtype=np.int64)
    for e in range(1, n_bins):
        rank = (e * na + n_bins - 1) // n_bins - 1  # inverted-CDF quantile e / n_bins
        k = np.searchsorted(cum_a, rank, side="right") - 1
        edge_bucket[e - 1] = k
        flag[k] = 1
    closed = 0.0  # the integral of |G| over the buckets where it keeps one sign
    g = np.int64(0)
    for k in range(n_buckets):
        low = g - cnt_b[k] * ta
        high = g + cnt_a[k] * tb
        if (low < 0 and high > 0) or (cnt_a[k] > 0 and cnt_b[k] > 0
                                      and max(abs(low), abs(high)) > bound) \
                or (shared[k] and cnt_a[k] + cnt_b[k] > 0):
            flag[k] = 1
        if not flag[k] and (high > 0 or low < 0):
            # integral of G over [lo, hi): G0 (hi - lo) + tb sum_a (hi - a) - ta sum_b (hi - b),
            # the value sums as offsets from the step's left edge (no cancellation there)
            lo, hi = lower[k], upper[k]
            top_off = hi - origin[k]
            area = (float(g) * (hi - lo) + float(tb) * (cnt_a[k] * top_off - off_a[k])
                    - float(ta) * (cnt_b[k] * top_off - off_b[k]))
            closed += area if high > 0 else -area
        g += cnt_a[k] * tb - cnt_b[k] * ta
    start_a, gathered_a = _starts(cnt_a, flag)
    start_b, gathered_b = _starts(cnt_b, flag)
    if gathered_a + gathered_b > gather_limit * (na + nb):
        stats[STATUS] = 1
        return
    # --- the values of the other buckets, in order --------------------------------------------
    run_a = np.empty(gathered_a)
    run_b = np.empty(gathered_b)
    _gather(a, ids_a, flag, start_a, run_a)
    _gather(b, ids_b, flag, start_b, run_b)
    # --- the flagged buckets in order ------------------------------------------------------------
    g = np.int64(0)
    top = bound
    exact = 0.0
    for k in range(n_buckets):
        if flag[k]:
            lo, hi = lower[k], upper[k]
            sa = run_a[start_a[k]:start_a[k] + cnt_a[k]]
            sb = run_b[start_b[k]:start_b[k] + cnt_b[k]]
            area, peak = _exact_bucket(sa, sb, g, ta, tb, lo, hi)
            exact += area
            top = max(top, peak)
        g += cnt_a[k] * tb - cnt_b[k] * ta
    scale = float(ta) * float(tb)
    stats[KS] = float(top) / scale
    stats[WASS] = (closed + exact) / scale
    # --- PSI and Jensen-Shannon on the reference's quantile bins ---------------------------------
    edges = np.empty(n_bins - 1)
    below_a = np.empty(n_bins - 1)
    below_b = np.empty(n_bins - 1)
    n_edges = 0
    cum_b = 0
    kb = 0
    for e in range(1, n_bins):
        k = edge_bucket[e - 1]
        rank = (e * na + n_bins - 1) // n_bins - 1
        x = run_a[start_a[k] + rank - cum_a[k]]
        while kb < k:
            cum_b += cnt_b[kb]
            kb += 1
        if n_edges == 0 or x > edges[n_edges - 1]:
            edges[n_edges] = x
            below_a[n_edges] = cum_a[k] + np.searchsorted(
                run_a[start_a[k]:start_a[k] + cnt_a[k]], x, side="right")
            below_b[n_edges] = cum_b + np.searchsorted(
                run_b[start_b[k]:start_b[k] + cnt_b[k]], x, side="right")
            n_edges += 1
    prev_a = 0.0
    prev_b = 0.0
    for e in range(n_edges + 1):
        wa = below_a[e] if e < n_edges else float(na)
        wb = below_b[e] if e < n_edges else float(nb)
        ref_p[e] = (wa - prev_a) / na
        cur_p[e] = (wb - prev_b) / nb
        prev_a = wa
        prev_b = wb
    stats[BINS] = n_edges + 1
    stats[PSI] = psi(ref_p[:n_edges + 1], cur_p[:n_edges + 1], eps)
    stats[JS] = js_distance(ref_p[:n_edges + 1], cur_p[:n_edges + 1])
