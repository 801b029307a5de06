/* The per-customer fold of profile() (kernels/features/profile_native.pyx launches it): one
 * customer's rows, perm[offsets[j]..offsets[j+1]), into cell j of every output column.
 *
 * No output depends on the order of a customer's rows: sums of amounts are exact
 * (profile_money.h), distinct counts do not see order, the category entropy adds its terms by
 * ascending count, and last_channel breaks a tie of times by the channel's rank. */
#ifndef FE_PROFILE_FOLD_H
#define FE_PROFILE_FOLD_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "profile_money.h"
#include "profile_sort.h"

#define FE_US_PER_DAY 86400000000LL
/* Rows ahead whose columns are prefetched: a customer's rows are scattered over the input. */
#define FE_PREFETCH_ROWS 16

/* Rows of the integer output (one column of the table each), then per window w: orders,
 * purchase days, return rows at FE_C_N_INT + 3 w + (0, 1, 2). */
enum { FE_C_FIRST, FE_C_LAST, FE_C_RECENCY, FE_C_TENURE, FE_C_FREQUENCY, FE_C_DAYS,
       FE_C_DISTINCT_ITEMS, FE_C_DISTINCT_CATEGORIES, FE_C_N_CHANNELS, FE_C_LAST_CHANNEL,
       FE_C_ORDERS_PREV, FE_C_LAST_GAP /* -1: null */, FE_C_N_INT };
/* Rows of the float output (NaN: null), then per window w: spend, return amount. */
enum { FE_D_MONETARY_TOTAL, FE_D_MONETARY_MEAN, FE_D_GAP_MEAN, FE_D_GAP_STD, FE_D_OVERDUE,
       FE_D_SPEND_PREV, FE_D_SPEND_TREND, FE_D_ORDERS_TREND, FE_D_ITEMS_PER_ORDER,
       FE_D_TOP_CATEGORY_SHARE, FE_D_CATEGORY_ENTROPY, FE_D_N_FLOAT };
/* Money accumulators: all purchases, all returns, the trend's previous period, then spend per
 * window, returns per window, spend per channel. */
enum { FE_A_PURCHASES, FE_A_RETURNS, FE_A_PREV, FE_A_WINDOWS };

typedef struct {
    const int64_t *perm, *offsets;
    int64_t n_rows;                       /* len(perm) */
    const int64_t *times;
    const double *amounts;
    const int64_t *orders, *items, *categories, *channels;  /* NULL when absent */
    const int64_t *channel_rank;
    const int64_t *window_lo;             /* a row is in window w when time > window_lo[w] */
    int64_t n_windows, n_items, n_categories, n_channels, as_of_us, trend_window;
    int64_t prev_lo, prev_hi;             /* the trend's previous period (prev_lo, prev_hi] */
    int net_returns;
    int item_table, category_table;       /* count codes in a per-worker table, else sort */
} fe_profile_inputs;

typedef struct {
    int64_t *ints;                        /* [column * n_out + position] */
    double *floats;
    double *shares;                       /* order shares, then spend shares per channel code */
    int64_t n_out;
} fe_profile_outputs;

typedef struct {
    int64_t *ptime, *prow;                /* purchase times (then sorted) and their rows */
    int64_t *key, *val, *tmp_k, *tmp_v;
    int64_t *window_counts;               /* per window: orders, purchase days, return rows */
    int64_t *channel_orders;
    int64_t *item_seen;                   /* [n_items] last position that had the item */
    int64_t *category_lines;              /* [n_categories] lines of the current customer */
    fe_money *acc;
} fe_profile_scratch;

static inline void fe_prefetch_row(const fe_profile_inputs *in, int64_t r) {
    fe_prefetch(&in->times[r]);
    fe_prefetch(&in->amounts[r]);
    if (in->orders) fe_prefetch(&in->orders[r]);
    if (in->items) fe_prefetch(&in->items[r]);
    if (in->categories) fe_prefetch(&in->categories[r]);
    if (in->channels) fe_prefetch(&in->channels[r]);
}

static inline int64_t fe_floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0))) q -= 1;
    return q;
}

