/* The few-ids rfm() fold (kernels/features/fewids.py documents the method; called from
 * fewids_native.pyx): a thread's open-addressing table of the ids it met, one 64-byte record
 * of uint64 words per id, one day bitmap per id; then every thread's records sorted by id and
 * the records of one id added up into rfm.STATE_DTYPE records.
 */
#ifndef FE_FEWIDS_FOLD_H
#define FE_FEWIDS_FOLD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "partition_rows.h"
#include "profile_money.h"  /* the 192-bit fixed point of rfm.fixed_words */
#include "sort_keys.h"

/* a record's words: the id's key words, first and last purchase (biased by the sign bit, so
 * that unsigned order is time order), the fixed-point money, the two row counts */
enum { FE_KEY0, FE_KEY1, FE_FIRST, FE_LAST, FE_FRAC, FE_LOW, FE_HIGH, FE_ROWS, FE_RECORD_WORDS };

#define FE_TAG 0xFFFFFFFF00000000ULL
#define FE_CODE 0xFFFFFFFFULL
#define FE_GOLDEN 0x9E3779B97F4A7C15ULL
/* purchase rows count in the low half of the ROWS word, return rows in the high half */
#define FE_RETURN_ROW ((uint64_t)1 << 32)
#define FE_US_PER_DAY 86400000000LL
/* rows whose hashes the fold keeps (a power of two above twice the prefetch distance) */
#define FE_HASH_RING 64
/* records the merge requests ahead of the one it adds up */
#define FE_MERGE_AHEAD 8

/* Exactly rfm.STATE_DTYPE (align=True), as fold_native.pyx's Record. */
typedef struct {
    int64_t first_us, last_us;
    uint64_t money_frac, money_lo;
    int64_t money_hi;
    int32_t purchase_rows, return_rows, frequency, purchase_days, last_day, last_order;
} fe_rfm_record;
typedef char fe_rfm_record_is_64_bytes[sizeof(fe_rfm_record) == 64 ? 1 : -1];

typedef struct {
    uint64_t* table;    /* 2 * room slots: 0 empty, else the hash's high 32 bits | (code + 1) */
    uint64_t* records;  /* room * FE_RECORD_WORDS */
    uint64_t* bitmap;   /* room * words, zeroed */
    int64_t room;
    int64_t n_codes;
    int64_t after_rows, return_rows;
} fe_fewids_state;

