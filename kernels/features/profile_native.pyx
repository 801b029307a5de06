# cython: language_level=3
"""Customer-profile kernels compiled at build time (issues #15.1, #11): group the rows by
customer in output order, then fold each customer's rows into its output row.

Why Cython: the Numba versions of these loops cost ~13 s of CPU of JIT compilation on a first
``profile()`` call in a fresh process (fold 9 s, its sorts 3 s, the counting sort 1.3 s), for
work that then takes milliseconds on small data. Compiled ahead of time they cost nothing then.

The per-customer fold and its small sorts are C (``profile_fold.h``, ``profile_sort.h``); this
module allocates each worker's scratch and runs the workers without the GIL.

Layout: the caller decides the output order first (customers with a purchase, sorted by id),
so the grouping puts each customer's rows at its output position and the fold writes every
feature straight into a column (``ints[column, position]``, ``floats[...]``): the columns become
Arrow arrays without a gather or a transpose (for 5M customers the old customer-major matrices
cost more than the fold itself).

Determinism: the grouping is a stable counting sort in chunks of rows (a customer's rows keep
their input order whatever the chunking), each customer is folded by one thread, and no output
depends on the order of its rows: every sum of amounts is an exact fixed-point sum
(``profile_money.h``, the words of ``rfm.fixed_words``) read out correctly rounded; the category
entropy adds its terms by ascending count; ``last_channel`` breaks a tie of times by the
channel's rank. Workers claim chunks/blocks through an atomic counter
(``kernels.common.launch.run_threaded``), so results do not depend on the thread count.

Distinct items and categories are counted by their codes (first-seen numbers ``0..n-1``) in a
per-worker table when there are at most ``stamp_max`` of them (``PROFILE_STAMP_MAX_CODES``):
one random access a row, no sort; else by sorting the customer's codes.
"""
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc

import numpy as np

cimport numpy as cnp

cnp.import_array()


cdef extern from "profile_fold.h" nogil:
    long long fe_fetch_add(long long* p, long long v)
    ctypedef struct fe_money:
        uint64_t w[3]
    void fe_sort_pairs(int64_t* keys, int64_t* vals, int64_t n, int64_t* tmp_k, int64_t* tmp_v)
    enum:
        FE_C_N_INT
        FE_D_N_FLOAT
        FE_A_WINDOWS
    ctypedef struct fe_profile_inputs:
        const int64_t* perm
        const int64_t* offsets
        int64_t n_rows
        const int64_t* times
        const double* amounts
        const int64_t* orders
        const int64_t* items
        const int64_t* categories
        const int64_t* channels
        const int64_t* channel_rank
        const int64_t* window_lo
        int64_t n_windows, n_items, n_categories, n_channels, as_of_us, trend_window
        int64_t prev_lo, prev_hi
        int net_returns, item_table, category_table
    ctypedef struct fe_profile_outputs:
        int64_t* ints
        double* floats
        double* shares
        int64_t n_out
    ctypedef struct fe_profile_scratch:
        int64_t* ptime
        int64_t* prow
        int64_t* key
        int64_t* val
        int64_t* tmp_k
        int64_t* tmp_v
        int64_t* window_counts
        int64_t* channel_orders
        int64_t* item_seen
        int64_t* category_lines
        fe_money* acc
    void fe_profile_fold_one(int64_t j, const fe_profile_inputs* inp, fe_profile_outputs* out,
                             fe_profile_scratch* s)


# Column layout of the outputs (profile_fold.h's enums): rows of ``ints``, then per window w
# orders, purchase days, return rows at N_INT + 3 w + (0, 1, 2); rows of ``floats``, then per
# window spend, return amount at N_FLOAT + 2 w + (0, 1).
I_FIRST, I_LAST, I_RECENCY, I_TENURE, I_FREQUENCY, I_DAYS = 0, 1, 2, 3, 4, 5
I_DISTINCT_ITEMS, I_DISTINCT_CATEGORIES, I_N_CHANNELS, I_LAST_CHANNEL = 6, 7, 8, 9
I_ORDERS_PREV, I_LAST_GAP, N_INT, INT_PER_WINDOW = 10, 11, FE_C_N_INT, 3
F_MONETARY_TOTAL, F_MONETARY_MEAN, F_GAP_MEAN, F_GAP_STD, F_OVERDUE = 0, 1, 2, 3, 4
F_SPEND_PREV, F_SPEND_TREND, F_ORDERS_TREND, F_ITEMS_PER_ORDER = 5, 6, 7, 8
F_TOP_CATEGORY_SHARE, F_CATEGORY_ENTROPY, N_FLOAT, FLOAT_PER_WINDOW = 9, 10, FE_D_N_FLOAT, 2
#: Most channel values a call accepts (an order's channels are a 64-bit mask).
MAX_CHANNELS = 64