/* Distinct items and the category counts of the purchase rows (basket columns). */
static void fe_fold_basket(int64_t j, int64_t p, const fe_profile_inputs *in,
                           fe_profile_outputs *out, fe_profile_scratch *s) {
    int64_t n_out = out->n_out, i, g, h, code, runs, top = 0, lines;
    double entropy = 0.0, share;
    if (in->items) {
        if (in->item_table) {
            for (runs = 0, i = 0; i < p; i++) {
                code = in->items[s->prow[i]];
                if (s->item_seen[code] != j) {
                    s->item_seen[code] = j;
                    runs++;
                }
            }
        } else {
            for (i = 0; i < p; i++) s->key[i] = in->items[s->prow[i]];
            fe_sort_pairs(s->key, NULL, p, s->tmp_k, NULL);
            runs = fe_distinct_sorted(s->key, p);
        }
        out->ints[FE_C_DISTINCT_ITEMS * n_out + j] = runs;
    }
    if (!in->categories) return;
    runs = 0;
    if (in->category_table) {
        for (i = 0; i < p; i++) {
            code = in->categories[s->prow[i]];
            if (s->category_lines[code] == 0) s->key[runs++] = code;
            s->category_lines[code]++;
        }
        for (i = 0; i < runs; i++) {
            lines = s->category_lines[s->key[i]];
            s->category_lines[s->key[i]] = 0;
            s->val[i] = lines;
            if (lines > top) top = lines;
        }
    } else {
        for (i = 0; i < p; i++) s->key[i] = in->categories[s->prow[i]];
        fe_sort_pairs(s->key, NULL, p, s->tmp_k, NULL);
        for (g = 0; g < p; g = h) {
            for (h = g + 1; h < p && s->key[h] == s->key[g]; h++) {}
            s->val[runs++] = h - g;
            if (h - g > top) top = h - g;
        }
    }
    /* terms added by ascending count: the sum depends on the counts only, not on the
     * category codes' first-seen order */
    fe_sort_pairs(s->val, NULL, runs, s->tmp_k, NULL);
    for (i = 0; i < runs; i++) {
        share = (double) s->val[i] / (double) p;
        entropy -= share * log(share);
    }
    out->ints[FE_C_DISTINCT_CATEGORIES * n_out + j] = runs;
    out->floats[FE_D_TOP_CATEGORY_SHARE * n_out + j] = (double) top / (double) p;
    out->floats[FE_D_CATEGORY_ENTROPY * n_out + j] = entropy;
}

/* Orders: distinct order codes of the purchase rows (sorted by time in s->ptime); in a window
 * by each order's latest row, in the previous period by any row, in every channel it has a
 * purchase line in. Returns the frequency; sets *orders_prev. */
static int64_t fe_fold_orders(int64_t p, const fe_profile_inputs *in, fe_profile_scratch *s,
                              int64_t *orders_prev) {
    int64_t *wc = s->window_counts, i, g, h, q, t, w, latest, frequency = 0, prev = 0;
    int in_prev;
    uint64_t mask;
    if (!in->orders) {
        for (i = 0; i < p; i++) {
            t = s->ptime[i];
            for (w = 0; w < in->n_windows; w++) wc[3 * w] += t > in->window_lo[w];
            prev += in->prev_lo < t && t <= in->prev_hi;
            if (in->n_channels) s->channel_orders[in->channels[s->prow[i]]]++;
        }
        *orders_prev = prev;
        return p;
    }
    for (i = 0; i < p; i++) {
        s->key[i] = in->orders[s->prow[i]];
        s->val[i] = i;
    }
    fe_sort_pairs(s->key, s->val, p, s->tmp_k, s->tmp_v);
    for (g = 0; g < p; g = h) {
        for (h = g + 1; h < p && s->key[h] == s->key[g]; h++) {}
        frequency++;
        latest = INT64_MIN;
        in_prev = 0;
        mask = 0;
        for (q = g; q < h; q++) {
            t = s->ptime[s->val[q]];
            if (t > latest) latest = t;
            if (in->prev_lo < t && t <= in->prev_hi) in_prev = 1;
            if (in->n_channels) mask |= (uint64_t) 1 << in->channels[s->prow[s->val[q]]];
        }
        for (w = 0; w < in->n_windows; w++) wc[3 * w] += latest > in->window_lo[w];
        prev += in_prev;
        for (; mask; mask &= mask - 1) s->channel_orders[fe_lowest_bit(mask)]++;
    }
    *orders_prev = prev;
    return frequency;
}