/* the workers' shared "stop" flag */
static inline int64_t fe_flag_load(const int64_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void fe_flag_store(int64_t* p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

static inline int64_t fe_floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* SWAR bit count: __builtin_popcountll is a libgcc call on baseline x86-64 (no popcnt) */
static inline int32_t fe_popcount(uint64_t x) {
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (int32_t)((x * 0x0101010101010101ULL) >> 56);
}

static inline uint64_t fe_fewids_hash(uint64_t k0, uint64_t k1) {
    /* table slot from the low bits, a 32-bit tag (kept in the slot) from the high ones */
    return fe_mix64(k0 ^ (k1 * FE_GOLDEN));
}

/* Slot of key (k0, k1): the slot holding its code, or the empty one where it goes. */
static inline uint64_t fe_fewids_find(const uint64_t* table, uint64_t mask, const uint64_t* records,
                                      uint64_t k0, uint64_t k1, uint64_t h) {
    uint64_t tag = h & FE_TAG;
    uint64_t j = h & mask;
    for (;;) {
        uint64_t entry = table[j];
        if (entry == 0)
            return j;
        if ((entry & FE_TAG) == tag) {
            const uint64_t* rec = records + ((entry & FE_CODE) - 1) * FE_RECORD_WORDS;
            if (rec[FE_KEY0] == k0 && rec[FE_KEY1] == k1)
                return j;
        }
        j = (j + 1) & mask;
    }
}

static inline void fe_fewids_free(fe_fewids_state* s) {
    free(s->table);
    free(s->records);
    free(s->bitmap);
    s->table = s->records = s->bitmap = NULL;
}

/* 0, or -1 when out of memory */
static inline int fe_fewids_init(fe_fewids_state* s, int64_t room, int64_t words) {
    s->room = room;
    s->n_codes = 0;
    s->after_rows = s->return_rows = 0;
    s->table = (uint64_t*)calloc(2 * room, sizeof(uint64_t));
    s->records = (uint64_t*)malloc(room * FE_RECORD_WORDS * sizeof(uint64_t));
    s->bitmap = (uint64_t*)calloc(room * words > 0 ? room * words : 1, sizeof(uint64_t));
    if (!s->table || !s->records || !s->bitmap) {
        fe_fewids_free(s);
        return -1;
    }
    return 0;
}

/* Twice the room (the table rehashed): 0, or -1 when out of memory (s unchanged). */
static inline int fe_fewids_grow(fe_fewids_state* s, int64_t words) {
    fe_fewids_state g;
    if (fe_fewids_init(&g, 2 * s->room, words))
        return -1;
    memcpy(g.records, s->records, s->n_codes * FE_RECORD_WORDS * sizeof(uint64_t));
    memcpy(g.bitmap, s->bitmap, s->n_codes * words * sizeof(uint64_t));
    const uint64_t mask = (uint64_t)(2 * g.room - 1);
    for (int64_t c = 0; c < s->n_codes; c++) {
        const uint64_t* rec = s->records + c * FE_RECORD_WORDS;
        uint64_t h = fe_fewids_hash(rec[FE_KEY0], rec[FE_KEY1]);
        g.table[fe_fewids_find(g.table, mask, g.records, rec[FE_KEY0], rec[FE_KEY1], h)] =
            (h & FE_TAG) | (uint64_t)(c + 1);
    }
    g.n_codes = s->n_codes;
    g.after_rows = s->after_rows;
    g.return_rows = s->return_rows;
    fe_fewids_free(s);
    *s = g;
    return 0;
}

/* Fold rows [lo, hi) into s until its room is full; returns the row it stopped at (hi when
 * done, else grow s and go on from there). Software pipeline: the table slot of row i + 2 D is
 * requested, the record and day word of row i + D (found through its slot, now in cache) too,
 * so that the misses of several rows overlap instead of each row waiting for its own. */
static inline __attribute__((always_inline)) int64_t fe_fewids_fold_rows(
        const uint64_t* keys0, const uint64_t* keys1, const int two_words, const int64_t* times,
        const double* amounts, int64_t lo, int64_t hi, int64_t limit_us, int exclude_returns,
        int64_t first_day, int64_t words, int64_t prefetch_rows, fe_fewids_state* s) {
    uint64_t* const table = s->table;
    uint64_t* const records = s->records;
    uint64_t* const bitmap = s->bitmap;
    const uint64_t mask = (uint64_t)(2 * s->room - 1);
    int64_t n_codes = s->n_codes, n_after = 0, n_ret = 0, stop = hi;
    /* each row's hash is computed once, at i + 2 D, and kept for its two later uses */
    uint64_t ring[FE_HASH_RING];
    if (prefetch_rows > FE_HASH_RING / 2 - 1)
        prefetch_rows = FE_HASH_RING / 2 - 1;
    for (int64_t r = lo; r < hi && r < lo + 2 * prefetch_rows; r++)
        ring[r & (FE_HASH_RING - 1)] = fe_fewids_hash(keys0[r], two_words ? keys1[r] : 0);
    for (int64_t i = lo; i < hi; i++) {
        int64_t ahead = i + 2 * prefetch_rows;
        if (ahead < hi) {
            uint64_t h = fe_fewids_hash(keys0[ahead], two_words ? keys1[ahead] : 0);
            ring[ahead & (FE_HASH_RING - 1)] = h;
            __builtin_prefetch(table + (h & mask), 1, 3);
        }
        int64_t near = i + prefetch_rows;
        if (near < hi) {
            uint64_t h = ring[near & (FE_HASH_RING - 1)];
            uint64_t entry = table[h & mask];
            if (entry != 0 && (entry & FE_TAG) == (h & FE_TAG)) {
                int64_t c = (int64_t)(entry & FE_CODE) - 1;
                int64_t offset = fe_floor_div(times[near], FE_US_PER_DAY) - first_day;
                __builtin_prefetch(records + c * FE_RECORD_WORDS, 1, 3);
                __builtin_prefetch(bitmap + c * words + (offset >> 6), 1, 3);
            }
        }
        uint64_t k0 = keys0[i];
        uint64_t k1 = two_words ? keys1[i] : 0;
        uint64_t h = ring[i & (FE_HASH_RING - 1)];
        uint64_t j = fe_fewids_find(table, mask, records, k0, k1, h);
        uint64_t entry = table[j];
        uint64_t* rec;
        int64_t c;
        if (entry != 0) {
            c = (int64_t)(entry & FE_CODE) - 1;
            rec = records + c * FE_RECORD_WORDS;
        } else {
            if (n_codes == s->room) {
                stop = i;
                break;
            }
            c = n_codes++;
            table[j] = (h & FE_TAG) | (uint64_t)(c + 1);
            rec = records + c * FE_RECORD_WORDS;
            rec[FE_KEY0] = k0;
            rec[FE_KEY1] = k1;
            rec[FE_FIRST] = (uint64_t)INT64_MAX ^ FE_SIGN;
            rec[FE_LAST] = 0;  /* INT64_MIN ^ SIGN */
            rec[FE_FRAC] = rec[FE_LOW] = rec[FE_HIGH] = rec[FE_ROWS] = 0;
        }
        int64_t t = times[i];
        if (t > limit_us) {
            n_after++;
            continue;
        }
        double a = amounts[i];
        if (a < 0.0) {
            rec[FE_ROWS] += FE_RETURN_ROW;
            n_ret++;
            if (!exclude_returns) {
                fe_money w = fe_money_of(a);
                fe_money_add((fe_money*)(rec + FE_FRAC), &w);
            }
            continue;
        }
        rec[FE_ROWS] += 1;
        fe_money w = fe_money_of(a);
        fe_money_add((fe_money*)(rec + FE_FRAC), &w);
        uint64_t biased = (uint64_t)t ^ FE_SIGN;
        if (biased < rec[FE_FIRST])
            rec[FE_FIRST] = biased;
        if (biased > rec[FE_LAST])
            rec[FE_LAST] = biased;
        int64_t offset = fe_floor_div(t, FE_US_PER_DAY) - first_day;
        bitmap[c * words + (offset >> 6)] |= (uint64_t)1 << (offset & 63);
    }
    s->n_codes = n_codes;
    s->after_rows += n_after;
    s->return_rows += n_ret;
    return stop;
}

/* fe_fewids_fold_rows compiled once per key width (two_words a constant in each loop). */
static inline int64_t fe_fewids_fold_block(const uint64_t* keys0, const uint64_t* keys1, int two_words,
                                    const int64_t* times, const double* amounts, int64_t lo,
                                    int64_t hi, int64_t limit_us, int exclude_returns,
                                    int64_t first_day, int64_t words, int64_t prefetch_rows,
                                    fe_fewids_state* s) {
    if (two_words)
        return fe_fewids_fold_rows(keys0, keys1, 1, times, amounts, lo, hi, limit_us,
                                   exclude_returns, first_day, words, prefetch_rows, s);
    return fe_fewids_fold_rows(keys0, keys1, 0, times, amounts, lo, hi, limit_us,
                               exclude_returns, first_day, words, prefetch_rows, s);
}

/* The records of every state, merged by id into out[0:d] in ascending id order (hashed's
 * fe_sort_key order), the records of one id added up (sums of integers, min, max, bitwise or
 * of the days: exact whatever the threads' order); ids0/ids1[0:d] the ids' key words. Returns
 * d, or -1 when out of memory. */
static inline int64_t fe_fewids_merge(fe_fewids_state* const* states, int64_t n_states, int64_t words,
                               int two_words, int is_signed, fe_rfm_record* out, uint64_t* ids0,
                               uint64_t* ids1) {
    int64_t m = 0;
    for (int64_t t = 0; t < n_states; t++)
        m += states[t]->n_codes;
    fe_pair* keys = (fe_pair*)malloc((m > 0 ? m : 1) * sizeof(fe_pair));
    const uint64_t** recs = (const uint64_t**)malloc((m > 0 ? m : 1) * sizeof(uint64_t*));
    const uint64_t** days = (const uint64_t**)malloc((m > 0 ? m : 1) * sizeof(uint64_t*));
    if (!keys || !recs || !days) {
        free(keys);
        free(recs);
        free(days);
        return -1;
    }
    int64_t k = 0;
    for (int64_t t = 0; t < n_states; t++) {
        for (int64_t c = 0; c < states[t]->n_codes; c++, k++) {
            recs[k] = states[t]->records + c * FE_RECORD_WORDS;
            days[k] = states[t]->bitmap + c * words;
            keys[k] = fe_sort_key(recs[k] + FE_KEY0, recs[k] + FE_KEY1, two_words, is_signed, 0);
            keys[k].index = k;
        }
    }
    fe_sort_pairs(keys, m);
    int64_t d = 0;
    for (int64_t r = 0; r < m;) {
        int64_t e = r + 1;
        while (e < m && keys[e].high == keys[r].high && keys[e].low == keys[r].low)
            e++;
        if (r + FE_MERGE_AHEAD < m) {  /* records are read in id order: at random */
            const uint64_t* later = recs[keys[r + FE_MERGE_AHEAD].index];
            const uint64_t* later_days = days[keys[r + FE_MERGE_AHEAD].index];
            __builtin_prefetch(later, 0, 3);
            for (int64_t x = 0; x < words; x += 8)
                __builtin_prefetch(later_days + x, 0, 3);
        }
        const uint64_t* rec = recs[keys[r].index];
        uint64_t first = rec[FE_FIRST], last = rec[FE_LAST], rows = rec[FE_ROWS];
        fe_money money = {{rec[FE_FRAC], rec[FE_LOW], rec[FE_HIGH]}};
        for (int64_t q = r + 1; q < e; q++) {
            const uint64_t* other = recs[keys[q].index];
            first = other[FE_FIRST] < first ? other[FE_FIRST] : first;
            last = other[FE_LAST] > last ? other[FE_LAST] : last;
            rows += other[FE_ROWS];
            fe_money_add(&money, (const fe_money*)(other + FE_FRAC));
        }
        int32_t n_days = 0;
        for (int64_t x = 0; x < words; x++) {
            uint64_t day_bits = 0;
            for (int64_t q = r; q < e; q++)
                day_bits |= days[keys[q].index][x];
            n_days += fe_popcount(day_bits);
        }
        fe_rfm_record* dst = out + d;
        dst->first_us = (int64_t)(first ^ FE_SIGN);
        dst->last_us = (int64_t)(last ^ FE_SIGN);
        dst->money_frac = money.w[0];
        dst->money_lo = money.w[1];
        dst->money_hi = (int64_t)money.w[2];
        dst->purchase_rows = (int32_t)(rows & FE_CODE);
        dst->return_rows = (int32_t)(rows >> 32);
        dst->frequency = 0;  /* frequency counts purchase rows without an order column */
        dst->purchase_days = n_days;
        dst->last_day = INT32_MIN;  /* rfm.NO_DAY, as oneshot.fold's day bitmaps leave it */
        dst->last_order = -1;
        ids0[d] = rec[FE_KEY0];
        if (two_words)
            ids1[d] = rec[FE_KEY1];
        d++;
        r = e;
    }
    free(keys);
    free(recs);
    free(days);
    return d;
}

#endif