# ---- grouping the rows by customer, in output order --------------------------------------------
def count_worker(const int64_t[::1] codes, const int64_t[::1] times, const double[::1] amounts,
                 int64_t limit_us,
                 const int64_t[::1] bounds,   # IN  chunk c holds rows bounds[c]..bounds[c+1]-1
                 int64_t[:, ::1] counts,      # OUT [chunk, code] rows with time <= limit (zeroed)
                 uint8_t[:, ::1] bought,      # OUT [chunk, code] 1 when one is a purchase (zeroed)
                 int64_t[:, ::1] tallies,     # OUT [chunk] rows after the limit, return rows
                 int64_t[::1] next_chunk):    # IN/OUT shared counter of claimed chunks
    """One worker of the count pass: claims chunks until none are left."""
    cdef Py_ssize_t n_chunks = bounds.shape[0] - 1
    cdef long long* counter = <long long*> &next_chunk[0]
    cdef int64_t c, i, code, after, returns
    with nogil:
        c = fe_fetch_add(counter, 1)
        while c < n_chunks:
            after = 0
            returns = 0
            for i in range(bounds[c], bounds[c + 1]):
                if times[i] > limit_us:
                    after += 1
                    continue
                code = codes[i]
                counts[c, code] += 1
                if amounts[i] >= 0.0:
                    bought[c, code] = 1
                else:
                    returns += 1
            tallies[c, 0] = after
            tallies[c, 1] = returns
            c = fe_fetch_add(counter, 1)


def customers_kept(const int64_t[:, ::1] counts, const uint8_t[:, ::1] bought):
    """(kept uint8[n_codes]: the customer has a purchase by the limit, number of customers
    with rows by the limit but returns only)."""
    cdef Py_ssize_t n_chunks = counts.shape[0], n_codes = counts.shape[1], c, k
    kept_arr = np.zeros(n_codes, np.uint8)
    cdef uint8_t[::1] kept = kept_arr
    cdef int64_t returns_only = 0
    cdef bint rows
    with nogil:
        for k in range(n_codes):
            rows = False
            for c in range(n_chunks):
                kept[k] |= bought[c, k]
                rows = rows or counts[c, k] > 0
            if rows and not kept[k]:
                returns_only += 1
    return kept_arr, returns_only


def place_groups(int64_t[:, ::1] counts, const uint8_t[::1] kept, const int64_t[::1] order):
    """Turn ``counts`` into each chunk's first slot per customer (-1: customer not kept), the
    customers' groups laid out in ``order`` (output position -> code); returns ``offsets``
    int64[len(order) + 1] (customer at position j: slots offsets[j]..offsets[j+1]-1)."""
    cdef Py_ssize_t n_chunks = counts.shape[0], n_codes = counts.shape[1], c, k, j
    cdef Py_ssize_t n_out = order.shape[0]
    offsets_arr = np.empty(n_out + 1, np.int64)
    cdef int64_t[::1] offsets = offsets_arr
    cdef int64_t slot = 0, here
    with nogil:
        for k in range(n_codes):
            if not kept[k]:
                for c in range(n_chunks):
                    counts[c, k] = -1
        for j in range(n_out):
            k = order[j]
            offsets[j] = slot
            for c in range(n_chunks):
                here = counts[c, k]
                counts[c, k] = slot
                slot += here
        offsets[n_out] = slot
    return offsets_arr


