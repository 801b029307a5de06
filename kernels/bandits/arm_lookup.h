/* Arm ids -> arm codes for a policy's small, fixed set of arms (arms_native.pyx, issue #12).
 *
 * Why not pyarrow.compute.index_in: it hashes every string of the column with a general
 * memo table, ~9 ns a row, a quarter of a whole LinUCB fit of 1M rows x 20 features. A policy
 * has a handful to a few thousand arms, so the table here is tiny (cache resident), and a short
 * id is its own key: the first 16 bytes as two words plus the length, hashed with two
 * multiplies; ids longer than 16 bytes also hash and compare the rest (so ids alike in their
 * first 16 bytes, "campaign-2026-offer-0001", "...-0002", do not share a probe chain). Read-only
 * once built: any number of threads look up at once.
 *
 * Table layout (built by fe_arm_table_put, int64 words, FE_ARM_SLOT_WORDS per slot):
 *   [w0, w1, length, code] for strings, [value, 0, 0, code] for int64 ids; code -1 = empty.
 * Capacity is a power of two with at most one slot in four used, so a probe ends quickly.
 */
#ifndef FE_ARM_LOOKUP_H
#define FE_ARM_LOOKUP_H
#include <stdint.h>
#include <string.h>

#define FE_ARM_SLOT_WORDS 4

static inline uint64_t fe_arm_hash(uint64_t w0, uint64_t w1, uint64_t len) {
    /* A product carries a key's bits only upwards, and the table index is the low bits: fold
     * the high half down and multiply again, so ids differing in any byte spread out. */
    uint64_t h = (w0 * 0x9E3779B97F4A7C15ULL) ^ ((w1 + len) * 0xC2B2AE3D27D4EB4FULL);
    h = (h ^ (h >> 32)) * 0xD6E8FEB86659FD93ULL;
    return h ^ (h >> 32);
}

/* The first 16 bytes of s[0 .. len) as two words, zero beyond len. `room` is how many bytes
 * may be read from s (the rest of the Arrow value buffer): with 16 to spare, two plain loads
 * and a mask; near the end of the buffer, a byte copy (never a read past it). */
static inline void fe_arm_words(const uint8_t *s, int64_t len, int64_t room, uint64_t *w0,
                                uint64_t *w1) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (room >= 16) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + 8, 8);
        if (len < 8) {
            a = len ? a & (~0ULL >> (64 - 8 * len)) : 0;
            b = 0;
        } else if (len < 16) {
            b = len > 8 ? b & (~0ULL >> (64 - 8 * (len - 8))) : 0;
        }
        *w0 = a;
        *w1 = b;
        return;
    }
#endif
    uint8_t buf[16] = {0};
    memcpy(buf, s, (size_t)(len < 16 ? len : 16));
    memcpy(w0, buf, 8);
    memcpy(w1, buf + 8, 8);
}

/* The hash input of an id's bytes past the 16th (0 for short ids): a word-at-a-time mix. */
static inline uint64_t fe_arm_rest(const uint8_t *s, int64_t len) {
    uint64_t h = 0, word;
    int64_t i = 16;
    for (; i + 8 <= len; i += 8) {
        memcpy(&word, s + i, 8);
        h = (((h << 5) | (h >> 59)) ^ word) * 0x517CC1B727220A95ULL;
    }
    if (i < len) {
        word = 0;
        memcpy(&word, s + i, (size_t)(len - i));
        h = (((h << 5) | (h >> 59)) ^ word) * 0x517CC1B727220A95ULL;
    }
    return h;
}

/* Capacity (slots) for k arms: a power of two >= 4 k, at least 16. */
static inline int64_t fe_arm_table_capacity(int64_t k) {
    int64_t cap = 16;
    while (cap < 4 * k) cap *= 2;
    return cap;
}

/* Insert one arm (code) into an empty-initialised table; the caller inserts each id once. */
static inline void fe_arm_table_put(int64_t *table, int64_t cap, uint64_t w0, uint64_t w1,
                                    uint64_t len, uint64_t rest, int64_t code) {
    uint64_t j = fe_arm_hash(w0, w1 ^ rest, len) & (uint64_t)(cap - 1);
    while (table[j * FE_ARM_SLOT_WORDS + 3] >= 0) j = (j + 1) & (uint64_t)(cap - 1);
    table[j * FE_ARM_SLOT_WORDS + 0] = (int64_t)w0;
    table[j * FE_ARM_SLOT_WORDS + 1] = (int64_t)w1;
    table[j * FE_ARM_SLOT_WORDS + 2] = (int64_t)len;
    table[j * FE_ARM_SLOT_WORDS + 3] = code;
}

/* Code of the string s[0 .. len) or -1. arm_offsets/arm_data: the arms' own Arrow buffers
 * (for the bytes past the 16th). */
static inline int64_t fe_arm_find_string(const int64_t *table, int64_t cap, const uint8_t *s,
                                         int64_t len, int64_t room, const int64_t *arm_offsets,
                                         const uint8_t *arm_data) {
    uint64_t w0, w1;
    fe_arm_words(s, len, room, &w0, &w1);
    const uint64_t rest = len > 16 ? fe_arm_rest(s, len) : 0;
    uint64_t j = fe_arm_hash(w0, w1 ^ rest, (uint64_t)len) & (uint64_t)(cap - 1);
    for (;;) {
        const int64_t *slot = table + j * FE_ARM_SLOT_WORDS;
        const int64_t code = slot[3];
        if (code < 0) return -1;
        if ((uint64_t)slot[0] == w0 && (uint64_t)slot[1] == w1 && slot[2] == len
            && (len <= 16 || memcmp(arm_data + arm_offsets[code] + 16, s + 16,
                                    (size_t)(len - 16)) == 0))
            return code;
        j = (j + 1) & (uint64_t)(cap - 1);
    }
}

static inline int64_t fe_arm_find_int(const int64_t *table, int64_t cap, int64_t value) {
    uint64_t j = fe_arm_hash((uint64_t)value, 0, 0) & (uint64_t)(cap - 1);  /* as put */
    for (;;) {
        const int64_t *slot = table + j * FE_ARM_SLOT_WORDS;
        if (slot[3] < 0) return -1;
        if (slot[0] == value) return slot[3];
        j = (j + 1) & (uint64_t)(cap - 1);
    }
}

/* The strings of codes[0 .. n) (code < 0: a null, no bytes) from the arms' own buffers into
 * an Arrow string array's offsets (n + 1, from 0) and data, which has 16 bytes to spare past the
 * total: an id of up to 16 bytes is copied as two fixed 8-byte words,
 * no call to memcpy of a variable size. */
static inline void fe_arm_gather(const int64_t *codes, int64_t n, const int64_t *arm_offsets,
                                 const uint8_t *arm_data, int32_t *offsets, uint8_t *data) {
    int64_t at = 0;
    offsets[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t code = codes[i];
        if (code >= 0) {
            const int64_t start = arm_offsets[code], len = arm_offsets[code + 1] - start;
            if (len <= 16) {
                uint64_t w[2];
                memcpy(w, arm_data + start, 16);  /* the arms' buffer has 16 bytes to spare */
                memcpy(data + at, w, 16);
            } else {
                memcpy(data + at, arm_data + start, (size_t)len);
            }
            at += len;
        }
        offsets[i + 1] = (int32_t)at;
    }
}

#endif
