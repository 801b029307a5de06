/* Dense codes of one id-range partition, in ascending id order (hashed.encode_partitions;
 * called from partition_native.pyx). A partition holds a few thousand distinct ids: they are
 * numbered in first-seen order in a small open-addressing table that stays in the core's
 * cache, then sorted, and every row renumbered by its id's rank.
 */
#ifndef FE_NUMBER_IDS_H
#define FE_NUMBER_IDS_H

#include <stdint.h>
#include <stdlib.h>
#include "partition_rows.h"
#include "sort_keys.h"

typedef struct {
    uint64_t* key0;
    uint64_t* key1;  /* NULL unless two_words */
    int32_t* code;   /* -1: empty */
    int64_t capacity;
} fe_id_table;

static inline uint64_t fe_id_hash(uint64_t k0, uint64_t k1, int two_words) {
    return two_words ? fe_mix64(k0 ^ fe_mix64(k1)) : fe_mix64(k0);
}

static inline void fe_id_table_free(fe_id_table* t) {
    free(t->key0);
    free(t->key1);
    free(t->code);
    t->key0 = t->key1 = NULL;
    t->code = NULL;
}

/* 0, or -1 when out of memory (t is then empty) */
static inline int fe_id_table_init(fe_id_table* t, int64_t capacity, int two_words) {
    t->capacity = capacity;
    t->key0 = (uint64_t*)malloc(capacity * sizeof(uint64_t));
    t->key1 = two_words ? (uint64_t*)malloc(capacity * sizeof(uint64_t)) : NULL;
    t->code = (int32_t*)malloc(capacity * sizeof(int32_t));
    if (!t->key0 || !t->code || (two_words && !t->key1)) {
        fe_id_table_free(t);
        return -1;
    }
    for (int64_t j = 0; j < capacity; j++)
        t->code[j] = -1;
    return 0;
}

/* Twice the slots, every id re-inserted: 0, or -1 when out of memory (t unchanged). */
static inline int fe_id_table_grow(fe_id_table* t, int two_words) {
    fe_id_table grown;
    if (fe_id_table_init(&grown, 2 * t->capacity, two_words))
        return -1;
    const uint64_t mask = (uint64_t)(grown.capacity - 1);
    for (int64_t s = 0; s < t->capacity; s++) {
        if (t->code[s] < 0)
            continue;
        uint64_t k1 = two_words ? t->key1[s] : 0;
        uint64_t j = fe_id_hash(t->key0[s], k1, two_words) & mask;
        while (grown.code[j] >= 0)
            j = (j + 1) & mask;
        grown.key0[j] = t->key0[s];
        if (two_words)
            grown.key1[j] = k1;
        grown.code[j] = t->code[s];
    }
    fe_id_table_free(t);
    *t = grown;
    return 0;
}

/* Rank the d ids numbered in first-seen order in ids*[0:d) by id: rank[first-seen number], and
 * the ids rewritten in ascending order. 0, or -1 when out of memory. */
static inline int fe_rank_ids(uint64_t* ids0, uint64_t* ids1, int64_t d, int two_words, int is_signed,
                       const fe_id_table* table, int32_t* rank) {
    if (two_words) {
        fe_pair* keys = (fe_pair*)malloc((d > 0 ? d : 1) * sizeof(fe_pair));
        if (!keys)
            return -1;
        for (int64_t c = 0; c < d; c++)
            keys[c] = fe_sort_key(ids0, ids1, 1, 0, c);
        fe_sort_pairs(keys, d);
        for (int64_t r = 0; r < d; r++) {
            rank[keys[r].index] = (int32_t)r;
            ids0[r] = __builtin_bswap64(keys[r].high);
            ids1[r] = __builtin_bswap64(keys[r].low);
        }
        free(keys);
        return 0;
    }
    /* Integers: a direct sort of the ids (no indirect compares), each one's first-seen number
     * found again through the table. */
    const uint64_t flip = is_signed ? FE_SIGN : 0;
    const uint64_t mask = (uint64_t)(table->capacity - 1);
    for (int64_t c = 0; c < d; c++)
        ids0[c] ^= flip;
    fe_sort_u64(ids0, d);
    for (int64_t r = 0; r < d; r++) {
        uint64_t key = ids0[r] ^ flip;
        uint64_t j = fe_mix64(key) & mask;
        while (table->key0[j] != key)
            j = (j + 1) & mask;
        rank[table->code[j]] = (int32_t)r;
        ids0[r] = key;
    }
    return 0;
}

/* Number the distinct ids of rows [lo, hi) 0, 1, ... in ascending id order: each row's number
 * in local[i], the key words of number r in ids0[lo + r] (and ids1[lo + r]); there are at most
 * hi - lo numbers. The table starts with room for every row's id up to table_rows rows (at
 * one row per customer a partition's ~5,000 ids made a smaller one double twice).
 * Returns the number of distinct ids, or -1 when out of memory. */
static inline int64_t fe_number_partition(const uint64_t* keys0, const uint64_t* keys1, int two_words,
                                   int is_signed, int64_t lo, int64_t hi, int64_t table_rows,
                                   int32_t* local, uint64_t* ids0, uint64_t* ids1) {
    int64_t capacity = 256;
    int64_t wanted = hi - lo < table_rows ? hi - lo : table_rows;
    while (capacity < 2 * wanted)
        capacity *= 2;
    fe_id_table table;
    if (fe_id_table_init(&table, capacity, two_words))
        return -1;
    uint64_t mask = (uint64_t)(capacity - 1);
    int64_t n_distinct = 0;
    for (int64_t i = lo; i < hi; i++) {
        uint64_t k0 = keys0[i];
        uint64_t k1 = two_words ? keys1[i] : 0;
        uint64_t j = fe_id_hash(k0, k1, two_words) & mask;
        for (;;) {
            int32_t c = table.code[j];
            if (c < 0) {
                table.key0[j] = k0;
                ids0[lo + n_distinct] = k0;
                if (two_words) {
                    table.key1[j] = k1;
                    ids1[lo + n_distinct] = k1;
                }
                table.code[j] = (int32_t)n_distinct;
                local[i] = (int32_t)n_distinct;
                n_distinct++;
                break;
            }
            if (table.key0[j] == k0 && (!two_words || table.key1[j] == k1)) {
                local[i] = c;
                break;
            }
            j = (j + 1) & mask;
        }
        if (2 * n_distinct > table.capacity) {  /* at most half full: probes stay short */
            if (fe_id_table_grow(&table, two_words)) {
                fe_id_table_free(&table);
                return -1;
            }
            mask = (uint64_t)(table.capacity - 1);
        }
    }
    int32_t* rank = (int32_t*)malloc((n_distinct > 0 ? n_distinct : 1) * sizeof(int32_t));
    if (!rank || fe_rank_ids(ids0 + lo, two_words ? ids1 + lo : NULL, n_distinct, two_words,
                             is_signed, &table, rank)) {
        free(rank);
        fe_id_table_free(&table);
        return -1;
    }
    fe_id_table_free(&table);
    for (int64_t i = lo; i < hi; i++)
        local[i] = rank[local[i]];
    free(rank);
    return n_distinct;
}

#endif