def scatter_worker(const int64_t[::1] codes, const int64_t[::1] times, int64_t limit_us,
                   const int64_t[::1] bounds, int64_t[:, ::1] slots, int64_t[::1] perm,
                   int64_t[::1] next_chunk):
    """One worker of the scatter pass: row numbers of kept customers to their slots
    (``slots`` from :func:`place_groups`, advanced in place), input order kept per customer."""
    cdef Py_ssize_t n_chunks = bounds.shape[0] - 1
    cdef long long* counter = <long long*> &next_chunk[0]
    cdef int64_t c, i, code, k
    with nogil:
        c = fe_fetch_add(counter, 1)
        while c < n_chunks:
            for i in range(bounds[c], bounds[c + 1]):
                if times[i] > limit_us:
                    continue
                code = codes[i]
                k = slots[c, code]
                if k >= 0:
                    perm[k] = i
                    slots[c, code] = k + 1
            c = fe_fetch_add(counter, 1)


def longest_group(const int64_t[::1] offsets):
    """Most rows of one customer (scratch size of the fold)."""
    cdef Py_ssize_t j
    cdef int64_t longest = 1
    with nogil:
        for j in range(offsets.shape[0] - 1):
            if offsets[j + 1] - offsets[j] > longest:
                longest = offsets[j + 1] - offsets[j]
    return longest


def sort_pairs(int64_t[::1] keys, int64_t[::1] vals):
    """Stable ascending sort of ``keys`` carrying ``vals`` in place (for the tests)."""
    cdef int64_t n = keys.shape[0]
    if vals.shape[0] != n:
        raise ValueError("keys and vals must have the same length")
    if n == 0:
        return
    cdef int64_t* tmp = <int64_t*> malloc(2 * n * sizeof(int64_t))
    if tmp == NULL:
        raise MemoryError()
    with nogil:
        fe_sort_pairs(&keys[0], &vals[0], n, tmp, tmp + n)
    free(tmp)


# ---- the per-customer fold (profile_fold.h) ----------------------------------------------------
cdef void _free_scratch(fe_profile_scratch* s) noexcept nogil:
    free(s.ptime)
    free(s.prow)
    free(s.key)
    free(s.val)
    free(s.tmp_k)
    free(s.tmp_v)
    free(s.window_counts)
    free(s.channel_orders)
    free(s.item_seen)
    free(s.category_lines)
    free(s.acc)


cdef int _alloc_scratch(fe_profile_scratch* s, const fe_profile_inputs* inp,
                        int64_t longest) noexcept nogil:
    cdef int64_t k, n = longest if longest > 0 else 1
    s.ptime = <int64_t*> malloc(n * sizeof(int64_t))
    s.prow = <int64_t*> malloc(n * sizeof(int64_t))
    s.key = <int64_t*> malloc(n * sizeof(int64_t))
    s.val = <int64_t*> malloc(n * sizeof(int64_t))
    s.tmp_k = <int64_t*> malloc(n * sizeof(int64_t))
    s.tmp_v = <int64_t*> malloc(n * sizeof(int64_t))
    s.window_counts = <int64_t*> malloc(3 * inp.n_windows * sizeof(int64_t))
    s.channel_orders = <int64_t*> malloc((inp.n_channels + 1) * sizeof(int64_t))
    s.item_seen = <int64_t*> malloc((inp.n_items + 1) * sizeof(int64_t)) if inp.item_table else NULL
    s.category_lines = (<int64_t*> malloc((inp.n_categories + 1) * sizeof(int64_t))
                        if inp.category_table else NULL)
    s.acc = <fe_money*> malloc((FE_A_WINDOWS + 2 * inp.n_windows + inp.n_channels)
                               * sizeof(fe_money))
    if (s.ptime == NULL or s.prow == NULL or s.key == NULL or s.val == NULL or s.tmp_k == NULL
            or s.tmp_v == NULL or s.window_counts == NULL or s.channel_orders == NULL
            or s.acc == NULL or (inp.item_table and s.item_seen == NULL)
            or (inp.category_table and s.category_lines == NULL)):
        return -1
    if inp.item_table:
        for k in range(inp.n_items):
            s.item_seen[k] = -1
    if inp.category_table:
        for k in range(inp.n_categories):
            s.category_lines[k] = 0
    return 0


cdef inline const int64_t* _ptr_or_null(const int64_t[::1] values) noexcept:
    return &values[0] if values.shape[0] else NULL