static void fe_profile_fold_one(int64_t j, const fe_profile_inputs *in, fe_profile_outputs *out,
                                fe_profile_scratch *s) {
    const int64_t n_out = out->n_out, n_win = in->n_windows, n_ch = in->n_channels;
    const int64_t a_channels = FE_A_WINDOWS + 2 * n_win;
    int64_t *ints = out->ints, *wc = s->window_counts;
    double *floats = out->floats;
    fe_money *acc = s->acc, m;
    int64_t q, r, t, w, i, p = 0, first = INT64_MAX, last = INT64_MIN, last_channel = -1, ch;
    int64_t d, prev_day = 0, n_days = 0, gap_sum = 0, last_gap = -1, frequency, orders_prev;
    int64_t recency, used;
    double a, purchase_sum, mean_gap, ss, dev, spend_prev, spend_now;
    int new_day;
    for (q = 0; q < a_channels + n_ch; q++) fe_money_zero(&acc[q]);
    for (q = 0; q < 3 * n_win; q++) wc[q] = 0;
    for (q = 0; q < n_ch; q++) s->channel_orders[q] = 0;
    for (q = in->offsets[j]; q < in->offsets[j + 1]; q++) {
        if (q + FE_PREFETCH_ROWS < in->n_rows) fe_prefetch_row(in, in->perm[q + FE_PREFETCH_ROWS]);
        r = in->perm[q];
        t = in->times[r];
        a = in->amounts[r];
        m = fe_money_of(a);
        if (a < 0.0) {
            fe_money_add(&acc[FE_A_RETURNS], &m);
            for (w = 0; w < n_win; w++) {
                if (t > in->window_lo[w]) {
                    wc[3 * w + 2]++;
                    fe_money_add(&acc[FE_A_WINDOWS + n_win + w], &m);
                }
            }
            continue;
        }
        fe_money_add(&acc[FE_A_PURCHASES], &m);
        if (t < first) first = t;
        if (n_ch) {
            /* ties of time: the channel ranked last, whatever the order of the rows */
            ch = in->channels[r];
            if (t > last || (t == last && in->channel_rank[ch] > in->channel_rank[last_channel]))
                last_channel = ch;
            fe_money_add(&acc[a_channels + ch], &m);
        }
        if (t > last) last = t;
        for (w = 0; w < n_win; w++)
            if (t > in->window_lo[w]) fe_money_add(&acc[FE_A_WINDOWS + w], &m);
        if (in->prev_lo < t && t <= in->prev_hi) fe_money_add(&acc[FE_A_PREV], &m);
        s->ptime[p] = t;
        s->prow[p] = r;
        p++;
    }
    if (p == 0) return;  /* not laid out by the caller: only customers with a purchase are */
    purchase_sum = fe_money_value(&acc[FE_A_PURCHASES]);
    for (w = 0; w < n_win; w++) {
        floats[(FE_D_N_FLOAT + 2 * w) * n_out + j] = fe_money_value(&acc[FE_A_WINDOWS + w]);
        floats[(FE_D_N_FLOAT + 2 * w + 1) * n_out + j] =
            -fe_money_value(&acc[FE_A_WINDOWS + n_win + w]);
    }
    /* purchase rows in time order (ties in input order, which no output depends on) */
    if (!fe_is_sorted(s->ptime, p)) fe_sort_pairs(s->ptime, s->prow, p, s->tmp_k, s->tmp_v);
    /* distinct days (runs of the sorted times), their gaps, distinct days per window */
    for (i = 0; i < p; i++) {
        t = s->ptime[i];
        d = fe_floor_div(t, FE_US_PER_DAY);
        new_day = i == 0 || d != prev_day;
        if (new_day) {
            if (n_days > 0) {
                last_gap = d - prev_day;
                gap_sum += last_gap;
            }
            s->key[n_days++] = d;
        }
        for (w = 0; w < n_win; w++)
            if (t > in->window_lo[w] && (new_day || s->ptime[i - 1] <= in->window_lo[w]))
                wc[3 * w + 1]++;
        prev_day = d;
    }
    recency = fe_floor_div(in->as_of_us - last, FE_US_PER_DAY);
    ints[FE_C_RECENCY * n_out + j] = recency;
    if (n_days > 1) {
        mean_gap = (double) gap_sum / (double) (n_days - 1);
        ss = 0.0;
        for (i = 1; i < n_days; i++) {
            dev = (double) (s->key[i] - s->key[i - 1]) - mean_gap;
            ss += dev * dev;
        }
        floats[FE_D_GAP_MEAN * n_out + j] = mean_gap;
        floats[FE_D_GAP_STD * n_out + j] = sqrt(ss / (double) (n_days - 1));
        floats[FE_D_OVERDUE * n_out + j] = (double) recency / mean_gap;
        ints[FE_C_LAST_GAP * n_out + j] = last_gap;
    } else {
        floats[FE_D_GAP_MEAN * n_out + j] = NAN;
        floats[FE_D_GAP_STD * n_out + j] = NAN;
        floats[FE_D_OVERDUE * n_out + j] = NAN;
        ints[FE_C_LAST_GAP * n_out + j] = -1;
    }
    frequency = fe_fold_orders(p, in, s, &orders_prev);
    for (w = 0; w < 3 * n_win; w++) ints[(FE_C_N_INT + w) * n_out + j] = wc[w];
    /* RFM as rfm() defines it (identical values): purchases, plus returns when netted */
    if (in->net_returns) fe_money_add(&acc[FE_A_PURCHASES], &acc[FE_A_RETURNS]);
    floats[FE_D_MONETARY_TOTAL * n_out + j] = fe_money_value(&acc[FE_A_PURCHASES]);
    floats[FE_D_MONETARY_MEAN * n_out + j] =
        floats[FE_D_MONETARY_TOTAL * n_out + j] / (double) frequency;
    ints[FE_C_FIRST * n_out + j] = first;
    ints[FE_C_LAST * n_out + j] = last;
    ints[FE_C_TENURE * n_out + j] = fe_floor_div(in->as_of_us - first, FE_US_PER_DAY);
    ints[FE_C_FREQUENCY * n_out + j] = frequency;
    ints[FE_C_DAYS * n_out + j] = n_days;
    /* trend: the shortest window against the same length just before it (NaN when that is 0) */
    spend_prev = fe_money_value(&acc[FE_A_PREV]);
    ints[FE_C_ORDERS_PREV * n_out + j] = orders_prev;
    floats[FE_D_SPEND_PREV * n_out + j] = spend_prev;
    spend_now = floats[(FE_D_N_FLOAT + 2 * in->trend_window) * n_out + j];
    floats[FE_D_SPEND_TREND * n_out + j] = spend_prev > 0.0 ? spend_now / spend_prev : NAN;
    floats[FE_D_ORDERS_TREND * n_out + j] =
        orders_prev > 0 ? (double) wc[3 * in->trend_window] / (double) orders_prev : NAN;
    floats[FE_D_ITEMS_PER_ORDER * n_out + j] = (double) p / (double) frequency;
    fe_fold_basket(j, p, in, out, s);
    if (n_ch) {
        for (used = 0, ch = 0; ch < n_ch; ch++) {
            used += s->channel_orders[ch] > 0;
            out->shares[ch * n_out + j] = (double) s->channel_orders[ch] / (double) frequency;
            out->shares[(n_ch + ch) * n_out + j] = purchase_sum > 0.0
                ? fe_money_value(&acc[a_channels + ch]) / purchase_sum : NAN;
        }
        ints[FE_C_N_CHANNELS * n_out + j] = used;
        ints[FE_C_LAST_CHANNEL * n_out + j] = last_channel;
    }
}

#endif