def fold_worker(const int64_t[::1] perm,        # IN  rows grouped by output position
                const int64_t[::1] offsets,     # IN  int64[n_out + 1]
                const int64_t[::1] times,       # IN  int64[n] microseconds UTC
                const double[::1] amounts,      # IN  float64[n]
                const int64_t[::1] orders,      # IN  int64[n] order codes, or empty
                const int64_t[::1] items,       # IN  item codes 0..n_items-1, or empty
                const int64_t[::1] categories,  # IN  category codes 0..n_categories-1, or empty
                const int64_t[::1] channels,    # IN  channel codes 0..n_channels-1, or empty
                int64_t n_items, int64_t n_categories, int64_t n_channels,
                const int64_t[::1] channel_rank,  # IN rank of each channel code's value
                int64_t as_of_us,
                const int64_t[::1] window_lo,   # IN  a row is in window w when time > window_lo[w]
                int64_t trend_window,           # IN  index of the window the trend compares
                int64_t prev_lo, int64_t prev_hi,  # IN the previous period is (prev_lo, prev_hi]
                bint net_returns,               # IN  monetary_total includes returns
                int64_t longest,                # IN  most rows of one customer
                int64_t block,                  # IN  customers per claimed block
                int64_t stamp_max,              # IN  largest code table per worker
                int64_t[:, ::1] ints,           # OUT [N_INT + 3 W, n_out]
                double[:, ::1] floats,          # OUT [N_FLOAT + 2 W, n_out]
                double[:, ::1] shares,          # OUT [2 n_channels, n_out]
                int64_t[::1] next_block):       # IN/OUT shared counter of claimed blocks
    """One worker of the fold: claims blocks of output positions until none are left and writes
    those customers' features (every cell of a requested column is written)."""
    cdef fe_profile_inputs inp
    cdef fe_profile_outputs out
    cdef fe_profile_scratch s
    cdef int status
    cdef int64_t n_out = offsets.shape[0] - 1, n_blocks, b, j
    cdef long long* counter = <long long*> &next_block[0]
    if n_channels > MAX_CHANNELS:
        raise ValueError(f"at most {MAX_CHANNELS} channels, got {n_channels}")
    if (ints.shape[1] != n_out or floats.shape[1] != n_out
            or (n_channels and shares.shape[1] != n_out)):
        raise ValueError("output columns must have one cell per output position")
    if n_out == 0:
        return
    inp.perm = _ptr_or_null(perm)
    inp.offsets = &offsets[0]
    inp.n_rows = perm.shape[0]
    inp.times = _ptr_or_null(times)
    inp.amounts = &amounts[0] if amounts.shape[0] else NULL
    inp.orders = _ptr_or_null(orders)
    inp.items = _ptr_or_null(items)
    inp.categories = _ptr_or_null(categories)
    inp.channels = _ptr_or_null(channels) if n_channels else NULL
    inp.channel_rank = _ptr_or_null(channel_rank)
    inp.window_lo = &window_lo[0]
    inp.n_windows = window_lo.shape[0]
    inp.n_items = n_items
    inp.n_categories = n_categories
    inp.n_channels = n_channels if inp.channels != NULL else 0
    inp.as_of_us = as_of_us
    inp.trend_window = trend_window
    inp.prev_lo = prev_lo
    inp.prev_hi = prev_hi
    inp.net_returns = net_returns
    inp.item_table = inp.items != NULL and n_items <= stamp_max
    inp.category_table = inp.categories != NULL and n_categories <= stamp_max
    out.ints = &ints[0, 0]
    out.floats = &floats[0, 0]
    out.shares = &shares[0, 0] if inp.n_channels else NULL
    out.n_out = n_out
    n_blocks = (n_out + block - 1) // block
    with nogil:
        status = _alloc_scratch(&s, &inp, longest)
        if status == 0:
            b = fe_fetch_add(counter, 1)
            while b < n_blocks:
                for j in range(b * block, min((b + 1) * block, n_out)):
                    fe_profile_fold_one(j, &inp, &out, &s)
                b = fe_fetch_add(counter, 1)
        _free_scratch(&s)
    if status != 0:
        raise MemoryError("profile fold: out of memory for a worker's scratch")
